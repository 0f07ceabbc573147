"""Scores of a classifier's decisions: pure functions of labels, predictions and scores.

Every function takes plain arrays and returns plain numbers or arrays; nothing
is read or written. The counting is scikit-learn's (:mod:`sklearn.metrics`):
these functions check their input, fix the conventions below and turn
undefined values into ``nan`` instead of warnings. Conventions:

* the confusion matrix has one row per **true** class and one column per
  **predicted** class, as in the paper's Table 6: ``C[i, j]`` counts the
  images of class ``i`` predicted as class ``j``;
* precision of class ``j`` is ``C[j, j] / sum_i C[i, j]`` (the column),
  recall of class ``i`` is ``C[i, i] / sum_j C[i, j]`` (the row); a class that
  is never predicted has no precision (``nan``), a class absent from the data
  has no recall;
* the hit / miss decision is the positive class "hit": weak, good and strong
  frames (or frames labelled hit) against blank and no-crystal (miss), as
  :mod:`diffranet.classes` slices them.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning

__all__ = [
    "confusion_matrix",
    "accuracy",
    "precision_recall",
    "hitmiss_confusion",
    "roc_points",
    "pr_points",
    "operating_point",
    "accuracy_by_quantity",
    "quantity_bins",
]


def _labels(name, values, n_classes=None):
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {values.shape}")
    if values.size and (values.dtype.kind not in "iub" or values.min() < 0
                        or (n_classes is not None and values.max() >= n_classes)):
        bound = "" if n_classes is None else f" below {n_classes}"
        raise ValueError(f"{name} must be integer labels >= 0{bound}, got {values[:8].tolist()}...")
    return values.astype(np.int64)


def _pair(y_true, y_pred, n_classes=None):
    y_true = _labels("y_true", y_true, n_classes)
    y_pred = _labels("y_pred", y_pred, n_classes)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred differ in length: {len(y_true)} and {len(y_pred)}")
    return y_true, y_pred


def confusion_matrix(y_true, y_pred, n_classes):
    """Counts of (true class, predicted class) pairs.

    Parameters
    ----------
    y_true, y_pred : array_like of int, shape (n,)
        Labels ``0 .. n_classes - 1``.
    n_classes : int

    Returns
    -------
    ndarray of int64, shape (n_classes, n_classes)
        Rows: true class; columns: predicted class.

    Examples
    --------
    >>> confusion_matrix([0, 0, 1, 2], [0, 1, 1, 1], 3).tolist()
    [[1, 1, 0], [0, 1, 0], [0, 1, 0]]
    """
    if not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise ValueError(f"n_classes must be a positive int, got {n_classes!r}")
    y_true, y_pred = _pair(y_true, y_pred, n_classes)
    return skm.confusion_matrix(y_true, y_pred, labels=np.arange(n_classes)).astype(np.int64)


def accuracy(matrix):
    """Share of the images on the diagonal of a confusion matrix (``nan`` for none).

    Examples
    --------
    >>> accuracy([[3, 1], [0, 4]])
    0.875
    """
    matrix = _matrix(matrix)
    total = int(matrix.sum())
    return float(np.trace(matrix) / total) if total else math.nan


def _matrix(matrix):
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.dtype.kind not in "iu" \
            or (matrix.size and matrix.min() < 0):
        raise ValueError(f"a confusion matrix must be a square array of counts >= 0, got {matrix.dtype} "
                         f"{matrix.shape}")
    return matrix.astype(np.int64)


def precision_recall(matrix):
    """Per-class precision, recall and support of a confusion matrix.

    Parameters
    ----------
    matrix : array_like of int, shape (k, k)
        Rows true, columns predicted.

    Returns
    -------
    precision, recall : ndarray of float, shape (k,)
        ``nan`` where undefined (a class never predicted / not in the data).
    support : ndarray of int64, shape (k,)
        Images of each true class.

    Examples
    --------
    >>> p, r, s = precision_recall([[3, 1], [0, 4]])
    >>> p.tolist(), r.tolist(), s.tolist()
    ([1.0, 0.8], [0.75, 1.0], [4, 4])
    """
    matrix = _matrix(matrix)
    diagonal = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0)
    support = matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, diagonal / predicted, np.nan)
        recall = np.where(support > 0, diagonal / support, np.nan)
    return precision, recall, support


def hitmiss_confusion(hit_true, hit_pred):
    """The 2 x 2 confusion matrix of the hit / miss decision (rows: true miss, true hit).

    Examples
    --------
    >>> hitmiss_confusion([False, True, True], [False, False, True]).tolist()
    [[1, 0], [1, 1]]
    """
    return confusion_matrix(_flags("hit_true", hit_true), _flags("hit_pred", hit_pred), 2)


def _flags(name, values):
    values = np.asarray(values)
    if values.ndim != 1 or values.dtype != bool:
        raise ValueError(f"{name} must be a 1-D bool array, got {values.dtype} {values.shape}")
    return values.astype(np.int64)


def _scores(hit_true, hit_score):
    hit_true = _flags("hit_true", hit_true).astype(bool)
    hit_score = np.asarray(hit_score, dtype=np.float64)
    if hit_score.shape != hit_true.shape or not np.all(np.isfinite(hit_score)):
        raise ValueError(f"hit_score must hold one finite score per frame, got shape {hit_score.shape}")
    return hit_true, hit_score


def roc_points(hit_true, hit_score):
    """The ROC curve of a hit score: false- and true-positive rates at every threshold.

    A frame is called a hit when its score is >= the threshold; thresholds
    run from above the highest score (nothing called a hit: the point (0, 0))
    down to the lowest (everything a hit: (1, 1)). :func:`sklearn.metrics.roc_curve`
    with every threshold kept, and :func:`sklearn.metrics.auc`.

    Parameters
    ----------
    hit_true : array_like of bool, shape (n,)
    hit_score : array_like of float, shape (n,)
        Higher means more likely a hit (e.g. the summed hit-class probability).

    Returns
    -------
    dict
        ``fpr``, ``tpr``, ``thresholds`` (ndarrays, first threshold ``inf``)
        and ``auc``, the area under the curve by the trapezoid rule; a rate
        without frames to count (no hits, or no misses) is ``nan``, and so
        is the area.

    Examples
    --------
    >>> roc = roc_points([False, True, False, True], [0.1, 0.9, 0.6, 0.4])
    >>> roc["fpr"].tolist(), roc["tpr"].tolist(), roc["auc"]
    ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0], 0.75)
    """
    hit_true, hit_score = _scores(hit_true, hit_score)
    with warnings.catch_warnings():  # no hits or no misses: the rate is nan, said by the docstring
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        fpr, tpr, thresholds = skm.roc_curve(hit_true, hit_score, drop_intermediate=False)
    both = hit_true.any() and not hit_true.all()
    return {"fpr": fpr, "tpr": tpr, "thresholds": thresholds, "auc": float(skm.auc(fpr, tpr)) if both else math.nan}


def pr_points(hit_true, hit_score):
    """Precision and recall of the hit class at every threshold of a hit score.

    :func:`sklearn.metrics.precision_recall_curve` with every threshold
    kept, highest threshold first and without its closing point
    (recall 0, precision 1), and :func:`sklearn.metrics.average_precision_score`.

    Returns
    -------
    dict
        ``precision``, ``recall``, ``thresholds`` (ndarrays, highest
        threshold first) and ``average_precision``,
        ``sum_k (R_k - R_{k-1}) P_k`` (``nan`` without hits, as is the recall).

    Examples
    --------
    >>> pr = pr_points([False, True, False, True], [0.1, 0.9, 0.6, 0.4])
    >>> pr["precision"].tolist(), pr["recall"].tolist(), round(pr["average_precision"], 4)
    ([1.0, 0.5, 0.6666666666666666, 0.5], [0.5, 0.5, 1.0, 1.0], 0.8333)
    """
    hit_true, hit_score = _scores(hit_true, hit_score)
    if not hit_true.any():  # no hits: recall and average precision have nothing to count
        thresholds = np.unique(hit_score)[::-1]
        return {"precision": np.zeros(len(thresholds)), "recall": np.full(len(thresholds), np.nan),
                "thresholds": thresholds, "average_precision": math.nan}
    precision, recall, thresholds = skm.precision_recall_curve(hit_true, hit_score, drop_intermediate=False)
    return {"precision": precision[:-1][::-1], "recall": recall[:-1][::-1], "thresholds": thresholds[::-1],
            "average_precision": float(skm.average_precision_score(hit_true, hit_score))}


def operating_point(hit_true, hit_pred):
    """Where the classifier's own hit / miss decisions sit on the ROC and PR planes.

    Returns
    -------
    dict
        ``fpr`` (misses called hits / misses), ``tpr`` = ``recall`` (hits
        found / hits), ``precision`` (true hits / frames called hits); ``nan``
        where undefined.

    Examples
    --------
    >>> operating_point([False, False, True, True], [True, False, True, False])
    {'fpr': 0.5, 'tpr': 0.5, 'recall': 0.5, 'precision': 0.5}
    """
    (tn, fp), (fn, tp) = hitmiss_confusion(hit_true, hit_pred).tolist()
    rate = lambda num, den: num / den if den else math.nan  # noqa: E731
    return {"fpr": rate(fp, fp + tn), "tpr": rate(tp, tp + fn), "recall": rate(tp, tp + fn),
            "precision": rate(tp, tp + fp)}


def quantity_bins(quantity, n_bins=8):
    """Bin edges for a label quantity such as the number of significant spots.

    Zero gets a bin of its own (blank and no-crystal frames); positive
    values are cut at log-spaced integer edges between 1 and the largest
    value, so that 2 spots and 2,000 spots are both resolved.

    Returns
    -------
    list of (int, int)
        Inclusive ``(low, high)`` ranges covering every value.

    Examples
    --------
    >>> quantity_bins([0, 0, 3, 12, 150, 999], n_bins=3)
    [(0, 0), (1, 9), (10, 99), (100, 999)]
    """
    values = np.asarray(quantity)
    if values.ndim != 1 or values.dtype.kind not in "iu" or (values.size and values.min() < 0):
        raise ValueError(f"quantity must be 1-D integers >= 0, got {values.dtype} {values.shape}")
    if not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive int, got {n_bins!r}")
    bins = [(0, 0)] if values.size and values.min() == 0 else []
    top = int(values.max()) if values.size else 0
    if top >= 1:
        edges = np.unique(np.round(np.logspace(0, math.log10(top + 1), n_bins + 1)).astype(np.int64))
        if edges[-1] <= top:
            edges = np.r_[edges, top + 1]
        bins += [(int(lo), int(hi) - 1) for lo, hi in zip(edges[:-1], edges[1:])]
    return bins


def accuracy_by_quantity(correct, quantity, bins):
    """Share of correct decisions among the frames in each range of a label quantity.

    Parameters
    ----------
    correct : array_like of bool, shape (n,)
    quantity : array_like of int, shape (n,)
    bins : list of (int, int)
        Inclusive ranges, e.g. from :func:`quantity_bins`.

    Returns
    -------
    count : ndarray of int64, shape (len(bins),)
    accuracy : ndarray of float, shape (len(bins),)
        ``nan`` for an empty bin.

    Examples
    --------
    >>> n, acc = accuracy_by_quantity([True, False, True], [0, 5, 7], [(0, 0), (1, 9)])
    >>> n.tolist(), acc.tolist()
    ([1, 2], [1.0, 0.5])
    """
    correct = _flags("correct", correct).astype(bool)
    quantity = np.asarray(quantity)
    if quantity.shape != correct.shape:
        raise ValueError(f"quantity has shape {quantity.shape}, correct {correct.shape}")
    count = np.zeros(len(bins), dtype=np.int64)
    share = np.full(len(bins), np.nan)
    for k, (low, high) in enumerate(bins):
        inside = (quantity >= low) & (quantity <= high)
        count[k] = int(inside.sum())
        if count[k]:
            share[k] = float(correct[inside].mean())
    return count, share
