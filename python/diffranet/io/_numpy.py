"""numpy ``.npy`` (one array) and ``.npz`` (array ``data``, optional ``mask``) files.

``.npy`` stacks are memory-mapped, so frames are read one at a time; an
``.npz`` member is decompressed as a whole when first used, after its
header's shape has been checked against the pixel budget (at most 8 bytes
per pixel of the largest frame allowed).  Pickled
(object) arrays are never loaded.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from .._budget import zip_member_npy
from ._common import (
    DEFAULT_MAX_FRAME_PIXELS,
    ImageFormat,
    ImageFormatError,
    atomic_path,
    check_pixels,
    check_writable,
    count_stack,
    reading,
    reject_compression,
    select_frame,
    stack_frame,
)

_DTYPES = (
    np.bool_, np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64,
    np.float16, np.float32, np.float64,
)


def _load_npy(path):
    with reading(path, "npy"):
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    return array, count_stack(path, array, "the array", kinds="biuf")


# an npz member is expanded whole: its declared size may be that of one float64 frame of the budget
_NPZ_BYTES_PER_PIXEL = 8


@contextmanager
def _open_npz(path):
    # np.load leaks its file handle when the zip directory is corrupt; own the handle here
    with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as archive:
        yield archive


def _npz_header(path, archive, name, max_pixels):
    """``(shape, dtype)`` of member ``name`` from its header, checked against the budget before it is expanded."""
    info = archive.zip.getinfo(f"{name}.npy")
    shape, dtype = zip_member_npy(archive.zip, info, max_pixels * _NPZ_BYTES_PER_PIXEL, f"{path}: array {name!r}")
    if len(shape) >= 2:
        check_pixels(f"{path}: array {name!r}", shape, max_pixels)
    return shape, dtype


def _load_npz_member(path, name, max_pixels):
    name = "data" if name is None else name
    with reading(path, "npz"), _open_npz(path) as archive:
        if name not in archive.files:
            raise ImageFormatError(f"{path}: no array {name!r} in the npz file; it holds {archive.files}")
        _npz_header(path, archive, name, max_pixels)
        array = archive[name]
    return array, count_stack(path, array, f"array {name!r}", kinds="biuf")


def _reader(load):
    """read/count/frames functions over ``load(path, dataset, max_pixels) -> (array, n_frames)``."""

    def read(path, frame=None, dataset=None, max_pixels=DEFAULT_MAX_FRAME_PIXELS):
        array, n_frames = load(path, dataset, max_pixels)
        return stack_frame(path, array, select_frame(path, frame, n_frames), max_pixels)

    def count(path, dataset=None):
        return load(path, dataset, DEFAULT_MAX_FRAME_PIXELS)[1]

    def frames(path, dataset=None, max_pixels=DEFAULT_MAX_FRAME_PIXELS):
        array, n_frames = load(path, dataset, max_pixels)
        return (stack_frame(path, array, index, max_pixels) for index in range(n_frames))

    return read, count, frames


def npz_mask(path, max_pixels=DEFAULT_MAX_FRAME_PIXELS):
    """The ``mask`` array as bool, or None if the file has none."""
    with reading(path, "npz"), _open_npz(path) as archive:
        if "mask" not in archive.files:
            return None
        mask_shape, _ = _npz_header(path, archive, "mask", max_pixels)
        shape = _npz_header(path, archive, "data", max_pixels)[0][-2:] if "data" in archive.files else mask_shape
        if len(mask_shape) != 2 or tuple(mask_shape) != tuple(shape):
            raise ImageFormatError(
                f"{path}: mask has shape {mask_shape}, expected a 2-D mask of the image shape {shape}"
            )
        mask = archive["mask"]
    return mask.astype(bool)


def write_npy(path, image, compression=None, mask=None, metadata=None):
    """Write one 2-D array; npy has no room for metadata."""
    reject_compression(path, "npy", compression)
    if metadata:
        raise ValueError(f"{path}: npy files cannot store metadata {sorted(metadata)}; use npz or HDF5")
    image = check_writable(path, image, "npy", _DTYPES)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, image, allow_pickle=False)


def write_npz(path, image, compression=None, mask=None, metadata=None):
    """Write ``data`` (and ``mask``, and one array per metadata item), compressed."""
    reject_compression(path, "npz", compression)
    arrays = {"data": check_writable(path, image, "npz", _DTYPES)}
    if mask is not None:
        mask = np.asarray(mask)
        if mask.dtype != bool or mask.shape != arrays["data"].shape:
            raise ValueError(
                f"{path}: mask must be a bool array of the image shape {arrays['data'].shape}, "
                f"got dtype {mask.dtype}, shape {mask.shape}"
            )
        arrays["mask"] = mask
    for key, value in (metadata or {}).items():
        value = np.asarray(value)
        if key in arrays or value.dtype.kind == "O":
            raise ValueError(f"{path}: npz metadata {key}={value!r} must be a plain array under a new name")
        arrays[key] = value
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)


_read_npy, _count_npy, _frames_npy = _reader(lambda path, dataset, max_pixels: _load_npy(path))
_read_npz, _count_npz, _frames_npz = _reader(_load_npz_member)

NPY_FORMAT = ImageFormat(name="npy", read=_read_npy, write=write_npy, count=_count_npy, frames=_frames_npy)
NPZ_FORMAT = ImageFormat(
    name="npz", read=_read_npz, write=write_npz, count=_count_npz, frames=_frames_npz, mask=npz_mask,
    has_datasets=True, writes_mask=True,
)
