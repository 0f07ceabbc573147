"""The input a model expects: :class:`Preprocessing`, a small frozen value.

:class:`Preprocessing` says what a model was trained on: the training
detector's shape and geometry (a :class:`~diffranet.detectors.FrameGeometry`,
re-exported here) and the 8-bit transform (ADC offset, then the paper's
square root).
"""

from __future__ import annotations

import dataclasses

from .._validation import check_int, check_nonnegative
from ..detectors.frame_geometry import FrameGeometry, _from_dict

__all__ = ["FrameGeometry", "Preprocessing", "PAPER_PREPROCESSING"]


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """The input a model was trained on: detector shape and geometry, 8-bit transform.

    Parameters
    ----------
    shape : tuple of int, default (512, 512)
        ``(rows, cols)`` of the training images.
    geometry : FrameGeometry
        Geometry of the training detector (default: the paper's, 172 um
        pixels at 80 mm, 1.5 A, beam at the centre).
    adc_offset : float, default 10.0
        Offset (ADU) the training detector added to every pixel before the
        8-bit transform; photon-counting frames get it added so that empty
        sky has the grey level the model saw (0 for a photon-counting
        training set).
    transform : {"sqrt8"}, default "sqrt8"
        The 8-bit transform: ``round(sqrt(clip(counts, 0, 65025)))``
        (:func:`diffranet.simulation.response.to_8bit`).
    bin_factor : int or None, default None
        Frames without geometry are binned by this factor before cropping;
        ``None`` picks the largest factor that still fills ``shape``.
    """

    shape: tuple = (512, 512)
    geometry: FrameGeometry = None
    adc_offset: float = 10.0
    transform: str = "sqrt8"
    bin_factor: int = None

    def __post_init__(self):
        shape = self.shape
        if not isinstance(shape, (tuple, list)) or len(shape) != 2:
            raise ValueError(f"shape must be (rows, cols), got {shape!r}")
        object.__setattr__(self, "shape", (check_int("shape[0]", shape[0], minimum=1),
                                           check_int("shape[1]", shape[1], minimum=1)))
        geometry = self.geometry
        if geometry is None:
            geometry = FrameGeometry(0.172, 80.0, 1.5)
        elif isinstance(geometry, dict):
            geometry = FrameGeometry.from_dict(geometry)
        elif not isinstance(geometry, FrameGeometry):
            raise ValueError(f"geometry must be a FrameGeometry, got {type(geometry).__name__}")
        if geometry.beam_center_px is None:
            geometry = dataclasses.replace(geometry, beam_center_px=geometry.center_px(self.shape))
        object.__setattr__(self, "geometry", geometry)
        object.__setattr__(self, "adc_offset", check_nonnegative("adc_offset", self.adc_offset))
        if self.transform != "sqrt8":
            raise ValueError(f"transform must be 'sqrt8', got {self.transform!r}")
        if self.bin_factor is not None:
            object.__setattr__(self, "bin_factor", check_int("bin_factor", self.bin_factor, minimum=1))

    def to_dict(self):
        """JSON-serialisable parameters."""
        return {"shape": list(self.shape), "geometry": self.geometry.to_dict(), "adc_offset": self.adc_offset,
                "transform": self.transform, "bin_factor": self.bin_factor}

    @classmethod
    def from_dict(cls, data):
        """Rebuild from :meth:`to_dict`; unknown keys raise ValueError."""
        return _from_dict(cls, data)


#: What the paper's models see: 512 x 512 pixels of 172 um at 80 mm, 1.5 A, the paper's CCD offset.
PAPER_PREPROCESSING = Preprocessing()
