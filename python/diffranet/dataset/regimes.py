"""Training regimes: a distribution of experimental set-ups instead of one fixed set-up.

A model trained on one simulated experiment learns that experiment's grey
levels. :class:`Regimes` draws every shot's set-up (source, sample and air
path, detector kind and its flaws, crystal) from wide distributions, so the
one thing the classes have in common across shots is what defines them: the
number of Bragg spots a peak finder can detect after the detector model
(:class:`~diffranet.dataset.labels.LabelRule`, the same rule as the paper's
preset).

Each drawn set-up (:class:`ShotSetup`) is made of ordinary, validated value
objects (:class:`~diffranet.simulation.geometry.Detector`,
:class:`~diffranet.simulation.geometry.Beam`,
:class:`~diffranet.simulation.crystal.Crystal`,
:class:`~diffranet.simulation.background.Background`, a detector response and
a label rule) and is stored with its image as JSON (:meth:`ShotSetup.to_dict`).

Every image is rendered on the model-input detector (512 x 512 pixels of
172 um at a drawn distance): a frame of any real detector reaches the model
resampled onto that grid (:mod:`diffranet.inference.preprocess`), so the
regimes vary what survives resampling (background level, noise kind, gain,
spot size, masks, artefacts), not the source detector's pixel count.

What is drawn, per shot (see :class:`Regimes` for the ranges):

* source: photons per exposure, log-uniform over synchrotron exposures
  (1e10-1e13 photons/s for 1-100 ms) and XFEL pulses (1e10-1e13); wavelength
  0.6-2.0 A; beam size; beam centre near the middle, anywhere on the
  detector, or off it;
* sample and path: nothing (helium or vacuum), thin to thick water (jets,
  loops, LCP-like), air 0-200 mm, and sometimes an ice ring set. Ice rings
  are background: a shot with ice rings and no crystal is ``no-crystal`` (a
  miss), since they are not spots of the sample's lattice;
* detector: photon counting (Poisson only), integrating pixel detector
  (per-pixel gain error, 0.1-0.3 photon of noise), or CCD (read-out noise,
  fiber PSF, offset); a gain in ADU per photon; module gaps and bad pixels
  (masked, then given the local background as the preprocessing does);
  hot pixels, cosmic-ray tracks, a beamstop shadow and a direct-beam halo;
* crystal: one of several cells from small (a few spots) to large (thousands),
  random Wilson amplitudes with a B factor, domain size and mosaicity.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math

import numpy as np

from .._validation import check_int
from ..detectors import FrameGeometry
from ..peaks.background import fill_masked
from ..simulation.background import Background, air, water
from ..simulation.budget import estimate
from ..simulation.crystal import Crystal
from ..simulation.geometry import Beam, Detector
from ..simulation.masks import module_gap_mask
from ..simulation.orientation import random_orientation
from ..simulation.response import CCDResponse, PixelArrayResponse, to_8bit
from ..simulation.simulator import Simulator
from ..simulation.structure_factors import StructureFactors
from .labels import LabelRule, LabelThresholds, spot_pixels
from .shards import TABLE_DTYPE
from .shots import image_rng, volume_for_label

__all__ = ["Regimes", "ShotSetup", "RegimeRenderer", "CELLS", "ICE_RING_D_A"]

#: Unit cells (A, degrees) the crystals are drawn from: small-molecule-like to large proteins.
CELLS = (
    (12.0, 15.0, 18.0, 90.0, 100.0, 90.0),
    (27.0, 31.0, 34.0, 90.0, 90.0, 90.0),
    (38.0, 79.0, 79.0, 90.0, 90.0, 90.0),     # lysozyme-like
    (58.0, 58.0, 151.0, 90.0, 90.0, 90.0),    # thaumatin-like
    (64.0, 31.0, 35.0, 90.0, 106.0, 90.0),    # myoglobin-like
    (78.0, 78.0, 78.0, 90.0, 90.0, 90.0),
    (68.0, 68.0, 102.0, 90.0, 90.0, 120.0),
    (117.0, 223.0, 310.0, 90.0, 90.0, 90.0),  # photosystem II (the paper's cell)
)

#: Wilson B factors (A^2) the amplitudes' resolution fall-off is drawn from (a few values: each
#: cell and B is one structure-factor table, built once per process).
B_FACTORS_A2 = (10.0, 25.0, 45.0)

#: d-spacings (A) of the strongest hexagonal-ice powder rings.
ICE_RING_D_A = (3.897, 3.669, 3.441, 2.671, 2.249, 2.072, 1.948, 1.918, 1.883)

#: Detector kinds a shot is recorded with.
DETECTOR_KINDS = ("photon_counting", "integrating", "ccd")

#: Offset (ADU) the preprocessing adds before the 8-bit transform (the paper's CCD offset).
PREPROCESSING_OFFSET_ADU = 10.0


def _log_uniform(rng, low, high):
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


@functools.lru_cache(maxsize=16)
def _wilson_amplitudes(cell, seed):
    """Random acentric amplitudes of every reflection in ``cell`` (a 6-tuple), from ``seed``.

    To 1.6 A, or to 1/150 of the longest cell edge for large cells (the
    photosystem II cell: 2.07 A), which keeps every table below ~5 million
    reflections.

    Wilson statistics: |F| is Rayleigh-distributed with <|F|^2> proportional to
    the number of atoms in the cell (about one per 10 A^3); the resolution
    fall-off is applied per shot through the B factor (:func:`_b_factor_table`).
    Computed once per process and cell (fixed seed: the same amplitudes everywhere).
    """
    d_min_A = max(1.6, max(cell[:3]) / 150.0)
    unit = Crystal(cell=cell).volume_A3
    rng = np.random.default_rng(seed)
    a, b, c = cell[:3]
    limits = [int(math.ceil(length / d_min_A)) for length in (a, b, c)]
    h, k, l = np.meshgrid(*(np.arange(-n, n + 1) for n in limits), indexing="ij")
    hkl = np.stack([h.ravel(), k.ravel(), l.ravel()], axis=1)
    s2 = _inverse_d_squared(hkl, cell)
    keep = (s2 <= 1.0 / d_min_A ** 2) & np.any(hkl != 0, axis=1)
    hkl, s2 = hkl[keep], s2[keep]
    n_atoms = unit / 10.0
    amplitudes = rng.rayleigh(scale=math.sqrt(n_atoms * 6.0 ** 2 / 2.0), size=len(hkl))
    return hkl, s2, amplitudes.astype(np.float32)


def _inverse_d_squared(hkl, cell):
    """1 / d^2 (A^-2) of Miller indices in a triclinic cell (the reciprocal metric tensor)."""
    a, b, c, alpha, beta, gamma = cell
    ca, cb, cg = (math.cos(math.radians(x)) for x in (alpha, beta, gamma))
    metric = np.array([[a * a, a * b * cg, a * c * cb], [a * b * cg, b * b, b * c * ca], [a * c * cb, b * c * ca, c * c]])
    reciprocal = np.linalg.inv(metric)
    h = hkl.astype(np.float64)
    return np.einsum("ni,ij,nj->n", h, reciprocal, h)


@functools.lru_cache(maxsize=32)
def _structure_factors(cell, seed, b_factor_A2):
    """StructureFactors of ``cell`` with the Wilson fall-off exp(-B s^2 / 4), s = 1/d."""
    hkl, s2, amplitudes = _wilson_amplitudes(cell, seed)
    scaled = amplitudes * np.exp(-b_factor_A2 * s2 / 4.0).astype(np.float32)
    return StructureFactors(hkl, scaled, cell=cell)


@dataclasses.dataclass(frozen=True)
class ShotSetup:
    """One drawn set-up: value objects plus the detector flaws and artefacts of the shot.

    Attributes
    ----------
    detector : Detector
        The model-input detector at the drawn distance and beam centre, with the mask.
    wavelength_A, photons, beam_size_mm : float
        The source; the beam of a shot with ``photons`` is :meth:`beam`.
    crystal : Crystal
        Cell, domain block, mosaicity (orientation and volume are set per shot).
    cell_index : int
        Which of the regimes' cells; ``b_factor_A2`` the Wilson fall-off of its amplitudes.
    background : Background or None
        Amorphous scatterers (None: helium or vacuum).
    ice_ring_photons : float
        Peak expected photons per pixel of the strongest ice ring (0: none).
    response : CCDResponse or PixelArrayResponse
    detector_kind : str
        One of :data:`DETECTOR_KINDS`.
    gain_adu_per_photon : float
    rule : LabelRule
        The label rule of this detector (its noise, gain error and PSF).
    hot_pixels, cosmic_rays : int
    beamstop_radius_px, halo_photons, halo_width_px : float
    """

    detector: Detector
    wavelength_A: float
    photons: float
    beam_size_mm: float
    crystal: Crystal
    cell_index: int
    b_factor_A2: float
    background: Background | None
    ice_ring_photons: float
    response: object
    detector_kind: str
    gain_adu_per_photon: float
    rule: LabelRule
    hot_pixels: int
    cosmic_rays: int
    beamstop_radius_px: float
    halo_photons: float
    halo_width_px: float
    max_volume_scale: float

    def beam(self, photons=None):
        photons = self.photons if photons is None else photons
        return Beam(wavelength_A=self.wavelength_A, fluence_photons_per_m2=photons / (self.beam_size_mm * 1e-3) ** 2,
                    beam_size_mm=self.beam_size_mm)

    def to_dict(self):
        """JSON-serialisable description of the set-up (stored with the image)."""
        det = self.detector
        return {
            "detector": {"shape": list(det.shape), "pixel_size_mm": det.pixel_size_mm, "distance_mm": det.distance_mm,
                         "beam_center_mm": [float(x) for x in det.direct_beam_mm],
                         "masked_pixels": int(0 if det.mask is None else det.mask.sum())},
            "wavelength_A": self.wavelength_A, "photons": self.photons, "beam_size_mm": self.beam_size_mm,
            "crystal": {**self.crystal.to_dict(), "cell_index": self.cell_index, "b_factor_A2": self.b_factor_A2},
            "background": None if self.background is None else [m.name for m in self.background.materials],
            "background_thickness": None if self.background is None else [
                float(m.thickness_mm) for m in self.background.materials],
            "ice_ring_photons": self.ice_ring_photons,
            "response": self.response.to_dict(), "detector_kind": self.detector_kind,
            "gain_adu_per_photon": self.gain_adu_per_photon, "label_rule": self.rule.to_dict(),
            "hot_pixels": self.hot_pixels, "cosmic_rays": self.cosmic_rays,
            "beamstop_radius_px": self.beamstop_radius_px, "halo_photons": self.halo_photons,
            "halo_width_px": self.halo_width_px, "max_volume_scale": self.max_volume_scale,
        }


@dataclasses.dataclass(frozen=True)
class Regimes:
    """A distribution of shot set-ups (see the module docstring); an immutable value.

    Parameters
    ----------
    name : str, default "regimes"
    shape : tuple of int, default (512, 512)
        The model-input detector (rows, cols) of ``pixel_size_mm`` pixels.
    input_distance_mm, input_wavelength_A : float, default 80 and 1.5
        The geometry real frames are resampled onto for a model trained on
        these images (:func:`diffranet.inference.training_input.preset_preprocessing`):
        the paper's detector, whatever the drawn distances and wavelengths.
    distance_mm : tuple of float, default (60, 250)
        Range of the detector distance (log-uniform).
    wavelength_A : tuple of float, default (0.6, 2.0)
    photons : tuple of float, default (1e8, 1e13)
        Photons per exposure or pulse (log-uniform): a 1e10 photons/s source
        for 10 ms to a 1e13-photon XFEL pulse.
    cells : tuple of 6-tuples, default :data:`CELLS`
        Unit cells (A, degrees) the crystals are drawn from, equally often.
    detector_weights : tuple of 3 float, default (0.45, 0.2, 0.35)
        Relative frequency of the detector kinds :data:`DETECTOR_KINDS`
        (photon counting, integrating, CCD); a zero leaves a kind out, e.g. to
        score a model on a kind it never saw.
    class_fractions : tuple of 5 float
        Shares of blank, no-crystal, weak, good, strong.
    max_attempts : int, default 48
        Redraws of a shot's set-up when its class cannot be reached.
    labels : LabelThresholds
        Detectable spots per class; each shot's rule puts them on its detector's noise and PSF.
    strong_target_max : int, default 2000
        Largest number of detectable spots drawn for a strong image.
    """

    name: str = "regimes"
    shape: tuple = (512, 512)
    pixel_size_mm: float = 0.172
    input_distance_mm: float = 80.0
    input_wavelength_A: float = 1.5
    distance_mm: tuple = (60.0, 250.0)
    wavelength_A: tuple = (0.6, 2.0)
    photons: tuple = (1e8, 1e13)
    cells: tuple = CELLS
    detector_weights: tuple = (0.45, 0.2, 0.35)
    class_fractions: tuple = (0.12, 0.28, 0.24, 0.2, 0.16)
    max_attempts: int = 48
    labels: LabelThresholds = LabelThresholds()
    strong_target_max: int = 2000

    def __post_init__(self):
        check_int("max_attempts", self.max_attempts, minimum=1)
        cells = tuple(tuple(float(x) for x in cell) for cell in self.cells)
        if not cells or any(len(cell) != 6 for cell in cells):
            raise ValueError(f"cells must be a non-empty sequence of (a, b, c, alpha, beta, gamma), got {self.cells!r}")
        for cell in cells:
            Crystal(cell=cell)  # validates lengths and angles
        object.__setattr__(self, "cells", cells)
        weights = tuple(float(w) for w in self.detector_weights)
        if len(weights) != len(DETECTOR_KINDS) or min(weights) < 0 or not sum(weights) > 0:
            raise ValueError(f"detector_weights must be {len(DETECTOR_KINDS)} weights >= 0 with a positive sum, "
                             f"got {self.detector_weights!r}")
        object.__setattr__(self, "detector_weights", weights)
        if len(self.class_fractions) != 5 or abs(sum(self.class_fractions) - 1.0) > 1e-9:
            raise ValueError(f"class_fractions must be 5 shares summing to 1, got {self.class_fractions}")
        for field in ("distance_mm", "wavelength_A", "photons"):
            low, high = getattr(self, field)
            if not (0 < low <= high and math.isfinite(high)):
                raise ValueError(f"{field} must be a range (low, high) with 0 < low <= high, got {(low, high)}")

    def to_dict(self):
        return {**dataclasses.asdict(self), "kind": "regimes"}

    def label_rule(self):
        """The class thresholds on a noise-free detector (each shot's rule is :attr:`ShotSetup.rule`)."""
        return LabelRule.for_detector(self.labels, PixelArrayResponse(), self.pixel_size_mm)

    def frame_geometry(self):
        """The model-input geometry real frames are resampled onto: the paper's detector, whatever the draws."""
        return FrameGeometry(self.pixel_size_mm, self.input_distance_mm, self.input_wavelength_A)

    @property
    def input_offset_adu(self):
        """The constant offset the rendered images carry (ADU), subtracted before the model's input."""
        return PREPROCESSING_OFFSET_ADU

    def to_json(self):
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, params):
        """Rebuild from :meth:`to_dict` (also the flat thresholds of earlier versions)."""
        params = {k: v for k, v in dict(params).items() if k != "kind"}
        flat = {k: params.pop(k) for k in [f.name for f in dataclasses.fields(LabelThresholds)] if k in params}
        labels = params.pop("labels", None)
        labels = LabelThresholds.from_dict({**(labels or {}), **flat})
        try:
            return cls(labels=labels, **{k: tuple(v) if isinstance(v, list) else v for k, v in params.items()})
        except TypeError as exc:
            raise ValueError(f"regimes: {exc}") from exc

    # ------------------------------------------------------------------ drawing a set-up
    def sample(self, rng):
        """Draw one :class:`ShotSetup` from ``rng`` (a numpy Generator)."""
        rows, cols = self.shape
        distance_mm = _log_uniform(rng, *self.distance_mm)
        wavelength_A = _log_uniform(rng, *self.wavelength_A)
        photons = _log_uniform(rng, *self.photons)
        beam_size_mm = _log_uniform(rng, 0.002, 0.1)
        where = rng.random()
        if where < 0.65:    # near the middle
            centre = (0.5 + rng.normal(0, 0.05, 2)) * (cols, rows)
        elif where < 0.9:   # anywhere on the detector
            centre = rng.uniform(0.05, 0.95, 2) * (cols, rows)
        else:               # off the detector (a detector module or an offset detector)
            side = rng.integers(4)
            centre = rng.uniform(0, 1, 2) * (cols, rows)
            centre[side % 2] = (-rng.uniform(0.05, 0.6) if side < 2 else 1 + rng.uniform(0.05, 0.6)) * (cols, rows)[side % 2]
        beam_center_mm = tuple(float(x) * self.pixel_size_mm for x in centre)

        weights = np.asarray(self.detector_weights, float)
        kind = DETECTOR_KINDS[int(rng.choice(len(DETECTOR_KINDS), p=weights / weights.sum()))]
        mask = np.zeros(self.shape, bool)
        if rng.random() < 0.4:  # module gaps
            module = (int(rng.integers(60, 200)), int(rng.integers(60, 260)))
            gap = (int(rng.integers(2, 8)), int(rng.integers(1, 6)))
            mask |= module_gap_mask(self.shape, module, gap, origin=tuple(int(x) for x in rng.integers(0, 60, 2)))
        if rng.random() < 0.3:  # bad pixels
            n_bad = int(rng.integers(1, 300))
            mask[rng.integers(0, rows, n_bad), rng.integers(0, cols, n_bad)] = True
        detector = Detector(shape=self.shape, pixel_size_mm=self.pixel_size_mm, distance_mm=distance_mm,
                            beam_center_mm=beam_center_mm, mask=mask if mask.any() else None)

        gain = 1.0 if kind == "photon_counting" else _log_uniform(rng, 0.5, 4.0)
        if kind == "photon_counting":
            response = PixelArrayResponse(saturation=float(2 ** 20 - 1))
        elif kind == "integrating":
            calibration_rms = rng.uniform(0.0, 0.03)
            readout = rng.uniform(0.1, 0.3)
            response = CCDResponse(psf=None, calibration_rms=calibration_rms, calibration_seed=int(rng.integers(2**31)),
                                   readout_rms_photons=readout, adc_offset=0.0, saturation=1e7)
        else:
            calibration_rms = rng.uniform(0.01, 0.05)
            readout = rng.uniform(1.0, 6.0)
            psf_um = rng.uniform(20.0, 90.0)
            response = CCDResponse(psf="fiber", psf_fwhm_um=psf_um, calibration_rms=calibration_rms,
                                   calibration_seed=int(rng.integers(2**31)), readout_rms_photons=readout,
                                   adc_offset=float(rng.uniform(0.0, 40.0)), saturation=1e7)
        rule = LabelRule.for_detector(self.labels, response, self.pixel_size_mm)

        cell_index = int(rng.integers(len(self.cells)))
        cell = tuple(float(x) for x in self.cells[cell_index])
        # coherent domains of 0.03-0.2 um: spots a pixel or two wide, widened by the mosaic spread
        block_A = _log_uniform(rng, 300.0, 2000.0)
        ncells = tuple(int(min(max(3, round(block_A / length * rng.uniform(0.8, 1.25))), 80))
                       for length in cell[:3])
        crystal = Crystal(cell=cell, ncells=ncells, mosaic_domains=int(rng.integers(10, 40)),
                          mosaic_spread_deg=_log_uniform(rng, 0.02, 1.0), spot_shape="tophat", default_F=0.0)
        crystal_um = 100.0  # largest crystal in the beam
        max_volume_scale = crystal_um ** 3 / crystal.block_volume_um3

        u = rng.random()
        if u < 0.2:
            background = None
        else:
            water_um = _log_uniform(rng, 1.0, 300.0)
            air_mm = float(rng.uniform(0.0, 200.0))
            materials = (water(thickness_um=water_um),) + ((air(path_mm=air_mm),) if air_mm > 1.0 else ())
            background = Background(materials=materials, compton=False)
        ice = _log_uniform(rng, 0.5, 500.0) if rng.random() < 0.15 else 0.0

        hot = int(rng.integers(1, 12)) if rng.random() < 0.35 else 0
        cosmic = int(rng.integers(1, 5)) if rng.random() < 0.25 else 0
        beamstop = float(rng.uniform(3.0, 25.0)) if rng.random() < 0.5 else 0.0
        halo = _log_uniform(rng, 2.0, 2000.0) if rng.random() < 0.4 else 0.0
        return ShotSetup(detector=detector, wavelength_A=wavelength_A, photons=photons, beam_size_mm=beam_size_mm,
                         crystal=crystal, cell_index=cell_index, b_factor_A2=float(rng.choice(B_FACTORS_A2)),
                         background=background, ice_ring_photons=ice, response=response, detector_kind=kind,
                         gain_adu_per_photon=gain, rule=rule, hot_pixels=hot, cosmic_rays=cosmic,
                         beamstop_radius_px=beamstop, halo_photons=halo, halo_width_px=float(rng.uniform(2.0, 15.0)),
                         max_volume_scale=max_volume_scale)


# --------------------------------------------------------------------------- rendering


def _radius_px(detector):
    rows, cols = detector.shape
    bx, by = (x / detector.pixel_size_mm for x in detector.direct_beam_mm)
    y, x = np.indices((rows, cols), dtype=np.float64)
    return np.hypot(x + 0.5 - bx, y + 0.5 - by)


def _within_budget(simulator):
    """Whether the Bragg render of ``simulator`` fits its budget (:func:`diffranet.simulation.budget.estimate`)."""
    cost = estimate(simulator, parts=("bragg",))
    return cost.work <= simulator.budget.max_work and cost.memory_bytes <= simulator.budget.max_memory_bytes


def _ice_rings(setup, radius_px):
    """Expected photons of the ice powder rings (Gaussian in radius, ~2 pixels wide)."""
    det = setup.detector
    image = np.zeros(det.shape, np.float64)
    widths = 1.0 + 2.0 * (setup.crystal.mosaic_spread_deg > 0.3)
    for i, d in enumerate(ICE_RING_D_A):
        sin_theta = setup.wavelength_A / (2.0 * d)
        if sin_theta >= 1:
            continue
        r = det.distance_mm * math.tan(2 * math.asin(sin_theta)) / det.pixel_size_mm
        image += (setup.ice_ring_photons / (1 + i)) * np.exp(-0.5 * ((radius_px - r) / widths) ** 2)
    return image.astype(np.float32)


def _flaws(setup, expected, radius_px, rng):
    """Beamstop shadow and direct-beam halo, applied to the expected photons."""
    if setup.halo_photons > 0:
        expected = expected + (setup.halo_photons * np.exp(-0.5 * (radius_px / setup.halo_width_px) ** 2)).astype(
            np.float32)
    if setup.beamstop_radius_px > 0:
        shadow = radius_px < setup.beamstop_radius_px
        expected = np.where(shadow, expected * np.float32(0.02), expected)
    return expected


def _artefacts(setup, counts, rng):
    """Hot pixels and cosmic-ray tracks, added to the recorded counts (ADU)."""
    rows, cols = counts.shape
    counts = counts.copy()
    for _ in range(setup.hot_pixels):
        counts[rng.integers(rows), rng.integers(cols)] += _log_uniform(rng, 50.0, 1e6)
    for _ in range(setup.cosmic_rays):
        r, c = rng.integers(rows), rng.integers(cols)
        angle, length = rng.uniform(0, np.pi), int(rng.integers(2, 12))
        energy = _log_uniform(rng, 20.0, 3000.0)
        for t in range(length):
            rr, cc = int(r + t * math.sin(angle)), int(c + t * math.cos(angle))
            if 0 <= rr < rows and 0 <= cc < cols:
                counts[rr, cc] += energy
    return counts


class RegimeRenderer:
    """Render labelled shots whose set-ups are drawn from :class:`Regimes`.

    Image ``index`` of ``split`` depends only on ``(seed, split, index)``: the
    set-up, pulse, orientation and noise come from
    :func:`~diffranet.dataset.shots.image_rng`, one generator per attempt.
    """

    def __init__(self, regimes):
        self.regimes = self.preset = regimes

    def render(self, seed, split, index, label):
        """Image ``index`` of ``split`` with class ``label``.

        Returns
        -------
        image8 : ndarray of uint8, shape regimes.shape
            The image the model sees (counts + the preprocessing offset, 8-bit square root).
        row : ndarray of :data:`~diffranet.dataset.shards.TABLE_DTYPE`, shape ()
            The shot's metadata; ``row["setup"]`` is the JSON of :meth:`ShotSetup.to_dict`.
        """
        counts, setup, row = self.render_counts(seed, split, index, label)
        det = setup.detector
        if det.mask is not None:  # masked pixels reach the model as their local background
            counts = fill_masked(counts, det.mask, tuple(x / det.pixel_size_mm for x in det.direct_beam_mm))
        return to_8bit(counts + np.float32(PREPROCESSING_OFFSET_ADU)), row

    def render_counts(self, seed, split, index, label):
        """The recorded frame of :meth:`render`, before masking and the 8-bit transform.

        Returns
        -------
        counts : ndarray of float32, shape regimes.shape
            What the detector records (ADU), masked pixels included: a frame
            as a detector file holds it, for scoring the preprocessing of
            frames of other detectors.
        setup : ShotSetup
        row : ndarray of :data:`~diffranet.dataset.shards.TABLE_DTYPE`, shape ()
        """
        regimes = self.regimes
        for attempt in range(regimes.max_attempts):
            rng = image_rng(seed, split, index, attempt)
            setup = regimes.sample(rng)
            det = setup.detector
            photons = 0.0 if label == 0 else setup.photons
            beam = setup.beam(max(photons, 1.0))
            radius_px = _radius_px(det)
            background = np.zeros(det.shape, np.float32)
            if label > 0:
                if setup.background is not None:
                    background = setup.background.render(det, beam, oversample=1, n_threads=1)
                if setup.ice_ring_photons > 0:
                    background = background + _ice_rings(setup, radius_px)
                background = _flaws(setup, background, radius_px, rng)
            bragg = np.zeros(det.shape, np.float32)
            n_detectable, volume, target, n_spots = 0, 0.0, 0, 0
            orientation = random_orientation(int(rng.integers(2**62)))
            shot_seed = int(rng.integers(2**62))
            u_target = rng.random()
            if label >= 2:
                crystal = setup.crystal.with_(orientation=orientation,
                                              structure_factors=_structure_factors(
                                                  tuple(setup.crystal.cell), 1000 + setup.cell_index,
                                                  setup.b_factor_A2))
                simulator = Simulator(det, beam, crystal, oversample=1, n_threads=1)
                if not _within_budget(simulator):  # too costly on a large detector: draw another set-up
                    continue
                unit = simulator.bragg(seed=shot_seed)
                thresholds = setup.rule.detection_thresholds(unit, background, det.mask,
                                                             spots=spot_pixels(unit, det.mask))
                found = volume_for_label(thresholds, setup.rule, label, u_target, setup.max_volume_scale,
                                         regimes.strong_target_max)
                if found is None:
                    continue
                volume, target, n_detectable = found
                n_spots = len(thresholds)
                bragg = unit * np.float32(volume)
            counts = setup.response.apply(bragg + background, pixel_size_mm=det.pixel_size_mm, seed=shot_seed,
                                          n_threads=1)
            counts = counts * np.float32(setup.gain_adu_per_photon)
            counts = _artefacts(setup, counts, rng)
            row = np.zeros((), dtype=TABLE_DTYPE)
            row["index"], row["label"], row["seed"], row["attempt"] = index, label, shot_seed, attempt
            row["photons_drawn"] = row["photons"] = photons
            row["fluence_per_m2"], row["wavelength_A"] = beam.fluence_photons_per_m2 * (photons > 0), setup.wavelength_A
            row["orientation"] = orientation
            row["volume_scale"] = volume
            row["crystal_size_um"] = (volume * setup.crystal.block_volume_um3) ** (1.0 / 3.0)
            row["target_spots"], row["n_spots"] = target, n_spots
            row["n_detectable_spots"] = n_detectable
            row["n_significant_spots"] = -1  # the earlier rule is not measured for regimes
            row["bragg_photons"] = float(bragg.sum(dtype=np.float64))
            row["background_photons"] = float(background.sum(dtype=np.float64))
            row["max_bragg_photons"] = float(bragg.max())
            row["setup"] = json.dumps(setup.to_dict(), sort_keys=True).encode()
            return counts, setup, row
        raise RuntimeError(f"{split} image {index}: class {label} not reached in {regimes.max_attempts} attempts")
