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
