"""The Simulator: expected photons per pixel from a crystal in a beam."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import _core
from ._core_args import beam_args, detector_args
from ._params import component_from_dict, component_to_dict
from .._validation import check_choice, check_int, check_seed, check_threads
from .budget import Budget, check as check_budget, check_photons, progress
from .response import to_8bit
from .crystal import COMPACT_SHAPES, MOSAIC_DISTRIBUTIONS, SPOT_SHAPES, Crystal
from .geometry import Beam, Detector

__all__ = ["Simulator", "SimulationResult"]

_METHODS = ("auto", "reflection", "pixel")
_EMPTY_TABLE = np.zeros((0, 0, 0), dtype=np.float32)


@dataclass
class SimulationResult:
    """One simulated shot, from expected photons to the detector's 8-bit image.

    Attributes
    ----------
    bragg, background, expected : ndarray, float32
        Expected photons per pixel: Bragg spots, amorphous background (after
        the beamstop shadow), and their sum.
    counts : ndarray
        What the detector records (detector units, see the response model).
    image8 : ndarray, uint8
        The 8-bit image (square root of the counts for the paper's CCD).
    metadata : dict
        Every parameter and the seed, JSON-serialisable:
        ``Simulator.from_metadata(metadata).simulate(seed=metadata["seed"])``
        makes the same shot again.
    """

    bragg: np.ndarray
    background: np.ndarray
    expected: np.ndarray
    counts: np.ndarray
    image8: np.ndarray
    metadata: dict


class Simulator:
    """Render diffraction images of ``crystal`` in ``beam`` on ``detector``.

    Parameters
    ----------
    detector : Detector
    beam : Beam
    crystal : Crystal or None
        None for a shot without a crystal (background and noise only).
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
    background : diffranet.simulation.background.Background, optional
        Amorphous scatterers in the beam (water, air, ...); default none.
    beamstop : diffranet.simulation.beamstop.Beamstop, optional
        Shadows the background and the Bragg spots behind it.
    background_oversample : int, optional
        Subpixels per pixel side for the background, which is smooth on the
        scale of a pixel (its solid angle and sin(theta)/lambda change by
        about (pixel / distance)^2 across one); default: ``oversample``.
    response : detector response model, optional
        Turns expected photons into counts and an 8-bit image (e.g.
        ``diffranet.simulation.response.CCDResponse``); default: an ideal counter that
        records the expected photons.
    budget : diffranet.simulation.budget.Budget, optional
        Largest estimated work and memory of a render; a render that would
        exceed it raises ``ValueError`` before it starts (default: ``Budget()``).

    Examples
    --------
    >>> from diffranet import Simulator, Detector, Beam, Crystal
    >>> sim = Simulator(Detector(shape=(64, 64)), Beam(1.5, fluence_photons_per_m2=1e24),
    ...                 Crystal((50, 60, 70, 90, 90, 90), ncells=(5, 5, 5)))
    >>> img = sim.bragg(seed=0)
    >>> img.shape, img.dtype
    ((64, 64), dtype('float32'))
    """

    def __init__(self, detector, beam, crystal=None, oversample=1, n_threads=None, method="auto",
                 background=None, beamstop=None, response=None, background_oversample=None, budget=None):
        for name, value, cls in (("detector", detector, Detector), ("beam", beam, Beam)):
            if not isinstance(value, cls):
                raise ValueError(f"{name} must be a {cls.__name__}, got {type(value).__name__}")
        if crystal is not None and not isinstance(crystal, Crystal):
            raise ValueError(f"crystal must be a Crystal or None, got {type(crystal).__name__}")
        for name, value, method_name in (("background", background, "render"), ("beamstop", beamstop, "shadow"),
                                         ("response", response, "apply")):
            if value is not None and not hasattr(value, method_name):
                raise ValueError(f"{name} must provide .{method_name}(), got {type(value).__name__}")
        self.detector = detector
        self.beam = beam
        self.crystal = crystal
        self.oversample = check_int("oversample", oversample, minimum=1)
        self.n_threads = check_threads(n_threads)
        self.method = check_choice("method", method, _METHODS)
        if self.method == "reflection" and crystal is not None and crystal.spot_shape not in COMPACT_SHAPES:
            raise ValueError(f"method='reflection' needs a compact spot_shape (tophat or gauss), "
                             f"got {crystal.spot_shape!r}")
        self.background = background
        self.background_oversample = (self.oversample if background_oversample is None
                                      else check_int("background_oversample", background_oversample, minimum=1))
        self.beamstop = beamstop
        self.response = response
        if budget is not None and not isinstance(budget, Budget):
            raise ValueError(f"budget must be a Budget or None, got {type(budget).__name__}")
        self.budget = Budget() if budget is None else budget
        self._arguments = {"detector": detector, "beam": beam, "crystal": crystal, "oversample": oversample,
                           "n_threads": n_threads, "method": method, "background": background,
                           "beamstop": beamstop, "response": response,
                           "background_oversample": background_oversample, "budget": budget}
        self._frozen = True

    def __setattr__(self, name, value):
        if getattr(self, "_frozen", False):
            raise AttributeError(f"a Simulator is immutable: use sim.with_({name}=...) for a changed copy")
        object.__setattr__(self, name, value)

    def with_(self, **changes):
        """A new Simulator with some of the constructor's arguments changed (and checked again).

        Examples
        --------
        >>> from diffranet import Simulator, Detector, Beam
        >>> sim = Simulator(Detector((8, 8)), Beam(1.5, fluence_photons_per_m2=1e24))
        >>> sim.with_(oversample=2).oversample
        2
        """
        unknown = sorted(set(changes) - set(self._arguments))
        if unknown:
            raise ValueError(f"Simulator has no parameters {unknown}; it takes {sorted(self._arguments)}")
        return type(self)(**{**self._arguments, **changes})

    def _structure_factor_table(self):
        sf = self.crystal.structure_factors
        if sf is None:  # every reflection at default_F
            return _core.StructureFactorTable(_EMPTY_TABLE, [0, 0, 0], self.crystal.default_F)
        return sf._core_table(self.crystal.default_F)

    def mosaic_rotations(self, seed=0):
        """Lab-frame rotations (n_domains, 3, 3) of the mosaic domains for ``seed``."""
        seed = check_seed("seed", seed)
        xtal = self.crystal
        return _core.mosaic_rotations(xtal.mosaic_domains, math.radians(xtal.mosaic_spread_deg),
                                      MOSAIC_DISTRIBUTIONS[xtal.mosaic_distribution], seed)

    def bragg(self, seed=0, method=None, return_stats=False):
        """Expected Bragg photons per pixel, without noise.

        Parameters
        ----------
        seed : int, default 0
            Draws the mosaic domains' misorientations.
        method : {"auto", "reflection", "pixel"}, optional
            Overrides the simulator's renderer for this call.
        return_stats : bool, default False
            Also return the renderer's counters.

        Returns
        -------
        image : ndarray, float32, shape detector.shape
            r_e^2 x fluence x solid angle x polarisation x |F_cell|^2 x |F_latt|^2,
            averaged over subpixels, sources and mosaic domains.
        stats : dict
            Only with ``return_stats``: the renderer used (``"method"``) and its
            work counters (e.g. ``"spots"``, ``"subpixels_tested"``).
        """
        if self.crystal is None:
            raise ValueError("this Simulator has no crystal: bragg() needs one (simulate() works without)")
        method = self.method if method is None else check_choice("method", method, _METHODS)
        if method == "auto":
            method = "reflection" if self.crystal.spot_shape in COMPACT_SHAPES else "pixel"
        if method == "reflection" and self.crystal.spot_shape not in COMPACT_SHAPES:
            raise ValueError(f"method='reflection' needs a compact spot_shape (tophat or gauss), "
                             f"got {self.crystal.spot_shape!r}")
        cost = check_budget(self, self.budget, method, parts=("bragg",))
        det, xtal = self.detector, self.crystal
        table = self._structure_factor_table()
        with progress("Bragg render", cost, self.budget):
            image, stats = _core.render_bragg(
                **detector_args(det, self.oversample), **beam_args(self.beam), real_basis_A=xtal.real_basis_A,
                ncells=np.asarray(xtal.ncells, dtype=float), shape=SPOT_SHAPES[xtal.spot_shape],
                domain_rotations=self.mosaic_rotations(seed), structure_factors=table, method=method,
                n_threads=self.n_threads, directions=det._direction_grid(self.oversample))
        if xtal.intensity_scale != 1.0:
            image *= np.float32(xtal.intensity_scale)
        image = check_photons(image, "Bragg photons")
        return (image, dict(stats, method=method)) if return_stats else image

    def background_image(self):
        """Expected background photons per pixel (zeros without a background model)."""
        if self.background is None:
            return np.zeros(self.detector.shape, dtype=np.float32)
        cost = check_budget(self, self.budget, parts=("background",))
        with progress("background render", cost, self.budget):
            image = self.background.render(self.detector, self.beam, oversample=self.background_oversample,
                                           n_threads=self.n_threads or None)
        return check_photons(image, "background photons")

    def simulate(self, seed=0):
        """One shot: Bragg spots + background, through the detector.

        Parameters
        ----------
        seed : int, default 0
            Draws the mosaic domains and every noise source of the detector.

        Returns
        -------
        SimulationResult
        """
        seed = check_seed("seed", seed)
        check_budget(self, self.budget)
        det = self.detector
        bragg = self.bragg(seed=seed) if self.crystal is not None else np.zeros(det.shape, dtype=np.float32)
        background = self.background_image()
        if self.beamstop is not None:
            shadow = self.beamstop.shadow(det)
            bragg[shadow] = 0.0
            background[shadow] = 0.0
        expected = check_photons(bragg + background)
        if self.response is None:
            counts = expected.copy()
            if det.mask is not None:
                counts[det.mask] = 0.0
            image8 = to_8bit(counts)
        else:
            counts = self.response.apply(expected, pixel_size_mm=det.pixel_size_mm, seed=seed, mask=det.mask,
                                         n_threads=self.n_threads or None)
            image8 = self.response.to_8bit(counts)
        return SimulationResult(bragg=bragg, background=background, expected=expected, counts=counts,
                                image8=image8, metadata=self.metadata(seed))

    def metadata(self, seed=0):
        """JSON-serialisable description of this simulator and ``seed``."""
        return {
            "seed": int(seed),
            "detector": self.detector.to_dict(),
            "beam": self.beam.to_dict(),
            "crystal": None if self.crystal is None else self.crystal.to_dict(),
            "oversample": self.oversample,
            "background_oversample": self.background_oversample,
            "method": self.method,
            "background": component_to_dict(self.background),
            "beamstop": component_to_dict(self.beamstop),
            "response": component_to_dict(self.response),
        }

    @classmethod
    def from_metadata(cls, metadata, structure_factors=None, n_threads=None):
        """Rebuild the simulator described by :meth:`metadata`.

        ``structure_factors`` replaces the crystal's (which are otherwise
        rebuilt from their description).
        """
        crystal = metadata.get("crystal")
        return cls(
            Detector.from_dict(metadata["detector"]),
            Beam.from_dict(metadata["beam"]),
            None if crystal is None else Crystal.from_dict(crystal, structure_factors=structure_factors),
            oversample=metadata["oversample"], n_threads=n_threads, method=metadata["method"],
            background_oversample=metadata.get("background_oversample"),
            background=component_from_dict(metadata.get("background")),
            beamstop=component_from_dict(metadata.get("beamstop")),
            response=component_from_dict(metadata.get("response")))

    def __repr__(self):
        return (f"Simulator({self.detector!r}, {self.beam!r}, {self.crystal!r}, "
                f"oversample={self.oversample})")
