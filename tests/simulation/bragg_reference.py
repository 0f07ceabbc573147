"""A slow, obviously correct numpy evaluation of the Bragg formula.

Written straight from the equations in docs/physics.md, one subpixel array at a
time, so that the compiled renderers can be checked against it.
"""

import numpy as np

R_E_SQ_M2 = 7.94079248018965e-30
TOPHAT_SCALE = 1.0 / np.sqrt(4.0 / 3.0 * np.pi * 0.63**3)


def subpixel_positions(det, oversample):
    rows, cols = det.shape
    step = det.pixel_size_mm / oversample
    r = (np.arange(rows * oversample) + 0.5) * step
    c = (np.arange(cols * oversample) + 0.5) * step
    return det.origin_mm + r[:, None, None] * det.slow_axis + c[None, :, None] * det.fast_axis


def polarization(fraction, axis, incident, diffracted):
    cos2t = diffracted @ incident
    if fraction == 0:
        return 0.5 * (1 + cos2t**2)
    b_in = np.cross(axis, incident)
    b_in /= np.linalg.norm(b_in)
    e_in = np.cross(incident, b_in)
    e_in /= np.linalg.norm(e_in)
    psi = -np.arctan2(diffracted @ b_in, diffracted @ e_in)
    return 0.5 * (1 + cos2t**2 - fraction * np.cos(2 * psi) * (1 - cos2t**2))


def lattice_intensity(shape, h, k, l, ncells, tophat_volume="sinc"):
    na, nb, nc = ncells
    if shape == "sinc":
        def sincg(x, n):
            s = np.sin(x)
            small = np.abs(s) < 1e-12
            return np.where(small, n, np.sin(n * x) / np.where(small, 1.0, s))
        return (sincg(np.pi * h, na) * sincg(np.pi * k, nb) * sincg(np.pi * l, nc)) ** 2
    r2 = ((h - np.ceil(h - 0.5)) * na) ** 2 + ((k - np.ceil(k - 0.5)) * nb) ** 2 + ((l - np.ceil(l - 0.5)) * nc) ** 2
    n = na * nb * nc
    if shape == "tophat":
        # "nanobragg": nanoBragg's F_latt = Na Nb Nc inside the sphere of radius 0.63
        f = np.where(r2 < 0.3969, n * (1.0 if tophat_volume == "nanobragg" else TOPHAT_SCALE), 0.0)
    elif shape == "gauss":
        f = np.where(r2 < 4.0, n * np.exp(-r2 / 0.63), 0.0)
    elif shape == "round":
        x = np.pi * np.sqrt(r2)
        safe = np.where(x < 1e-6, 1.0, x)
        f = n * 0.723601254558268 * np.where(x < 1e-6, 1.0, 3 * (np.sin(safe) / safe - np.cos(safe)) / safe**2)
    else:
        raise ValueError(shape)
    return f**2


def bragg_reference(sim, seed=0):
    """Expected photons per pixel, float64, by the textbook per-subpixel formula."""
    det, beam, xtal, n = sim.detector, sim.beam, sim.crystal, sim.oversample
    pos = subpixel_positions(det, n)
    dist = np.linalg.norm(pos, axis=-1)
    diffracted = pos / dist[..., None]
    omega = det.pixel_size_mm**2 / dist**2 * (pos @ det.normal) / dist
    total = np.zeros(pos.shape[:2])
    rotations = sim.mosaic_rotations(seed)
    base = xtal.real_basis_A
    sf = xtal.structure_factors
    for direction, lam, weight in zip(*beam.sampled_sources()):
        s = (diffracted - direction) / lam
        pol = polarization(beam.polarization_fraction, beam.polarization_axis, direction, diffracted)
        acc = np.zeros(pos.shape[:2])
        for rot in rotations:
            hkl = s @ (base @ rot.T).T
            h, k, l = hkl[..., 0], hkl[..., 1], hkl[..., 2]
            latt = lattice_intensity(xtal.spot_shape, h, k, l, xtal.ncells, xtal.tophat_volume)
            h0, k0, l0 = (np.ceil(x - 0.5).astype(int) for x in (h, k, l))
            if sf is None:
                f = np.full(h.shape, xtal.default_F)
            else:
                f = sf.amplitude(h0, k0, l0, default=xtal.default_F)
                f = np.where(np.isnan(f), xtal.default_F, f)
            acc += f**2 * latt
        total += weight * omega * pol * acc
    total *= R_E_SQ_M2 * beam.fluence_photons_per_m2 * xtal.volume_scale / (n * n * len(rotations))
    rows, cols = det.shape
    return total.reshape(rows, n, cols, n).sum(axis=(1, 3))
