"""Dataset presets: every physical and labelling parameter of a generated set.

A :class:`Preset` holds the fixed experiment (detector, beam, crystal,
amorphous background, detector response), the shot-to-shot distributions
(fluence, wavelength, orientation), the label rule and the class shares. The
``diffranet`` preset is the paper's Appendix A; ``quick`` is the same code path
on a 64 x 64 detector of 344 um pixels (the central 22 mm), with 20 mosaic
domains, uniform structure factors (F = 2000 electrons, the size of the
protein's low-resolution amplitudes) and no oversampling, for smoke runs and
tests.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from pathlib import Path

from .._validation import check_int, check_positive
from ..detectors import DetectorSpec
from ..simulation.background import Background, air, water
from ..simulation.crystal import Crystal
from ..simulation.geometry import Beam, Detector
from ..simulation.response import CCDResponse, PixelArrayResponse
from ..simulation.simulator import Simulator
from ..simulation.structure_factors import StructureFactors
from .labels import LabelRule
from .regimes import Regimes

__all__ = ["Preset", "PRESETS", "get_preset", "CLASS_FRACTIONS_PAPER"]

#: The class shares of the paper's test set: blank, no-crystal, weak, good, strong.
CLASS_FRACTIONS_PAPER = (0.164, 0.259, 0.266, 0.194, 0.117)

_TUPLE_FIELDS = ("shape", "cell", "ncells", "class_fractions")


@dataclasses.dataclass(frozen=True)
class Preset:
    """Parameters of a generated dataset (all JSON-serialisable).

    The one definition of the experiment: :meth:`simulator` builds the
    :class:`~diffranet.simulation.simulator.Simulator` of a shot, and
    :meth:`detector`, :meth:`beam`, :meth:`crystal`, :meth:`background`,
    :meth:`response` its parts. ``PRESETS["diffranet"]`` is the paper's set-up.
    An immutable value: :meth:`with_` returns a changed, re-validated copy.

    Parameters
    ----------
    name : str
        Preset name, stored with the data.
    shape : tuple of int, default (512, 512)
        Detector (rows, columns).
    pixel_size_mm : float, default 0.172
        Pixel side (mm).
    distance_mm : float, default 80.0
        Sample-to-detector distance (mm).
    wavelength_A : float, default 1.5
        Mean X-ray wavelength (Angstrom).
    wavelength_rms : float, default 0.005
        RMS shot-to-shot wavelength variation, fraction of the mean (Gaussian).
    mean_photons : float, default 1e12
        Mean photons per pulse in the beam; the pulse energy is Gaussian with
        RMS ``fluence_rms * mean_photons``, and draws at or below zero are a
        beam-off (blank) shot.
    fluence_rms : float, default 1.0
        RMS of the pulse energy, fraction of the mean (the paper: 1).
    beam_size_mm : float, default 0.03
        Side of the square beam (mm); fluence = photons / beam_size^2.
    cell : tuple of 6 float
        Unit cell (A, degrees); default photosystem II, (117, 223, 310, 90, 90, 90).
    ncells : tuple of 3 int, default (9, 4, 3)
        Cells per mosaic domain block: a ~0.1 um crystal, as in the paper.
    mosaic_domains : int, default 300
    mosaic_spread_deg : float, default 0.5
        Top-hat diameter of the domain misorientations (degrees).
    spot_shape : str, default "tophat"
    structure_factors : {"default_protein", None}, default "default_protein"
        ``"default_protein"``: :meth:`StructureFactors.default_protein` (Fcalc of a
        protein-like model in the PSII cell) with ``default_F = 0``; None: every
        reflection has amplitude ``default_F``.
    default_F : float, default 100.0
        Amplitude of every reflection when ``structure_factors`` is None.
    oversample : int, default 2
        Subpixels per pixel side (the paper: 2).
    background_oversample : int, default 1
        Subpixels per pixel side for the amorphous background, which is smooth
        on the pixel scale (one sample per pixel agrees with 2 x 2 to 1e-4).
    water_um : float, default 10.0
        Liquid water in the beam (um).
    air_mm : float, default 5.0
        Air path (mm).
    compton : bool, default True
        Add the inelastic (Compton) scattering of the water and air: 4.4 % of
        their elastic background at the paper's geometry, 0.3 % near the beam
        to 8 % in the corners. The lattice-disorder diffuse term is left out
        (it scales with the crystal's volume; see docs/background.md).
    psf_fwhm_um : float, default 46.0
        Fiber-optic PSF FWHM (um): noisify's default (Holton et al. 2012).
    calibration_rms : float, default 0.04
        Per-pixel gain error (fraction).
    readout_rms_photons : float, default 3.0
    adc_offset : float, default 10.0
    saturation : float, default 65025
    max_volume_scale : float, default 2.7e7
        Largest crystal volume in the beam, in units of the rendered domain
        block: (30 um / 0.1 um)^3, a 30 um crystal filling the 30 um beam.
    k_sigma, min_spot_pixels, weak_min, good_min, strong_min :
        The label rule (:class:`LabelRule`): a spot is detectable when
        ``min_spot_pixels`` of its pixels stand ``k_sigma`` above their noise
        after the PSF; the thresholds count detectable spots.
    strong_target_max : int, default 2000
        Largest label quantity drawn for a strong image.
    class_fractions : tuple of 5 float
        Shares of blank, no-crystal, weak, good, strong (sum 1).
    max_attempts : int, default 32
        Redraws of an image's nuisance parameters when its class cannot be reached.
    detector_spec : dict, optional
        A user's detector (:meth:`diffranet.detectors.DetectorSpec.to_dict`,
        set by :func:`~diffranet.dataset.training_preset`): beam centre, module gaps
        (masked) and, for ``kind = "pixel_array"``, a photon-counting response.
    """

    name: str = "diffranet"
    shape: tuple = (512, 512)
    pixel_size_mm: float = 0.172
    distance_mm: float = 80.0
    wavelength_A: float = 1.5
    wavelength_rms: float = 0.005
    mean_photons: float = 1e12
    fluence_rms: float = 1.0
    beam_size_mm: float = 0.03
    cell: tuple = (117.0, 223.0, 310.0, 90.0, 90.0, 90.0)
    ncells: tuple = (9, 4, 3)
    mosaic_domains: int = 300
    mosaic_spread_deg: float = 0.5
    spot_shape: str = "tophat"
    structure_factors: str = "default_protein"
    default_F: float = 100.0
    oversample: int = 2
    background_oversample: int = 1
    water_um: float = 10.0
    air_mm: float = 5.0
    compton: bool = True
    psf_fwhm_um: float = 46.0
    calibration_rms: float = 0.04
    readout_rms_photons: float = 3.0
    adc_offset: float = 10.0
    saturation: float = 65025.0
    max_volume_scale: float = 2.7e7
    k_sigma: float = 5.0
    min_spot_pixels: int = 2
    weak_min: int = 10
    good_min: int = 50
    strong_min: int = 300
    strong_target_max: int = 2000
    class_fractions: tuple = CLASS_FRACTIONS_PAPER
    max_attempts: int = 32
    detector_spec: dict = None

    def __post_init__(self):
        for name in _TUPLE_FIELDS:
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.structure_factors not in ("default_protein", None):
            raise ValueError(f"structure_factors must be 'default_protein' or None, got {self.structure_factors!r}")
        if len(self.class_fractions) != 5 or any(f < 0 for f in self.class_fractions) \
                or not math.isclose(sum(self.class_fractions), 1.0, abs_tol=1e-9):
            raise ValueError(f"class_fractions must be 5 shares >= 0 summing to 1, got {self.class_fractions!r}")
        if not isinstance(self.compton, bool):
            raise ValueError(f"compton must be True or False, got {self.compton!r}")
        check_positive("mean_photons", self.mean_photons)
        check_positive("max_volume_scale", self.max_volume_scale)
        check_int("max_attempts", self.max_attempts, minimum=1)
        if not self.strong_target_max >= self.strong_min:
            raise ValueError(f"strong_target_max must be >= strong_min={self.strong_min}, "
                             f"got {self.strong_target_max!r}")
        self.label_rule()  # validates the thresholds
        # every component validates its own parameters
        self.detector(), self.beam(), self.crystal(), self.background(), self.response()

    def with_(self, **changes):
        """A copy with ``changes`` applied, validated like a new preset.

        Examples
        --------
        >>> Preset().with_(shape=(64, 64)).shape
        (64, 64)
        """
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ serialisation
    def to_dict(self):
        """JSON-serialisable parameters (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, params):
        """Rebuild from :meth:`to_dict`; unknown keys raise ValueError."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f"preset: unknown parameters {unknown}")
        return cls(**params)

    def to_json(self):
        """Canonical JSON (sorted keys): equal presets give equal strings."""
        return json.dumps(self.to_dict(), sort_keys=True)

    # ------------------------------------------------------------------ components
    def detector(self):
        """The :class:`Detector` (shared: it is immutable and caches its pixel directions)."""
        if self.detector_spec is not None:
            return _user_detector(json.dumps(self.detector_spec, sort_keys=True))
        return _detector(self.shape, self.pixel_size_mm, self.distance_mm)

    def beam(self, photons=None, wavelength_A=None):
        """The :class:`Beam` of one shot.

        Parameters
        ----------
        photons : float, optional
            Photons in the pulse (>= 0); default ``mean_photons``.
        wavelength_A : float, optional
            Default ``wavelength_A`` of the preset.
        """
        photons = self.mean_photons if photons is None else photons
        wavelength_A = self.wavelength_A if wavelength_A is None else wavelength_A
        return Beam(wavelength_A=wavelength_A, fluence_photons_per_m2=photons / (self.beam_size_mm * 1e-3) ** 2,
                    beam_size_mm=self.beam_size_mm)

    def crystal(self, orientation=None, structure_factors=None, volume_scale=1.0):
        """The :class:`Crystal` in ``orientation`` (structure factors from :meth:`load_structure_factors`)."""
        default_F = 0.0 if self.structure_factors == "default_protein" else self.default_F
        return Crystal(cell=self.cell, ncells=self.ncells, mosaic_domains=self.mosaic_domains,
                       mosaic_spread_deg=self.mosaic_spread_deg, spot_shape=self.spot_shape, default_F=default_F,
                       orientation=orientation, structure_factors=structure_factors, volume_scale=volume_scale)

    def load_structure_factors(self):
        """The structure factors (None when every reflection has ``default_F``)."""
        if self.structure_factors is None:
            return None
        return StructureFactors.default_protein()

    def background(self):
        """The amorphous :class:`Background`: water and air, with their Compton scattering if ``compton``."""
        return _background(self.water_um, self.air_mm, self.compton)

    def response(self, flicker_rms=0.0, calibration_seed=0):
        """The detector response: the paper's fiber-coupled CCD, or a photon counter for a
        ``pixel_array`` ``detector_spec``.

        Parameters
        ----------
        flicker_rms : float, default 0.0
            Shot-to-shot fluence RMS drawn by the detector model; 0 because the
            dataset generator draws each shot's pulse energy itself (the paper
            drew it with an RMS equal to the mean: pass 1.0 to draw it here).
        calibration_seed : int, default 0
            Identifies the detector's calibration pattern.
        """
        if self.detector_spec is not None and self.detector_spec["kind"] == "pixel_array":
            return PixelArrayResponse(saturation=self.saturation)
        return CCDResponse(flicker_rms=flicker_rms, psf="fiber", psf_fwhm_um=self.psf_fwhm_um,
                           calibration_rms=self.calibration_rms, calibration_seed=calibration_seed,
                           readout_rms_photons=self.readout_rms_photons, adc_offset=self.adc_offset,
                           saturation=self.saturation)

    def simulator(self, orientation=None, structure_factors=None, *, photons=None, wavelength_A=None,
                  volume_scale=1.0, crystal=True, background=True, response=True, n_threads=None):
        """The :class:`Simulator` of one shot of this preset.

        Parameters
        ----------
        orientation : array_like, shape (3, 3), optional
            Crystal rotation; default the reference setting.
        structure_factors : StructureFactors, optional
            Default: the preset's (:meth:`load_structure_factors`).
        photons, wavelength_A : float, optional
            The shot's pulse and wavelength (:meth:`beam`); default the preset's means.
        volume_scale : float, default 1.0
            Crystal volume in units of the rendered domain block.
        crystal, background, response : bool, default True
            Include the crystal (False: a shot without one), the water and air
            background, and the CCD response (False: the ideal counter).
        n_threads : int, optional
            OpenMP threads; default all. Images do not depend on it.

        Examples
        --------
        >>> sim = PRESETS["quick"].simulator(background=False, response=False)
        >>> sim.bragg().shape
        (64, 64)
        """
        xtal = None
        if crystal:
            if structure_factors is None:
                structure_factors = self.load_structure_factors()
            xtal = self.crystal(orientation, structure_factors, volume_scale=volume_scale)
        return Simulator(self.detector(), self.beam(photons, wavelength_A), xtal, oversample=self.oversample,
                         n_threads=n_threads, background=self.background() if background else None,
                         response=self.response() if response else None,
                         background_oversample=self.background_oversample)

    def label_rule(self):
        """The :class:`LabelRule` that tells weak, good and strong apart."""
        return LabelRule(k_sigma=self.k_sigma, min_pixels=self.min_spot_pixels, weak_min=self.weak_min,
                         good_min=self.good_min, strong_min=self.strong_min, calibration_rms=self.calibration_rms,
                         readout_rms_photons=self.readout_rms_photons, psf="fiber", psf_fwhm_um=self.psf_fwhm_um,
                         pixel_size_mm=self.pixel_size_mm)

    @property
    def block_volume_um3(self):
        """Volume of the rendered domain block (um^3): Na Nb Nc cells (:attr:`Crystal.block_volume_um3`)."""
        return self.crystal().block_volume_um3


@functools.lru_cache(maxsize=8)
def _detector(shape, pixel_size_mm, distance_mm):
    """One shared Detector per geometry, so its cached pixel directions are computed once per process."""
    return Detector(shape=shape, pixel_size_mm=pixel_size_mm, distance_mm=distance_mm)


@functools.lru_cache(maxsize=8)
def _background(water_um, air_mm, compton):
    return Background(materials=(water(thickness_um=water_um), air(path_mm=air_mm)), compton=compton)


@functools.lru_cache(maxsize=8)
def _user_detector(spec_json):
    """The shared :class:`Detector` of a ``detector_spec`` (beam centre, module gaps masked)."""
    spec = DetectorSpec.from_dict(json.loads(spec_json))
    bx, by = spec.geometry().beam_center_px
    gaps = spec.gap_mask()
    return Detector(shape=spec.shape, pixel_size_mm=spec.pixel_size_mm, distance_mm=spec.distance_mm,
                    beam_center_mm=(bx * spec.pixel_size_mm, by * spec.pixel_size_mm),
                    mask=gaps if gaps.any() else None)


#: Built-in presets by name.
PRESETS = {
    "diffranet": Preset(),
    "quick": Preset(name="quick", shape=(64, 64), pixel_size_mm=0.344, mosaic_domains=20, structure_factors=None,
                    default_F=2000.0, oversample=1, k_sigma=3.0, min_spot_pixels=1, weak_min=2, good_min=8, strong_min=25,
                    strong_target_max=60),
}


def get_preset(preset):
    """A :class:`Preset` from a name in :data:`PRESETS`, a JSON file, a dict or a Preset; or the
    training :class:`~diffranet.dataset.regimes.Regimes` (``"regimes"``, or a dict or file of kind
    ``"regimes"``).

    Raises
    ------
    ValueError
        For an unknown name or a file that is not a preset.
    """
    if isinstance(preset, (Preset, Regimes)):
        return preset
    if isinstance(preset, dict):
        return Regimes.from_dict(preset) if preset.get("kind") == "regimes" else Preset.from_dict(preset)
    if isinstance(preset, (str, Path)):
        if str(preset) in PRESETS:
            return PRESETS[str(preset)]
        if str(preset) == "regimes":
            return Regimes()
        path = Path(preset)
        if path.suffix == ".json" and path.is_file():
            try:
                return get_preset(json.loads(path.read_text()))
            except (json.JSONDecodeError, TypeError) as exc:
                raise ValueError(f"preset file {path}: not a preset ({exc})") from exc
    raise ValueError(f"preset must be one of {sorted(PRESETS) + ['regimes']} or a preset .json file, "
                     f"got {preset!r}")
