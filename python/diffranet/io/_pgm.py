"""PGM (Netpbm greymap), the image format of the DiffraNet paper.

Written here rather than through an imaging library so that the bytes are
exactly what the Netpbm specification says (https://netpbm.sourceforge.net/doc/pgm.html):

* ``P5`` magic, whitespace, width, whitespace, height, whitespace, maxval,
  then exactly one whitespace character before the raster; ``#`` starts a
  comment that runs to the end of the line (allowed anywhere in the header);
* maxval < 256: one byte per pixel; otherwise two bytes, most significant
  byte first (big-endian), whatever the machine's byte order;
* every pixel value lies in ``[0, maxval]``.

The plain (ASCII) variant ``P2`` is read as well; files are always written as
``P5``.  Bytes after the first image are ignored (Netpbm allows several images
in one file; diffranet reads the first).
"""

from __future__ import annotations

import numpy as np

from ._common import (
    DEFAULT_MAX_FRAME_PIXELS,
    ImageFormat,
    ImageFormatError,
    atomic_path,
    check_pixels,
    check_text_metadata,
    check_writable,
    reject_compression,
)

_WHITESPACE = b" \t\n\v\f\r"
_MAGICS = (b"P5", b"P2")


def _skip_space_and_comments(data, pos):
    while pos < len(data):
        char = data[pos : pos + 1]
        if char in _WHITESPACE:
            pos += 1
        elif char == b"#":
            ends = [i for i in (data.find(b"\n", pos), data.find(b"\r", pos)) if i >= 0]
            pos = min(ends) + 1 if ends else len(data)
        else:
            break
    return pos


def _parse_header(path, data):
    """Return ``(magic, width, height, maxval, raster_offset)``."""
    magic = data[:2]
    if magic not in _MAGICS or len(data) < 3 or data[2:3] not in _WHITESPACE + b"#":
        raise ImageFormatError(f"{path}: not a PGM file (starts with {data[:3]!r}, expected b'P5' or b'P2')")
    pos = 2
    fields = []
    for name in ("width", "height", "maxval"):
        pos = _skip_space_and_comments(data, pos)
        start = pos
        while pos < len(data) and data[pos : pos + 1] not in _WHITESPACE + b"#":
            pos += 1
        token = data[start:pos]
        if not token:
            raise ImageFormatError(f"{path}: truncated PGM header (no {name})")
        if not token.isdigit():
            raise ImageFormatError(f"{path}: bad PGM header, {name} is {token!r}, expected a decimal number")
        fields.append(int(token))
    width, height, maxval = fields
    if width < 1 or height < 1:
        raise ImageFormatError(f"{path}: bad PGM header, size {width}x{height} must be at least 1x1")
    if not 1 <= maxval <= 65535:
        raise ImageFormatError(f"{path}: bad PGM maxval {maxval}, must lie in [1, 65535]")
    if magic == b"P5":
        # exactly one whitespace character separates maxval from the raster;
        # a comment there would end the header inside the comment, so refuse it
        if data[pos : pos + 1] not in _WHITESPACE:
            raise ImageFormatError(f"{path}: truncated PGM header (no whitespace after maxval)")
        pos += 1
    return magic, width, height, maxval, pos


# a header (magic, comments, sizes) longer than this is not a detector image
_MAX_HEADER_BYTES = 1 << 20
# the longest plain-PGM pixel token ("65535") and its separator
_PLAIN_BYTES_PER_PIXEL = 6


def read(path, frame=None, dataset=None, max_pixels=DEFAULT_MAX_FRAME_PIXELS):
    """Read the first image of a PGM file as uint8 (maxval < 256) or uint16.

    The header is parsed and its size checked against ``max_pixels`` before
    the raster is read; only the bytes the raster needs are read.
    """
    with open(path, "rb") as fh:
        head = fh.read(_MAX_HEADER_BYTES)
        magic, width, height, maxval, pos = _parse_header(path, head)
        check_pixels(f"{path}: PGM header", (height, width), max_pixels)
        dtype = np.dtype(np.uint8) if maxval < 256 else np.dtype(">u2")
        n_pixels = width * height
        per_pixel = dtype.itemsize if magic == b"P5" else _PLAIN_BYTES_PER_PIXEL
        fh.seek(pos)
        data = fh.read(n_pixels * per_pixel)
    if magic == b"P5":
        n_bytes = n_pixels * dtype.itemsize
        if len(data) < n_bytes:
            raise ImageFormatError(
                f"{path}: truncated PGM file, {width}x{height} pixels at maxval {maxval} need "
                f"{n_bytes} bytes of pixel data, found {len(data)}"
            )
        values = np.frombuffer(data, dtype=dtype, count=n_pixels)
    else:
        tokens = data.split(maxsplit=n_pixels)[:n_pixels]
        if len(tokens) < n_pixels or not all(t.isdigit() for t in tokens):
            raise ImageFormatError(
                f"{path}: truncated or corrupt plain PGM file, expected {n_pixels} decimal pixel values"
            )
        values = np.array([int(t) for t in tokens], dtype=np.int64)
    image = values.reshape(height, width).astype(np.uint8 if maxval < 256 else np.uint16)
    if int(values.max()) > maxval:
        raise ImageFormatError(f"{path}: corrupt PGM file, pixel value {int(values.max())} exceeds maxval {maxval}")
    return image


def header(width, height, maxval, comments=()):
    """The P5 header bytes, e.g. ``b'P5\\n3 2\\n255\\n'``."""
    lines = ["P5", *(f"# {c}" for c in comments), f"{width} {height}", str(maxval)]
    return ("\n".join(lines) + "\n").encode("ascii", errors="backslashreplace")


def write(path, image, compression=None, mask=None, metadata=None):
    """Write uint8 (maxval 255) or uint16 (maxval 65535, big-endian) as P5.

    ``metadata`` items become ``# key: value`` comment lines after the magic.
    """
    reject_compression(path, "PGM", compression)
    image = check_writable(
        path, image, "PGM", (np.uint8, np.uint16),
        hint="Convert explicitly, e.g. np.clip(image, 0, 65535).astype(np.uint16)",
    )
    comments = [f"{k}: {v}" for k, v in check_text_metadata(path, "PGM", metadata or {}).items()]
    maxval = 255 if image.dtype == np.uint8 else 65535
    height, width = image.shape
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(header(width, height, maxval, comments))
        fh.write(image.astype(">u2" if maxval > 255 else np.uint8, copy=False).tobytes())


FORMAT = ImageFormat(name="PGM", read=read, write=write)
