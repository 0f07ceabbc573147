"""Structure-factor amplitudes |F(hkl)| for the diffraction simulator.

A :class:`StructureFactors` holds amplitudes for Miller indices expanded to P1
(every symmetry mate and Friedel mate listed) and exposes them as a dense
float32 table, so that the compiled core looks up ``|F(h, k, l)|`` in O(1).
Reflections that are not listed are NaN in the table; the simulator then uses
``Crystal.default_F`` for them, as nanoBragg does with ``-default_F``.

Sources:

* an explicit P1 list (``StructureFactors(hkl, amplitudes)``);
* nanoBragg-style text, one ``h k l F`` per line (:meth:`StructureFactors.from_hkl_file`);
* an MTZ file read with gemmi (:meth:`StructureFactors.from_mtz`);
* Fcalc from an atomic model with a flat bulk-solvent correction, computed by
  gemmi (:meth:`StructureFactors.from_model`);
* a seeded, protein-like model in the photosystem II cell used for DiffraNet,
  built once and cached on disk (:meth:`StructureFactors.default_protein`).

Units: lengths in Angstrom (suffix ``_A``), B-factors in A^2 (suffix ``_A2``),
amplitudes in electrons (the scattering of one free electron is 1).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import gemmi
import numpy as np
from scipy import ndimage
from tqdm.auto import tqdm

from .. import _core
from .._atomic import atomic_write
from .._validation import check_finite, check_nonnegative, check_positive, check_seed

__all__ = ["StructureFactors"]

#: Largest dense table (cells) built, 1 GiB of float32.
MAX_TABLE_CELLS = 2**28

#: Two symmetry-related amplitudes from a file agree if they differ by at most
#: this fraction of the larger one (text files round the values).
SYMMETRY_RTOL = 1e-4

#: Unit cell of photosystem II, PDB 4rvy (a, b, c in A; alpha, beta, gamma in degrees).
PSII_CELL = (117.0, 223.0, 310.0, 90.0, 90.0, 90.0)
PSII_SPACE_GROUP = "P 21 21 21"

#: Bump when the default model or its Fcalc changes, so old caches are not reused.
DEFAULT_PROTEIN_VERSION = 1

# Protein-like model (default_protein).  Protein density 1.35 g/cm^3 is
# 0.813 Da/A^3; a non-hydrogen atom carries ~14.1 Da with its riding hydrogens
# (~110 Da per residue, ~7.8 heavy atoms), hence ~0.0577 heavy atoms per A^3.
PROTEIN_ATOMS_PER_A3 = 0.0577
# Heavy-atom composition of an average protein.
PROTEIN_ELEMENTS = ("C", "N", "O", "S")
PROTEIN_ELEMENT_FRACTIONS = (0.62, 0.17, 0.20, 0.01)
ENVELOPE_GRID_A = 3.0  # grid spacing of the random molecular envelope
ENVELOPE_SMOOTHING_A = 10.0  # Gaussian sigma of the envelope: solvent channels ~20-40 A wide
B_CORE_A2 = 30.0  # B-factor deep inside a molecule
B_SURFACE_A2 = 60.0  # B-factor at the molecular surface
B_JITTER_A2 = 3.0  # atom-to-atom scatter of B

_P1 = gemmi.SpaceGroup("P 1")
_INDEX_OFFSET = 1 << 20  # packs (h, k, l) into one int64 key; |index| < 2**20


# ----------------------------------------------------------------------------
# validation helpers specific to reflections
# ----------------------------------------------------------------------------


def _as_indices(name, value):
    """Return ``value`` as an int64 array of Miller indices (any shape).

    Floats are accepted only if integral; magnitudes must stay below 2**20.
    """
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
    bad = ~np.isfinite(arr) | (arr != np.round(arr)) if arr.dtype.kind == "f" else np.zeros(arr.shape, bool)
    bad |= np.abs(arr) >= _INDEX_OFFSET
    if bad.any():
        raise ValueError(f"{name} must hold integers below {_INDEX_OFFSET} in magnitude, got {arr[bad].flat[0].item()!r}")
    return arr.astype(np.int64)


def _as_miller_indices(name, hkl):
    """Return ``hkl`` as an int64 array of shape (n, 3)."""
    arr = np.asarray(hkl)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"{name} must have shape (n, 3), got shape {arr.shape}")
    return _as_indices(name, arr)


def _as_amplitudes(name, amplitudes, n):
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


def _as_cell(name, cell):
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


def _as_space_group(name, space_group):
    """Return a gemmi.SpaceGroup from a name or a gemmi.SpaceGroup, or None."""
    if space_group is None or isinstance(space_group, gemmi.SpaceGroup):
        return space_group
    if not isinstance(space_group, str):
        raise ValueError(f"{name} must be a space-group name or gemmi.SpaceGroup, got {space_group!r}")
    found = gemmi.find_spacegroup_by_name(space_group)
    if found is None:
        raise ValueError(f"{name} is not a known space group, got {space_group!r}")
    return found


def _existing_file(name, path):
    """Return ``path`` as a Path, raising FileNotFoundError if it is not a file."""
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"{name} must be a file path, got {path!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{name}: no such file: {str(path)!r}")
    return path


# ----------------------------------------------------------------------------
# reflection-list helpers
# ----------------------------------------------------------------------------


def _keys(hkl):
    """Pack integer (n, 3) Miller indices into sortable int64 keys."""
    shifted = hkl + _INDEX_OFFSET
    return (shifted[:, 0] << 42) | (shifted[:, 1] << 21) | shifted[:, 2]


def _find_conflict(keys, values, rtol):
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


def _first_of_each(keys):
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
    keys = _keys(flat)
    conflict = _find_conflict(keys, values, SYMMETRY_RTOL)
    if conflict is not None:
        i, j = (c % n for c in conflict)
        raise ValueError(
            f"{where(i)}: |F{tuple(hkl[i].tolist())}| = {amplitudes[i].item()!r} contradicts "
            f"|F{tuple(hkl[j].tolist())}| = {amplitudes[j].item()!r} ({where(j)}), "
            f"which is equivalent in space group {space_group.xhm()!r}"
        )
    keep = _first_of_each(keys)
    flat, values = flat[keep], values[keep]
    both = np.concatenate([flat, -flat])
    keep = _first_of_each(_keys(both))
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
            if max(abs(h), abs(k), abs(l)) >= _INDEX_OFFSET:
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
        path = _existing_file("path_or_structure", path_or_structure)
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


def _check_grid_size(cell, d_min_A):
    """Reject resolutions whose table or FFT grid would not fit in memory."""
    limits = np.array(cell.get_hkl_limits(d_min_A), dtype=np.int64)
    cells = int(np.prod(2 * limits + 1))
    if cells > MAX_TABLE_CELLS:
        raise ValueError(
            f"d_min_A={d_min_A!r} needs a table of {cells} cells for this cell (limit {MAX_TABLE_CELLS}); "
            "use a larger d_min_A"
        )


def _grid_values(grid, hkl):
    """Values of a half-l ReciprocalComplexGrid at P1 indices (Friedel: F(-h) = F(h)*)."""
    arr = np.array(grid, copy=False)
    negative = hkl[:, 2] < 0
    idx = np.where(negative[:, None], -hkl, hkl)
    values = arr[idx[:, 0] % grid.nu, idx[:, 1] % grid.nv, idx[:, 2]]
    return np.where(negative, np.conj(values), values)


def fcalc_p1(st, d_min_A, bulk_solvent=True, k_sol=0.35, b_sol_A2=46.0, step=None):
    """|Fcalc| of all P1 reflections with d >= d_min_A (except 000).

    F_model = F_atoms + k_sol exp(-B_sol s^2 / 4) F_mask, with s^2 = 1/d^2 and
    F_mask the transform of the gemmi solvent mask (1 in solvent, 0 in protein),
    both computed by FFT on grids covering the whole unit cell.

    Parameters
    ----------
    st : gemmi.Structure
        Checked by :func:`load_structure`; the first model is used.
    d_min_A : float
    bulk_solvent : bool
    k_sol : float
        Solvent electron density, e/A^3.
    b_sol_A2 : float
        Solvent B-factor, A^2.
    step : callable or None
        Called with a short label before each stage (progress display).

    Returns
    -------
    hkl : ndarray of int64, shape (n, 3)
    amplitudes : ndarray of float64, shape (n,)
    """
    step = step or (lambda label: None)
    model = st[0]
    step("atomic density")
    dencalc = gemmi.DensityCalculatorX()
    dencalc.d_min = d_min_A
    dencalc.grid.setup_from(st)
    dencalc.set_refmac_compatible_blur(model)
    dencalc.put_model_density_on_grid(model)
    step("Fourier transform")
    hkl = np.asarray(gemmi.make_miller_array(st.cell, _P1, d_min_A, unique=False), dtype=np.int64)
    inv_d2 = st.cell.calculate_1_d2_array(hkl)
    # The density was blurred by B_extra = blur; exp(+blur s^2/4) undoes it
    # (gemmi's reciprocal_space_multiplier, vectorised).
    f_model = _grid_values(gemmi.transform_map_to_f_phi(dencalc.grid, half_l=True), hkl)
    f_model = f_model * np.exp(dencalc.blur * inv_d2 / 4)
    del dencalc
    if bulk_solvent:
        step("solvent mask")
        mask = gemmi.FloatGrid()
        mask.setup_from(st, spacing=min(d_min_A / 3, 1.0))
        # cctbx radii, probe 1.1 A and shrink 0.9 A: the phenix.fmodel mask used for DiffraNet.
        gemmi.SolventMasker(gemmi.AtomicRadiiSet.Cctbx).put_mask_on_float_grid(mask, model)
        f_mask = _grid_values(gemmi.transform_map_to_f_phi(mask, half_l=True), hkl)
        f_model = f_model + k_sol * np.exp(-b_sol_A2 * inv_d2 / 4) * f_mask
    step("amplitudes")
    return hkl, np.abs(f_model).astype(np.float64)


# ----------------------------------------------------------------------------
# seeded protein-like model
# ----------------------------------------------------------------------------


def _asu_brick(space_group):
    """Fractional (low, size) of gemmi's asymmetric-unit brick; must tile the cell exactly."""
    box = gemmi.find_asu_brick(space_group).get_extent()
    low = np.array(box.minimum.tolist())
    size = np.array(box.maximum.tolist()) - low
    n_ops = len(space_group.operations())
    if not np.isclose(np.prod(size), 1.0 / n_ops):
        raise ValueError(f"space group {space_group.xhm()!r} has no brick-shaped asymmetric unit")
    return low, size


def random_protein_model(cell=PSII_CELL, space_group=PSII_SPACE_GROUP, seed=0, solvent_fraction=0.5):
    """A random protein-like atomic model, reproducible from ``seed``.

    A smooth random field (white noise smoothed by a Gaussian of
    :data:`ENVELOPE_SMOOTHING_A`, averaged over the space-group operations) is
    thresholded at its ``solvent_fraction`` quantile: the region above is
    protein, made of blobs separated by solvent channels. Heavy atoms are placed
    uniformly in the protein part of the asymmetric unit at protein density
    (:data:`PROTEIN_ATOMS_PER_A3`), with C/N/O/S in protein proportions and B
    rising from :data:`B_CORE_A2` inside a blob to :data:`B_SURFACE_A2` at its
    surface. Uniformly placed atoms obey Wilson statistics exactly.

    Parameters
    ----------
    cell : tuple of float
        a, b, c (A), alpha, beta, gamma (degrees).
    space_group : str
    seed : int
    solvent_fraction : float
        Volume fraction of the crystal left to bulk solvent.

    Returns
    -------
    gemmi.Structure
    """
    rng = np.random.default_rng(seed)
    sg = gemmi.SpaceGroup(space_group)
    unit_cell = gemmi.UnitCell(*cell)
    field = gemmi.FloatGrid()
    field.spacegroup = sg
    field.set_unit_cell(unit_cell)
    field.set_size_from_spacing(ENVELOPE_GRID_A, gemmi.GridSizeRounding.Up)
    values = np.array(field, copy=False)
    voxel_A = np.array(cell[:3]) / np.array(values.shape)
    values[...] = ndimage.gaussian_filter(rng.standard_normal(values.shape), ENVELOPE_SMOOTHING_A / voxel_A, mode="wrap")
    field.symmetrize_avg()
    threshold = np.quantile(values, solvent_fraction)
    deep = np.quantile(values, 1 - (1 - solvent_fraction) * 0.1)

    low, size = _asu_brick(sg)
    n_atoms = int(round(PROTEIN_ATOMS_PER_A3 * unit_cell.volume * np.prod(size) * (1 - solvent_fraction)))
    frac, level = np.empty((0, 3)), np.empty(0)
    while len(frac) < n_atoms:
        trial = low + rng.random((2 * n_atoms, 3)) * size
        at = ndimage.map_coordinates(values, (trial * values.shape).T, order=1, mode="grid-wrap")
        inside = at > threshold
        frac, level = np.concatenate([frac, trial[inside]]), np.concatenate([level, at[inside]])
    frac, level = frac[:n_atoms], level[:n_atoms]

    element_index = np.searchsorted(np.cumsum(PROTEIN_ELEMENT_FRACTIONS), rng.random(n_atoms) * 0.999999)
    depth = np.clip((level - threshold) / (deep - threshold), 0, 1)
    b_iso = B_SURFACE_A2 - (B_SURFACE_A2 - B_CORE_A2) * depth + B_JITTER_A2 * rng.standard_normal(n_atoms)
    b_iso = np.clip(b_iso, B_CORE_A2 - 3 * B_JITTER_A2, B_SURFACE_A2 + 3 * B_JITTER_A2)
    positions = frac @ np.array(unit_cell.orth.mat).T
    return _structure_from_atoms(unit_cell, sg, positions, element_index, b_iso)


def _structure_from_atoms(unit_cell, space_group, positions, element_index, b_iso, atoms_per_residue=8):
    """A gemmi.Structure of UNK residues holding the given heavy atoms."""
    elements = [gemmi.Element(e) for e in PROTEIN_ELEMENTS]
    chain = gemmi.Chain("A")
    for first in range(0, len(positions), atoms_per_residue):
        residue = gemmi.Residue()
        residue.name = "UNK"
        residue.seqid = gemmi.SeqId(first // atoms_per_residue + 1, " ")
        for i in range(first, min(first + atoms_per_residue, len(positions))):
            atom = gemmi.Atom()
            atom.element = elements[element_index[i]]
            atom.name = atom.element.name
            atom.pos = gemmi.Position(*positions[i])
            atom.b_iso = float(b_iso[i])
            atom.occ = 1.0
            residue.add_atom(atom)
        chain.add_residue(residue)
    model = gemmi.Model(1)
    model.add_chain(chain)
    st = gemmi.Structure()
    st.cell = unit_cell
    st.spacegroup_hm = space_group.xhm()
    st.add_model(model)
    st.setup_cell_images()
    return st


# ----------------------------------------------------------------------------
# cache
# ----------------------------------------------------------------------------


def _cache_path(cache_dir, d_min_A, seed):
    """File of the cached default_protein for (d_min, seed, version)."""
    if cache_dir is None:
        cache_dir = os.environ.get("DIFFRANET_CACHE") or Path.home() / ".cache" / "diffranet"
    elif not isinstance(cache_dir, (str, os.PathLike)):
        raise ValueError(f"cache_dir must be a directory path or None, got {cache_dir!r}")
    name = f"default_protein-v{DEFAULT_PROTEIN_VERSION}-gemmi{gemmi.__version__}-d{d_min_A!r}A-seed{seed}.npz"
    return Path(cache_dir) / name


def _cache_key(d_min_A, seed):
    return {"d_min_A": d_min_A, "seed": seed, "version": DEFAULT_PROTEIN_VERSION, "gemmi": gemmi.__version__}


def _load_cache(path, key):
    """The cached table, or None if the file is missing, unreadable or for another key."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if any(data[name].item() != value for name, value in key.items()):
                return None
            table = data["table"]
            if table.dtype != np.float32 or table.ndim != 3:
                return None
            return table, tuple(int(v) for v in data["hkl_min"]), tuple(float(v) for v in data["cell"])
    except (OSError, ValueError, KeyError, EOFError):
        return None


def _write_cache(path, key, sf):
    """Write atomically, so readers never see a partial file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as fh:
            np.savez_compressed(fh, table=sf.table, hkl_min=np.array(sf.hkl_min), cell=np.array(sf.cell), **key)
    except OSError as exc:
        warnings.warn(f"could not cache default structure factors in {path.parent}: {exc}", RuntimeWarning, stacklevel=3)


# ----------------------------------------------------------------------------
# public class
# ----------------------------------------------------------------------------


# default_protein() tables read in this process, by (class, cache file, key): reading and
# checking the 38 MB table again costs a quarter of a second, more than rendering a shot.
_LOADED_DEFAULT_PROTEINS = {}


class StructureFactors:
    """Amplitudes |F| for Miller indices, expanded to P1 (all symmetry mates and
    Friedel mates) and stored as a dense float32 table for O(1) lookup by the
    compiled core.

    Parameters
    ----------
    hkl : array_like of int, shape (n, 3)
        Miller indices, an explicit P1 list (no symmetry expansion is done).
    amplitudes : array_like of float, shape (n,)
        |F| in electrons, finite and >= 0. A reflection listed twice must have
        the same amplitude both times.
    cell : tuple of 6 float or gemmi.UnitCell, optional
        a, b, c (A), alpha, beta, gamma (degrees); informative, gives :attr:`d_min`.
    space_group_name : str, optional
        Space group the amplitudes came from (informative: the data are P1).

    Attributes
    ----------
    table : ndarray of float32, shape (nh, nk, nl), C-contiguous, read-only
        ``table[i, j, k] = |F(hmin + i, kmin + j, lmin + k)|``; NaN where no
        reflection is listed (the simulator then uses ``Crystal.default_F``).
    hkl_min : tuple of int
        (hmin, kmin, lmin).
    cell : tuple of float or None
    space_group_name : str or None
    n_reflections : int
    d_min : float or None
        Highest resolution listed, A (None without a cell).

    References
    ----------
    .. [1] J. M. Holton, S. Classen, K. A. Frankel and J. A. Tainer, "The R-factor
       gap in macromolecular crystallography", FEBS J. 281, 4046-4060 (2014),
       doi:10.1111/febs.12922 (nanoBragg, https://github.com/bl831/nanoBragg).
    .. [2] M. Wojdyr, "GEMMI: A library for structural biology", J. Open Source
       Softw. 7, 4200 (2022), doi:10.21105/joss.04200.

    Examples
    --------
    >>> sf = StructureFactors([[1, 0, 0], [-1, 0, 0], [0, 0, 2]], [10.0, 10.0, 3.5])
    >>> sf.hkl_min, sf.table.shape
    ((-1, 0, 0), (3, 1, 3))
    >>> sf.amplitude([1, 0, 5], 0, [0, 2, 0], default=0.0).tolist()
    [10.0, 3.5, 0.0]
    """

    def __init__(self, hkl, amplitudes, *, cell=None, space_group_name=None):
        hkl = _as_miller_indices("hkl", hkl)
        amplitudes = _as_amplitudes("amplitudes", amplitudes, len(hkl))
        if len(hkl) == 0:
            raise ValueError("hkl must list at least one reflection, got 0")
        keys = _keys(hkl)
        conflict = _find_conflict(keys, amplitudes, 0.0)
        if conflict is not None:
            i, j = conflict
            raise ValueError(
                f"hkl {hkl[i].tolist()!r} is listed twice with different amplitudes "
                f"({amplitudes[i].item()!r} at row {i}, {amplitudes[j].item()!r} at row {j})"
            )
        keep = _first_of_each(keys)
        if space_group_name is not None and not isinstance(space_group_name, str):
            raise ValueError(f"space_group_name must be a string or None, got {space_group_name!r}")
        self._set(*dense_table(hkl[keep], amplitudes[keep]), _as_cell("cell", cell), space_group_name)

    def _set(self, table, hkl_min, cell, space_group_name):
        table = np.ascontiguousarray(table, dtype=np.float32)
        table.flags.writeable = False
        self._table, self._hkl_min = table, hkl_min
        self._cell, self._space_group_name = cell, space_group_name
        self._d_min = None
        self._max_amplitude = None
        self._source = {"kind": "arrays"}

    def _with_source(self, **source):
        self._source = source
        return self

    @classmethod
    def _from_p1(cls, hkl, amplitudes, cell, space_group_name):
        """Build from a validated list of distinct P1 reflections."""
        sf = cls.__new__(cls)
        sf._set(*dense_table(hkl, amplitudes), cell, space_group_name)
        return sf

    # -- readers -----------------------------------------------------------

    @classmethod
    def from_hkl_file(cls, path, space_group=None, *, cell=None):
        """Read a nanoBragg-style text file of ``h k l F`` lines.

        Fields are whitespace separated; blank lines and ``#`` comments are
        allowed. A reflection listed twice must have the same F.

        Parameters
        ----------
        path : str or os.PathLike
        space_group : str or gemmi.SpaceGroup, optional
            Space group of the listed (e.g. asymmetric-unit) reflections, such
            as ``"P 21 21 21"``. Given: every symmetry mate and Friedel mate is
            generated. None: the list is taken as P1 and only missing Friedel
            mates are added (|F(-h)| = |F(h)|).
        cell : tuple of 6 float, optional
            a, b, c (A), alpha, beta, gamma (degrees), kept for :attr:`d_min`.

        Returns
        -------
        StructureFactors

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        ValueError
            ``"{path}:{lineno}: ..."`` for a malformed line or a negative,
            NaN or infinite F, or for amplitudes that contradict the symmetry.
        """
        sg = _as_space_group("space_group", space_group)
        cell = _as_cell("cell", cell)
        path = _existing_file("path", path)
        hkl, amplitudes, lines = read_hkl_text(path)
        hkl, amplitudes = expand_to_p1(hkl, amplitudes, sg or _P1, lambda i: f"{path}:{lines[i]}")
        return cls._from_p1(hkl, amplitudes, cell, sg.xhm() if sg else None)._with_source(
            kind="hkl", path=str(path), space_group=sg.xhm() if sg else None,
            cell=list(cell) if cell is not None else None)

    @classmethod
    def from_mtz(cls, path, column=None):
        """Read amplitudes from an MTZ file (gemmi) and expand them to P1.

        Parameters
        ----------
        path : str or os.PathLike
        column : str, optional
            Label of an amplitude column (MTZ type F). Needed only if the file
            has more than one.

        Returns
        -------
        StructureFactors
            Expanded with the MTZ's space group, plus Friedel mates where the
            -h reflection is absent; the cell is the MTZ cell.

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        ValueError
            If the file is not MTZ, has no (or an ambiguous) amplitude column,
            holds a negative or infinite amplitude, or has no space group.
        """
        path = _existing_file("path", path)
        hkl, amplitudes, mtz, label = read_mtz_amplitudes(path, column)
        if mtz.spacegroup is None:
            raise ValueError(f"{path}: MTZ has no space group")
        where = lambda i: f"{path}: column {label!r}, reflection {tuple(hkl[i].tolist())}"  # noqa: E731
        hkl, amplitudes = expand_to_p1(hkl, amplitudes, mtz.spacegroup, where)
        sf = cls._from_p1(hkl, amplitudes, _as_cell(f"{path}: cell", mtz.cell), mtz.spacegroup.xhm())
        return sf._with_source(kind="mtz", path=str(path), column=column)

    @classmethod
    def from_model(cls, path_or_structure, d_min_A, bulk_solvent=True, k_sol=0.35, b_sol_A2=46.0):
        """Fcalc from an atomic model with gemmi, with a flat bulk-solvent model.

        The model's electron density (IT92 form factors, isotropic or
        anisotropic B) is put on a grid with ``gemmi.DensityCalculatorX`` and
        Fourier transformed (``gemmi.transform_map_to_f_phi``). With
        ``bulk_solvent`` the solvent region from ``gemmi.SolventMasker`` (cctbx
        radii, as in phenix.fmodel) is added as a flat scatterer:

            F = F_atoms + k_sol exp(-B_sol s^2 / 4) F_mask,   s = 1/d.

        Parameters
        ----------
        path_or_structure : str, os.PathLike or gemmi.Structure
            PDB or mmCIF file with a unit cell and space group; the first model is used.
        d_min_A : float
            Resolution limit, A: every P1 reflection with d >= d_min_A except 000.
        bulk_solvent : bool
        k_sol : float
            Bulk-solvent electron density, e/A^3 (0.35: typical refined value).
        b_sol_A2 : float
            Bulk-solvent B-factor, A^2 (46: typical refined value).

        Returns
        -------
        StructureFactors

        References
        ----------
        .. [1] J.-S. Jiang and A. T. Brunger, "Protein hydration observed by X-ray
           diffraction", J. Mol. Biol. 243, 100-115 (1994).
        .. [2] A. Fokine and A. Urzhumtsev, "Flat bulk-solvent model: obtaining
           optimal parameters", Acta Cryst. D58, 1387-1392 (2002).
        .. [3] gemmi documentation, "Scattering": density for FFT, solvent mask,
           https://gemmi.readthedocs.io/en/latest/scattering.html
        """
        d_min_A = check_positive("d_min_A", d_min_A)
        if not isinstance(bulk_solvent, (bool, np.bool_)):
            raise ValueError(f"bulk_solvent must be True or False, got {bulk_solvent!r}")
        k_sol = check_nonnegative("k_sol", k_sol)
        b_sol_A2 = check_nonnegative("b_sol_A2", b_sol_A2)
        st = load_structure(path_or_structure)
        _check_grid_size(st.cell, d_min_A)
        hkl, amplitudes = fcalc_p1(st, d_min_A, bool(bulk_solvent), k_sol, b_sol_A2)
        sf = cls._from_p1(hkl, amplitudes, _as_cell("cell", st.cell), st.find_spacegroup().xhm())
        path = str(path_or_structure) if isinstance(path_or_structure, (str, os.PathLike)) else None
        return sf._with_source(kind="model", path=path, d_min_A=d_min_A, bulk_solvent=bool(bulk_solvent),
                               k_sol=k_sol, b_sol_A2=b_sol_A2)

    @classmethod
    def default_protein(cls, d_min_A=1.9, seed=0, cache_dir=None):
        """Protein-like structure factors in the photosystem II cell, cached on disk.

        DiffraNet used Fcalc of photosystem II (PDB 4rvy; P 21 21 21,
        117 x 223 x 310 A) with bulk solvent. Nothing is downloaded: a random
        protein-like model in that cell (:func:`random_protein_model`: ~50%
        solvent, C/N/O/S atoms in molecular blobs, B 30-60 A^2) is Fcalc'd with
        :meth:`from_model` (k_sol 0.35 e/A^3, B_sol 46 A^2). The result is
        reproducible bit-for-bit from ``seed`` and written once, atomically, as
        a compressed ``.npz`` keyed by (d_min_A, seed, version, gemmi version),
        and read once per process: later calls return the same (immutable)
        object. Use :meth:`from_model` or :meth:`from_mtz` for a real structure.

        Parameters
        ----------
        d_min_A : float
            Resolution limit, A.
        seed : int
            Seed of the random model.
        cache_dir : str or os.PathLike, optional
            Default: ``$DIFFRANET_CACHE`` or ``~/.cache/diffranet``.

        Returns
        -------
        StructureFactors
        """
        d_min_A = check_positive("d_min_A", d_min_A)
        seed = check_seed("seed", seed)
        path = _cache_path(cache_dir, d_min_A, seed)
        _check_grid_size(gemmi.UnitCell(*PSII_CELL), d_min_A)
        key = _cache_key(d_min_A, seed)
        loaded = _LOADED_DEFAULT_PROTEINS.get((cls, str(path), repr(key)))
        if loaded is not None:
            return loaded
        cached = _load_cache(path, key) if path.is_file() else None
        if cached is not None:
            sf = cls.__new__(cls)
            sf._set(cached[0], cached[1], cached[2], PSII_SPACE_GROUP)
            sf = sf._with_source(kind="default_protein", d_min_A=d_min_A, seed=seed)
            # a concurrent caller may store an identical object first: either one is right
            return _LOADED_DEFAULT_PROTEINS.setdefault((cls, str(path), repr(key)), sf)
        with tqdm(total=5, desc="diffranet: building default structure factors", disable=None, leave=False) as bar:

            def step(label):
                bar.set_postfix_str(label)
                bar.update(1)

            step("random protein model")
            st = random_protein_model(PSII_CELL, PSII_SPACE_GROUP, seed)
            hkl, amplitudes = fcalc_p1(st, d_min_A, step=step)
        sf = cls._from_p1(hkl, amplitudes, PSII_CELL, PSII_SPACE_GROUP)
        _write_cache(path, key, sf)
        return sf._with_source(kind="default_protein", d_min_A=d_min_A, seed=seed)

    @classmethod
    def from_source(cls, source):
        """Rebuild structure factors from their :attr:`source` description.

        Parameters
        ----------
        source : dict
            As returned by :attr:`source` (JSON-serialisable): how the
            amplitudes were made (``kind`` plus that constructor's arguments).

        Raises
        ------
        ValueError
            For amplitudes given as arrays (nothing on disk describes them), a
            model given as an in-memory structure, or an unknown ``kind``.
        """
        if not isinstance(source, dict) or "kind" not in source:
            raise ValueError(f"source must be a dict with a 'kind', got {source!r}")
        kind = source["kind"]
        args = {k: v for k, v in source.items() if k != "kind"}
        if kind == "default_protein":
            return cls.default_protein(**args)
        if kind == "hkl":
            return cls.from_hkl_file(args.pop("path"), args.pop("space_group"), **args)
        if kind == "mtz":
            return cls.from_mtz(**args)
        if kind == "model" and args.get("path") is not None:
            return cls.from_model(args.pop("path"), **args)
        raise ValueError(f"structure factors of kind {kind!r} cannot be rebuilt from their description "
                         f"{source!r}: keep them in a file (to_hkl_file) and use from_hkl_file")

    @property
    def source(self):
        """JSON-serialisable description of how these amplitudes were made."""
        return dict(self._source)

    # -- views -------------------------------------------------------------

    @property
    def table(self):
        """Dense float32 (nh, nk, nl) table of |F|, NaN where not listed."""
        return self._table

    @property
    def max_amplitude(self):
        """Largest listed |F| (electrons), computed once."""
        if self._max_amplitude is None:
            self._max_amplitude = float(np.nanmax(self._table)) if np.any(np.isfinite(self._table)) else 0.0
        return self._max_amplitude

    def __getstate__(self):
        # the core's tables are compiled objects: a copy rebuilds them when it needs them
        return {name: value for name, value in self.__dict__.items() if name != "_core_tables"}

    def _core_table(self, default_F):
        """The table for the compiled renderers, unlisted reflections at ``default_F``.

        Checked and copied by the core once per value (the renderers use it
        for every image).
        """
        default_F = check_nonnegative("default_F", default_F)
        cache = self.__dict__.setdefault("_core_tables", {})
        if default_F not in cache:
            if len(cache) >= 4:
                cache.clear()
            filled = np.where(np.isnan(self._table), np.float32(default_F), self._table).astype(np.float32)
            cache[default_F] = _core.StructureFactorTable(filled, [int(i) for i in self._hkl_min], default_F)
        return cache[default_F]

    @property
    def hkl_min(self):
        """(hmin, kmin, lmin): ``table[i, j, k]`` is F(hmin + i, kmin + j, lmin + k)."""
        return self._hkl_min

    @property
    def cell(self):
        """Unit cell (a, b, c in A; alpha, beta, gamma in degrees) or None."""
        return self._cell

    @property
    def space_group_name(self):
        """Space group the amplitudes were expanded from, or None."""
        return self._space_group_name

    @property
    def n_reflections(self):
        """Number of listed (non-NaN) reflections."""
        return int(np.count_nonzero(~np.isnan(self._table)))

    @property
    def hkl(self):
        """Listed Miller indices, int64 (n, 3), in table (h, k, l) order."""
        return np.argwhere(~np.isnan(self._table)) + np.array(self._hkl_min)

    @property
    def amplitudes(self):
        """Listed |F|, float32 (n,), matching :attr:`hkl`."""
        return self._table[~np.isnan(self._table)]

    @property
    def d_min(self):
        """Smallest d-spacing listed, A (1/d^2 from the cell metric); None without a cell."""
        if self._cell is None:
            return None
        if self._d_min is None:
            inv_d2 = gemmi.UnitCell(*self._cell).calculate_1_d2_array(self.hkl)
            self._d_min = float(1 / np.sqrt(inv_d2.max())) if inv_d2.max() > 0 else float("inf")
        return self._d_min

    def amplitude(self, h, k, l, default=np.nan):
        """|F(h, k, l)| by table lookup (vectorised; the reference for the core).

        Parameters
        ----------
        h, k, l : int or array_like of int
            Broadcast together.
        default : float
            Returned for reflections not listed.

        Returns
        -------
        float or ndarray of float64
        """
        if not (isinstance(default, float) and np.isnan(default)):
            default = check_finite("default", default)
        idx = np.broadcast_arrays(_as_indices("h", h), _as_indices("k", k), _as_indices("l", l))
        out = np.full(idx[0].shape, default, dtype=np.float64)
        rel = [i - lo for i, lo in zip(idx, self._hkl_min)]
        inside = np.ones(out.shape, dtype=bool)
        for r, n in zip(rel, self._table.shape):
            inside &= (r >= 0) & (r < n)
        values = self._table[tuple(r[inside] for r in rel)].astype(np.float64)
        out[inside] = np.where(np.isnan(values), default, values)
        return out[()] if out.ndim == 0 else out

    def to_hkl_file(self, path):
        """Write every listed reflection as a nanoBragg ``h k l F`` line.

        F is written with 9 significant digits, so :meth:`from_hkl_file` reads
        back the same float32 table.
        """
        if not isinstance(path, (str, os.PathLike)):
            raise ValueError(f"path must be a file path, got {path!r}")
        rows = np.column_stack([self.hkl, self.amplitudes.astype(np.float64)])
        with atomic_write(path) as fh:
            np.savetxt(fh, rows, fmt=["%4d", "%4d", "%4d", "%.9g"])

    def __repr__(self):
        return (
            f"StructureFactors(n_reflections={self.n_reflections}, hkl_min={self._hkl_min}, "
            f"table_shape={self._table.shape}, cell={self._cell}, space_group_name={self._space_group_name!r})"
        )
