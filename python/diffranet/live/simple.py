"""The simple ZMQ frame format: a JSON header and the raw pixels.

One frame is one two-part ZMQ message:

1. a JSON object ``{"id": ..., "shape": [rows, cols], "dtype": "<u2"}``
   (``id`` any JSON number or string; ``dtype`` a NumPy type string of
   integers or floats, e.g. ``"<u2"``, ``"<i4"``, ``"<f4"``);
2. the ``rows * cols`` pixel values in C order, nothing more or less.

Extra header keys are ignored.
"""

from __future__ import annotations

import json

import numpy as np

from .frames import Frame, MalformedMessage

__all__ = ["decode_simple", "encode_simple"]

_MAX_HEADER_BYTES = 64 * 1024


def _buffer(part):
    view = part.buffer if hasattr(part, "buffer") else memoryview(part)
    return view if view.ndim == 1 and view.itemsize == 1 else view.cast("B")


def _header(part):
    raw = _buffer(part)
    if len(raw) > _MAX_HEADER_BYTES:
        raise MalformedMessage(f"header of {len(raw)} bytes is too long for a frame header")
    try:
        header = json.loads(bytes(raw))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedMessage(f"header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise MalformedMessage(f"header must be a JSON object, got {type(header).__name__}")
    return header


def _dtype(value, tags):
    try:
        dtype = np.dtype(value) if isinstance(value, str) else None
    except TypeError:
        dtype = None
    if dtype is None or dtype.kind not in "uif" or dtype.itemsize > 8:
        raise MalformedMessage(f"dtype must name integers or floats of up to 8 bytes (e.g. \"<u2\"), got {value!r}",
                               tags)
    return dtype


def _shape(value, tags):
    if (not isinstance(value, list) or len(value) != 2
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value)):
        raise MalformedMessage(f"shape must be [rows, cols] of positive integers, got {value!r}", tags)
    return tuple(value)


def decode_simple(parts, **frame_fields):
    """Decode one simple-format message into a :class:`Frame`.

    Parameters
    ----------
    parts : sequence of bytes or zmq.Frame
        The message parts; the pixels are not copied.
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
        Wrong number of parts, bad header, or a pixel buffer whose length
        does not match the shape and dtype.
    """
    if len(parts) != 2:
        raise MalformedMessage(f"a frame is a two-part message, got {len(parts)} part(s)")
    header = _header(parts[0])
    if "id" not in header:
        raise MalformedMessage("header has no \"id\"")
    frame_id = header["id"]
    if not isinstance(frame_id, (int, float, str)) or isinstance(frame_id, bool):
        raise MalformedMessage(f"id must be a number or a string, got {frame_id!r}")
    tags = {"id": frame_id}
    shape = _shape(header.get("shape"), tags)
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
