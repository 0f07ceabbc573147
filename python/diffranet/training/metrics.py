"""Scores shared by every classifier (classic and deep) on a split: accuracy, hit/miss accuracy, confusion.

The scores a training run records with its model; the evaluation report
(:mod:`diffranet.evaluation`) computes these and more on any labelled data.
Both count with :mod:`sklearn.metrics` and slice hits with
:func:`diffranet.classes.is_hit`.
"""

from __future__ import annotations

from sklearn.metrics import accuracy_score, confusion_matrix

from ..classes import CLASS_NAMES, is_hit
from ..dataset.loader import has_split, load_split

__all__ = ["evaluate_splits", "format_scores", "split_scores"]


def split_scores(model, X, y):
    """Accuracy, hit/miss accuracy and confusion matrix of ``model`` on (X, y).

    Hit/miss accuracy scores the two-way decision the classifier serves in a
    beamline: blank and no-crystal (miss) against weak, good and strong (hit).

    Returns
    -------
    dict
        ``accuracy``, ``hit_miss_accuracy`` (fractions), ``confusion_matrix``
        (rows: true class blank..strong, columns: predicted), ``n_images``.
    """
    predicted = model.predict(X)
    labels = list(range(len(CLASS_NAMES)))
    return {
        "accuracy": float(accuracy_score(y, predicted)),
        "hit_miss_accuracy": float(accuracy_score(is_hit(y), is_hit(predicted))),
        "confusion_matrix": confusion_matrix(y, predicted, labels=labels).tolist(),
        "n_images": int(len(y)),
    }


def format_confusion(matrix, class_names=CLASS_NAMES):
    """A confusion matrix as text: one row per true class, one column per predicted class.

    Examples
    --------
    >>> print(format_confusion([[3, 1], [0, 2]], ("miss", "hit")))
    true / predicted  miss   hit
    miss                 3     1
    hit                  0     2
    """
    corner = "true / predicted"
    width = max(6, max(len(n) for n in class_names) + 1)
    first = max(len(corner), max(len(n) for n in class_names))
    lines = [corner.ljust(first) + "".join(n.rjust(width) for n in class_names)]
    for name, row in zip(class_names, matrix):
        lines.append(name.ljust(first) + "".join(str(int(v)).rjust(width) for v in row))
    return "\n".join(lines)


def evaluate_splits(model, data_dir, splits=("val", "test"), load=load_split):
    """:func:`split_scores` on each of ``splits`` that ``data_dir`` holds.

    Parameters
    ----------
    model : fitted classifier
    data_dir : path-like
        Either layout read by :func:`diffranet.dataset.loader.load_split`.
    splits : sequence of str, default ("val", "test")
    load : callable, default load_split
        ``load(data_dir, split) -> (X, y)``.

    Returns
    -------
    dict
        Split name -> :func:`split_scores` result, for the splits present.
    """
    scores = {}
    for split in splits:
        if has_split(data_dir, split):
            scores[split] = split_scores(model, *load(data_dir, split))
    return scores


def format_scores(metrics):
    """Text of the split scores in ``metrics`` (:func:`evaluate_splits`): accuracies and confusion matrix."""
    lines = []
    for split, score in metrics.items():
        if isinstance(score, dict) and "confusion_matrix" in score:
            lines.append(f"{split}: accuracy {score['accuracy']:.4f}, "
                         f"hit/miss accuracy {score['hit_miss_accuracy']:.4f}")
            lines.append(format_confusion(score["confusion_matrix"]))
    return "\n".join(lines)
