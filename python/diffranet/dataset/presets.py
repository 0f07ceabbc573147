"""Dataset presets: every physical and labelling parameter of a generated set.

A :class:`Preset` is made of the simulator's value objects: the detector, the
mean beam, the crystal, the amorphous background and the detector response,
plus the label thresholds and how shots vary (:class:`ShotDraws`). Everything
else (the label rule's noise model, the model-input geometry, a shot's beam
and crystal) is derived from them, so no copy can drift. The ``diffranet``
preset is the paper's Appendix A; ``quick`` is the same code path on a
64 x 64 detector of 344 um pixels (the central 22 mm), with 20 mosaic domains,
uniform structure factors (F = 2000 electrons, the size of the protein's
low-resolution amplitudes) and no oversampling, for smoke runs and tests.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

from .._validation import check_int, check_positive
from ..detectors import DetectorSpec, FrameGeometry
from ..simulation._params import component_from_dict, component_to_dict
from ..simulation.background import Background, air, water
from ..simulation.crystal import Crystal
from ..simulation.geometry import Beam, Detector
from ..simulation.response import CCDResponse, PixelArrayResponse
from ..simulation.simulator import Simulator
from ..simulation.structure_factors import StructureFactors
from .labels import LabelRule, LabelThresholds
from .regimes import Regimes

__all__ = ["Preset", "ShotDraws", "PRESETS", "get_preset", "simulation_detector", "CLASS_FRACTIONS_PAPER"]

#: The class shares of the paper's test set: blank, no-crystal, weak, good, strong.
CLASS_FRACTIONS_PAPER = (0.164, 0.259, 0.266, 0.194, 0.117)

#: How a preset names its structure factors: the protein-like Fcalc table, or None (every
#: reflection has the crystal's ``default_F``).
STRUCTURE_FACTORS = ("default_protein", None)


@dataclasses.dataclass(frozen=True)
class ShotDraws:
    """How the shots of a preset vary around its mean beam, and which classes they get.

    Parameters
    ----------
    fluence_rms : float, default 1.0
        RMS of the pulse energy, fraction of the mean (the paper: 1); draws at
        or below zero are a beam-off (blank) shot.
    wavelength_rms : float, default 0.005
        RMS shot-to-shot wavelength variation, fraction of the mean (Gaussian).
    max_volume_scale : float, default 2.7e7
        Largest crystal volume in the beam, in units of the rendered domain
        block: (30 um / 0.1 um)^3, a 30 um crystal filling the 30 um beam.
    strong_target_max : int, default 2000
        Largest number of detectable spots drawn for a strong image.
    class_fractions : tuple of 5 float
        Shares of blank, no-crystal, weak, good, strong (sum 1).
    max_attempts : int, default 32
        Redraws of an image's nuisance parameters when its class cannot be reached.
    """

    fluence_rms: float = 1.0
    wavelength_rms: float = 0.005
    max_volume_scale: float = 2.7e7
    strong_target_max: int = 2000
    class_fractions: tuple = CLASS_FRACTIONS_PAPER
    max_attempts: int = 32

    def __post_init__(self):
        fractions = tuple(float(f) for f in self.class_fractions)
        if len(fractions) != 5 or any(not f >= 0 for f in fractions) or not math.isclose(sum(fractions), 1.0,
                                                                                          abs_tol=1e-9):
            raise ValueError(f"class_fractions must be 5 shares >= 0 summing to 1, got {self.class_fractions!r}")
        object.__setattr__(self, "class_fractions", fractions)
        if not (isinstance(self.fluence_rms, (int, float)) and self.fluence_rms > 0 and math.isfinite(self.fluence_rms)):
            raise ValueError(f"fluence_rms must be a finite number > 0, got {self.fluence_rms!r}")
        if not (isinstance(self.wavelength_rms, (int, float)) and 0 <= self.wavelength_rms < 0.5):
            raise ValueError(f"wavelength_rms must be in [0, 0.5), got {self.wavelength_rms!r}")
        check_positive("max_volume_scale", self.max_volume_scale)
        check_int("strong_target_max", self.strong_target_max, minimum=1)
        check_int("max_attempts", self.max_attempts, minimum=1)

    def to_dict(self):
        return {**dataclasses.asdict(self), "class_fractions": list(self.class_fractions)}

    @classmethod
    def from_dict(cls, params):
        """Rebuild from :meth:`to_dict`; unknown keys raise ValueError."""
        return _from_fields(cls, params, "shot draws")


def _from_fields(cls, params, what):
    if not isinstance(params, dict):
        raise ValueError(f"{what}: expected a dict, got {type(params).__name__}")
    unknown = sorted(set(params) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise ValueError(f"{what}: unknown parameters {unknown}")
    return cls(**params)


_PAPER_BEAM_SIZE_MM = 0.03

#: The paper's fiber-coupled CCD (noisify's defaults: 46 um PSF, 4 % gain error, 3 photons read-out, offset 10).
_PAPER_CCD = CCDResponse(flicker_rms=0.0, psf="fiber", psf_fwhm_um=46.0, calibration_rms=0.04, calibration_seed=0,
                         readout_rms_photons=3.0, adc_offset=10.0, saturation=65025.0)


@dataclasses.dataclass(frozen=True)
class Preset:
    """The experiment of a generated dataset, made of the simulator's value objects.

    :meth:`simulator` builds the :class:`~diffranet.simulation.simulator.Simulator`
    of a shot; :meth:`label_rule` the rule that labels it (the thresholds on
    this detector's noise and PSF); :meth:`frame_geometry` the geometry a
    model trained on these images expects. ``PRESETS["diffranet"]`` is the
    paper's set-up. An immutable value: :meth:`with_` returns a changed,
    re-validated copy (change a part with its own ``with_``:
    ``preset.with_(detector=preset.detector.with_(distance_mm=100.0))``).

    Parameters
    ----------
    name : str
        Preset name, stored with the data.
    detector : Detector
        Default: the paper's 512 x 512 pixels of 0.172 mm at 80 mm.
    beam : Beam
        The mean shot: wavelength, and the fluence of a pulse of the mean
        energy in a beam of ``beam_size_mm`` (the paper: 1e12 photons in a
        30 um square). Each shot's wavelength and energy are drawn around it
        (:class:`ShotDraws`).
    crystal : Crystal
        Cell, domain block and mosaicity (the paper: photosystem II, 9 x 4 x 3
        cells, 300 domains of 0.5 deg, tophat spots); each shot sets its
        orientation and volume. Structure factors are named by
        ``structure_factors``, not held.
    structure_factors : {"default_protein", None}, default "default_protein"
        ``"default_protein"``: :meth:`StructureFactors.default_protein`; None:
        every reflection has the crystal's ``default_F``.
    background : Background
        Amorphous scatterers (the paper: 10 um water, 5 mm air, with Compton).
    response : CCDResponse or PixelArrayResponse
        The detector chain (the paper's fiber-coupled CCD).
    labels : LabelThresholds
        Detectable spots per class; the noise the rule uses is the response's.
    shots : ShotDraws
        How shots vary and the class shares.
    oversample : int, default 2
        Subpixels per pixel side for the Bragg spots (the paper: 2).
    background_oversample : int, default 1
        Subpixels per pixel side for the amorphous background, which is smooth
        on the pixel scale (one sample per pixel agrees with 2 x 2 to 1e-4).
    """

    name: str = "diffranet"
    detector: Detector = Detector(shape=(512, 512), pixel_size_mm=0.172, distance_mm=80.0)
    beam: Beam = Beam(wavelength_A=1.5, fluence_photons_per_m2=1e12 / (_PAPER_BEAM_SIZE_MM * 1e-3) ** 2,
                      beam_size_mm=_PAPER_BEAM_SIZE_MM)
    crystal: Crystal = Crystal(cell=(117.0, 223.0, 310.0, 90.0, 90.0, 90.0), ncells=(9, 4, 3), mosaic_domains=300,
                               mosaic_spread_deg=0.5, spot_shape="tophat", default_F=0.0)
    structure_factors: str | None = "default_protein"
    background: Background = Background(materials=(water(thickness_um=10.0), air(path_mm=5.0)), compton=True)
    response: CCDResponse | PixelArrayResponse = _PAPER_CCD
    labels: LabelThresholds = LabelThresholds()
    shots: ShotDraws = ShotDraws()
    oversample: int = 2
    background_oversample: int = 1

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string, got {self.name!r}")
        for field, kinds in (("detector", Detector), ("beam", Beam), ("crystal", Crystal),
                             ("background", Background), ("response", (CCDResponse, PixelArrayResponse)),
                             ("labels", LabelThresholds), ("shots", ShotDraws)):
            value = getattr(self, field)
            if not isinstance(value, kinds):
                names = " or ".join(k.__name__ for k in (kinds if isinstance(kinds, tuple) else (kinds,)))
                raise ValueError(f"{field} must be a {names}, got {type(value).__name__}")
        if self.structure_factors not in STRUCTURE_FACTORS:
            raise ValueError(f"structure_factors must be 'default_protein' or None, got {self.structure_factors!r}")
        if self.crystal.structure_factors is not None:
            raise ValueError("crystal must hold no structure factors: a preset names them (structure_factors=...)")
        if self.beam.beam_size_mm is None:
            raise ValueError("beam needs a beam_size_mm: a shot's fluence is its photons over the beam's area")
        check_int("oversample", self.oversample, minimum=1)
        check_int("background_oversample", self.background_oversample, minimum=1)
        if not self.shots.strong_target_max >= self.labels.strong_min:
            raise ValueError(f"shots.strong_target_max must be >= labels.strong_min={self.labels.strong_min}, "
                             f"got {self.shots.strong_target_max!r}")

    def with_(self, **changes):
        """A copy with ``changes`` applied, validated like a new preset.

        Examples
        --------
        >>> quick = PRESETS["quick"]
        >>> quick.with_(detector=quick.detector.with_(shape=(32, 32))).shape
        (32, 32)
        """
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ derived values
    @property
    def shape(self):
        """Detector ``(rows, cols)``: the shape of the images."""
        return self.detector.shape

    @property
    def class_fractions(self):
        return self.shots.class_fractions

    def label_rule(self):
        """The :class:`LabelRule` of this preset: its thresholds on its detector's noise and PSF."""
        return LabelRule.for_detector(self.labels, self.response, self.detector.pixel_size_mm)

    def frame_geometry(self):
        """The :class:`~diffranet.detectors.FrameGeometry` of the images: what a model trained on them expects."""
        det = self.detector
        # rounded: a centre given in pixels comes back as given through mm
        center = (None if det.beam_center_mm is None
                  else tuple(round(x / det.pixel_size_mm, 9) for x in det.beam_center_mm))
        return FrameGeometry(det.pixel_size_mm, det.distance_mm, self.beam.wavelength_A, center)

    @property
    def input_offset_adu(self):
        """The response's constant offset (ADU), subtracted before the model's square-root input."""
        return getattr(self.response, "adc_offset", 0.0)

    # ------------------------------------------------------------------ one shot
    def shot_beam(self, photons=None, wavelength_A=None):
        """The :class:`Beam` of one shot with ``photons`` in the pulse (default: the mean) at ``wavelength_A``."""
        changes = {}
        if photons is not None:
            changes["fluence_photons_per_m2"] = photons / (self.beam.beam_size_mm * 1e-3) ** 2
        if wavelength_A is not None:
            changes["wavelength_A"] = wavelength_A
        return self.beam.with_(**changes) if changes else self.beam

    def shot_crystal(self, orientation=None, structure_factors=None, volume_scale=1.0):
        """The :class:`Crystal` of one shot (structure factors from :meth:`load_structure_factors`)."""
        return self.crystal.with_(orientation=orientation, structure_factors=structure_factors,
                                  volume_scale=volume_scale)

    def load_structure_factors(self):
        """The structure factors (None when every reflection has ``default_F``)."""
        if self.structure_factors is None:
            return None
        return StructureFactors.default_protein()

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
            The shot's pulse and wavelength (:meth:`shot_beam`); default the preset's means.
        volume_scale : float, default 1.0
            Crystal volume in units of the rendered domain block.
        crystal, background, response : bool, default True
            Include the crystal (False: a shot without one), the amorphous
            background, and the detector response (False: the ideal counter).
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
            xtal = self.shot_crystal(orientation, structure_factors, volume_scale=volume_scale)
        return Simulator(self.detector, self.shot_beam(photons, wavelength_A), xtal, oversample=self.oversample,
                         n_threads=n_threads, background=self.background if background else None,
                         response=self.response if response else None,
                         background_oversample=self.background_oversample)

    # ------------------------------------------------------------------ serialisation
    def to_dict(self):
        """JSON-serialisable parameters: each part by its own ``to_dict``."""
        return {"kind": "preset", "name": self.name, "detector": self.detector.to_dict(),
                "beam": self.beam.to_dict(), "crystal": self.crystal.to_dict(),
                "structure_factors": self.structure_factors, "background": self.background.to_dict(),
                "response": component_to_dict(self.response), "labels": self.labels.to_dict(),
                "shots": self.shots.to_dict(), "oversample": self.oversample,
                "background_oversample": self.background_oversample}

    @classmethod
    def from_dict(cls, params):
        """Rebuild from :meth:`to_dict` (or the flat parameters older datasets stored); unknown keys raise
        ValueError."""
        if not isinstance(params, dict):
            raise ValueError(f"preset: expected a dict, got {type(params).__name__}")
        if "detector" not in params or not isinstance(params["detector"], dict):
            return _from_flat(params)
        params = dict(params)
        if params.pop("kind", "preset") != "preset":
            raise ValueError("preset: the dict describes another kind of preset")
        unknown = sorted(set(params) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"preset: unknown parameters {unknown}")
        try:
            parts = {"detector": Detector.from_dict(params.pop("detector")),
                     "beam": Beam.from_dict(params.pop("beam")),
                     "crystal": Crystal.from_dict(params.pop("crystal")),
                     "background": Background.from_dict(params.pop("background")),
                     "response": component_from_dict(params.pop("response")),
                     "labels": LabelThresholds.from_dict(params.pop("labels")),
                     "shots": ShotDraws.from_dict(params.pop("shots"))}
        except KeyError as exc:
            raise ValueError(f"preset: missing {exc}") from exc
        except TypeError as exc:
            raise ValueError(f"preset: {exc}") from exc
        return cls(**parts, **params)

    def to_json(self):
        """Canonical JSON (sorted keys): equal presets give equal strings."""
        return json.dumps(self.to_dict(), sort_keys=True)


#: The flat parameters of earlier dataset files, with their defaults (the paper's set-up).
_FLAT_DEFAULTS = {
    "name": "diffranet", "shape": (512, 512), "pixel_size_mm": 0.172, "distance_mm": 80.0, "wavelength_A": 1.5,
    "wavelength_rms": 0.005, "mean_photons": 1e12, "fluence_rms": 1.0, "beam_size_mm": 0.03,
    "cell": (117.0, 223.0, 310.0, 90.0, 90.0, 90.0), "ncells": (9, 4, 3), "mosaic_domains": 300,
    "mosaic_spread_deg": 0.5, "spot_shape": "tophat", "structure_factors": "default_protein", "default_F": 100.0,
    "oversample": 2, "background_oversample": 1, "water_um": 10.0, "air_mm": 5.0, "compton": True,
    "psf_fwhm_um": 46.0, "calibration_rms": 0.04, "readout_rms_photons": 3.0, "adc_offset": 10.0,
    "saturation": 65025.0, "max_volume_scale": 2.7e7, "k_sigma": 5.0, "min_spot_pixels": 2, "weak_min": 10,
    "good_min": 50, "strong_min": 300, "strong_target_max": 2000, "class_fractions": CLASS_FRACTIONS_PAPER,
    "max_attempts": 32, "detector_spec": None,
}


def _from_flat(params):
    """A :class:`Preset` from the flat parameters datasets of format 3 and earlier stored."""
    unknown = sorted(set(params) - set(_FLAT_DEFAULTS))
    if unknown:
        raise ValueError(f"preset: unknown parameters {unknown}")
    p = {**_FLAT_DEFAULTS, **params}
    spec = None if p["detector_spec"] is None else DetectorSpec.from_dict(p["detector_spec"])
    detector = (Detector(shape=tuple(p["shape"]), pixel_size_mm=p["pixel_size_mm"], distance_mm=p["distance_mm"])
                if spec is None else simulation_detector(spec))
    if spec is not None and spec.kind == "pixel_array":
        response = PixelArrayResponse(saturation=p["saturation"])
    else:
        response = CCDResponse(psf="fiber", psf_fwhm_um=p["psf_fwhm_um"], calibration_rms=p["calibration_rms"],
                               readout_rms_photons=p["readout_rms_photons"], adc_offset=p["adc_offset"],
                               saturation=p["saturation"])
    return Preset(
        name=p["name"], detector=detector,
        beam=Beam(wavelength_A=p["wavelength_A"], beam_size_mm=p["beam_size_mm"],
                  fluence_photons_per_m2=p["mean_photons"] / (p["beam_size_mm"] * 1e-3) ** 2),
        crystal=Crystal(cell=tuple(p["cell"]), ncells=tuple(p["ncells"]), mosaic_domains=p["mosaic_domains"],
                        mosaic_spread_deg=p["mosaic_spread_deg"], spot_shape=p["spot_shape"],
                        default_F=0.0 if p["structure_factors"] == "default_protein" else p["default_F"]),
        structure_factors=p["structure_factors"],
        background=Background(materials=(water(thickness_um=p["water_um"]), air(path_mm=p["air_mm"])),
                              compton=p["compton"]),
        response=response,
        labels=LabelThresholds(k_sigma=p["k_sigma"], min_spot_pixels=p["min_spot_pixels"], weak_min=p["weak_min"],
                               good_min=p["good_min"], strong_min=p["strong_min"]),
        shots=ShotDraws(fluence_rms=p["fluence_rms"], wavelength_rms=p["wavelength_rms"],
                        max_volume_scale=p["max_volume_scale"], strong_target_max=p["strong_target_max"],
                        class_fractions=tuple(p["class_fractions"]), max_attempts=p["max_attempts"]),
        oversample=p["oversample"], background_oversample=p["background_oversample"])


def simulation_detector(spec):
    """The simulation :class:`Detector` of a :class:`~diffranet.detectors.DetectorSpec`: its geometry,
    beam centre and module gaps (masked)."""
    bx, by = spec.geometry().beam_center_px
    gaps = spec.gap_mask()
    return Detector(shape=spec.shape, pixel_size_mm=spec.pixel_size_mm, distance_mm=spec.distance_mm,
                    beam_center_mm=(bx * spec.pixel_size_mm, by * spec.pixel_size_mm),
                    mask=gaps if gaps.any() else None)


#: Built-in presets by name.
PRESETS = {"diffranet": Preset()}
PRESETS["quick"] = Preset(
    name="quick", detector=Detector(shape=(64, 64), pixel_size_mm=0.344, distance_mm=80.0),
    crystal=PRESETS["diffranet"].crystal.with_(mosaic_domains=20, default_F=2000.0), structure_factors=None,
    oversample=1, labels=LabelThresholds(k_sigma=3.0, min_spot_pixels=1, weak_min=2, good_min=8, strong_min=25),
    shots=ShotDraws(strong_target_max=60))


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
