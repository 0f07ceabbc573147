"""Byte and pixel budgets checked before a file's claimed sizes are allocated, and the regular-file rule.

Only regular files are read (:func:`regular_file`): a FIFO or a device can
block a reader forever or never end. Files (images, model archives) state
their own sizes: a zip member its uncompressed size, an ``.npy`` header its
shape, an image header its dimensions. These helpers compare such claims with a budget *before* any
buffer of that size is made, so that a small file cannot make the reader
allocate gigabytes.
"""

from __future__ import annotations

import ast
import errno
import math
import os
import stat
from pathlib import Path

import numpy as np

__all__ = [
    "DEFAULT_MAX_FRAME_PIXELS",
    "BudgetError",
    "NotRegularFileError",
    "regular_file",
    "check_pixels",
    "check_zip_members",
    "npy_header",
    "zip_member_npy",
]

#: Default largest frame (pixels) a reader accepts: 2**26 = 67,108,864 admits the largest detectors
#: in use (Eiger2 X 16M: 4148 x 4362 = 18.1 M; JUNGFRAU 16M; Rayonix MX340-HS unbinned: 7680 x 7680
#: = 59.0 M pixels) while refusing a header claiming, say, 65535 x 65535.
DEFAULT_MAX_FRAME_PIXELS = 2**26


class BudgetError(ValueError):
    """A file claims more pixels or bytes than the budget allows."""


class NotRegularFileError(ValueError):
    """A path names a FIFO, a device, a socket or a symlink loop instead of a regular file."""


_FILE_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
               (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def regular_file(path, what="file"):
    """Return ``path`` as a ``Path`` if it names a regular file (symlinks followed), without opening it.

    FIFOs, devices and sockets are refused before any read: reading them can
    block forever or never end.

    Raises
    ------
    ValueError
        If ``path`` is not a str or path-like.
    FileNotFoundError, IsADirectoryError
        If nothing is there, or a directory (the message names ``what``).
    NotRegularFileError
        For anything else that is not a regular file, or a symlink loop.
    """
    try:
        path = Path(os.fspath(path))
    except TypeError as exc:
        raise ValueError(f"path must be a str or os.PathLike, got {path!r}") from exc
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, f"No such {what}", str(path)) from None
    except OSError as exc:  # a symlink loop, a name too long, a component that is not a directory
        raise NotRegularFileError(f"{path}: cannot be opened ({exc.strerror or exc})") from None
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, f"Is a directory, not a {what}", str(path))
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _FILE_KINDS if test(mode)), "not a regular file")
        raise NotRegularFileError(f"{path}: is {kind}, not a regular file; only regular files are read")
    return path


def check_pixels(what, shape, max_pixels):
    """Raise :class:`BudgetError` if a frame of ``shape`` has more than ``max_pixels`` pixels.

    Parameters
    ----------
    what : str
        Names the claim in the message (``"path: TIFF page 0"``).
    shape : tuple of int
        The claimed shape (the last two axes are one frame).
    max_pixels : int
        The budget.

    Returns
    -------
    int
        The number of pixels of one frame.
    """
    pixels = math.prod(int(s) for s in shape[-2:])
    if pixels > max_pixels:
        raise BudgetError(
            f"{what} claims a frame of {' x '.join(str(int(s)) for s in shape[-2:])} = {pixels:,} pixels, more than "
            f"the limit of {max_pixels:,} (a larger max_frame_pixels admits it if it is real)"
        )
    return pixels


def check_zip_members(what, archive, max_bytes):
    """Raise :class:`BudgetError` if the members of a zip archive claim more than ``max_bytes`` in total.

    ``zipfile`` stops reading a member at its declared size (and then fails its
    CRC check), so checking the declared sizes bounds what extraction can allocate.
    """
    total = sum(info.file_size for info in archive.infolist())
    if total > max_bytes:
        raise BudgetError(
            f"{what} expands to {total:,} bytes, more than the limit of {max_bytes:,} bytes"
        )
    return total


def npy_header(stream):
    """``(shape, dtype, fortran_order)`` of an ``.npy`` stream, read from its header only.

    Raises
    ------
    ValueError
        If the stream does not start with a valid ``.npy`` header.
    """
    version = np.lib.format.read_magic(stream)
    if version not in ((1, 0), (2, 0), (3, 0)):
        raise ValueError(f"unknown .npy format version {version}")
    length_bytes = 2 if version == (1, 0) else 4
    length = int.from_bytes(stream.read(length_bytes), "little")
    if length > 65536:
        raise ValueError(f".npy header of {length} bytes is longer than any numpy writes")
    header = stream.read(length)
    try:
        fields = ast.literal_eval(header.decode("latin1" if version != (3, 0) else "utf8"))
        shape = tuple(int(s) for s in fields["shape"])
        dtype = np.lib.format.descr_to_dtype(fields["descr"])
        fortran = bool(fields["fortran_order"])
    except (ValueError, SyntaxError, TypeError, KeyError, IndexError, MemoryError, RecursionError) as exc:
        raise ValueError(f"corrupt .npy header ({type(exc).__name__})") from exc
    if dtype.hasobject or any(s < 0 for s in shape):
        raise ValueError(f"unsupported .npy header {header[:200]!r}")
    return shape, dtype, fortran


def zip_member_npy(archive, info, max_bytes, what):
    """Check the ``.npy`` header of a zip member against its size and ``max_bytes``; returns its shape and dtype."""
    with archive.open(info) as member:
        shape, dtype, _ = npy_header(member)
        offset = member.tell()
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > max_bytes:
        raise BudgetError(f"{what} claims {nbytes:,} bytes ({shape} {dtype}), more than the limit of {max_bytes:,}")
    if nbytes + offset > info.file_size:
        raise ValueError(f"{what} claims {nbytes:,} bytes ({shape} {dtype}) but holds {info.file_size - offset:,}")
    return shape, dtype

