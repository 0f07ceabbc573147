"""CBF (Crystallographic Binary File, miniCBF as written by Pilatus/Eiger) through fabio.

Before fabio decodes the pixels, the binary section is checked here: it must be
present, as long as its ``X-Binary-Size`` says, and match its ``Content-MD5``.
fabio itself only logs a checksum mismatch and can loop on a truncated
section, so these checks are what turns a damaged file into a clear error.
Files compressed as a whole (``.cbf.gz``, ``.cbf.bz2``, as archived by many
beamlines) are decompressed as a stream: the header first, whose frame size
is checked against the pixel budget, then only the bytes its binary section
declares. ``# Count_cutoff`` (the detector's saturation) is read as the
``saturation`` of :func:`geometry` and masks the pixels at or above it.

``diffranet classify`` and ``watch`` ask for a file's mask, geometry and
image in turn, within :func:`kept` (``diffranet.io.read_once``): there the
file's checked bytes are kept, and the image :func:`mask` decoded is handed
to the :func:`read` that follows, so one read, one checksum and one decode
serve the three.
"""

from __future__ import annotations

import base64
import bz2
import gzip
import hashlib
import contextlib
import io
import os
import re
import threading

import numpy as np

from ._common import (
    DEFAULT_MAX_FRAME_PIXELS,
    LENGTH_TO_MM,
    WAVELENGTH_TO_A,
    ImageFormat,
    ImageFormatError,
    as_native,
    atomic_path,
    check_pixels,
    check_writable,
    reading,
    reject_compression,
)

_BINARY_START = b"\x0c\x1a\x04\xd5"
_INT32 = np.iinfo(np.int32)
_OPEN = {".gz": gzip.open, ".bz2": bz2.open}
_INTEGER_DTYPES = (np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64)
# a miniCBF header is a few kilobytes; the binary section must start within this many bytes
_MAX_HEADER_BYTES = 1 << 16
# byte-offset compression stores a pixel in at most 1 + 2 + 4 + 8 bytes
_MAX_BYTES_PER_PIXEL = 15


def _header_value(head, key):
    match = re.search(rb"^" + re.escape(key) + rb":\s*(\S+)", head, flags=re.MULTILINE)
    return None if match is None else match.group(1)


def _header_int(path, head, key):
    value = _header_value(head, key)
    if value is None or not value.isdigit() or len(value) > 15:
        raise ImageFormatError(f"{path}: corrupt CBF header (no valid {key.decode()})")
    return int(value)


def _checked_bytes(path, max_pixels=DEFAULT_MAX_FRAME_PIXELS):
    """The (decompressed) header and binary section after checking them.

    The header is read first; its frame size is checked against
    ``max_pixels`` and only as many bytes as the binary section declares are
    then read (or decompressed), so a compressed file cannot expand beyond
    what its declared frame needs.
    """
    opener = _OPEN.get(path.suffix.lower(), open)
    with reading(path, "compressed CBF" if opener is not open else "CBF"), opener(path, "rb") as fh:
        raw = fh.read(_MAX_HEADER_BYTES)
        start = raw.find(_BINARY_START)
        head = raw[: max(start, 0)]
        if start < 0 or b"--CIF-BINARY-FORMAT-SECTION--" not in head:
            raise ImageFormatError(
                f"{path}: not a CBF image file (no binary data section in its first {_MAX_HEADER_BYTES} bytes)"
            )
        size = _header_int(path, head, b"X-Binary-Size")
        shape = (_header_int(path, head, b"X-Binary-Size-Second-Dimension"),
                 _header_int(path, head, b"X-Binary-Size-Fastest-Dimension"))
        pixels = check_pixels(f"{path}: CBF header", shape, max_pixels)
        if size > pixels * _MAX_BYTES_PER_PIXEL:
            raise ImageFormatError(
                f"{path}: corrupt CBF header, X-Binary-Size {size} is more than {_MAX_BYTES_PER_PIXEL} bytes "
                f"per pixel of its {shape[0]} x {shape[1]} frame"
            )
        end = start + len(_BINARY_START) + size
        if end > len(raw):
            raw += fh.read(end - len(raw))
    body = raw[start + len(_BINARY_START) : end]
    if len(body) < size:
        raise ImageFormatError(
            f"{path}: truncated CBF file, binary section needs {size} bytes, found {len(body)}"
        )
    expected_md5 = _header_value(head, b"Content-MD5")
    if expected_md5 is not None and base64.b64encode(hashlib.md5(body).digest()) != expected_md5:
        raise ImageFormatError(f"{path}: corrupt CBF file, pixel data does not match its Content-MD5")
    return raw[:end]


_KEPT = threading.local()  # within kept(path): path, max_pixels, checked bytes, decoded image


@contextlib.contextmanager
def kept(path):
    """Within: this thread reads, checks and decodes ``path`` once for :func:`mask`, :func:`geometry` and
    :func:`read` (the decoded image goes to the first :func:`read`, which owns it)."""
    _KEPT.path, _KEPT.raw, _KEPT.image = os.fspath(path), None, None
    try:
        yield
    finally:
        _KEPT.path = _KEPT.raw = _KEPT.image = None


def _keeping(path, max_pixels):
    return getattr(_KEPT, "path", None) == os.fspath(path) and getattr(_KEPT, "max_pixels", None) == max_pixels


def _file_bytes(path, max_pixels):
    """The checked bytes of the file, read once within :func:`kept`."""
    if _keeping(path, max_pixels) and _KEPT.raw is not None:
        return _KEPT.raw
    raw = _checked_bytes(path, max_pixels)
    if getattr(_KEPT, "path", None) == os.fspath(path):
        _KEPT.raw, _KEPT.max_pixels, _KEPT.image = raw, max_pixels, None
    return raw


def _decode(path, raw):
    import fabio.cbfimage

    with reading(path, "CBF"), fabio.cbfimage.CbfImage() as image:
        image.read(io.BytesIO(raw))
        data = image.data
    if data is None or data.ndim != 2:
        raise ImageFormatError(f"{path}: CBF file holds no 2-D image")
    return as_native(data)


def read(path, frame=None, dataset=None, max_pixels=DEFAULT_MAX_FRAME_PIXELS):
    """Read the image of a CBF file as stored (Pilatus: int32 counts, gaps -1, bad -2)."""
    raw = _file_bytes(path, max_pixels)
    if _keeping(path, max_pixels) and _KEPT.image is not None:
        image, _KEPT.image = _KEPT.image, None  # handed out once: the caller owns it
        return image
    return _decode(path, raw)


def mask(path, max_pixels=DEFAULT_MAX_FRAME_PIXELS):
    """Pixels with negative values (Pilatus module gaps -1, bad pixels -2) or at or above ``Count_cutoff``."""
    raw = _file_bytes(path, max_pixels)
    data = _decode(path, raw)
    if _keeping(path, max_pixels):
        _KEPT.image = data  # for the read() that follows
    bad = data < 0
    cutoff = _count_cutoff(raw[: raw.find(_BINARY_START)])
    if cutoff is not None:
        bad |= data >= cutoff
    return bad


_NUMBER = rb"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"


def _header_number(head, pattern):
    match = re.search(pattern, head, flags=re.MULTILINE | re.IGNORECASE)
    return None if match is None else match.groups()


def _count_cutoff(head):
    """The ``# Count_cutoff`` of a miniCBF header (counts at or above it are saturated), or None."""
    cutoff = _header_number(head, rb"^#\s*Count_cutoff\s+" + _NUMBER)
    if cutoff is None:
        return None
    value = float(cutoff[0])
    return value if np.isfinite(value) and value > 0 else None


def geometry(path, max_pixels=DEFAULT_MAX_FRAME_PIXELS):
    """Pixel size, distance, wavelength, beam centre and saturation from a miniCBF (Pilatus/Eiger) header.

    Reads the ``# Pixel_size``, ``# Detector_distance``, ``# Wavelength``,
    ``# Beam_xy`` and ``# Count_cutoff`` (as ``saturation``, counts) lines;
    a value the header lacks is left out.
    """
    raw = _file_bytes(path, max_pixels)
    head = raw[: raw.find(_BINARY_START)]
    found = {}
    pixel = _header_number(head, rb"^#\s*Pixel_size\s+" + _NUMBER + rb"\s*(m|mm|um)\b")
    if pixel is not None:
        found["pixel_size_mm"] = float(pixel[0]) * LENGTH_TO_MM[pixel[1].decode().lower()]
    distance = _header_number(head, rb"^#\s*Detector_distance\s+" + _NUMBER + rb"\s*(m|mm)\b")
    if distance is not None:
        found["distance_mm"] = float(distance[0]) * LENGTH_TO_MM[distance[1].decode().lower()]
    wavelength = _header_number(head, rb"^#\s*Wavelength\s+" + _NUMBER + rb"\s*(A|nm)\b")
    if wavelength is not None:
        found["wavelength_A"] = float(wavelength[0]) * WAVELENGTH_TO_A[wavelength[1].decode().lower()]
    beam = _header_number(head, rb"^#\s*Beam_xy\s*\(\s*" + _NUMBER + rb"\s*,\s*" + _NUMBER + rb"\s*\)\s*pixels")
    if beam is not None:
        found["beam_center_px"] = (float(beam[0]), float(beam[1]))
    cutoff = _count_cutoff(head)
    if cutoff is not None:
        found["saturation"] = cutoff
    return found


def write(path, image, compression=None, mask=None, metadata=None):
    """Write an integer image as int32 byte-offset-compressed CBF; floats are refused."""
    import fabio.cbfimage

    reject_compression(path, "CBF", compression)
    image = check_writable(
        path, image, "CBF", _INTEGER_DTYPES,
        hint="CBF stores integer counts; round explicitly, e.g. np.rint(image).astype(np.int32)",
    )
    if image.size and (image.min() < _INT32.min or image.max() > _INT32.max):
        raise ValueError(
            f"{path}: CBF stores int32, but the image ({image.dtype}, shape {image.shape}) has values "
            f"in [{image.min()}, {image.max()}] outside [{_INT32.min}, {_INT32.max}]"
        )
    header = {str(key): str(value) for key, value in (metadata or {}).items()}
    with atomic_path(path) as tmp:
        fabio.cbfimage.CbfImage(data=image.astype(np.int32), header=header).write(str(tmp))


FORMAT = ImageFormat(name="CBF", read=read, write=write, mask=mask, geometry=geometry)
COMPRESSED_FORMAT = ImageFormat(name="compressed CBF", read=read, mask=mask, geometry=geometry)
