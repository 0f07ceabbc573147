"""What flows between the layers of the live service: frames in, records out.

A source turns each message or file into a :class:`Frame` (pixels, optional
mask and geometry, and the ``tags`` that identify it, e.g. ``{"id": 17}``) or
raises :class:`MalformedMessage`. The processing layer turns frames into
verdicts; the sink writes one JSON record per frame, in arrival order:

* a verdict: ``{**tags, "label", "hit", "proba", "latency_ms"}``;
* a dropped frame (overload): ``{**tags, "label": None, "hit": None,
  "dropped": True}``;
* a message or file that could not be used: ``{**tags, "error": reason}``,
  plus ``"stage"`` (``"receive"``, ``"decode"``, ``"classify"``) in the
  stream service.

Tags come from untrusted messages: :func:`json_safe` turns any value into
one that ``json.dumps(..., allow_nan=False)`` writes (non-finite numbers,
integers beyond 64 bits, bytes and unknown objects become ``None``, dates
ISO strings), and :func:`describe_value` shows a value in an error message
without ever failing or growing without bound. :class:`LimitedLog` keeps the
warnings about such messages to a few lines however many arrive.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import numbers
import reprlib
import threading
import time
import uuid

import numpy as np

__all__ = ["Frame", "MalformedMessage", "SeriesEnd", "dropped_record", "error_record",
           "json_safe", "json_line", "safe_tags", "describe_value", "describe_exception", "LimitedLog"]

#: Integers in records stay within 64 bits (signed or unsigned): JSON readers lose anything larger.
_INT_RANGE = (-2**63, 2**64)
#: Containers nested deeper than this in a tag become None.
_MAX_NESTING = 16
#: Longest string kept in a record's tags (characters).
_MAX_TAG_CHARS = 4096
_SHOWN_CHARS = 120  # longest value quoted in an error message


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
    finite : bool
        True when the source has already checked that every pixel outside
        the mask is finite (a file's NaN pixels are masked); the processing
        layer then skips its own pass over the pixels.
    """

    tags: dict
    data: np.ndarray
    mask: np.ndarray = None
    geometry: object = None
    beam_center_px: tuple = None
    saturation: float = None
    received: float = dataclasses.field(default_factory=time.monotonic)
    finite: bool = False


@dataclasses.dataclass(frozen=True)
class SeriesEnd:
    """A source's end-of-series marker (Stream V2 end message): the sink flushes its log."""

    tags: dict


def dropped_record(tags):
    """The record of a frame dropped under overload."""
    return {**tags, "label": None, "hit": None, "dropped": True}


def error_record(tags, reason, stage=None):
    """The record of a message or file that could not be classified (``stage``: where it failed)."""
    record = {**tags, "error": reason if isinstance(reason, str) else describe_exception(reason)}
    if stage is not None:
        record["stage"] = stage
    return record


def json_safe(value, max_chars=None, _depth=0):
    """``value`` made writable by ``json.dumps(..., allow_nan=False)``, whatever it is.

    Non-finite floats, integers outside 64 bits, byte strings, containers
    nested deeper than 16 and objects JSON has no type for become ``None``;
    dates and times become ISO strings, UUIDs strings, NumPy scalars Python
    numbers; strings longer than ``max_chars`` are cut.

    Examples
    --------
    >>> json_safe({"id": float("nan"), "big": 10**30, "when": datetime.date(2024, 5, 1), "raw": b"x"})
    {'id': None, 'big': None, 'when': '2024-05-01', 'raw': None}
    """
    if value is None or isinstance(value, (bool, np.bool_)):
        return None if value is None else bool(value)
    if isinstance(value, str):
        return value if max_chars is None or len(value) <= max_chars else value[:max_chars]
    if isinstance(value, numbers.Integral):
        value = int(value)
        return value if _INT_RANGE[0] <= value < _INT_RANGE[1] else None
    if isinstance(value, numbers.Real):  # float, NumPy floats, Fraction, ...
        try:
            value = float(value)
        except (OverflowError, ValueError):
            return None
        return value if math.isfinite(value) else None
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if _depth >= _MAX_NESTING:
        return None
    if isinstance(value, dict):
        return {key if isinstance(key, str) else str(json_safe(key)): json_safe(item, max_chars, _depth + 1)
                for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item, max_chars, _depth + 1) for item in value]
    return None


def json_line(record):
    """One JSON text for a record, whatever it holds: as it is when ``json.dumps(..., allow_nan=False)`` takes it,
    else through :func:`json_safe`."""
    try:
        return json.dumps(record, allow_nan=False)
    except (TypeError, ValueError, OverflowError, RecursionError):
        pass
    try:
        return json.dumps(json_safe(record), allow_nan=False)
    except Exception as exc:  # json_safe output always serialises; this is the last resort
        return json.dumps({"error": f"record not serialisable: {describe_exception(exc)}"})


def safe_tags(tags):
    """Tags of an untrusted message, ready for a record (see :func:`json_safe`; long strings cut)."""
    return json_safe(tags, max_chars=_MAX_TAG_CHARS)


def describe_value(value):
    """A short text showing ``value`` in an error message (never raises, never long).

    Examples
    --------
    >>> describe_value(10**5000)
    'an integer of 16610 bits'
    >>> describe_value("<u2")
    "'<u2'"
    """
    try:
        text = _SHORT_REPR.repr(value)
    except Exception:  # a repr that fails
        return f"a {type(value).__name__}"
    return text if len(text) <= _SHOWN_CHARS else f"{text[:_SHOWN_CHARS]}..."


class _ShortRepr(reprlib.Repr):
    """``repr`` written only as far as it is shown: the first items of a container, the first characters of a
    string (a full ``repr`` of a 100 MB string of NULs takes 400 MB), byte strings and big integers by size."""

    def __init__(self):
        super().__init__()
        self.maxstring = self.maxother = self.maxlong = _SHOWN_CHARS

    def repr1(self, x, level):
        if isinstance(x, int) and not isinstance(x, bool) and x.bit_length() > 64:
            return f"an integer of {x.bit_length()} bits"
        if isinstance(x, (bytes, bytearray, memoryview)):
            return f"a byte string of {len(x)} bytes"
        if hasattr(x, "tag") and hasattr(x, "value"):  # a CBOR tag the decoder left as it is
            return f"CBORTag({self.repr1(x.tag, level - 1)}, {self.repr1(x.value, level - 1)})"
        for kind in (list, tuple, dict):  # subclasses too (their own repr would be written out whole)
            if isinstance(x, kind):
                return getattr(self, f"repr_{kind.__name__}")(x, level)
        return super().repr1(x, level)


_SHORT_REPR = _ShortRepr()


def describe_exception(exc):
    """What went wrong, as a non-empty sentence (an exception's own text, or its kind when it has none).

    Examples
    --------
    >>> describe_exception(MemoryError())
    'out of memory (MemoryError)'
    >>> describe_exception(ValueError("bad shape"))
    'bad shape'
    """
    try:
        text = str(exc)
    except Exception:
        text = ""
    if isinstance(exc, MemoryError):
        return f"out of memory (MemoryError{': ' + text if text else ''})"
    if not text:
        return type(exc).__name__
    if isinstance(exc, ValueError):  # the package's own refusals (MalformedMessage, CompressionError) read as sentences
        return text
    return f"{type(exc).__name__}: {text}"


class LimitedLog:
    """Warnings of one kind, at most ``per_interval`` lines every ``interval_s`` seconds (thread-safe).

    Every refused frame already has its error record; the log is for people.
    A sender of nothing but bad messages must not turn each one into a line
    (thousands a second, the service's time spent writing them): past the
    limit, warnings are counted, and the count is logged when the interval
    ends (at the next warning of the kind, or at :meth:`flush`).

    Parameters
    ----------
    logger : logging.Logger
    per_interval : int, default 10
    interval_s : float, default 10.0
    clock : callable, default time.monotonic
    """

    def __init__(self, logger, per_interval=10, interval_s=10.0, clock=time.monotonic):
        self.logger, self.per_interval, self.interval_s, self.clock = logger, per_interval, interval_s, clock
        self._kinds = {}  # kind -> [interval start, lines logged, lines held back]
        self._lock = threading.Lock()

    def warning(self, kind, message, *args):
        """Log ``message % args`` unless ``kind`` has had its lines this interval."""
        now = self.clock()
        with self._lock:
            state = self._kinds.setdefault(kind, [now, 0, 0])
            if now - state[0] >= self.interval_s:
                self._report(kind, state)
                state[:] = [now, 0, 0]
            show = state[1] < self.per_interval
            state[1 if show else 2] += 1
        if show:
            self.logger.warning(message, *args)

    def flush(self):
        """Log the counts held back so far."""
        with self._lock:
            for kind, state in self._kinds.items():
                self._report(kind, state)
                state[2] = 0

    def _report(self, kind, state):
        if state[2]:
            self.logger.warning("%d more %s warnings in %.0f s not shown", state[2], kind,
                                max(self.clock() - state[0], 0.0))
