"""Checks of reflection inputs: Miller indices, amplitudes, unit cells, space groups, file paths.

Each returns the value in its working form or raises ``ValueError`` (``FileNotFoundError``
for a missing file) naming the argument.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..._validation import check_finite
from ._gemmi import gemmi
from .reflections import INDEX_OFFSET


def as_indices(name, value):
    """Return ``value`` as an int64 array of Miller indices (any shape).

    Floats are accepted only if integral; magnitudes must stay below 2**20.
    """
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
    bad = ~np.isfinite(arr) | (arr != np.round(arr)) if arr.dtype.kind == "f" else np.zeros(arr.shape, bool)
    bad |= np.abs(arr) >= INDEX_OFFSET
    if bad.any():
        raise ValueError(f"{name} must hold integers below {INDEX_OFFSET} in magnitude, got {arr[bad].flat[0].item()!r}")
    return arr.astype(np.int64)


def as_miller_indices(name, hkl):
    """Return ``hkl`` as an int64 array of shape (n, 3)."""
    arr = np.asarray(hkl)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"{name} must have shape (n, 3), got shape {arr.shape}")
    return as_indices(name, arr)


def as_amplitudes(name, amplitudes, n):
    """Return ``amplitudes`` as a float64 array (n,) of finite values >= 0."""
    arr = np.asarray(amplitudes)
    if arr.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) to match hkl, got shape {arr.shape}")
    if arr.dtype.kind not in "iuf" or arr.dtype == bool:
        raise ValueError(f"{name} must be real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    bad = ~np.isfinite(arr) | (arr < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name} must be finite and >= 0, got {arr[i].item()!r} at row {i}")
    return arr


def as_cell(name, cell):
    """Return a unit cell as a tuple of 6 floats (A, degrees), or None."""
    if cell is None:
        return None
    if isinstance(cell, gemmi.UnitCell):
        cell = cell.parameters
    arr = np.asarray(cell, dtype=object)
    if arr.shape != (6,):
        raise ValueError(f"{name} must be (a, b, c, alpha, beta, gamma), got {cell!r}")
    values = tuple(check_finite(name, v) for v in arr)
    if min(values[:3]) <= 0 or not all(0 < v < 180 for v in values[3:]):
        raise ValueError(f"{name} needs a, b, c > 0 A and angles in (0, 180) degrees, got {values!r}")
    if not gemmi.UnitCell(*values).volume > 0:
        raise ValueError(f"{name} has no volume (impossible angles), got {values!r}")
    return values


def as_space_group(name, space_group):
    """Return a gemmi.SpaceGroup from a name or a gemmi.SpaceGroup, or None."""
    if space_group is None or isinstance(space_group, gemmi.SpaceGroup):
        return space_group
    if not isinstance(space_group, str):
        raise ValueError(f"{name} must be a space-group name or gemmi.SpaceGroup, got {space_group!r}")
    found = gemmi.find_spacegroup_by_name(space_group)
    if found is None:
        raise ValueError(f"{name} is not a known space group, got {space_group!r}")
    return found


def existing_file(name, path):
    """Return ``path`` as a Path, raising FileNotFoundError if it is not a file."""
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"{name} must be a file path, got {path!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{name}: no such file: {str(path)!r}")
    return path


# ----------------------------------------------------------------------------
