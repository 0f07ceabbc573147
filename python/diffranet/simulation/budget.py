"""What a render will cost, estimated before it starts, and a budget it must fit.

Some parameters make a render explode: a wavelength far below the cell's
d-spacings on a detector that sees large angles puts millions of reflections
on the Ewald sphere, hundreds of mosaic domains multiply every pixel's work,
a tiny pixel with a large oversampling factor makes billions of subpixels.
Rather than allocate until the machine runs out of memory or run for hours,
:class:`~diffranet.simulation.simulator.Simulator` asks :func:`estimate` for
the work and memory of the render (a few arithmetic operations, from the
geometry alone) and :func:`check` refuses with a ``ValueError`` that states the
estimate and the parameters that drive it when either exceeds the
:class:`Budget`. The estimate also bounds the largest expected photon count
of a pixel, so that a structure factor or fluence whose square overflows the
float32 image is refused instead of returning ``inf``.

Work is counted in *evaluations*: one lattice-factor evaluation of one
domain at one subpixel for one source (the pixel renderer's inner step, about
0.1 us on one core). The reflection renderer's terms are converted to the same
unit: the candidate reflections it lists, the per-domain filter over them and
the subpixels it evaluates inside each spot's footprint.

Renders that take longer than ``Budget.progress_after_s`` report their
progress through the ``diffranet.simulation.budget`` logger (INFO).

Examples
--------
>>> from diffranet import Beam, Crystal, Detector, Simulator
>>> sim = Simulator(Detector((64, 64)), Beam(1.0, fluence_photons_per_m2=1e24),
...                 Crystal((50, 60, 70, 90, 90, 90), ncells=(5, 5, 5), mosaic_domains=10))
>>> cost = estimate(sim)
>>> bool(cost.work < 1e8), bool(cost.memory_bytes < 1e8)
(True, True)
>>> try:
...     check(sim, Budget(max_work=10.0))
... except ValueError as error:
...     print(str(error).split(";")[0])
the render would need about 1.8e+05 evaluations, more than the budget's max_work=10
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from .._validation import check_positive
from .crystal import COMPACT_SHAPES

__all__ = ["Budget", "Estimate", "estimate", "check", "check_photons", "progress", "DEFAULT_MAX_WORK"]

logger = logging.getLogger(__name__)

#: Default largest work of one render: 2e10 evaluations (of the order of half
#: an hour on one core; the paper's 512 x 512 image with 300 domains and
#: oversample 2 needs 3e8 with the pixel renderer, 1e8 with the reflection one).
DEFAULT_MAX_WORK = 2e10
#: Largest value a float32 image holds.
FLOAT32_MAX = float(np.finfo(np.float32).max)
# Classical electron radius squared (m^2), as in the core.
_ELECTRON_RADIUS_SQ_M2 = 2.8179403262e-15 ** 2
# Radius^2 (in units of 1/N) of the compact spot shapes, as in the core (lattice.hpp).
_SPOT_RADIUS_SQ = {"tophat": 0.3969, "gauss": 4.0}
# Bytes the reflection renderer keeps per candidate reflection and per spot.
_CANDIDATE_BYTES = 68
#: subpixel rows of one band of the reflection renderer (kBandSubRows in csrc/src/bragg_reflection.cpp)
_BAND_SUB_ROWS = 32
# float32 images a shot keeps (Bragg, background, expected, counts, 8 bit and the response's intermediates).
_IMAGE_COPIES = 8
# (row, column) fractions of the detector's corners, edge midpoints and centre
_BORDER_FRACTIONS = np.array([(r, c) for r in (0.0, 0.5, 1.0) for c in (0.0, 0.5, 1.0)])


def _default_memory_bytes():
    """Half of the machine's physical memory (8 GiB where it cannot be read)."""
    try:
        return 0.5 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 8.0 * 2**30


@dataclass(frozen=True)
class Budget:
    """Largest work and memory a render may take.

    Parameters
    ----------
    max_work : float, default 2e10
        Largest estimated number of evaluations (see the module notes).
    max_memory_bytes : float, optional
        Largest estimated memory of the render (bytes); default: half of the
        machine's physical memory.
    progress_after_s : float, default 3.0
        A render still running after this many seconds logs its progress
        (elapsed time and estimated work) every ``progress_after_s`` seconds.
    """

    max_work: float = DEFAULT_MAX_WORK
    max_memory_bytes: float = field(default_factory=_default_memory_bytes)
    progress_after_s: float = 3.0

    def __post_init__(self):
        for name in ("max_work", "max_memory_bytes", "progress_after_s"):
            object.__setattr__(self, name, check_positive(name, getattr(self, name)))


@dataclass(frozen=True)
class Estimate:
    """The estimated cost of a render.

    Attributes
    ----------
    work : float
        Evaluations (see the module notes).
    memory_bytes : float
        Peak memory of the largest buffers (bytes).
    max_photons : float
        Upper bound of the expected photons of one pixel (Bragg plus background),
        and of the Bragg image before ``volume_scale`` multiplies it.
    work_terms, memory_terms, photon_terms : dict
        What each estimate is made of, by name, for the error messages.
    """

    work: float
    memory_bytes: float
    max_photons: float
    work_terms: dict
    memory_terms: dict
    photon_terms: dict


# --------------------------------------------------------------------------- pieces

def _fluence(beam):
    """Photons per m^2 of ``beam`` (whatever the attribute is called)."""
    value = getattr(beam, "fluence_photons_per_m2", None)
    return float(beam.fluence_photons_per_m2 if value is None else value)


def _sources(beam):
    """Number of sources and the shortest wavelength, without building the source list."""
    explicit = beam.to_dict().get("sources")
    if explicit:
        return len(explicit), min(float(s[1]) for s in explicit)
    steps = int(beam.dispersion_steps) * int(beam.divergence_steps) ** 2
    return steps, float(beam.wavelength_A) * (1.0 - 0.5 * float(beam.dispersion))


def _subpixels(detector, oversample):
    rows, cols = detector.shape
    return float(rows) * cols * oversample * oversample


def _border_points_mm(detector):
    """Lab positions (9, 3) of the detector's corners, edge midpoints and centre (mm)."""
    rows, cols = detector.shape
    extent_mm = detector.pixel_size_mm * _BORDER_FRACTIONS
    return (detector.origin_mm + (rows * extent_mm[:, :1]) * detector.slow_axis
            + (cols * extent_mm[:, 1:]) * detector.fast_axis)


def _max_scattering_vector(points_mm, wavelength_A):
    """Largest |S| = 2 sin(theta) / lambda over ``points_mm`` (1/A); the beam runs along +x."""
    directions = points_mm / np.linalg.norm(points_mm, axis=1, keepdims=True)
    return float(np.max(np.linalg.norm(directions - [1.0, 0.0, 0.0], axis=1))) / wavelength_A


def _smallest_cos(points_mm, normal):
    """Smallest cosine between the detector normal and the rays to ``points_mm``."""
    return float(np.min(points_mm @ normal / np.linalg.norm(points_mm, axis=1)))


def _solid_angle_bound(detector):
    """Largest solid angle of one pixel: its area over the squared distance of the detector plane (sr)."""
    ratio = detector.pixel_size_mm / detector.distance_mm
    return ratio * ratio


def _threads(sim):
    """Threads a render uses: the simulator's n_threads, or every core (0)."""
    return sim.n_threads if sim.n_threads > 0 else (os.cpu_count() or 1)


def _largest_F(crystal):
    """Largest structure-factor amplitude the crystal's reflections can have."""
    largest = float(crystal.default_F)
    if crystal.structure_factors is not None:
        largest = max(largest, crystal.structure_factors.max_amplitude)
    return largest


def _bragg_terms(sim, method):
    """Work, memory and photon terms of the Bragg render."""
    det, beam, xtal = sim.detector, sim.beam, sim.crystal
    n_sources, wavelength_A = _sources(beam)
    n_domains = float(xtal.mosaic_domains)
    n_sub = _subpixels(det, sim.oversample)
    work, memory = {}, {}
    na, nb, nc = (float(n) for n in xtal.ncells)
    if method == "pixel":
        work["subpixels x sources x domains (shape, oversample, Beam steps, mosaic_domains)"] = n_sub * n_sources * n_domains
    else:
        real = np.asarray(xtal.real_basis_A, dtype=float)
        volume_A3 = abs(float(np.linalg.det(real)))
        recip = np.linalg.inv(real)  # columns a*, b*, c*
        r_s = math.sqrt(_SPOT_RADIUS_SQ[xtal.spot_shape]) * float(np.linalg.norm(recip / [na, nb, nc], 2))
        spread_rad = math.radians(xtal.mosaic_spread_deg)
        theta = min(math.pi, spread_rad * (0.5 if xtal.mosaic_distribution == "tophat" else 2.0))
        points = _border_points_mm(det)
        g_max = _max_scattering_vector(points, wavelength_A) + r_s
        shell = r_s + theta * g_max
        # lattice points in a region number at most its volume, grown by the reach of one reciprocal cell,
        # over the cell's volume 1 / volume_A3
        reach = 0.5 * float(np.sum(np.linalg.norm(recip, axis=0)))
        ball = 4.0 / 3.0 * math.pi * (g_max + reach) ** 3

        def in_shell(half_width):
            radius = g_max + half_width + 2.0 * reach
            return volume_A3 * min(2.0 * math.pi * radius * radius * (half_width + reach), ball)

        candidates = in_shell(shell)
        index_max = sorted(math.floor(g_max * float(np.linalg.norm(row))) + 1 for row in real)
        lines = (2.0 * index_max[0] + 1.0) * (2.0 * index_max[1] + 1.0)
        spots = n_domains * min(candidates, in_shell(r_s))
        # footprint radius (subpixels) of one spot: D alpha / cos^3 over the subpixel side, alpha ~ r_s lambda
        cos_min = max(1e-3, _smallest_cos(points, det.normal))
        radius = det.distance_mm * r_s * wavelength_A / cos_min ** 3 * sim.oversample / det.pixel_size_mm
        box = min((2.0 * radius + 2.0) ** 2, n_sub)
        work["candidate reflections (wavelength_A, cell, detector angles, mosaic_spread_deg)"] = n_sources * (candidates + lines)
        work["candidate reflections x domains (mosaic_domains)"] = n_sources * candidates * n_domains
        work["spot subpixels (mosaic_domains, ncells, wavelength_A, distance_mm / pixel_size_mm, oversample)"] = n_sources * spots * box
        work["spots (mosaic_domains x reflections)"] = n_sources * spots
        memory["candidate reflections (wavelength_A, cell, detector angles, mosaic_spread_deg)"] = _CANDIDATE_BYTES * candidates
        # spots are drawn as they are met: each thread holds one band of subpixel sums and
        # scattering vectors, and the footprints of one reflection's domains
        band_subpixels = _BAND_SUB_ROWS * det.shape[1] * sim.oversample
        memory["pixel sums (shape)"] = 8.0 * det.shape[0] * det.shape[1]
        memory["band work space per thread (threads, shape, oversample, mosaic_domains)"] = (
            _threads(sim) * (32.0 * band_subpixels + 64.0 * n_domains))
    memory["subpixel directions (shape x oversample^2)"] = 24.0 * n_sub
    photons = {
        "r_e^2 x fluence": _ELECTRON_RADIUS_SQ_M2 * _fluence(beam),
        "|F|^2 (default_F, structure_factors)": _largest_F(xtal) * _largest_F(xtal),
        "(Na Nb Nc)^2 (ncells)": (na * nb * nc) * (na * nb * nc),
        "pixel solid angle (pixel_size_mm / distance_mm)^2": _solid_angle_bound(det),
        # the image is rendered first and scaled after: both must fit
        "volume_scale": max(1.0, float(xtal.volume_scale)),
    }
    return work, memory, photons


def _background_terms(sim):
    """Work, memory and photon terms of the amorphous background."""
    background, det, beam = sim.background, sim.detector, sim.beam
    scatterers = background.scatterers() if hasattr(background, "scatterers") else ()
    n_sources, _ = _sources(beam)
    n_sub = _subpixels(det, sim.background_oversample)
    work = {"background subpixels x sources x materials (shape, background_oversample, Beam steps)": n_sub * n_sources * max(1, len(scatterers))}
    # the per-subpixel weights and scattering angles, kept with the detector (see background._samples)
    memory = {"background samples (shape x background_oversample^2 x sources)": 16.0 * n_sub * n_sources}
    strength = 0.0
    beam_size = getattr(beam, "beam_size_mm", None)
    if beam_size is not None:
        for material in scatterers:
            table = np.asarray(material.F, dtype=float) ** 2
            if getattr(material, "incoherent", None) is not None:
                table = table + np.asarray(material.incoherent, dtype=float)
            strength += float(material.molecules(beam_size)) * float(np.max(table, initial=0.0))
    photons = {"r_e^2 x fluence x molecules x (F^2 + S) x solid angle":
               _ELECTRON_RADIUS_SQ_M2 * _fluence(beam) * strength * _solid_angle_bound(det)}
    return work, memory, photons


def _response_memory(sim):
    """Bytes of the detector response's largest buffers (the fiber PSF's FFT grid)."""
    rows, cols = sim.detector.shape
    if getattr(sim.response, "psf", None) == "fiber":
        # kernel (2R + 1)^2 with R <= max(rows, cols) - 1, and the zero-padded grid of about (2 rows) x (2 cols)
        side = 2.0 * max(rows, cols) - 1.0
        return {"fiber PSF kernel and FFT grid (shape)": 4 * 8.0 * side * side + 3 * 8.0 * 4.0 * rows * cols}
    return {}


# --------------------------------------------------------------------------- public

def estimate(simulator, method=None, parts=("bragg", "background", "response")):
    """Estimate the work, memory and largest pixel value of ``simulator``'s render.

    Parameters
    ----------
    simulator : Simulator
    method : {"auto", "reflection", "pixel"}, optional
        The Bragg renderer; default: the simulator's.
    parts : sequence of {"bragg", "background", "response"}
        What to count: the Bragg render, the background render, the detector
        response; the shot's images are always counted.

    Returns
    -------
    Estimate
    """
    work, memory, photons = {}, {}, {}
    rows, cols = simulator.detector.shape
    memory["images (shape)"] = _IMAGE_COPIES * 4.0 * rows * cols
    bragg_photons = background_photons = 0.0
    if "bragg" in parts and simulator.crystal is not None:
        method = simulator.method if method is None else method
        if method == "auto":
            method = "reflection" if simulator.crystal.spot_shape in COMPACT_SHAPES else "pixel"
        w, m, p = _bragg_terms(simulator, method)
        work.update(w), memory.update(m), photons.update(p)
        bragg_photons = math.prod(p.values())
    if "background" in parts and simulator.background is not None:
        w, m, p = _background_terms(simulator)
        work.update(w), memory.update(m), photons.update(p)
        background_photons = math.prod(p.values())
    if "response" in parts and simulator.response is not None:
        memory.update(_response_memory(simulator))
    return Estimate(work=float(sum(work.values())), memory_bytes=float(sum(memory.values())),
                    max_photons=bragg_photons + background_photons, work_terms=work, memory_terms=memory,
                    photon_terms=photons)


def _largest(terms):
    return max(terms, key=lambda name: terms[name])


def check(simulator, budget=None, method=None, parts=("bragg", "background", "response")):
    """Refuse a render whose estimate exceeds ``budget`` or whose pixels could overflow float32.

    Parameters
    ----------
    simulator : Simulator
    budget : Budget, optional
        Default: ``Budget()``.
    method, parts
        As for :func:`estimate`.

    Returns
    -------
    Estimate
        The estimate, when the render fits.

    Raises
    ------
    ValueError
        Stating the estimate, the limit and the term (with the parameters
        behind it) that dominates it.
    """
    budget = Budget() if budget is None else budget
    cost = estimate(simulator, method=method, parts=parts)
    if cost.work > budget.max_work:
        raise ValueError(
            f"the render would need about {cost.work:.2g} evaluations, more than the budget's "
            f"max_work={budget.max_work:.3g}; most of it is {_largest(cost.work_terms)} "
            f"({max(cost.work_terms.values()):.2g}): reduce it, or pass Simulator(..., budget=Budget(max_work=...))")
    if cost.memory_bytes > budget.max_memory_bytes:
        raise ValueError(
            f"the render would need about {cost.memory_bytes / 2**30:.3g} GiB of memory, more than the budget's "
            f"max_memory_bytes={budget.max_memory_bytes:.3g}; most of it is {_largest(cost.memory_terms)} "
            f"({max(cost.memory_terms.values()) / 2**30:.3g} GiB): reduce it, or pass "
            f"Simulator(..., budget=Budget(max_memory_bytes=...))")
    if not cost.max_photons < FLOAT32_MAX / 16:
        terms = ", ".join(f"{name} {value:.3g}" for name, value in cost.photon_terms.items())
        raise ValueError(
            f"expected photons per pixel could reach {cost.max_photons:.3g}, beyond what a float32 image holds "
            f"({FLOAT32_MAX:.3g}); the factors are {terms}: lower the largest")
    return cost


def check_photons(image, name="expected photons"):
    """Return ``image`` if every value is finite and >= 0, else raise ValueError.

    The last line of defence behind :func:`check`'s bound, for models it
    cannot bound (a custom background or response).
    """
    finite = np.isfinite(image)
    if not finite.all():
        raise ValueError(f"{name} overflowed: {int(np.count_nonzero(~finite))} pixels are not finite; "
                         f"lower the fluence, structure factors or volume_scale")
    if image.size and float(np.min(image)) < 0.0:
        raise ValueError(f"{name} must be >= 0, got minimum {float(np.min(image))!r}")
    return image


@contextlib.contextmanager
def progress(label, cost, budget=None):
    """Log the progress of a render that runs longer than ``budget.progress_after_s``.

    The compiled core releases the GIL while it renders, so a timer thread
    logs the elapsed time (with the estimated work) at INFO level every
    ``progress_after_s`` seconds until the ``with`` block ends, and once more
    when it ends if it logged at all.
    """
    budget = Budget() if budget is None else budget
    done = threading.Event()
    start = time.perf_counter()
    reported = []

    def report():
        while not done.wait(budget.progress_after_s):
            reported.append(True)
            logger.info("%s: %.0f s so far (estimated work %.2g evaluations)", label,
                        time.perf_counter() - start, cost.work)

    thread = threading.Thread(target=report, name=f"diffranet progress: {label}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        if reported:
            logger.info("%s: done in %.1f s", label, time.perf_counter() - start)
