"""The simple ZMQ frame format: a JSON header and the raw pixels.

One frame is one two-part ZMQ message:

1. a JSON object ``{"id": ..., "shape": [rows, cols], "dtype": "<u2"}``
   (``id`` any JSON number or string; ``dtype`` a NumPy type string of
   integers or floats, e.g. ``"<u2"``, ``"<i4"``, ``"<f4"``);
2. the ``rows * cols`` pixel values in C order, nothing more or less.

Extra header keys are ignored.

The header is untrusted: it is parsed with bounds (at most 64 kB, nesting
depth 32, integers of at most 20 digits, finite numbers only, as JSON
allows) and the pixel buffer's size is checked against the shape and
dtype, and the shape against the pixel budget, before any array is made.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np

from .frames import Frame, MalformedMessage, describe_value, safe_tags
from .limits import StreamLimits

__all__ = ["decode_simple", "encode_simple"]

_MAX_HEADER_BYTES = 64 * 1024
_MAX_JSON_DEPTH = 32
_MAX_INT_DIGITS = 20  # 2**64 has 20 digits
# a string runs to its closing quote or, unterminated, to the end: each quote starts one match, so the
# scan is linear (a pattern that must find the closing quote retries from every quote: quadratic)
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_DEFAULT_LIMITS = StreamLimits()


def _buffer(part):
    view = part.buffer if hasattr(part, "buffer") else memoryview(part)
    return view if view.ndim == 1 and view.itemsize == 1 else view.cast("B")


def _json_depth(raw):
    """Deepest nesting of arrays and objects in JSON text (strings skipped)."""
    depth = deepest = 0
    for char in _JSON_STRING.sub(b'""', raw):
        if char in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in b"]}":
            depth -= 1
    return deepest


def _bounded_int(text):
    digits = len(text.lstrip("-"))
    if digits > _MAX_INT_DIGITS:
        raise MalformedMessage(f"header holds an integer of {digits} digits (at most {_MAX_INT_DIGITS})")
    return int(text)


def _finite_float(text):
    value = float(text)
    if not math.isfinite(value):
        raise MalformedMessage(f"header holds the number {text[:40]}, beyond the range of a double")
    return value


def _no_constant(name):
    raise MalformedMessage(f"header holds {name}, which is not a JSON number")


def _header(part):
    view = _buffer(part)
    if len(view) > _MAX_HEADER_BYTES:
        raise MalformedMessage(f"header of {len(view)} bytes is too long for a frame header "
                               f"(at most {_MAX_HEADER_BYTES})")
    raw = bytes(view)
    # the total count of brackets bounds the depth; count exactly only when it could exceed the limit
    if raw.count(b"[") + raw.count(b"{") > _MAX_JSON_DEPTH and _json_depth(raw) > _MAX_JSON_DEPTH:
        raise MalformedMessage(f"header nests arrays or objects deeper than {_MAX_JSON_DEPTH} levels")
    try:
        header = json.loads(raw, parse_int=_bounded_int, parse_float=_finite_float, parse_constant=_no_constant)
    except MalformedMessage:
        raise
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedMessage(f"header is not JSON: {exc}") from None
    except RecursionError:
        raise MalformedMessage("header nests arrays or objects too deeply") from None
    if not isinstance(header, dict):
        raise MalformedMessage(f"header must be a JSON object, got {type(header).__name__}")
    return header


def _dtype(value, tags):
    try:  # NumPy parses far more than type names (sub-arrays, records): any refusal is a bad header
        dtype = np.dtype(value) if isinstance(value, str) and len(value) <= 16 else None
    except (TypeError, ValueError, SyntaxError):
        dtype = None
    if dtype is None or dtype.kind not in "uif" or dtype.itemsize > 8:
        raise MalformedMessage("dtype must name integers or floats of up to 8 bytes (e.g. \"<u2\"), got "
                               f"{describe_value(value)}", tags)
    return dtype


def _shape(value, tags, limits):
    if (not isinstance(value, list) or len(value) != 2
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value)):
        raise MalformedMessage(f"shape must be [rows, cols] of positive integers, got {describe_value(value)}", tags)
    try:
        return limits.check_dimensions(value, "frame")
    except ValueError as exc:
        raise MalformedMessage(str(exc), tags) from None


def decode_simple(parts, limits=None, **frame_fields):
    """Decode one simple-format message into a :class:`Frame`.

    Parameters
    ----------
    parts : sequence of bytes or zmq.Frame
        The message parts; the pixels are not copied.
    limits : StreamLimits, optional
        Message and frame size budgets (default: :class:`StreamLimits()`).
    **frame_fields
        Fields of :class:`Frame` besides ``tags`` and ``data`` (geometry,
        beam centre, mask, saturation, received time).

    Returns
    -------
    Frame
        ``tags`` is ``{"id": header["id"]}``.

    Raises
    ------
    MalformedMessage
        Wrong number of parts, a message over the byte budget, bad header,
        a shape over the pixel budget, or a pixel buffer whose length does
        not match the shape and dtype.
    """
    limits = _DEFAULT_LIMITS if limits is None else limits
    if len(parts) != 2:
        raise MalformedMessage(f"a frame is a two-part message, got {len(parts)} part(s)")
    size = sum(len(_buffer(part)) for part in parts)
    if size > limits.max_message_bytes:
        raise MalformedMessage(f"message of {size} bytes is over the limit of {limits.max_message_bytes} bytes")
    header = _header(parts[0])
    if "id" not in header:
        raise MalformedMessage("header has no \"id\"")
    frame_id = header["id"]
    if not isinstance(frame_id, (int, float, str)) or isinstance(frame_id, bool):
        raise MalformedMessage(f"id must be a number or a string, got {describe_value(frame_id)}")
    tags = safe_tags({"id": frame_id})
    shape = _shape(header.get("shape"), tags, limits)
    dtype = _dtype(header.get("dtype"), tags)
    buffer = _buffer(parts[1])
    expected = shape[0] * shape[1] * dtype.itemsize
    if len(buffer) != expected:
        raise MalformedMessage(f"pixel buffer holds {len(buffer)} bytes, shape {list(shape)} of {dtype.str} "
                               f"needs {expected}", tags)
    data = np.frombuffer(buffer, dtype=dtype).reshape(shape)
    return Frame(tags=tags, data=data, **frame_fields)


def encode_simple(frame_id, data):
    """The two parts of a simple-format message (what a sender transmits).

    Examples
    --------
    >>> header, pixels = encode_simple(3, np.zeros((2, 4), "<u2"))
    >>> header
    b'{"id": 3, "shape": [2, 4], "dtype": "<u2"}'
    >>> decode_simple([header, pixels]).data.shape
    (2, 4)
    """
    data = np.ascontiguousarray(data)
    if data.ndim != 2:
        raise ValueError(f"data must be 2-D, got shape {data.shape}")
    header = {"id": frame_id, "shape": list(data.shape), "dtype": data.dtype.str}
    return json.dumps(header).encode(), data.data.cast("B")
