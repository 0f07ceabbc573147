"""Score saved models on labelled frames: predictions, probabilities and every metric.

:func:`evaluate_model` runs one model over a :class:`LabelledData` set and
returns an :class:`Evaluation` (its decisions, the images it saw and
:func:`summarize`'s numbers); :func:`evaluate` does it for several models and
writes the report folder (:func:`diffranet.evaluation.report.write_report`).

The *task* of an evaluation is the five DiffraNet classes when both the data
and the model have them, and hit / miss otherwise (a hit / miss model, or
real frames labelled hit / miss only). Hit / miss metrics are computed in
every case: a five-class model calls a frame a hit when its most probable
class is weak, good or strong, and its hit score (for the ROC and
precision-recall curves) is the summed probability of those classes.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import numpy as np

from ..classes import CLASS_NAMES, HITMISS_NAMES, is_hit_name
from ..inference import Preprocessing, SavedModel, VerdictRule, load_model, preprocess
from ..inference.beam_center import fill_beam_center
from ..training_history import training_history
from . import metrics as m
from .data import LabelledData, load_labelled_data
from .report import write_report

__all__ = ["Evaluation", "evaluate_model", "summarize", "evaluate"]

_KNOWN_NAMES = frozenset(CLASS_NAMES) | frozenset(HITMISS_NAMES)


@dataclasses.dataclass
class Evaluation:
    """One model's decisions on one data set.

    Attributes
    ----------
    name : str
        The model's name in the report (its file name).
    model : SavedModel
    task : {"classes", "hitmiss"}
    labels : tuple of str
        Names of the task's classes (rows and columns of the confusion matrix).
    y_true, y_pred : ndarray of int64, shape (n,)
        True and predicted labels of the task.
    proba : ndarray of float, shape (n, len(model.class_names))
        The model's class probabilities.
    hit_true, hit_pred : ndarray of bool, shape (n,)
    hit_score : ndarray of float, shape (n,)
        Probability of a hit.
    images : ndarray of uint8, shape (n, rows, cols)
        What the model saw (after preprocessing, for real frames).
    seconds : float
        Time spent preprocessing and predicting.
    metrics : dict
        :func:`summarize` of the above.
    """

    name: str
    model: object
    task: str
    labels: tuple
    y_true: np.ndarray
    y_pred: np.ndarray
    proba: np.ndarray
    hit_true: np.ndarray
    hit_pred: np.ndarray
    hit_score: np.ndarray
    images: np.ndarray
    seconds: float
    metrics: dict = dataclasses.field(default_factory=dict)


def _check_model(model):
    names = tuple(getattr(model, "class_names", ()))
    if not names or not set(names) <= _KNOWN_NAMES or not is_hit_name(names).any():
        raise ValueError(f"the model's classes {names} are neither the DiffraNet classes {CLASS_NAMES} nor "
                         f"{HITMISS_NAMES}; hit / miss cannot be scored")
    return names


def _unrecorded_input(model, data):
    """An old joblib model records no input geometry: it is given the data's 8-bit images as they are."""
    if getattr(model, "metadata", {}).get("kind") != "joblib" or data.images is None:
        return model
    return SavedModel(model.estimator, model.class_names, Preprocessing(shape=data.images.shape[1:]),
                      model.metadata, model.rule)


def _model_images(model, data, progress):
    """The 8-bit images the model scores: the data's own, or its frames preprocessed for this model."""
    shape = tuple(model.preprocessing.shape)
    if data.images is not None:
        if tuple(data.images.shape[1:]) != shape:
            raise ValueError(f"the model expects {shape[0]} x {shape[1]} images, the data has "
                             f"{data.images.shape[1]} x {data.images.shape[2]}; evaluate it on data rendered "
                             f"for its detector")
        return data.images
    from tqdm.auto import tqdm

    images = np.empty((len(data.frames),) + shape, dtype=np.uint8)
    for i, frame in enumerate(tqdm(data.frames, desc="preprocess", unit="frame", disable=not progress)):
        raw, mask = frame.read()
        geometry, beam = fill_beam_center(raw, mask, None, frame.geometry, None)
        images[i] = preprocess(raw, mask, geometry, model.preprocessing, beam_center_px=beam)
    return images


def _predict(model, images, batch_size, progress):
    from tqdm.auto import tqdm

    proba = np.empty((len(images), len(model.class_names)))
    for start in tqdm(range(0, len(images), batch_size), desc="classify", unit="batch", disable=not progress):
        proba[start:start + batch_size] = model.predict_proba(images[start:start + batch_size])
    return proba


def evaluate_model(model, data, name=None, batch_size=256, progress=False):
    """Score one model on labelled frames.

    Parameters
    ----------
    model : SavedModel
        From :func:`diffranet.inference.load_model` (or built around a fitted
        estimator): five-class or hit / miss.
    data : LabelledData
        From :func:`load_labelled_data`.
    name : str, optional
        Name in the report; default the model's file name, else ``"model"``.
    batch_size : int, default 256
        Images per ``predict_proba`` call.
    progress : bool, default False
        Show progress bars.

    Returns
    -------
    Evaluation

    Raises
    ------
    ValueError
        If the model's classes are unknown, or its input shape differs from
        the data's images.
    """
    if not isinstance(data, LabelledData):
        raise ValueError(f"data must be a LabelledData (see load_labelled_data), got {type(data).__name__}")
    if not len(data):
        raise ValueError("data holds no frames")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    names = _check_model(model)
    model = _unrecorded_input(model, data)
    start = time.perf_counter()
    images = _model_images(model, data, progress)
    proba = _predict(model, images, int(batch_size), progress)
    seconds = time.perf_counter() - start
    # the verdicts `classify` would give: the model's rule (hit threshold) picks the side, then the class
    predicted, hit_pred = getattr(model, "rule", VerdictRule()).decide(proba, names)
    hit_score = proba[:, is_hit_name(names)].sum(axis=1)
    hit_true = np.asarray(data.hit, dtype=bool)
    if data.kind == "classes" and names == CLASS_NAMES:
        task, labels, y_true, y_pred = "classes", CLASS_NAMES, data.labels, predicted.astype(np.int64)
    else:
        task, labels = "hitmiss", HITMISS_NAMES
        y_true, y_pred = hit_true.astype(np.int64), hit_pred.astype(np.int64)
    if name is None:
        source = getattr(model, "metadata", {}).get("source_path")
        name = Path(source).name if source else "model"
    evaluation = Evaluation(name, model, task, labels, np.asarray(y_true, np.int64), y_pred, proba, hit_true,
                            hit_pred, hit_score, images, seconds)
    evaluation.metrics = summarize(evaluation, data)
    return evaluation


def _per_class(matrix, labels):
    precision, recall, support = m.precision_recall(matrix)
    return {name: {"precision": float(p), "recall": float(r), "support": int(s)}
            for name, p, r, s in zip(labels, precision, recall, support)}


def summarize(evaluation, data):
    """Every number of an evaluation, as a JSON-ready dict (``nan`` where undefined).

    Keys: ``task``, ``labels``, ``n_images``, ``accuracy`` (over the task's
    classes), ``confusion_matrix`` (rows true, columns predicted, in
    ``labels`` order), ``per_class`` (precision, recall, support),
    ``hitmiss_accuracy``, ``hitmiss_confusion_matrix`` (rows true miss, hit),
    ``hitmiss_per_class``, ``roc`` (``fpr``, ``tpr``, ``thresholds``, ``auc``),
    ``precision_recall`` (``precision``, ``recall``, ``thresholds``,
    ``average_precision``), ``operating_point``, ``seconds`` and
    ``images_per_s``; with a label quantity, ``accuracy_by_quantity``; for a
    model that kept its training history (DeepFreak), ``training_log``: its
    :func:`~diffranet.training_history.training_history` (``loss``,
    ``val_accuracy``, ``epoch_seconds``) and ``validation_accuracy``, the
    same list as ``val_accuracy`` under the key earlier reports used;
    ``misclassified``: the names of the frames with a wrong decision.
    """
    e = evaluation
    matrix = m.confusion_matrix(e.y_true, e.y_pred, len(e.labels))
    hm_matrix = m.hitmiss_confusion(e.hit_true, e.hit_pred)
    result = {
        "task": e.task,
        "labels": list(e.labels),
        "n_images": int(len(e.y_true)),
        "accuracy": m.accuracy(matrix),
        "confusion_matrix": matrix.tolist(),
        "per_class": _per_class(matrix, e.labels),
        "hitmiss_accuracy": m.accuracy(hm_matrix),
        "hitmiss_confusion_matrix": hm_matrix.tolist(),
        "hitmiss_per_class": _per_class(hm_matrix, HITMISS_NAMES),
        "roc": m.roc_points(e.hit_true, e.hit_score),
        "precision_recall": m.pr_points(e.hit_true, e.hit_score),
        "operating_point": m.operating_point(e.hit_true, e.hit_pred),
        "seconds": float(e.seconds),
        "images_per_s": float(len(e.y_true) / e.seconds) if e.seconds > 0 else math.nan,
        "misclassified": [data.names[i] for i in np.flatnonzero(e.y_true != e.y_pred)],
    }
    if data.quantity is not None:
        bins = m.quantity_bins(data.quantity)
        count, _ = m.accuracy_by_quantity(np.ones(len(data.quantity), bool), data.quantity, bins)
        bins = [b for b, n in zip(bins, count) if n]
        count, acc = m.accuracy_by_quantity(e.y_true == e.y_pred, data.quantity, bins)
        _, hm_acc = m.accuracy_by_quantity(e.hit_true == e.hit_pred, data.quantity, bins)
        result["accuracy_by_quantity"] = {"quantity": data.quantity_name, "bins": [list(b) for b in bins],
                                          "count": count.tolist(), "accuracy": acc.tolist(),
                                          "hitmiss_accuracy": hm_acc.tolist()}
    history = training_history(e.model)
    if history is not None:
        result["training_log"] = {**history, "validation_accuracy": history["val_accuracy"]}
    return result


def evaluate(models, data, out, split="test", names=None, trust=False, progress=True, gallery=None, rule=None):
    """Evaluate one or more models on labelled data and write the report folder.

    Parameters
    ----------
    models : sequence of (path-like or SavedModel)
        Model files (``"default"`` is the shipped model) or loaded models.
    data : path-like or LabelledData
        See :func:`load_labelled_data`.
    out : path-like
        Report folder (created): ``index.html``, ``metrics.json``, PNGs.
    split : str, default "test"
        Split of a data folder.
    names : sequence of str, optional
        One report name per model; default their file names.
    trust : bool, default False
        Accept joblib / pickle model files (they can run code when loaded).
    progress : bool, default True
        Progress bars.
    gallery : dict, optional
        An extra gallery for the report: ``{"images", "titles", "title"}``.
    rule : VerdictRule, optional
        The verdict rule every model is scored by (hit threshold); default
        each model's own.

    Returns
    -------
    dict
        ``{"report": Path of index.html, "metrics": Path of metrics.json,
        "evaluations": [Evaluation, ...], "data": LabelledData}``.
    """
    if isinstance(models, (str, Path)) or not len(models):
        raise ValueError("models must be a non-empty list of model files or SavedModel objects")
    if names is not None and len(names) != len(models):
        raise ValueError(f"got {len(names)} names for {len(models)} models")
    if not isinstance(data, LabelledData):
        data = load_labelled_data(data, split)
    evaluations = []
    for k, model in enumerate(models):
        name = None if names is None else names[k]
        if isinstance(model, (str, Path)):
            name = name or Path(model).name
            model = load_model(model, trust=trust)
        if rule is not None:
            model = model.with_rule(rule)
        evaluations.append(evaluate_model(model, data, name=name, progress=progress))
    seen = set()
    for evaluation in evaluations:  # unique names: they label files and table rows
        base, k = evaluation.name, 2
        while evaluation.name in seen:
            evaluation.name, k = f"{base} ({k})", k + 1
        seen.add(evaluation.name)
    paths = write_report(evaluations, data, out, gallery=gallery)
    return {**paths, "evaluations": evaluations, "data": data}
