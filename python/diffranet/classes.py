"""The DiffraNet classes and the hit / miss verdict derived from them.

Label ``k`` is DiffraNet class folder ``k + 1``. Blank (no X-rays) and
no-crystal (beam, solvent and air, no crystal) frames are *misses*: a hit
finder discards them. Weak, good and strong frames are *hits*.
"""

from __future__ import annotations

import numpy as np

#: Class names in label order.
CLASS_NAMES = ("blank", "no-crystal", "weak", "good", "strong")

#: Labels of the classes without diffraction (discarded by a hit finder).
MISS_LABELS = (0, 1)

#: Labels of the classes with Bragg diffraction.
HIT_LABELS = (2, 3, 4)

#: Names of the two classes of a hit / miss classifier, in label order.
HITMISS_NAMES = ("miss", "hit")

#: Class names that are hits, of either a five-class or a hit / miss model.
HIT_CLASS_NAMES = tuple(CLASS_NAMES[k] for k in HIT_LABELS) + (HITMISS_NAMES[1],)


def is_hit(labels):
    """Whether each five-class label is a hit (weak, good or strong).

    Parameters
    ----------
    labels : int or array-like of int
        Labels 0 (blank) to 4 (strong).

    Returns
    -------
    bool or ndarray of bool

    Examples
    --------
    >>> is_hit([0, 1, 2, 4]).tolist()
    [False, False, True, True]
    """
    return np.isin(labels, HIT_LABELS)


def is_hit_name(names):
    """Whether each class name is a hit (weak, good, strong or ``"hit"``).

    Used to read the hit columns of any model's class probabilities.

    Examples
    --------
    >>> is_hit_name(["blank", "weak", "miss", "hit"]).tolist()
    [False, True, False, True]
    """
    return np.isin(np.asarray(names, dtype=object), HIT_CLASS_NAMES)
