"""Read and write detector images: PGM, PNG, TIFF, CBF, HDF5 (NeXus/CXI), npy/npz; read MAR345, MarCCD /
Rayonix, SMV (ADSC, lab CCDs), Bruker and EDF through fabio.

The format is chosen from the file extension through a small registry
(extension -> format module), and every format module is imported only when
a file of its kind is used, so ``import diffranet.io`` stays light.

All readers return 2-D numpy arrays in native byte order.  A missing file
raises ``FileNotFoundError``; a truncated, corrupt or mislabelled file raises
:class:`ImageFormatError` (a ``ValueError``) whose message starts with the
file name; bad arguments raise ``ValueError``.  Writers validate dtype and
shape first and write through a temporary file in the same directory that is
renamed into place, so an interrupted write never leaves a partial file under
the final name.  See ``docs/io.md`` for the table of formats.
"""

from __future__ import annotations

import contextlib
import importlib
from pathlib import Path

from .._budget import DEFAULT_MAX_FRAME_PIXELS, BudgetError
from ._common import ImageFormatError, existing_file, select_frame

__all__ = [
    "DEFAULT_MAX_FRAME_PIXELS",
    "BudgetError",
    "ImageFormatError",
    "count_frames",
    "iter_frames",
    "read_geometry",
    "read_image",
    "read_mask",
    "read_once",
    "supported_extensions",
    "write_frames",
    "write_image",
]

# extension (lower case) -> (module in this package, name of its ImageFormat record)
_EXTENSIONS = {
    ".pgm": ("_pgm", "FORMAT"),
    ".png": ("_png", "FORMAT"),
    ".tif": ("_tiff", "FORMAT"),
    ".tiff": ("_tiff", "FORMAT"),
    ".cbf": ("_cbf", "FORMAT"),
    ".cbf.gz": ("_cbf", "COMPRESSED_FORMAT"),
    ".cbf.bz2": ("_cbf", "COMPRESSED_FORMAT"),
    ".h5": ("_hdf5", "FORMAT"),
    ".hdf5": ("_hdf5", "FORMAT"),
    ".nxs": ("_hdf5", "FORMAT"),
    ".cxi": ("_hdf5", "FORMAT"),
    ".npy": ("_numpy", "NPY_FORMAT"),
    ".npz": ("_numpy", "NPZ_FORMAT"),
    # other detectors' native formats, through fabio (read-only)
    ".img": ("_fabio", "FORMAT"),       # SMV: ADSC, Rigaku, lab CCDs
    ".mccd": ("_fabio", "FORMAT"),      # MarCCD / Rayonix
    ".sfrm": ("_fabio", "FORMAT"),      # Bruker
    ".edf": ("_fabio", "FORMAT"),       # ESRF data format
    **{f".mar{size}": ("_fabio", "FORMAT") for size in (1200, 1600, 1800, 2000, 2300, 2400, 3000, 3450)},
}


def supported_extensions():
    """Return the file extensions diffranet.io knows, sorted.

    Returns
    -------
    list of str
        Lower-case extensions including the dot; matching is case-insensitive.

    Examples
    --------
    >>> ".pgm" in supported_extensions()
    True
    """
    return sorted(_EXTENSIONS)


def _format_for(path):
    name = Path(path).name.lower()
    # longest match first, so that ".cbf.gz" wins over ".gz"
    for ext in sorted(_EXTENSIONS, key=len, reverse=True):
        if name.endswith(ext):
            module, record = _EXTENSIONS[ext]
            return getattr(importlib.import_module(f".{module}", __name__), record)
    raise ValueError(
        f"{path}: unknown image file extension {Path(path).suffix!r}; "
        f"supported: {' '.join(supported_extensions())}"
    )


@contextlib.contextmanager
def read_once(path):
    """Within, :func:`read_mask`, :func:`read_geometry`, :func:`read_image` and :func:`iter_frames` of ``path``
    in this thread share one read of it.

    For CBF files one read, one checksum and one decode serve the mask, the
    geometry and the image (``diffranet classify`` and ``watch`` ask for the
    three in turn); other formats read as usual. Errors are those of the
    readers, raised where they are called.
    """
    try:
        checked = existing_file(path)
        module = _EXTENSIONS.get(next((e for e in sorted(_EXTENSIONS, key=len, reverse=True)
                                       if checked.name.lower().endswith(e)), None), (None,))[0]
    except (OSError, ValueError):  # the readers report it
        module = None
    if module != "_cbf":
        yield
        return
    with importlib.import_module("._cbf", __name__).kept(checked):
        yield


def _open_format(path, dataset):
    """Check ``path`` exists, pick its format and check ``dataset`` applies."""
    path = existing_file(path)
    fmt = _format_for(path)
    if dataset is not None and not fmt.has_datasets:
        raise ValueError(f"{path}: dataset= applies to HDF5 and npz files only, not to {fmt.name}")
    return path, fmt


def _optional(path, fmt, reader, default, max_pixels):
    """``reader(path)``, or ``default`` for a format without that reader (a corrupt file still raises)."""
    if reader is None:
        fmt.read(path, 0, None, max_pixels)
        return default
    return reader(path, max_pixels)


def read_image(path, frame=None, dataset=None, *, max_frame_pixels=DEFAULT_MAX_FRAME_PIXELS):
    """Read one 2-D frame from an image file.

    Parameters
    ----------
    path : str or os.PathLike
        Image file; the format comes from the extension (case-insensitive):
        ``.pgm .png .tif .tiff .cbf .cbf.gz .cbf.bz2 .h5 .hdf5 .nxs .cxi .npy .npz``.
    frame : int, optional
        Index of the frame in a multi-frame file (HDF5 3-D stack, multi-page
        TIFF, 3-D npy/npz).  Required when the file holds more than one frame;
        ``None`` or ``0`` for single-frame files.
    dataset : str, optional
        HDF5 dataset path, or the array name in an ``.npz`` file.  By default
        HDF5 files are searched for ``/entry/data/data`` (NeXus), the signal
        of an ``NXdata`` group, ``/entry_1/data_1/data`` (CXI), and finally
        the only 2-D or 3-D numeric dataset; ``.npz`` files use ``data``.
    max_frame_pixels : int, default DEFAULT_MAX_FRAME_PIXELS (2**26)
        Largest frame (rows x columns) read; a file whose header or
        dataset declares a larger frame raises :class:`BudgetError` (a
        ``ValueError``) before anything of that size is allocated, and
        compressed CBF files are expanded only up to what such a frame needs.

    Returns
    -------
    numpy.ndarray
        The 2-D frame, in the dtype the file stores (PGM/PNG: uint8 or
        uint16; CBF: int32 with Pilatus gaps -1 and bad pixels -2).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ImageFormatError
        If ``path`` is not a regular file (a FIFO, a device, a symlink
        loop: refused without being opened), or if the file is truncated, corrupt, not of the format its extension
        says, or holds no 2-D/3-D image (a ``ValueError`` subclass; the
        message starts with the file name).
    ValueError
        For an unknown extension, a frame index out of range, ``frame``
        missing for a multi-frame file, or ``dataset`` given for a format
        without datasets.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "frame.pgm")
    ...     write_image(path, np.array([[0, 1, 2], [3, 4, 255]], dtype=np.uint8))
    ...     read_image(path)
    array([[  0,   1,   2],
           [  3,   4, 255]], dtype=uint8)
    """
    path, fmt = _open_format(path, dataset)
    if fmt.count is None:
        select_frame(path, frame, 1)
        return fmt.read(path, 0, None, max_frame_pixels)
    return fmt.read(path, frame, dataset, max_frame_pixels)


def read_mask(path, *, max_frame_pixels=DEFAULT_MAX_FRAME_PIXELS):
    """Read the pixel mask a file carries, ``True`` = pixel to ignore.

    Parameters
    ----------
    path : str or os.PathLike
        Image file.  Masks come from: the ``mask`` array of an ``.npz`` file;
        the NeXus ``pixel_mask`` of an HDF5 file (nonzero = bad; looked up at
        ``/entry/instrument/detector/pixel_mask``, CXI
        ``/entry_1/instrument_1/detector_1/mask``, else the only dataset
        named ``pixel_mask``); the negative pixels of a CBF file (Pilatus
        module gaps -1 and bad pixels -2).
    max_frame_pixels : int, default DEFAULT_MAX_FRAME_PIXELS (2**26)
        Largest frame (rows x columns) read; a file whose header or
        dataset declares a larger frame raises :class:`BudgetError` (a
        ``ValueError``) before anything of that size is allocated, and
        compressed CBF files are expanded only up to what such a frame needs.

    Returns
    -------
    numpy.ndarray of bool or None
        The 2-D mask, or ``None`` when the file carries none (PGM, PNG, TIFF,
        npy, and HDF5/npz files without a mask).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ImageFormatError
        If ``path`` is not a regular file (a FIFO, a device, a symlink
        loop: refused without being opened), or if the file is corrupt or its mask is not 2-D.
    ValueError
        For an unknown extension.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "frame.pgm")
    ...     write_image(path, np.zeros((2, 3), dtype=np.uint8))
    ...     read_mask(path) is None
    True
    """
    path, fmt = _open_format(path, None)
    return _optional(path, fmt, fmt.mask, None, max_frame_pixels)


def read_geometry(path, *, max_frame_pixels=DEFAULT_MAX_FRAME_PIXELS):
    """Read the experiment geometry a file's header records.

    Parameters
    ----------
    path : str or os.PathLike
        Image file. CBF headers (``# Pixel_size``, ``# Detector_distance``,
        ``# Wavelength``, ``# Beam_xy``) and NeXus / CXI metadata
        (``x_pixel_size``, ``detector_distance``, ``beam_center_x/y``,
        ``incident_wavelength`` or the source energy) carry it; other formats
        carry none.
    max_frame_pixels : int, default DEFAULT_MAX_FRAME_PIXELS (2**26)
        Largest frame (rows x columns) read; a file whose header or
        dataset declares a larger frame raises :class:`BudgetError` (a
        ``ValueError``) before anything of that size is allocated, and
        compressed CBF files are expanded only up to what such a frame needs.

    Returns
    -------
    dict
        Any of ``pixel_size_mm``, ``distance_mm``, ``wavelength_A`` and
        ``beam_center_px`` (``(x, y)`` in pixels from the outer corner of pixel
        (0, 0)) that the file records; empty when it records none.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ImageFormatError
        If ``path`` is not a regular file (a FIFO, a device, a symlink
        loop: refused without being opened), or if the file is corrupt.
    ValueError
        For an unknown extension.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "frame.pgm")
    ...     write_image(path, np.zeros((2, 3), dtype=np.uint8))
    ...     read_geometry(path)
    {}
    """
    path, fmt = _open_format(path, None)
    return _optional(path, fmt, fmt.geometry, {}, max_frame_pixels)


def count_frames(path, dataset=None):
    """Return the number of 2-D frames in an image file.

    Parameters
    ----------
    path : str or os.PathLike
        Image file (see :func:`read_image` for the extensions).
    dataset : str, optional
        HDF5 dataset path or ``.npz`` array name; auto-detected by default.

    Returns
    -------
    int
        1 for single-frame formats and 2-D datasets; ``n`` for an ``(n, H, W)``
        stack or an ``n``-page TIFF.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ImageFormatError
        If ``path`` is not a regular file (a FIFO, a device, a symlink
        loop: refused without being opened), or if the file is corrupt or holds no image.
    ValueError
        For an unknown extension.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "frame.png")
    ...     write_image(path, np.zeros((2, 3), dtype=np.uint16))
    ...     count_frames(path)
    1
    """
    path, fmt = _open_format(path, dataset)
    if fmt.count is None:
        fmt.read(path, 0, None, DEFAULT_MAX_FRAME_PIXELS)  # a corrupt file is not one frame
        return 1
    return fmt.count(path, dataset)


def iter_frames(path, dataset=None, *, max_frame_pixels=DEFAULT_MAX_FRAME_PIXELS):
    """Iterate over the 2-D frames of an image file, one at a time.

    The file is checked (and the dataset found) when this function is called;
    frames are then read lazily, so memory stays at about one frame however
    long the stack is.

    Parameters
    ----------
    path : str or os.PathLike
        Image file (see :func:`read_image` for the extensions).
    dataset : str, optional
        HDF5 dataset path or ``.npz`` array name; auto-detected by default.
    max_frame_pixels : int, default DEFAULT_MAX_FRAME_PIXELS (2**26)
        Largest frame (rows x columns) read; a file whose header or
        dataset declares a larger frame raises :class:`BudgetError` (a
        ``ValueError``) before anything of that size is allocated, and
        compressed CBF files are expanded only up to what such a frame needs.

    Returns
    -------
    iterator of numpy.ndarray
        The frames in file order; a single-frame file yields one frame.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ImageFormatError
        If ``path`` is not a regular file (a FIFO, a device, a symlink
        loop: refused without being opened), or if the file is corrupt or holds no image.
    ValueError
        For an unknown extension.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "frame.pgm")
    ...     write_image(path, np.ones((2, 3), dtype=np.uint8))
    ...     [frame.sum() for frame in iter_frames(path)]
    [np.uint64(6)]
    """
    path, fmt = _open_format(path, dataset)
    if fmt.frames is None:
        return iter((fmt.read(path, 0, None, max_frame_pixels),))
    return fmt.frames(path, dataset, max_frame_pixels)


def write_image(path, image, *, compression=None, mask=None, **metadata):
    """Write one 2-D image; the format comes from the extension.

    Parameters
    ----------
    path : str or os.PathLike
        Output file; its directory must exist.  Written atomically (temporary
        file in the same directory, then renamed).
    image : array_like, 2-D
        The image.  Dtypes per format: PGM and PNG uint8 or uint16 (PGM maxval
        255 or 65535, 16-bit big-endian); TIFF uint8, uint16, int16, uint32,
        int32, float32, float64; CBF any integer dtype whose values fit int32
        (stored as int32; floats are refused, round them explicitly); HDF5
        any integer or float32/float64; npy/npz any integer, float or bool.
    compression : str, optional
        HDF5 only: ``"gzip"`` (default), ``"lz4"`` (needs ``hdf5plugin``) or
        ``"none"``.  Other formats refuse the option.
    mask : array_like of bool, optional
        Pixel mask (``True`` = ignore), same shape as ``image``; stored by
        HDF5 (NeXus ``/entry/instrument/detector/pixel_mask``, nonzero = bad)
        and npz (array ``mask``) only.
    **metadata
        Stored with the image: PGM ``# key: value`` comment lines, PNG text
        chunks, TIFF JSON description, CBF header items, HDF5 attributes of
        the image dataset, extra npz arrays.  Not accepted for npy.

    Raises
    ------
    ValueError
        Naming the file, dtype and shape for an image the format cannot store
        (wrong number of dimensions, empty, float to PGM/PNG/CBF, bool,
        complex); for an unknown or read-only extension; for options the
        format does not take.
    FileNotFoundError
        If the output directory does not exist.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "frame.pgm")
    ...     write_image(path, np.array([[0, 1, 2], [3, 4, 5]], dtype=np.uint16))
    ...     with open(path, "rb") as fh:
    ...         fh.read()
    b'P5\\n3 2\\n65535\\n\\x00\\x00\\x00\\x01\\x00\\x02\\x00\\x03\\x00\\x04\\x00\\x05'
    """
    fmt = _format_for(path)
    if fmt.write is None:
        raise ValueError(f"{path}: {fmt.name} files can be read but not written")
    if mask is not None and not fmt.writes_mask:
        raise ValueError(f"{path}: {fmt.name} files cannot store a mask (use HDF5 or npz)")
    fmt.write(path, image, compression=compression, mask=mask, metadata=metadata)


def write_frames(path, frames, dataset="/entry/data/data", compression="gzip", *, mask=None, **metadata):
    """Write a stack of 2-D frames as a NeXus-style HDF5 file.

    The frames go to a resizable ``(n, rows, columns)`` dataset chunked one
    frame per chunk, under an ``NXentry``/``NXdata`` group pair (the group
    holding the dataset gets ``NX_class="NXdata"`` and ``signal``); an
    iterator is consumed one frame at a time, so memory stays at one frame.

    Parameters
    ----------
    path : str or os.PathLike
        Output file ending in ``.h5``, ``.hdf5``, ``.nxs`` or ``.cxi``;
        written atomically (temporary file, then renamed).
    frames : array_like of shape (n, rows, columns) or iterable of 2-D arrays
        All frames must share shape and dtype (any integer, float32 or
        float64).
    dataset : str, default "/entry/data/data"
        Path of the dataset in the file.
    compression : {"gzip", "lz4", "bitshuffle", "none"} or None, default "gzip"
        HDF5 filter; ``"lz4"`` and ``"bitshuffle"`` (Bitshuffle + LZ4, as
        Eiger/JUNGFRAU files) need ``hdf5plugin``; ``None`` means ``"none"``.
    mask : array_like of bool, optional
        Pixel mask of the frame shape, stored as the NeXus
        ``/entry/instrument/detector/pixel_mask`` (uint32, nonzero = bad).
    **metadata
        Attributes of the image dataset (numbers, strings, small arrays).

    Raises
    ------
    ValueError
        For a non-HDF5 extension, no frames, a frame of another shape or
        dtype, an unsupported dtype (bool, complex), an unknown compression,
        or metadata HDF5 cannot store.
    FileNotFoundError
        If the output directory does not exist.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "run.h5")
    ...     write_frames(path, (np.full((2, 3), i, dtype=np.uint16) for i in range(4)))
    ...     count_frames(path), int(read_image(path, frame=3)[0, 0])
    (4, 3)
    """
    fmt = _format_for(path)
    if fmt.write_frames is None:
        raise ValueError(f"{path}: write_frames writes HDF5 files (.h5 .hdf5 .nxs .cxi), not {fmt.name}")
    fmt.write_frames(
        path, frames, dataset, "none" if compression is None else compression, mask=mask, metadata=metadata
    )
