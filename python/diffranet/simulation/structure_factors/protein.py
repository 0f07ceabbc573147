"""A seeded, protein-like atomic model in the photosystem II cell (the default structure)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ._gemmi import gemmi

__all__ = ["PSII_CELL", "PSII_SPACE_GROUP", "random_protein_model"]

#: Unit cell of photosystem II, PDB 4rvy (a, b, c in A; alpha, beta, gamma in degrees).
PSII_CELL = (117.0, 223.0, 310.0, 90.0, 90.0, 90.0)
PSII_SPACE_GROUP = "P 21 21 21"

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
