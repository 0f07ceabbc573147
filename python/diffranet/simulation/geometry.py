"""Experiment geometry: the detector and the incident beam.

Lab frame (nanoBragg's default, see ``docs/conventions.md``): the beam travels
along +x from the source through the sample at the origin; with the detector
unrotated its normal is +x, image columns (the fast axis) run along +z and
image rows (the slow axis) along -y.
"""

from __future__ import annotations

import base64
import dataclasses
import math
import zlib

import numpy as np

from .. import _core
from .._validation import (
    check_finite,
    check_fraction,
    check_int,
    check_nonnegative,
    check_positive,
    check_vector3,
)
from ._core_args import detector_args
from ._params import Params, frozen_array
from .orientation import misset_to_rotation

__all__ = ["Detector", "Beam", "nanobragg_beam_center_mm"]

_BEAM_AXIS = np.array([1.0, 0.0, 0.0])
_FAST_AXIS = np.array([0.0, 0.0, 1.0])
_SLOW_AXIS = np.array([0.0, -1.0, 0.0])


def _check_shape(shape):
    if (
        not isinstance(shape, (tuple, list))
        or len(shape) != 2
        or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in shape)
        or min(shape) < 1
    ):
        raise ValueError(f"shape must be two positive integers (rows, cols), got {shape!r}")
    return int(shape[0]), int(shape[1])


@dataclasses.dataclass(frozen=True, eq=False)
class Detector(Params):
    """A flat pixel-array detector (an immutable value: see :meth:`with_`).

    Parameters
    ----------
    shape : tuple of int
        ``(rows, cols)``: number of pixels along the slow and fast axes.
    pixel_size_mm : float
        Side of the square pixels (mm).
    distance_mm : float
        Distance from the sample to the detector plane along the beam (mm).
    beam_center_mm : tuple of float, optional
        ``(fast_mm, slow_mm)``: where the direct beam meets the unrotated
        detector, measured from the outer corner of pixel (0, 0) along the fast
        (column) and slow (row) axes. Default (None): the centre of the
        detector, whatever its shape.
    rotation_deg : tuple of float, optional
        ``(rotx, roty, rotz)``: rigid rotation of the whole detector about the
        sample, about the lab x, then y, then z axes (degrees; the same
        convention as a crystal misset). Default: no rotation.
    mask : array_like of bool, shape ``shape``, optional
        True for pixels that record nothing (bad pixels, module gaps); stored
        as a read-only copy.

    Attributes
    ----------
    direct_beam_mm : tuple of float
        ``beam_center_mm``, or the detector's centre when it is None.
    origin_mm, fast_axis, slow_axis, normal : ndarray, shape (3,)
        Lab position of the outer corner of pixel (0, 0), and the unit vectors
        along increasing columns, increasing rows, and towards the detector;
        derived from the fields at construction (read-only).

    Examples
    --------
    >>> det = Detector((4, 6), pixel_size_mm=0.125, distance_mm=50.0)
    >>> det.direct_beam_mm
    (0.375, 0.25)
    >>> det.distance_mm = 60.0
    Traceback (most recent call last):
    ...
    dataclasses.FrozenInstanceError: cannot assign to field 'distance_mm'
    """

    shape: tuple = (512, 512)
    pixel_size_mm: float = 0.172
    distance_mm: float = 80.0
    beam_center_mm: tuple | None = None
    rotation_deg: tuple = (0.0, 0.0, 0.0)
    mask: np.ndarray | None = dataclasses.field(default=None, repr=False)
    direct_beam_mm: tuple = dataclasses.field(init=False, repr=False)
    origin_mm: np.ndarray = dataclasses.field(init=False, repr=False)
    fast_axis: np.ndarray = dataclasses.field(init=False, repr=False)
    slow_axis: np.ndarray = dataclasses.field(init=False, repr=False)
    normal: np.ndarray = dataclasses.field(init=False, repr=False)
    _directions: dict = dataclasses.field(init=False, repr=False)

    def __post_init__(self):
        self._set("shape", _check_shape(self.shape))
        self._set("pixel_size_mm", check_positive("pixel_size_mm", self.pixel_size_mm))
        self._set("distance_mm", check_positive("distance_mm", self.distance_mm))
        rows, cols = self.shape
        center = self.beam_center_mm
        if center is not None:
            if not isinstance(center, (tuple, list, np.ndarray)) or len(center) != 2:
                raise ValueError(f"beam_center_mm must be (fast_mm, slow_mm), got {center!r}")
            center = (check_finite("beam_center_mm[0]", center[0]), check_finite("beam_center_mm[1]", center[1]))
        self._set("beam_center_mm", center)
        rotation_deg = self.rotation_deg
        if not isinstance(rotation_deg, (tuple, list, np.ndarray)) or len(rotation_deg) != 3:
            raise ValueError(f"rotation_deg must be (rotx, roty, rotz) in degrees, got {rotation_deg!r}")
        self._set("rotation_deg", tuple(check_finite(f"rotation_deg[{i}]", v) for i, v in enumerate(rotation_deg)))
        if self.mask is not None:
            mask = np.asarray(self.mask)
            if mask.shape != self.shape or mask.dtype != bool:
                raise ValueError(f"mask must be a bool array of shape {self.shape}, got {mask.dtype} {mask.shape}")
            self._set("mask", frozen_array(mask, dtype=bool))

        # derived values: computed here from the fields, so they follow every change
        if center is None:
            center = (cols * self.pixel_size_mm / 2.0, rows * self.pixel_size_mm / 2.0)
        self._set("direct_beam_mm", center)
        rotation = misset_to_rotation(*self.rotation_deg)
        fast_mm, slow_mm = center
        origin = self.distance_mm * _BEAM_AXIS - fast_mm * _FAST_AXIS - slow_mm * _SLOW_AXIS
        self._set("origin_mm", frozen_array(rotation @ origin))
        self._set("fast_axis", frozen_array(rotation @ _FAST_AXIS))
        self._set("slow_axis", frozen_array(rotation @ _SLOW_AXIS))
        self._set("normal", frozen_array(rotation @ _BEAM_AXIS))
        self._set("_directions", {})

    def subpixel_directions(self, oversample=1):
        """Unit vectors from the sample to every subpixel centre.

        Computed once per ``oversample`` by the compiled core and cached: the
        renderers read them instead of recomputing them for every image.

        Returns
        -------
        ndarray, float64, shape (rows * oversample, cols * oversample, 3)
            Read-only.
        """
        return self._direction_grid(oversample).values

    def __getstate__(self):
        # the direction grids are compiled objects: a copy rebuilds them when it needs them
        return {**self.__dict__, "_directions": {}}

    def _direction_grid(self, oversample):
        """The core's grid of subpixel directions for ``oversample``, made once and cached."""
        grid = self._directions.get(oversample)
        if grid is None:
            grid = _core.DirectionGrid(**detector_args(self, oversample))
            # a concurrent caller may store an identical grid first: either one is right
            grid = self._directions.setdefault(oversample, grid)
        return grid

    def pixel_centers_mm(self):
        """Lab positions of the pixel centres, shape (rows, cols, 3), mm."""
        rows, cols = self.shape
        r = (np.arange(rows) + 0.5) * self.pixel_size_mm
        c = (np.arange(cols) + 0.5) * self.pixel_size_mm
        return (self.origin_mm + r[:, None, None] * self.slow_axis + c[None, :, None] * self.fast_axis)

    def two_theta_deg(self, direction=_BEAM_AXIS):
        """Scattering angle 2theta (degrees) of each pixel centre, shape (rows, cols)."""
        pos = self.pixel_centers_mm()
        cos2t = pos @ np.asarray(direction, float) / np.linalg.norm(pos, axis=-1)
        return np.degrees(np.arccos(np.clip(cos2t, -1.0, 1.0)))

    def to_dict(self):
        """JSON-serialisable parameters that rebuild this detector."""
        return {"shape": list(self.shape), "pixel_size_mm": self.pixel_size_mm, "distance_mm": self.distance_mm,
                "beam_center_mm": None if self.beam_center_mm is None else list(self.beam_center_mm),
                "rotation_deg": list(self.rotation_deg),
                "mask": None if self.mask is None else _pack_mask(self.mask)}

    @classmethod
    def from_dict(cls, params):
        """Rebuild from :meth:`to_dict` (also reads a mask stored as a list of ``[row, col]``)."""
        params = dict(params)
        masked = params.pop("mask", None)
        shape = tuple(params.pop("shape"))
        mask = None
        if isinstance(masked, dict):
            mask = _unpack_mask(masked, shape)
        elif masked is not None:
            mask = np.zeros(shape, dtype=bool)
            if len(masked):
                mask[tuple(np.asarray(masked).T)] = True
        return cls(shape=shape, mask=mask, **params)


def _pack_mask(mask):
    """A mask as JSON-friendly text: bits packed, zlib-compressed, base64 (a detector's gaps in a few kB)."""
    packed = zlib.compress(np.packbits(mask, axis=None).tobytes(), 9)
    return {"encoding": "packbits+zlib+base64", "data": base64.b64encode(packed).decode("ascii")}


def _unpack_mask(stored, shape):
    if stored.get("encoding") != "packbits+zlib+base64":
        raise ValueError(f"detector mask: unknown encoding {stored.get('encoding')!r}")
    try:
        bits = np.frombuffer(zlib.decompress(base64.b64decode(stored["data"], validate=True)), dtype=np.uint8)
    except (KeyError, ValueError, zlib.error) as exc:
        raise ValueError(f"detector mask: damaged data ({exc})") from exc
    n = int(np.prod(shape))
    if bits.size != (n + 7) // 8:
        raise ValueError(f"detector mask: {bits.size} bytes do not hold a {shape} mask")
    return np.unpackbits(bits, count=n).astype(bool).reshape(shape)


# Default beam centre of nanoBragg (MOSFLM convention) and nonBragg, in pixels past the
# geometric centre of the detector along (fast, slow).
_PROGRAM_CENTER_OFFSET_PX = {"nanobragg": (1.0, 1.0), "nonbragg": (-0.5, 0.5)}


def nanobragg_beam_center_mm(shape, pixel_size_mm, program="nanobragg"):
    """The beam centre that nanoBragg's or nonBragg's default puts on a detector.

    Parameters
    ----------
    shape : tuple of int
        ``(rows, cols)`` of the detector.
    pixel_size_mm : float
        Side of the square pixels (mm).
    program : {"nanobragg", "nonbragg"}, default "nanobragg"
        ``"nanobragg"``: nanoBragg without ``-Xbeam``/``-Ybeam`` (MOSFLM
        convention, ``Xbeam = (detsize_s + pixel) / 2`` along the slow axis and
        ``Ybeam = (detsize_f + pixel) / 2`` along the fast axis, each half a
        pixel from the pixel edge): one pixel past the geometric centre along
        both axes. ``"nonbragg"``: nonBragg's defaults ``Xbeam = (detsize_x -
        pixel) / 2`` along the fast axis and ``Ybeam = (detsize_y + pixel) / 2``
        along the slow axis: half a pixel before the centre along fast and half
        a pixel past it along slow.

    Returns
    -------
    tuple of float
        ``(fast_mm, slow_mm)`` for ``Detector(beam_center_mm=...)``.

    Examples
    --------
    >>> det = Detector((256, 256), 0.3, 100.0, beam_center_mm=nanobragg_beam_center_mm((256, 256), 0.3))
    >>> [round(x, 6) for x in det.beam_center_mm]     # the centre is at 38.4 mm
    [38.7, 38.7]
    >>> [round(x, 6) for x in nanobragg_beam_center_mm((512, 512), 0.172, "nonbragg")]
    [43.946, 44.118]
    """
    rows, cols = _check_shape(shape)
    pixel_size_mm = check_positive("pixel_size_mm", pixel_size_mm)
    if not isinstance(program, str) or program not in _PROGRAM_CENTER_OFFSET_PX:
        raise ValueError(f"program must be one of {sorted(_PROGRAM_CENTER_OFFSET_PX)!r}, got {program!r}")
    fast_px, slow_px = _PROGRAM_CENTER_OFFSET_PX[program]
    return (cols * pixel_size_mm / 2.0 + fast_px * pixel_size_mm, rows * pixel_size_mm / 2.0 + slow_px * pixel_size_mm)


@dataclasses.dataclass(frozen=True, eq=False)
class Beam(Params):
    """The incident X-ray beam, as one or more weighted monochromatic sources.

    Give the fluence directly, or as ``flux_photons_per_s * exposure_s`` spread
    over a square beam of side ``beam_size_mm``. An immutable value: see
    :meth:`with_`.

    Parameters
    ----------
    wavelength_A : float
        Central wavelength (Angstrom).
    fluence_photons_per_m2 : float, optional
        Photons per square metre at the sample.
    flux_photons_per_s, exposure_s : float, optional
        Alternative to ``fluence_photons_per_m2`` (keyword only):
        fluence = flux * exposure / beam_size^2.
    beam_size_mm : float, optional
        Side of the square beam at the sample (mm). Needed with the flux, and
        for amorphous background, whose photons scale with the illuminated
        volume (the Bragg image of a crystal smaller than the beam does not).
    polarization_fraction : float, default 0.0
        Kahn polarisation factor: 0 unpolarised, 1 fully linearly polarised
        along ``polarization_axis`` (XFELs are nearly 1 with the E-vector
        horizontal).
    polarization_axis : array_like, default (0, 0, 1)
        E-vector direction of the polarised part, lab frame (normalised).
    dispersion : float, default 0.0
        Full spectral width as a fraction of the wavelength, sampled by
        ``dispersion_steps`` equally weighted wavelengths spread evenly over it.
    dispersion_steps : int, default 1
    divergence_mrad : float, default 0.0
        Full angular width of the beam, sampled on a ``divergence_steps`` x
        ``divergence_steps`` grid of equally weighted directions (horizontal
        and vertical).
    divergence_steps : int, default 1
    sources : sequence of (direction, wavelength_A, weight), optional
        An explicit list of sources; replaces the dispersion and divergence
        sampling. Stored with unit directions and weights normalised to sum to 1.

    Notes
    -----
    Every image is the weighted average of the images of the sources, as in
    nanoBragg, so the fluence is shared among them.

    Examples
    --------
    >>> beam = Beam(1.5, fluence_photons_per_m2=1e24, beam_size_mm=0.03)
    >>> f"{beam.photons:.3g}"   # photons in the 30 um square beam
    '9e+14'
    >>> beam.with_(wavelength_A=1.0).wavelength_A
    1.0
    """

    wavelength_A: float = 1.5
    fluence_photons_per_m2: float | None = None
    _: dataclasses.KW_ONLY
    flux_photons_per_s: dataclasses.InitVar[float | None] = None
    exposure_s: dataclasses.InitVar[float | None] = None
    beam_size_mm: float | None = None
    polarization_fraction: float = 0.0
    polarization_axis: np.ndarray = (0.0, 0.0, 1.0)
    dispersion: float = 0.0
    dispersion_steps: int = 1
    divergence_mrad: float = 0.0
    divergence_steps: int = 1
    sources: tuple | None = None

    def __post_init__(self, flux_photons_per_s, exposure_s):
        self._set("wavelength_A", check_positive("wavelength_A", self.wavelength_A))
        beam_size = None if self.beam_size_mm is None else check_positive("beam_size_mm", self.beam_size_mm)
        self._set("beam_size_mm", beam_size)
        fluence = self.fluence_photons_per_m2
        flux_given = [x is not None for x in (flux_photons_per_s, exposure_s)]
        if fluence is not None and any(flux_given):
            raise ValueError("give either fluence_photons_per_m2 or flux_photons_per_s and exposure_s, not both")
        if fluence is None:
            if not all(flux_given) or beam_size is None:
                raise ValueError("fluence_photons_per_m2 is required "
                                 "(or all of flux_photons_per_s, exposure_s, beam_size_mm)")
            flux = check_nonnegative("flux_photons_per_s", flux_photons_per_s)
            exposure = check_nonnegative("exposure_s", exposure_s)
            fluence = flux * exposure / (beam_size * 1e-3) ** 2
        self._set("fluence_photons_per_m2", check_nonnegative("fluence_photons_per_m2", fluence))
        self._set("polarization_fraction", check_fraction("polarization_fraction", self.polarization_fraction))
        self._set("polarization_axis", frozen_array(check_vector3("polarization_axis", self.polarization_axis,
                                                                  unit=True)))
        dispersion = check_nonnegative("dispersion", self.dispersion)
        if dispersion >= 1.0:
            raise ValueError(f"dispersion must be < 1 (a fraction of the wavelength), got {self.dispersion!r}")
        self._set("dispersion", dispersion)
        self._set("dispersion_steps", check_int("dispersion_steps", self.dispersion_steps, minimum=1))
        self._set("divergence_mrad", check_nonnegative("divergence_mrad", self.divergence_mrad))
        self._set("divergence_steps", check_int("divergence_steps", self.divergence_steps, minimum=1))
        self._set("sources", None if self.sources is None else self._check_sources(self.sources))

    @staticmethod
    def _check_sources(sources):
        """Explicit sources as a tuple of (unit direction tuple, wavelength_A, weight), weights summing to 1."""
        if isinstance(sources, (str, bytes)) or not hasattr(sources, "__len__"):
            raise ValueError(f"sources must be a sequence of (direction, wavelength_A, weight), got {sources!r}")
        if len(sources) == 0:
            raise ValueError("sources must not be empty")
        dirs, lams, weights = [], [], []
        for i, item in enumerate(sources):
            if not hasattr(item, "__len__") or len(item) != 3:
                raise ValueError(f"sources[{i}] must be (direction, wavelength_A, weight), got {item!r}")
            direction, lam, weight = item
            dirs.append(check_vector3(f"sources[{i}] direction", direction, unit=True))
            lams.append(check_positive(f"sources[{i}] wavelength_A", lam))
            weights.append(check_nonnegative(f"sources[{i}] weight", weight))
        total = sum(weights)
        if total <= 0:
            raise ValueError("sources: the weights must not all be zero")
        return tuple((tuple(float(x) for x in d), lam, w / total) for d, lam, w in zip(dirs, lams, weights))

    @property
    def photons(self):
        """Photons in the whole pulse: fluence x beam area (needs ``beam_size_mm``)."""
        if self.beam_size_mm is None:
            raise ValueError("beam_size_mm is needed to count the photons in the beam")
        return self.fluence_photons_per_m2 * (self.beam_size_mm * 1e-3) ** 2

    def sampled_sources(self):
        """The sources the renderers average over.

        Returns
        -------
        directions : ndarray, shape (n, 3)
            Unit propagation vectors, lab frame.
        wavelengths_A : ndarray, shape (n,)
        weights : ndarray, shape (n,)
            Fractions of the fluence, summing to 1.
        """
        if self.sources is not None:
            return (np.array([d for d, _, _ in self.sources]), np.array([lam for _, lam, _ in self.sources]),
                    np.array([w for _, _, w in self.sources]))
        n_lam, n_div = self.dispersion_steps, self.divergence_steps
        lam_offsets = np.linspace(-0.5, 0.5, n_lam) if n_lam > 1 else np.zeros(1)
        wavelengths = self.wavelength_A * (1.0 + self.dispersion * lam_offsets)
        div_rad = self.divergence_mrad * 1e-3
        angles = div_rad * (np.linspace(-0.5, 0.5, n_div) if n_div > 1 else np.zeros(1))
        directions = []
        for vertical in angles:  # tilt about z then about y
            for horizontal in angles:
                d = np.array([math.cos(horizontal) * math.cos(vertical), math.sin(vertical),
                              math.sin(horizontal) * math.cos(vertical)])
                directions.append(d / np.linalg.norm(d))
        dirs = np.repeat(np.array(directions), n_lam, axis=0)
        lams = np.tile(wavelengths, len(directions))
        weights = np.full(len(lams), 1.0 / len(lams))
        return dirs, lams, weights

    def to_dict(self):
        """JSON-serialisable parameters that rebuild this beam."""
        out = {"wavelength_A": self.wavelength_A, "fluence_photons_per_m2": self.fluence_photons_per_m2,
               "beam_size_mm": self.beam_size_mm, "polarization_fraction": self.polarization_fraction,
               "polarization_axis": self.polarization_axis.tolist(), "dispersion": self.dispersion,
               "dispersion_steps": self.dispersion_steps, "divergence_mrad": self.divergence_mrad,
               "divergence_steps": self.divergence_steps}
        if self.sources is not None:
            out["sources"] = [[list(d), lam, w] for d, lam, w in self.sources]
        return out

    @classmethod
    def from_dict(cls, params):
        """Rebuild from :meth:`to_dict` (also reads the older key ``fluence``)."""
        params = dict(params)
        if "fluence" in params:
            params["fluence_photons_per_m2"] = params.pop("fluence")
        return cls(**params)

    def __repr__(self):
        return (f"Beam(wavelength_A={self.wavelength_A}, fluence_photons_per_m2={self.fluence_photons_per_m2:.4g}, "
                f"beam_size_mm={self.beam_size_mm}, polarization_fraction={self.polarization_fraction}, "
                f"n_sources={len(self.sampled_sources()[1])})")
