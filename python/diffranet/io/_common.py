"""Pieces shared by the format modules: the error type, the format record,
path checks, frame selection and write-time validation; files are written
through :func:`diffranet._atomic.atomic_path`."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from .._atomic import atomic_path  # noqa: F401  (the format modules write through it)
from .._budget import (  # noqa: F401  (DEFAULT_MAX_FRAME_PIXELS, check_pixels: used by the format modules)
    DEFAULT_MAX_FRAME_PIXELS,
    BudgetError,
    NotRegularFileError,
    check_pixels,
    regular_file,
)
from .._validation import check_int


class ImageFormatError(ValueError):
    """A file is truncated, corrupt or not in the format its extension says.

    The message always starts with the file name.  It is a ``ValueError``, so
    ``except ValueError`` catches it together with bad arguments.
    """


@dataclass(frozen=True)
class ImageFormat:
    """What one file format can do; the package keeps one record per extension.

    ``read(path, frame, dataset, max_pixels)`` returns one 2-D frame; every
    reader (``read``, ``frames``, ``mask``, ``geometry``) takes ``max_pixels``
    and refuses a frame whose declared size exceeds it before reading it.  Single-frame formats
    leave ``count``, ``frames`` and ``mask`` as ``None``: the dispatcher then
    treats the file as one frame without a mask.  ``write`` is ``None`` for a
    read-only format; otherwise ``write(path, image, compression, mask,
    metadata)`` validates the image and writes it atomically.  Only formats
    holding stacks define ``write_frames``. ``geometry(path)`` returns the
    header geometry (:func:`diffranet.io.read_geometry`) of formats that carry one.
    """

    name: str
    read: Callable
    write: Optional[Callable] = None
    count: Optional[Callable] = None
    frames: Optional[Callable] = None
    mask: Optional[Callable] = None
    has_datasets: bool = False
    writes_mask: bool = False
    write_frames: Optional[Callable] = None
    geometry: Optional[Callable] = None


def existing_file(path):
    """Return ``path`` as a ``Path`` if it names an existing regular file (symlinks followed).

    FIFOs, devices and sockets are refused (:class:`ImageFormatError`) without
    being opened: reading them can block forever or never end.
    """
    try:
        return regular_file(path, "image file")
    except NotRegularFileError as exc:
        raise ImageFormatError(str(exc)) from None


def select_frame(path, frame, n_frames):
    """Return the index of the frame to read from a file holding ``n_frames``.

    ``frame=None`` is allowed only when the file holds a single frame.
    """
    if frame is None:
        if n_frames == 1:
            return 0
        raise ValueError(
            f"{path}: the file holds {n_frames} frames; pass frame= (0 to {n_frames - 1}) "
            "to choose one, or use iter_frames() to read them all"
        )
    frame = check_int("frame", frame, minimum=0)
    if frame >= n_frames:
        raise ValueError(
            f"{path}: frame index {frame} is out of range; the file holds {n_frames} "
            f"frame{'s' if n_frames != 1 else ''} (0 to {n_frames - 1})"
        )
    return frame


def count_stack(path, array, what, kinds="uif"):
    """Number of frames in a 2-D image or 3-D ``(frames, rows, columns)`` stack.

    ``array`` is anything with ``dtype``, ``ndim`` and ``shape`` (numpy array,
    memory map, h5py dataset); ``what`` names it in the error message.
    """
    if array.dtype.kind not in kinds or array.ndim not in (2, 3):
        raise ImageFormatError(
            f"{path}: {what} has dtype {array.dtype}, shape {array.shape}; expected a numeric 2-D image "
            "or 3-D (frames, rows, columns) stack"
        )
    n_frames = 1 if array.ndim == 2 else array.shape[0]
    if n_frames == 0:
        raise ImageFormatError(f"{path}: {what} holds no frames (shape {array.shape})")
    return n_frames


def stack_frame(path, array, index, max_pixels):
    """Frame ``index`` of what :func:`count_stack` accepted, as a native-order in-memory array.

    The frame's declared shape is checked against ``max_pixels`` before it is read.
    """
    check_pixels(f"{path}: {getattr(array, 'name', None) or 'the array'}", array.shape, max_pixels)
    return as_native(np.array(array[()] if array.ndim == 2 else array[index]))


@contextmanager
def reading(path, kind):
    """Turn any error a third-party reader raises into an ``ImageFormatError``
    naming ``path``, chained to the original exception.

    Errors that are not about the file contents (permissions, memory) pass
    through unchanged.
    """
    try:
        yield
    except (ImageFormatError, BudgetError, PermissionError, IsADirectoryError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - readers raise many unrelated types
        raise ImageFormatError(f"{path}: not a readable {kind} file ({type(exc).__name__}: {exc})") from exc


def describe(image):
    """``'dtype uint16, shape (2, 3)'`` for error messages."""
    return f"dtype {image.dtype}, shape {image.shape}"


def as_native(image):
    """Return ``image`` as an array in native byte order (no copy if it already is)."""
    image = np.asarray(image)
    return image.astype(image.dtype.newbyteorder("="), copy=False)


def check_writable(path, image, kind, dtypes, ndim=2, hint=""):
    """Return ``image`` as a native-order array if ``kind`` can store it.

    Raises ``ValueError`` naming the file, the dtype and the shape when the
    array has the wrong number of dimensions, is empty, or has a dtype outside
    ``dtypes``.
    """
    image = as_native(image)
    if image.ndim != ndim or image.size == 0:
        raise ValueError(
            f"{path}: {kind} needs a non-empty {ndim}-D image, got {describe(image)}"
        )
    if image.dtype not in tuple(np.dtype(d) for d in dtypes):
        names = ", ".join(str(np.dtype(d)) for d in dtypes)
        raise ValueError(
            f"{path}: {kind} cannot store {describe(image)}; supported dtypes: {names}"
            + (f". {hint}" if hint else "")
        )
    return image


def check_text_metadata(path, kind, metadata):
    """Return ``metadata`` as ``{str: str}``, refusing keys or values that the
    text-based headers (PGM comments, PNG text chunks) cannot hold."""
    text = {}
    for key, value in metadata.items():
        value = str(value)
        if not str(key) or any(c in str(key) + value for c in "\r\n"):
            raise ValueError(
                f"{path}: {kind} metadata keys must be non-empty and keys and values "
                f"must be single-line text, got {key!r}: {value!r}"
            )
        text[str(key)] = value
    return text


def reject_compression(path, kind, compression):
    """Raise unless ``compression`` is ``None`` (the format has no such option)."""
    if compression is not None:
        raise ValueError(f"{path}: {kind} files take no compression option, got {compression!r}")


# unit name (lower case) -> factor to the target unit, for header values
LENGTH_TO_MM = {"m": 1e3, "mm": 1.0, "um": 1e-3, "micron": 1e-3, "microns": 1e-3, "cm": 10.0}
WAVELENGTH_TO_A = {"a": 1.0, "angstrom": 1.0, "angstroms": 1.0, "nm": 10.0, "m": 1e10}
