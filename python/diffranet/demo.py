"""``diffranet demo``: render a small labelled set, classify it and write a report.

:func:`run_demo` renders test shots of all five classes with a dataset preset
(the paper's 512 x 512 set-up by default, fewer images), classifies them
with the fastest classic pipeline (GLCM + random forest, the paper's Table 3
settings) trained on the spot on a separately rendered training set and,
when diffranet ships a model for these images, also with that model, and
writes the evaluation report (both models side by side) (:func:`diffranet.evaluation.evaluate`): a
gallery of the rendered shots, the confusion matrix, the hit / miss curves and
``metrics.json``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from ._validation import check_int, check_seed
from .classes import CLASS_NAMES

__all__ = ["run_demo", "DEMO_SIZE"]

_log = logging.getLogger(__name__)

#: Test images rendered by default (the training set has twice as many).
DEMO_SIZE = 120


def _shipped_model(preset):
    """``"default"`` if diffranet ships a model for this preset's images, else None."""
    # imported on use: the command line imports this module to build its parser
    from .inference import load_model
    from .inference.modelfile import default_model_path

    if default_model_path() is None:
        return None
    model = load_model("default")
    return "default" if tuple(model.preprocessing.shape) == tuple(preset.shape) else None


def _examples(data, per_class=2):
    """Indices of the first ``per_class`` test shots of each class."""
    chosen = []
    for label in range(len(data.class_names)):
        chosen += np.flatnonzero(data.labels == label)[:per_class].tolist()
    return chosen


def run_demo(out_dir="diffranet-demo", seed=0, preset="diffranet", size=DEMO_SIZE, workers=None, progress=True):
    """Render, classify and report: diffranet from end to end in a few minutes.

    Parameters
    ----------
    out_dir : path-like, default "diffranet-demo"
        Output folder: ``data/<preset>-seed<seed>-n<size>/`` (the rendered
        set, a ``diffranet dataset`` directory; a rerun with the same settings
        reuses it), ``model.dfm`` (the model trained here) and ``report/``.
    seed : int, default 0
        Seed of the rendered shots and of the model.
    preset : str, dict or Preset, default "diffranet"
        Dataset preset (see :func:`diffranet.dataset.presets.get_preset`).
    size : int, default :data:`DEMO_SIZE`
        Test images; the training set (rendered only when a model is trained)
        has ``2 * size``. Classes follow the preset's shares.
    workers : int, optional
        Worker processes for rendering and training; default the CPU count.
    progress : bool, default True
        Progress bars (on stderr). Each step is also reported to the
        ``diffranet.demo`` :mod:`logging` logger at INFO level.

    Returns
    -------
    dict
        ``report`` (index.html), ``metrics`` (metrics.json), ``model`` (the
        model file, or ``"default"``), ``data`` (the dataset directory),
        ``accuracy`` and ``hitmiss_accuracy`` of the model trained here,
        ``scores`` (model name -> both accuracies, for every model shown) and
        ``seconds`` (per step).
    """
    # imported on use: the command line imports this module to build its parser, and the libraries
    # (scikit-learn, OpenCV, Dask, the simulation) load only when the demo runs
    from .dataset import generate_dataset
    from .dataset.loader import load_arrays
    from .dataset.presets import get_preset
    from .evaluation import evaluate, load_labelled_data
    from .inference import save_model
    from .inference.training_input import training_input
    from .search.spaces import default_configuration
    from .training.classic import build_pipeline

    preset = get_preset(preset)
    seed = check_seed("seed", seed)
    size = check_int("size", size, minimum=5)
    workers = None if workers is None else check_int("workers", workers, minimum=1)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seconds = {}

    shipped = _shipped_model(preset)
    n_train = 2 * size
    data_dir = out / "data" / f"{preset.name}-seed{seed}-n{size}"
    _log.info(f"rendering {size} test and {n_train} training shots of the {preset.name!r} preset "
        f"({preset.shape[0]} x {preset.shape[1]} pixels) into {data_dir}")
    start = time.perf_counter()
    generate_dataset(data_dir, preset=preset, n_train=n_train, n_val=0, n_test=size, seed=seed, workers=workers,
                     progress=progress)
    seconds["render"] = time.perf_counter() - start

    config = default_configuration("glcm", "rf")
    _log.info(f"training GLCM + random forest (the paper's Table 3 settings) on the {n_train} training shots")
    start = time.perf_counter()
    X, y = load_arrays(data_dir, "train")
    estimator = build_pipeline(config, random_state=seed, n_jobs=workers or -1).fit(X, y)
    seconds["train"] = time.perf_counter() - start
    preprocessing, summary = training_input(data_dir, X.shape[1:], y)  # the one summary of a training set
    model = save_model(estimator, out / "model.dfm", class_names=CLASS_NAMES, preprocessing=preprocessing,
                       training={**summary, "split": "train", "configuration": config,
                                 "train_seconds": seconds["train"]})
    _log.info(f"trained in {seconds['train']:.1f} s, saved {model}")
    models, names = [model], [Path(str(model)).name]
    if shipped is not None:
        _log.info("also classifying with the model shipped with diffranet ('default')")
        models.append(shipped)
        names.append("default")

    start = time.perf_counter()
    data = load_labelled_data(data_dir, "test")
    shown = _examples(data)
    quantity = data.quantity_name.removeprefix("n_").replace("_", " ")  # e.g. "detectable spots"
    gallery = {"images": [data.images[i] for i in shown],
               "titles": [f"{data.class_names[data.labels[i]]}\n{int(data.quantity[i])} {quantity}" for i in shown],
               "title": f"Rendered test shots ({preset.name!r} preset, {preset.shape[0]} x {preset.shape[1]} "
                        f"pixels, 8-bit): the first two of each class"}
    result = evaluate(models, data, out / "report", names=names, progress=progress, gallery=gallery)
    seconds["evaluate"] = time.perf_counter() - start
    scores = {name: {"accuracy": evaluation.metrics["accuracy"],
                     "hitmiss_accuracy": evaluation.metrics["hitmiss_accuracy"]}
              for name, evaluation in zip(names, result["evaluations"])}
    return {"report": result["report"], "metrics": result["metrics"], "model": model, "data": data_dir,
            **scores[names[0]], "scores": scores, "seconds": seconds}
