"""The Simulator: expected photons per pixel from a crystal in a beam."""

from __future__ import annotations

import math

import numpy as np

from . import _core
from ._validation import check_choice, check_int, check_seed
from .crystal import COMPACT_SHAPES, MOSAIC_DISTRIBUTIONS, SPOT_SHAPES, Crystal
from .geometry import Beam, Detector

__all__ = ["Simulator"]

_METHODS = ("auto", "reflection", "pixel")
_EMPTY_TABLE = np.zeros((0, 0, 0), dtype=np.float32)


class Simulator:
    """Render diffraction images of ``crystal`` in ``beam`` on ``detector``.

    Parameters
    ----------
    detector : Detector
    beam : Beam
    crystal : Crystal
    oversample : int, default 1
        Each pixel is split into ``oversample x oversample`` subpixels whose
        contributions are averaged (the paper used 2).
    n_threads : int, optional
        OpenMP threads; default: all available. Images do not depend on it.
    method : {"auto", "reflection", "pixel"}, default "auto"
        ``"reflection"`` rasterises each reflection's spot (tophat and gauss
        only); ``"pixel"`` evaluates every subpixel x source x domain (any
        shape); ``"auto"`` picks ``"reflection"`` whenever the spot shape allows.
        Both give the same image.

    Examples
    --------
    >>> from diffranet import Simulator, Detector, Beam, Crystal
    >>> sim = Simulator(Detector(shape=(64, 64)), Beam(1.5, fluence=1e24),
    ...                 Crystal((50, 60, 70, 90, 90, 90), ncells=(5, 5, 5)))
    >>> img = sim.bragg(seed=0)
    >>> img.shape, img.dtype
    ((64, 64), dtype('float32'))
    """

    def __init__(self, detector, beam, crystal, oversample=1, n_threads=None, method="auto"):
        for name, value, cls in (("detector", detector, Detector), ("beam", beam, Beam),
                                 ("crystal", crystal, Crystal)):
            if not isinstance(value, cls):
                raise ValueError(f"{name} must be a {cls.__name__}, got {type(value).__name__}")
        self.detector = detector
        self.beam = beam
        self.crystal = crystal
        self.oversample = check_int("oversample", oversample, minimum=1)
        self.n_threads = 0 if n_threads is None else check_int("n_threads", n_threads, minimum=1)
        self.method = check_choice("method", method, _METHODS)
        if self.method == "reflection" and crystal.spot_shape not in COMPACT_SHAPES:
            raise ValueError(f"method='reflection' needs a compact spot_shape (tophat or gauss), "
                             f"got {crystal.spot_shape!r}")
        self.last_stats = {}

    def _structure_factor_table(self):
        sf = self.crystal.structure_factors
        if sf is None:
            return _EMPTY_TABLE, [0, 0, 0]
        table = np.asarray(sf.table, dtype=np.float32)
        # listed reflections keep their F; unlisted ones (NaN) get default_F
        filled = np.where(np.isnan(table), np.float32(self.crystal.default_F), table)
        return np.ascontiguousarray(filled, dtype=np.float32), [int(i) for i in sf.hkl_min]

    def mosaic_rotations(self, seed=0):
        """Lab-frame rotations (n_domains, 3, 3) of the mosaic domains for ``seed``."""
        seed = check_seed("seed", seed)
        xtal = self.crystal
        return _core.mosaic_rotations(xtal.mosaic_domains, math.radians(xtal.mosaic_spread_deg),
                                      MOSAIC_DISTRIBUTIONS[xtal.mosaic_distribution], seed)

    def bragg(self, seed=0, method=None):
        """Expected Bragg photons per pixel, without noise.

        Parameters
        ----------
        seed : int, default 0
            Draws the mosaic domains' misorientations.
        method : {"auto", "reflection", "pixel"}, optional
            Overrides the simulator's renderer for this call.

        Returns
        -------
        ndarray, float32, shape detector.shape
            r_e^2 x fluence x solid angle x polarisation x |F_cell|^2 x |F_latt|^2,
            averaged over subpixels, sources and mosaic domains.
        """
        method = self.method if method is None else check_choice("method", method, _METHODS)
        if method == "auto":
            method = "reflection" if self.crystal.spot_shape in COMPACT_SHAPES else "pixel"
        if method == "reflection" and self.crystal.spot_shape not in COMPACT_SHAPES:
            raise ValueError(f"method='reflection' needs a compact spot_shape (tophat or gauss), "
                             f"got {self.crystal.spot_shape!r}")
        det, beam, xtal = self.detector, self.beam, self.crystal
        directions, wavelengths, weights = beam.sources()
        table, hkl_min = self._structure_factor_table()
        rows, cols = det.shape
        image, stats = _core.render_bragg(
            rows=rows, cols=cols, pixel_size_mm=det.pixel_size_mm, origin_mm=det.origin_mm,
            fast_axis=det.fast_axis, slow_axis=det.slow_axis, normal=det.normal, oversample=self.oversample,
            source_directions=directions, source_wavelengths_A=wavelengths, source_weights=weights,
            fluence=beam.fluence, polarization_fraction=beam.polarization_fraction,
            polarization_axis=beam.polarization_axis, real_basis_A=xtal.real_basis_A,
            ncells=np.asarray(xtal.ncells, dtype=float), shape=SPOT_SHAPES[xtal.spot_shape],
            domain_rotations=self.mosaic_rotations(seed), sf_table=table, sf_hkl_min=hkl_min,
            default_F=xtal.default_F, method=method, n_threads=self.n_threads)
        self.last_stats = dict(stats, method=method)
        return image

    def __repr__(self):
        return (f"Simulator({self.detector!r}, {self.beam!r}, {self.crystal!r}, "
                f"oversample={self.oversample})")
