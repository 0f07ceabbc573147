"""The shadow of a beamstop on the detector: a disc and the arm that holds it."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .._validation import check_finite, check_nonnegative
from ._params import Params
from .geometry import Detector

__all__ = ["Beamstop"]


def _check_pair(name, value):
    if not isinstance(value, (tuple, list, np.ndarray)) or len(value) != 2:
        raise ValueError(f"{name} must be (fast_mm, slow_mm), got {value!r}")
    return (check_finite(f"{name}[0]", value[0]), check_finite(f"{name}[1]", value[1]))


def _direct_beam_position_mm(detector):
    """Where the undeflected beam (+x) meets the detector plane, as (fast_mm, slow_mm)
    from the outer corner of pixel (0, 0)."""
    along = float(detector.normal[0])
    if along <= 0:
        raise ValueError("the direct beam does not reach the detector plane (detector normal . beam <= 0)")
    point = np.array([1.0, 0.0, 0.0]) * (float(detector.origin_mm @ detector.normal) / along)
    offset = point - detector.origin_mm
    return float(offset @ detector.fast_axis), float(offset @ detector.slow_axis)


@dataclasses.dataclass(frozen=True, eq=False)
class Beamstop(Params):
    """The shadow of a beamstop on the detector: a disc plus an arm.

    Dimensions are those of the shadow in the detector plane.

    Parameters
    ----------
    radius_mm : float
        Radius of the disc (mm, >= 0).
    arm_width_mm : float, default 0.0
        Full width of the arm that holds the disc (mm, >= 0; 0: no arm).
    arm_angle_deg : float, default 0.0
        Direction of the arm in the detector plane, from the disc centre to the
        detector edge: 0 along +fast (increasing column), 90 along +slow
        (increasing row), degrees.
    center_mm : tuple of float, optional
        ``(fast_mm, slow_mm)`` of the disc centre from the outer corner of
        pixel (0, 0); default: where the direct beam meets the detector.

    Examples
    --------
    >>> from diffranet import Detector
    >>> stop = Beamstop(radius_mm=1.2, arm_width_mm=1.0, arm_angle_deg=0.0)
    >>> stop.shadow(Detector((4, 8), pixel_size_mm=1.0, beam_center_mm=(2.0, 2.5))).astype(int)
    array([[0, 0, 0, 0, 0, 0, 0, 0],
           [0, 1, 1, 0, 0, 0, 0, 0],
           [0, 1, 1, 1, 1, 1, 1, 1],
           [0, 1, 1, 0, 0, 0, 0, 0]])
    """

    radius_mm: float
    arm_width_mm: float = 0.0
    arm_angle_deg: float = 0.0
    center_mm: tuple | None = None

    def __post_init__(self):
        self._set("radius_mm", check_nonnegative("radius_mm", self.radius_mm))
        self._set("arm_width_mm", check_nonnegative("arm_width_mm", self.arm_width_mm))
        self._set("arm_angle_deg", check_finite("arm_angle_deg", self.arm_angle_deg))
        if self.center_mm is not None:
            self._set("center_mm", _check_pair("center_mm", self.center_mm))

    def shadow(self, detector):
        """Pixels whose centre lies in the shadow.

        Parameters
        ----------
        detector : Detector

        Returns
        -------
        ndarray of bool, shape detector.shape
            True where the beamstop blocks the X-rays: within ``radius_mm`` of the
            centre, or within ``arm_width_mm / 2`` of the ray from the centre
            along ``arm_angle_deg``.
        """
        if not isinstance(detector, Detector):
            raise ValueError(f"detector must be a Detector, got {type(detector).__name__}")
        fast0, slow0 = _direct_beam_position_mm(detector) if self.center_mm is None else self.center_mm
        rows, cols = detector.shape
        fast = (np.arange(cols) + 0.5) * detector.pixel_size_mm - fast0
        slow = (np.arange(rows) + 0.5) * detector.pixel_size_mm - slow0
        fast, slow = fast[None, :], slow[:, None]
        inside = fast**2 + slow**2 <= self.radius_mm**2
        if self.arm_width_mm > 0:
            angle = math.radians(self.arm_angle_deg)
            along = fast * math.cos(angle) + slow * math.sin(angle)
            across = -fast * math.sin(angle) + slow * math.cos(angle)
            inside = inside | ((along >= 0) & (np.abs(across) <= 0.5 * self.arm_width_mm))
        return inside

    def apply(self, image, detector):
        """A copy of ``image`` (shape ``detector.shape``) with the shadowed pixels set to 0."""
        shadow = self.shadow(detector)
        image = np.asarray(image)
        if image.shape != detector.shape:
            raise ValueError(f"image must have the detector's shape {detector.shape}, got {image.shape}")
        out = image.copy()
        out[shadow] = 0
        return out

    def to_dict(self):
        """JSON-serialisable parameters: ``Beamstop(**d)`` rebuilds it."""
        return {"radius_mm": self.radius_mm, "arm_width_mm": self.arm_width_mm, "arm_angle_deg": self.arm_angle_deg,
                "center_mm": None if self.center_mm is None else list(self.center_mm)}

    def __repr__(self):
        return (f"Beamstop(radius_mm={self.radius_mm:g}, arm_width_mm={self.arm_width_mm:g}, "
                f"arm_angle_deg={self.arm_angle_deg:g}, center_mm={self.center_mm!r})")
