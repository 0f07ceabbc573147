"""Parameter checks shared by the Python layer.

Every public entry point validates its inputs here before anything reaches the
compiled core, so that bad input gives a ``ValueError`` naming the parameter and
the offending value instead of a crash or a silently wrong image.
"""

from __future__ import annotations

import dataclasses
import math
from numbers import Integral, Real

import numpy as np


def check_finite(name, value):
    """Return ``value`` as float if it is a finite real number."""
    if isinstance(value, bool) or not isinstance(value, (Real, np.floating, np.integer)):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value


def check_positive(name, value):
    """Return ``value`` as float if it is finite and > 0."""
    value = check_finite(name, value)
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return value


def check_nonnegative(name, value):
    """Return ``value`` as float if it is finite and >= 0."""
    value = check_finite(name, value)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return value


def check_int(name, value, minimum=None, maximum=None):
    """Return ``value`` as int if it is an integer within [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, (Integral, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value!r}")
    return value


def check_choice(name, value, choices):
    """Return ``value`` if it is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)!r}, got {value!r}")
    return value


def check_fraction(name, value):
    """Return ``value`` as float if it lies in [0, 1]."""
    value = check_finite(name, value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {value!r}")
    return value


def check_seed(name, value):
    """Return a seed as a non-negative int below 2**63."""
    return check_int(name, value, minimum=0, maximum=2**63 - 1)


def check_vector3(name, value, unit=False):
    """Return ``value`` as a finite float64 array of shape (3,), normalised if ``unit``."""
    arr = np.asarray(value, dtype=float)
    if arr.shape != (3,) or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be 3 finite numbers, got {value!r}")
    if unit:
        norm = float(np.linalg.norm(arr))
        if norm == 0.0:
            raise ValueError(f"{name} must not be the zero vector")
        arr = arr / norm
    return arr


def check_rotation(name, value, atol=1e-6):
    """Return ``value`` as a 3x3 float64 proper rotation matrix."""
    arr = np.asarray(value, dtype=float)
    if arr.shape != (3, 3) or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be a finite 3x3 matrix, got shape {arr.shape}")
    if not np.allclose(arr @ arr.T, np.eye(3), atol=atol) or np.linalg.det(arr) <= 0:
        raise ValueError(f"{name} must be a proper rotation (orthonormal, det=+1), got {arr.tolist()!r}")
    return arr


def check_threads(n_threads):
    """The compiled core's thread count for ``n_threads``: 0 (every core) for None, else an int >= 1.

    ``n_threads`` has one meaning in the whole package: the threads of one
    computation, None for every core. Results never depend on it.
    """
    return 0 if n_threads is None else check_int("n_threads", n_threads, minimum=1)


def threads_for_jobs(n_jobs):
    """Threads for a scikit-learn ``n_jobs``, as joblib counts them (None: 1, -1: every core, -2: all but one).

    Never more than the cores this process may use: more threads only
    compete for them, and a model file's ``n_jobs`` must not start thousands.
    """
    # imported on use: joblib (scikit-learn's parallel back-end) is needed only where n_jobs is
    from joblib import cpu_count, effective_n_jobs

    return max(1, min(int(effective_n_jobs(n_jobs)), cpu_count()))


class FrozenAfterInit:
    """A value whose attributes are set in ``__init__`` only (validated there), like the frozen dataclasses.

    A subclass calls :meth:`_freeze` at the end of ``__init__``; assigning or
    deleting an attribute afterwards raises ``dataclasses.FrozenInstanceError``.
    Pickling and copying still work (they fill ``__dict__`` directly).
    """

    _frozen = False

    def _freeze(self):
        object.__setattr__(self, "_frozen", True)

    def __setattr__(self, name, value):
        if self._frozen:
            raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        if self._frozen:
            raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
        object.__delattr__(self, name)
