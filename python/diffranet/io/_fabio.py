"""Other detectors' native formats, read through fabio: MAR345 image plates, MarCCD / Rayonix, SMV (ADSC,
Rigaku d*TREK and the lab CCDs that write it), Bruker, EDF.

Read-only: one 2-D frame per file, as stored. What the header says of the geometry is read where
the format names it unambiguously (in each format's own units):

* SMV (``.img``): ``PIXEL_SIZE`` (mm), ``DISTANCE`` (mm), ``WAVELENGTH`` (A), ``SATURATED_VALUE``;
* MAR345 (``.mar1200`` ... ``.mar3450``): ``PIXEL LENGTH`` (um), ``DISTANCE`` (mm),
  ``WAVELENGTH`` (A).

Beam centres are left out: the formats disagree on their axes and origins, and the frame's
centre (the default) is close for these detectors; give ``--beam-center-px`` when it is not.
Unsigned 16-bit frames without a stated saturation saturate at 65535 (the counter's overflow).
"""

from __future__ import annotations

import os
import re

import numpy as np

from ._common import (
    DEFAULT_MAX_FRAME_PIXELS,
    ImageFormat,
    ImageFormatError,
    as_native,
    check_pixels,
    reading,
)

# a detector frame file holds at most this many bytes per pixel (float64 EDF), plus its header
_MAX_BYTES_PER_PIXEL = 8
_MAX_HEADER_BYTES = 1 << 20
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def _open(path, max_pixels):
    """The fabio image of ``path``, after checking that its size fits ``max_pixels``."""
    import fabio

    size = os.path.getsize(path)
    if size > max_pixels * _MAX_BYTES_PER_PIXEL + _MAX_HEADER_BYTES:
        raise ImageFormatError(f"{path}: {size} bytes, more than a frame of at most {max_pixels} pixels holds")
    with reading(path, "detector image"):
        image = fabio.open(os.fspath(path))
        data = image.data
    if data is None or np.ndim(data) != 2:
        raise ImageFormatError(f"{path}: holds no 2-D image")
    check_pixels(f"{path}: image", data.shape, max_pixels)
    return image, as_native(data)


def read(path, frame=None, dataset=None, max_pixels=DEFAULT_MAX_FRAME_PIXELS):
    """The frame of a MAR345, MarCCD, SMV, Bruker or EDF file, as stored."""
    return _open(path, max_pixels)[1]


def _number(header, key, pattern=None):
    text = header.get(key)
    if text is None:
        return None
    match = re.search(pattern or rf"^\s*({_NUMBER})", str(text))
    if match is None:
        return None
    value = float(match.group(1))
    return value if np.isfinite(value) and value > 0 else None


def geometry(path, max_pixels=DEFAULT_MAX_FRAME_PIXELS):
    """Pixel size, distance, wavelength and saturation from the header, where the format names them."""
    image, data = _open(path, max_pixels)
    header = {str(k).upper(): v for k, v in dict(image.header).items()}
    found = {}
    pixel_mm = _number(header, "PIXEL_SIZE")  # SMV: mm
    if pixel_mm is None:
        pixel_um = _number(header, "PIXEL", rf"LENGTH\s+({_NUMBER})")  # MAR345: um
        pixel_mm = None if pixel_um is None else pixel_um * 1e-3
    values = {"pixel_size_mm": pixel_mm, "distance_mm": _number(header, "DISTANCE"),
              "wavelength_A": _number(header, "WAVELENGTH")}
    found.update({k: v for k, v in values.items() if v is not None})
    saturation = _number(header, "SATURATED_VALUE")
    if saturation is None and data.dtype == np.uint16:
        saturation = 65535.0
    if saturation is not None:
        found["saturation"] = saturation
    return found


FORMAT = ImageFormat("detector image (fabio)", read, geometry=geometry)
