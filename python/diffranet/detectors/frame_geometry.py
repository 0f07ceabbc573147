"""Where the pixels of a detector frame look: :class:`FrameGeometry`.

Pixel convention, the one of every ``beam_center_px`` in diffranet (the peak
finder included): ``beam_center_px = (x, y)`` is measured in pixels from the
outer corner of pixel (0, 0), ``x`` along columns (the fast axis) and ``y``
along rows (the slow axis); the centre of pixel ``(row, col)`` is at
``(col + 0.5, row + 0.5)``. This is the convention of CBF ``Beam_xy`` and of
NeXus ``beam_center_x`` / ``beam_center_y``.
"""

from __future__ import annotations

import dataclasses
import math

from .._validation import check_finite, check_positive

__all__ = ["FrameGeometry"]


def _check_pair(name, value, check=check_finite):
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{name} must be a pair of numbers, got {value!r}")
    return (check(f"{name}[0]", value[0]), check(f"{name}[1]", value[1]))


@dataclasses.dataclass(frozen=True)
class FrameGeometry:
    """Where the pixels of a flat detector frame look, for a beam normal to it.

    Parameters
    ----------
    pixel_size_mm : float
        Side of the square pixels (mm).
    distance_mm : float
        Sample-to-detector distance (mm).
    wavelength_A : float
        X-ray wavelength (Angstrom).
    beam_center_px : tuple of float, optional
        ``(x, y)``: where the direct beam meets the detector, in pixels from
        the outer corner of pixel (0, 0) (x along columns, y along rows).
        ``None``: the centre of the frame.

    Examples
    --------
    >>> g = FrameGeometry(pixel_size_mm=0.172, distance_mm=80.0, wavelength_A=1.5)
    >>> round(g.resolution_A(radius_mm=44.0), 2)
    3.01
    """

    pixel_size_mm: float
    distance_mm: float
    wavelength_A: float
    beam_center_px: tuple = None

    def __post_init__(self):
        object.__setattr__(self, "pixel_size_mm", check_positive("pixel_size_mm", self.pixel_size_mm))
        object.__setattr__(self, "distance_mm", check_positive("distance_mm", self.distance_mm))
        object.__setattr__(self, "wavelength_A", check_positive("wavelength_A", self.wavelength_A))
        if self.beam_center_px is not None:
            object.__setattr__(self, "beam_center_px", _check_pair("beam_center_px", self.beam_center_px))

    def center_px(self, shape):
        """The beam centre ``(x, y)`` for a frame of ``shape`` (the frame centre if unset)."""
        if self.beam_center_px is not None:
            return self.beam_center_px
        return (shape[1] / 2.0, shape[0] / 2.0)

    def resolution_A(self, radius_mm):
        """Resolution d (Angstrom) seen at ``radius_mm`` from the beam centre: d = lambda / (2 sin theta)."""
        two_theta = math.atan2(radius_mm, self.distance_mm)
        return math.inf if two_theta == 0 else self.wavelength_A / (2.0 * math.sin(two_theta / 2.0))

    def to_dict(self):
        """JSON-serialisable parameters."""
        data = dataclasses.asdict(self)
        data["beam_center_px"] = None if self.beam_center_px is None else list(self.beam_center_px)
        return data

    @classmethod
    def from_dict(cls, data):
        """Rebuild from :meth:`to_dict`; unknown keys raise ValueError."""
        return _from_dict(cls, data)


def _from_dict(cls, data):
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__}: expected a dict, got {type(data).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown parameters {unknown}")
    data = dict(data)
    if isinstance(data.get("beam_center_px"), list):
        data["beam_center_px"] = tuple(data["beam_center_px"])
    if isinstance(data.get("shape"), list):
        data["shape"] = tuple(data["shape"])
    return cls(**data)
