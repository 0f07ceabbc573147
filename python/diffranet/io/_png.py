"""PNG through Pillow: 8-bit and 16-bit greyscale."""

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
    reading,
    reject_compression,
)

# Pillow mode of a greyscale PNG -> dtype of the returned array
_GREY_MODES = {"L": np.uint8, "I;16": np.uint16, "I;16B": np.uint16, "I": np.uint16}


def read(path, frame=None, dataset=None, max_pixels=DEFAULT_MAX_FRAME_PIXELS):
    """Read an 8-bit (uint8) or 16-bit (uint16) greyscale PNG; the header's size is checked first."""
    from PIL import Image

    with reading(path, "PNG"), Image.open(path) as im:
        if im.format != "PNG":
            raise ImageFormatError(f"{path}: not a PNG file (Pillow identifies it as {im.format})")
        check_pixels(f"{path}: PNG header", (im.height, im.width), max_pixels)
        im.load()
        dtype = _GREY_MODES.get(im.mode)
        if dtype is None:
            raise ImageFormatError(
                f"{path}: PNG mode {im.mode!r} is not a greyscale image; diffranet reads 8-bit "
                "and 16-bit greyscale PNG (convert colour images to greyscale first)"
            )
        return np.array(im).astype(dtype)


def write(path, image, compression=None, mask=None, metadata=None):
    """Write uint8 (8-bit) or uint16 (16-bit) greyscale; metadata as PNG text chunks."""
    from PIL import Image, PngImagePlugin

    reject_compression(path, "PNG", compression)
    image = check_writable(
        path, image, "PNG", (np.uint8, np.uint16),
        hint="Convert explicitly, e.g. np.clip(image, 0, 65535).astype(np.uint16)",
    )
    info = PngImagePlugin.PngInfo()
    for key, value in check_text_metadata(path, "PNG", metadata or {}).items():
        info.add_text(key, value)
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG", pnginfo=info)


FORMAT = ImageFormat(name="PNG", read=read, write=write)
