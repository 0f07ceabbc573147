"""Scores shared by every classifier (classic and deep): accuracy, hit/miss accuracy, confusion."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix

from ..classes import CLASS_NAMES, MISS_LABELS

__all__ = ["evaluate"]


def evaluate(model, X, y):
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
    miss_true = np.isin(y, MISS_LABELS)
    miss_predicted = np.isin(predicted, MISS_LABELS)
    labels = list(range(len(CLASS_NAMES)))
    return {
        "accuracy": float(accuracy_score(y, predicted)),
        "hit_miss_accuracy": float(np.mean(miss_true == miss_predicted)),
        "confusion_matrix": confusion_matrix(y, predicted, labels=labels).tolist(),
        "n_images": int(len(y)),
    }
