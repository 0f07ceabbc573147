"""Readers of amplitudes and models: nanoBragg ``h k l F`` text, MTZ columns, PDB / mmCIF models (gemmi)."""

from __future__ import annotations

import numpy as np

from ._checks import existing_file
from ._gemmi import gemmi
from .reflections import INDEX_OFFSET

__all__ = ["load_structure", "read_hkl_text", "read_mtz_amplitudes"]


def read_hkl_text(path):
    """Read a nanoBragg-style text file of ``h k l F`` lines.

    Blank lines and ``#`` comments (whole-line or trailing) are skipped.

    Parameters
    ----------
    path : Path

    Returns
    -------
    hkl : ndarray of int64, shape (n, 3)
    amplitudes : ndarray of float64, shape (n,)
    line_numbers : ndarray of int64, shape (n,)
        1-based line of each reflection, for error messages.

    Raises
    ------
    ValueError
        ``"{path}:{lineno}: ..."`` for a line that is not four fields, a
        non-integer index, or an amplitude that is not a finite number >= 0;
        ``"{path}: ..."`` if the file lists no reflection.
    """
    hkl, amplitudes, line_numbers = [], [], []
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError(f"{path}:{lineno}: not text (undecodable bytes)") from None
            fields = line.split("#", 1)[0].split()
            if not fields:
                continue
            if len(fields) != 4:
                raise ValueError(f"{path}:{lineno}: expected 4 fields 'h k l F', got {line.strip()!r}")
            try:
                h, k, l = (int(v) for v in fields[:3])
            except ValueError:
                raise ValueError(f"{path}:{lineno}: Miller indices must be integers, got {line.strip()!r}") from None
            try:
                f = float(fields[3])
            except ValueError:
                raise ValueError(f"{path}:{lineno}: F must be a number, got {fields[3]!r}") from None
            if not (np.isfinite(f) and f >= 0):
                raise ValueError(f"{path}:{lineno}: F must be finite and >= 0, got {fields[3]!r}")
            if max(abs(h), abs(k), abs(l)) >= INDEX_OFFSET:
                raise ValueError(f"{path}:{lineno}: Miller index out of range, got {line.strip()!r}")
            hkl.append((h, k, l))
            amplitudes.append(f)
            line_numbers.append(lineno)
    if not hkl:
        raise ValueError(f"{path}: no reflections (expected lines 'h k l F')")
    return np.array(hkl, dtype=np.int64), np.array(amplitudes), np.array(line_numbers)


def read_mtz_amplitudes(path, column=None):
    """Read one amplitude column of an MTZ file with gemmi.

    Parameters
    ----------
    path : Path
    column : str or None
        Column label; None picks the only column of type F.

    Returns
    -------
    hkl : ndarray of int64, shape (n, 3)
    amplitudes : ndarray of float64, shape (n,)
        Missing values (NaN in the MTZ) are dropped.
    mtz : gemmi.Mtz
    label : str
    """
    try:
        mtz = gemmi.read_mtz_file(str(path))
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable MTZ file ({exc})") from None
    f_labels = [c.label for c in mtz.columns if c.type == "F"]
    if column is None:
        if len(f_labels) != 1:
            found = f"amplitude columns {f_labels!r}" if f_labels else "no amplitude column (type F)"
            raise ValueError(f"{path}: has {found}; pass column= to choose one")
        column = f_labels[0]
    if not isinstance(column, str) or column not in f_labels:
        raise ValueError(f"column must be an amplitude column (type F) of {path}, one of {f_labels!r}; got {column!r}")
    values = np.array(mtz.column_with_label(column), dtype=np.float64)
    hkl = np.asarray(mtz.make_miller_array(), dtype=np.int64)
    listed = ~np.isnan(values)
    hkl, values = hkl[listed], values[listed]
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{path}: column {column!r} has |F{tuple(hkl[i].tolist())}| = {values[i].item()!r}; must be finite and >= 0")
    if values.size == 0:
        raise ValueError(f"{path}: column {column!r} lists no reflections")
    return hkl, values, mtz, column


def load_structure(path_or_structure):
    """Return a gemmi.Structure from a PDB/mmCIF path or a Structure, checked for Fcalc.

    Raises
    ------
    FileNotFoundError
        If a path does not exist.
    ValueError
        If the model lacks a unit cell, a space group or atoms, or has a
        non-finite coordinate, a negative B-factor or an occupancy outside [0, 1].
    """
    if isinstance(path_or_structure, gemmi.Structure):
        st, source = path_or_structure, "path_or_structure"
    else:
        path = existing_file("path_or_structure", path_or_structure)
        source = str(path)
        try:
            st = gemmi.read_structure(source)
        except (RuntimeError, ValueError) as exc:
            raise ValueError(f"{source}: not a readable PDB/mmCIF model ({exc})") from None
    if not st.cell.is_crystal():
        raise ValueError(f"{source}: model has no crystal unit cell (CRYST1 / _cell)")
    if st.find_spacegroup() is None:
        raise ValueError(f"{source}: model has no known space group, got {st.spacegroup_hm!r}")
    if len(st) == 0 or st[0].count_atom_sites() == 0:
        raise ValueError(f"{source}: model has no atoms")
    for cra in st[0].all():
        atom = cra.atom
        ok = np.isfinite(atom.pos.tolist()).all() and np.isfinite(atom.b_iso) and atom.b_iso >= 0
        if not ok or not 0 <= atom.occ <= 1:
            raise ValueError(
                f"{source}: atom {cra} has position {atom.pos.tolist()!r}, B {atom.b_iso!r} A^2, "
                f"occupancy {atom.occ!r}; need finite coordinates, B >= 0 and occupancy in [0, 1]"
            )
    return st


# ----------------------------------------------------------------------------
# Fcalc with gemmi
# ----------------------------------------------------------------------------
