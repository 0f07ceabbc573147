"""Lists of reflections: packed index keys, symmetry mates, P1 expansion and the dense |F| table.

Pure numpy on integer Miller indices; gemmi only names the space group's
operations.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MAX_TABLE_CELLS", "SYMMETRY_RTOL", "dense_table", "expand_to_p1", "symmetry_mates"]

#: Largest dense table (cells) built, 1 GiB of float32.
MAX_TABLE_CELLS = 2**28
#: Two symmetry-related amplitudes from a file agree if they differ by at most
#: this fraction of the larger one (text files round the values).
SYMMETRY_RTOL = 1e-4

#: Space group of a plain list of reflections (Friedel mates only).

INDEX_OFFSET = 1 << 20  # packs (h, k, l) into one int64 key; |index| < 2**20


def index_keys(hkl):
    """Pack integer (n, 3) Miller indices into sortable int64 keys."""
    shifted = hkl + INDEX_OFFSET
    return (shifted[:, 0] << 42) | (shifted[:, 1] << 21) | shifted[:, 2]


def find_conflict(keys, values, rtol):
    """Return indices (i, j) of two entries with equal key whose values differ
    by more than ``rtol`` times the larger one, or None."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    v = values[order]
    vmax = np.maximum.reduceat(v, starts)
    vmin = np.minimum.reduceat(v, starts)
    bad = np.flatnonzero(vmax - vmin > rtol * vmax)
    if bad.size == 0:
        return None
    stops = np.r_[starts[1:], len(order)]
    group = order[starts[bad[0]] : stops[bad[0]]]
    return int(group[np.argmax(values[group])]), int(group[np.argmin(values[group])])


def first_of_each(keys):
    """Indices of the first occurrence of each distinct key, in input order."""
    return np.sort(np.unique(keys, return_index=True)[1])


def symmetry_mates(hkl, space_group):
    """Miller indices of all symmetry mates of each reflection.

    A reflection h transforms as the row vector h R under the rotation part R of
    each symmetry operation; centring and screw/glide translations only change
    phases, never |F|.

    Parameters
    ----------
    hkl : ndarray of int, shape (n, 3)
    space_group : gemmi.SpaceGroup

    Returns
    -------
    ndarray of int64, shape (n_ops, n, 3)
        ``mates[0]`` is ``hkl`` itself (gemmi lists the identity first).
    """
    ops = space_group.operations().sym_ops
    rotations = np.stack([np.array(op.rot, dtype=np.int64) // op.DEN for op in ops])
    return np.einsum("ni,oij->onj", np.asarray(hkl, dtype=np.int64), rotations)


def expand_to_p1(hkl, amplitudes, space_group, where):
    """Expand amplitudes by space-group symmetry, then add missing Friedel mates.

    Listed and generated values for the same index must agree (to
    :data:`SYMMETRY_RTOL`), otherwise the data contradict the space group.
    Friedel mates are added only where the -h reflection is not listed, so
    anomalous pairs given explicitly are kept as they are.

    Parameters
    ----------
    hkl : ndarray of int64, shape (n, 3)
    amplitudes : ndarray of float, shape (n,)
    space_group : gemmi.SpaceGroup
        Use P 1 for Friedel expansion only.
    where : callable
        ``where(i)`` describes input reflection ``i`` for error messages
        (e.g. ``"data.hkl:12"``).

    Returns
    -------
    hkl_p1 : ndarray of int64, shape (m, 3)
    amplitudes_p1 : ndarray of float64, shape (m,)

    Raises
    ------
    ValueError
        If two symmetry-equivalent (or duplicate) reflections have different |F|.
    """
    mates = symmetry_mates(hkl, space_group)
    n_ops, n = mates.shape[:2]
    flat = mates.reshape(-1, 3)
    values = np.tile(amplitudes, n_ops)
    keys = index_keys(flat)
    conflict = find_conflict(keys, values, SYMMETRY_RTOL)
    if conflict is not None:
        i, j = (c % n for c in conflict)
        raise ValueError(
            f"{where(i)}: |F{tuple(hkl[i].tolist())}| = {amplitudes[i].item()!r} contradicts "
            f"|F{tuple(hkl[j].tolist())}| = {amplitudes[j].item()!r} ({where(j)}), "
            f"which is equivalent in space group {space_group.xhm()!r}"
        )
    keep = first_of_each(keys)
    flat, values = flat[keep], values[keep]
    both = np.concatenate([flat, -flat])
    keep = first_of_each(index_keys(both))
    return both[keep], np.tile(values, 2)[keep]


def dense_table(hkl, amplitudes):
    """Scatter a P1 reflection list into a dense float32 table.

    Parameters
    ----------
    hkl : ndarray of int64, shape (n, 3)
        Distinct Miller indices.
    amplitudes : ndarray of float, shape (n,)

    Returns
    -------
    table : ndarray of float32, shape (nh, nk, nl)
        ``table[i, j, k] = |F(hmin + i, kmin + j, lmin + k)|``, NaN where not listed.
    hkl_min : tuple of int
    """
    low = hkl.min(axis=0)
    shape = tuple(int(s) for s in hkl.max(axis=0) - low + 1)
    cells = int(np.prod(shape, dtype=np.int64))
    if cells > MAX_TABLE_CELLS:
        raise ValueError(
            f"hkl spans {shape} indices, a dense table of {cells} cells (limit {MAX_TABLE_CELLS}); "
            "use a larger d_min or fewer high-index reflections"
        )
    table = np.full(shape, np.nan, dtype=np.float32)
    table[tuple((hkl - low).T)] = amplitudes
    return table, tuple(int(v) for v in low)


# ----------------------------------------------------------------------------
# readers
# ----------------------------------------------------------------------------
