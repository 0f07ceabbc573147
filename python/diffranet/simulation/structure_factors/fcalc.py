"""Fcalc of an atomic model by FFT (gemmi), with a flat bulk-solvent correction."""

from __future__ import annotations

import numpy as np

from ._gemmi import gemmi, p1
from .reflections import MAX_TABLE_CELLS

__all__ = ["fcalc_p1"]


def check_grid_size(cell, d_min_A):
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
    hkl = np.asarray(gemmi.make_miller_array(st.cell, p1(), d_min_A, unique=False), dtype=np.int64)
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
