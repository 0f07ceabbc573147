"""Classic classifiers: build, train, evaluate and save them from a configuration.

A configuration (see :mod:`diffranet.search.spaces`) names an extractor and a
classifier with their hyper-parameters; :func:`build_pipeline` turns it into
``make_pipeline(extractor, StandardScaler(), classifier)``.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from sklearn.ensemble import RandomForestClassifier

from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from .._atomic import atomic_write
from .._validation import check_choice
from ..classes import CLASS_NAMES
from ..dataset.loader import load_split
from ..features import BoVWExtractor, GLCMExtractor, LBPExtractor
from ..inference import save_model as save_model_file
from ..inference.training_input import shape_preprocessing, training_input
from .metrics import evaluate_splits

__all__ = ["build_classifier", "build_extractor", "build_pipeline", "save_model", "train_classic"]

_log = logging.getLogger(__name__)


def build_extractor(config, random_state=0, n_jobs=None):
    """Feature extractor of an ``{"name": ..., **parameters}`` extractor configuration."""
    name = check_choice("extractor name", config.get("name"), {"glcm", "lbp", "bovw"})
    if name == "glcm":
        return GLCMExtractor(distances=config["distances"], angles=config["angles"], n_jobs=n_jobs)
    if name == "lbp":
        return LBPExtractor(n_points=config["n_points"], radius=config["radius"], n_jobs=n_jobs)
    return BoVWExtractor(n_clusters=config["n_clusters"], random_state=random_state, n_jobs=n_jobs)


def _class_weight(value):
    """None, "balanced", or a per-class list (blank..strong) as a label -> weight dict."""
    if value is None or isinstance(value, str):
        return value
    return {label: float(weight) for label, weight in enumerate(value)}


def build_classifier(config, random_state=0, n_jobs=None):
    """SVM (RBF) or random forest of a ``{"name": "svm" | "rf", ...}`` configuration.

    An SVM ``gamma`` of 0 means 1 / n_features (``gamma="auto"``), the meaning
    0 had in the scikit-learn of the paper.
    """
    name = check_choice("model name", config.get("name"), {"svm", "rf"})
    class_weight = _class_weight(config["class_weight"])
    if name == "svm":
        gamma = "auto" if config["gamma"] == 0 else config["gamma"]
        return SVC(C=config["C"], gamma=gamma, kernel="rbf", class_weight=class_weight, random_state=random_state)
    return RandomForestClassifier(
        n_estimators=config["n_estimators"],
        max_features=config["max_features"],
        max_depth=config["max_depth"],
        class_weight=class_weight,
        random_state=random_state,
        n_jobs=n_jobs,
    )


def build_pipeline(config, random_state=0, n_jobs=None):
    """``make_pipeline(extractor, StandardScaler(), classifier)`` of a configuration.

    Parameters
    ----------
    config : dict
        ``{"extractor": {...}, "model": {...}}``, see :mod:`diffranet.search.spaces`.
    random_state : int, default=0
        Seed of the BoVW vocabulary and of the classifier.
    n_jobs : int or None, default=None
        Parallel workers of the extractor and the forest (None: 1, -1: all cores).

    Returns
    -------
    sklearn.pipeline.Pipeline
    """
    return make_pipeline(
        build_extractor(config["extractor"], random_state, n_jobs),
        StandardScaler(),
        build_classifier(config["model"], random_state, n_jobs),
    )


def save_model(model, path, config, metrics=None, preprocessing=None, training=None, class_names=CLASS_NAMES):
    """Save a fitted pipeline as a diffranet model file, and its configuration and scores as JSON.

    The model file (:func:`diffranet.inference.save_model`) records
    ``class_names`` (the five DiffraNet classes; ``HITMISS_NAMES`` for a
    hit / miss classifier), ``preprocessing`` (default: the paper's detector
    at the shape the model was fitted on) and a training summary (``training``
    plus the configuration and scores); the JSON goes to ``<path>.json``.
    Both are written under a temporary name and renamed into place.
    """
    if preprocessing is None:
        first = model.steps[0][1] if hasattr(model, "steps") else model
        preprocessing = shape_preprocessing(getattr(first, "image_shape_", None))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    summary = {**(training or {}), "config": config, "metrics": metrics or {}}
    save_model_file(model, path, class_names=class_names, preprocessing=preprocessing, training=summary)
    with atomic_write(path.with_name(path.name + ".json"), "w", encoding="utf-8") as fh:
        fh.write(json.dumps({"config": config, "metrics": metrics or {}}, indent=2) + "\n")


def train_classic(data_dir, config, out, random_state=0, n_jobs=None):
    """Train a configuration on ``data_dir/train``, score it on val/test, save it.

    Parameters
    ----------
    data_dir : path-like
        Data folder with a ``train`` split and optionally ``val`` and ``test``.
    config : dict
        Extractor + classifier configuration.
    out : path-like
        Model file (:func:`diffranet.inference.save_model` format); the
        configuration and scores also go to ``<out>.json``.
    random_state : int, default=0
    n_jobs : int or None, default=None

    Returns
    -------
    model : sklearn.pipeline.Pipeline
        The fitted pipeline.
    metrics : dict
        Split name -> :func:`~diffranet.training.metrics.split_scores` result, plus ``train_seconds``.
    """
    X, y = load_split(data_dir, "train")
    _log.info(f"train: {len(y)} images of {X.shape[1]} x {X.shape[2]} pixels")
    model = build_pipeline(config, random_state, n_jobs)
    start = time.perf_counter()
    model.fit(X, y)
    metrics = {"train_seconds": time.perf_counter() - start}
    _log.info(f"fitted in {metrics['train_seconds']:.1f} s")
    metrics.update(evaluate_splits(model, data_dir))
    preprocessing, training = training_input(data_dir, X.shape[1:], y)
    save_model(model, out, config, metrics, preprocessing, training)
    _log.info(f"saved {out}")
    return model, metrics
