"""Detector descriptions: where a frame's pixels look, and per-detector TOML files.

* :class:`FrameGeometry`: pixel size, distance, wavelength and beam centre of
  a flat detector frame (the pixel convention of every ``beam_center_px``).
* :class:`DetectorSpec` and :func:`load_detector`: a beamline's detector in a
  few lines of TOML; :data:`SHIPPED` names the files that ship with diffranet.
* :mod:`.masks`: the pixels that record nothing (module gaps, bad pixels).

They sit beside the simulation, below every package that applies them
(the dataset renders training sets on a detector, inference reads frames in
its geometry).
"""

from __future__ import annotations

from .frame_geometry import FrameGeometry
from .spec import SHIPPED, DetectorSpec, load_detector

__all__ = ["DetectorSpec", "FrameGeometry", "SHIPPED", "load_detector"]
