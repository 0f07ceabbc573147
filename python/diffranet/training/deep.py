"""Deep classifiers: train DeepFreak on a data folder and score it like the classic models."""

from __future__ import annotations

import logging
import time

from ..dataset.loader import is_dataset_dir, load_split
from .metrics import evaluate_splits

__all__ = ["train_deepfreak"]

_log = logging.getLogger(__name__)


def _split(data_dir, split):
    """(X, y) of a split: a lazy torch Dataset for generated shards (memory stays bounded), arrays otherwise."""
    if is_dataset_dir(data_dir):
        from ..dataset.loader import ShardDataset

        dataset = ShardDataset(data_dir, split)
        return dataset, dataset.labels
    return load_split(data_dir, split)


def train_deepfreak(data_dir, log=None, **params):
    """Train a :class:`~diffranet.models.DeepFreakClassifier` on ``data_dir/train`` and score it on val/test.

    Parameters
    ----------
    data_dir : path-like
        Either layout read by :func:`diffranet.dataset.loader.load_split`; a
        generated dataset is streamed from its shards.
    log : callable, optional
        Receives one line of progress per step; default: the module's logger.
    **params
        Parameters of :class:`~diffranet.models.DeepFreakClassifier`
        (``topology``, ``epochs``, ``n_threads``, ``workers``, ...).

    Returns
    -------
    model : DeepFreakClassifier
        The fitted classifier.
    metrics : dict
        Split name -> :func:`diffranet.training.metrics.evaluate` result, plus
        ``train_seconds``.
    """
    from ..models import DeepFreakClassifier

    log = _log.info if log is None else log
    X, y = _split(data_dir, "train")
    log(f"train: {len(y)} images")
    model = DeepFreakClassifier(**params)
    start = time.perf_counter()
    model.fit(X, y)
    metrics = {"train_seconds": time.perf_counter() - start}
    log(f"fitted in {metrics['train_seconds']:.1f} s")
    metrics.update(evaluate_splits(model, data_dir, log=log, load=_split))
    return model, metrics
