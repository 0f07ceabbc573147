"""TIFF through tifffile: one page per frame; multi-page files are stacks."""

from __future__ import annotations

import numpy as np

from ._common import (
    DEFAULT_MAX_FRAME_PIXELS,
    ImageFormat,
    ImageFormatError,
    as_native,
    atomic_path,
    check_pixels,
    check_writable,
    reading,
    reject_compression,
    select_frame,
)

_DTYPES = (np.uint8, np.uint16, np.int16, np.uint32, np.int32, np.float32, np.float64)


def _page_image(path, page, index, max_pixels):
    """Page ``index`` as a 2-D array; its declared shape is checked before it is decoded."""
    if len(page.shape) != 2:
        raise ImageFormatError(
            f"{path}: TIFF page {index} holds an array of shape {page.shape}, not a 2-D greyscale image"
        )
    check_pixels(f"{path}: TIFF page {index}", page.shape, max_pixels)
    return as_native(page.asarray())


def count(path, dataset=None):
    """Number of pages."""
    import tifffile

    with reading(path, "TIFF"), tifffile.TiffFile(path) as tif:
        return len(tif.pages)


def read(path, frame=None, dataset=None, max_pixels=DEFAULT_MAX_FRAME_PIXELS):
    """Read one page as a 2-D array of the stored dtype."""
    import tifffile

    with reading(path, "TIFF"), tifffile.TiffFile(path) as tif:
        index = select_frame(path, frame, len(tif.pages))
        return _page_image(path, tif.pages[index], index, max_pixels)


def frames(path, dataset=None, max_pixels=DEFAULT_MAX_FRAME_PIXELS):
    """Check the file now, then yield its pages one at a time."""
    n_pages = count(path)

    def generate():
        import tifffile

        with reading(path, "TIFF"), tifffile.TiffFile(path) as tif:
            for index in range(n_pages):
                yield _page_image(path, tif.pages[index], index, max_pixels)

    return generate()


def write(path, image, compression=None, mask=None, metadata=None):
    """Write one page; metadata goes into tifffile's JSON image description."""
    import tifffile

    reject_compression(path, "TIFF", compression)
    image = check_writable(path, image, "TIFF", _DTYPES)
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, image, metadata=dict(metadata or {}))


FORMAT = ImageFormat(name="TIFF", read=read, write=write, count=count, frames=frames)
