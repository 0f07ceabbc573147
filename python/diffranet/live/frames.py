"""What flows between the layers of the live service: frames in, records out.

A source turns each message or file into a :class:`Frame` (pixels, optional
mask and geometry, and the ``tags`` that identify it, e.g. ``{"id": 17}``) or
raises :class:`MalformedMessage`. The processing layer turns frames into
verdicts; the sink writes one JSON record per frame, in arrival order:

* a verdict: ``{**tags, "label", "hit", "proba", "latency_ms"}``;
* a dropped frame (overload): ``{**tags, "label": None, "hit": None,
  "dropped": True}``;
* a message or file that could not be used: ``{**tags, "error": reason}``.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

__all__ = ["Frame", "MalformedMessage", "SeriesEnd", "verdict_record", "dropped_record", "error_record"]


class MalformedMessage(ValueError):
    """A message or file that is not a valid frame; ``tags`` say which one when known."""

    def __init__(self, reason, tags=None):
        super().__init__(reason)
        self.tags = dict(tags or {})


@dataclasses.dataclass
class Frame:
    """One detector frame on its way to a verdict.

    Attributes
    ----------
    tags : dict
        JSON-serialisable fields that identify the frame in its verdict
        (``{"id": ...}``; Stream V2 adds ``series_id``; files give
        ``file`` and ``frame``).
    data : ndarray, shape (rows, cols)
        The pixel values.
    mask : ndarray of bool or None
        True for pixels to ignore.
    geometry : FrameGeometry or None
        Where the pixels look; ``None`` bins and crops around ``beam_center_px``.
    beam_center_px : tuple of float or None
        Beam centre ``(x, y)`` used when ``geometry`` is None.
    saturation : float or None
        Values at or above it are ignored.
    received : float
        ``time.monotonic()`` when the frame arrived (for ``latency_ms``).
    """

    tags: dict
    data: np.ndarray
    mask: np.ndarray = None
    geometry: object = None
    beam_center_px: tuple = None
    saturation: float = None
    received: float = dataclasses.field(default_factory=time.monotonic)


@dataclasses.dataclass(frozen=True)
class SeriesEnd:
    """A source's end-of-series marker (Stream V2 end message): the sink flushes its log."""

    tags: dict


def verdict_record(tags, verdict, received, now=None):
    """The published record of a classified frame (tags first, then the verdict and its latency)."""
    now = time.monotonic() if now is None else now
    return {**tags, **verdict, "latency_ms": round((now - received) * 1e3, 3)}


def dropped_record(tags):
    """The record of a frame dropped under overload."""
    return {**tags, "label": None, "hit": None, "dropped": True}


def error_record(tags, reason):
    """The record of a message or file that could not be classified."""
    return {**tags, "error": str(reason)}
