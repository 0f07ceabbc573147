"""Reading image files for classification: files -> frames, with their masks and header geometry.

:func:`frame_files` expands directories, :func:`iter_file_frames` reads files
one frame at a time with each file's mask and header geometry, and
:func:`frame_geometry` combines the geometry sources. The frames then go
through the same pipeline as a detector stream's
(:func:`diffranet.live.files.classify_files`, ``diffranet classify``).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re

import numpy as np

from .. import io as dio
from .geometry import FrameGeometry

__all__ = ["FileError", "iter_file_frames", "frame_files", "frame_geometry", "usable_mask", "failure_message"]

#: A DECTRIS data file, ``<run>_data_NNNNNN.h5``: group 1 is the run, whose master file links it.
_DATA_FILE = re.compile(r"(.+)_data_\d{6}\.h5")


def _linked_by_master(name, masters):
    """Whether ``name`` is a data file of one of the runs ``masters`` names."""
    match = _DATA_FILE.fullmatch(name)
    return match is not None and match[1] in masters


_GEOMETRY_KEYS = ("pixel_size_mm", "distance_mm", "wavelength_A", "beam_center_px")


@dataclasses.dataclass
class FileError:
    """A file (or a frame of it) that could not be read."""

    file: str
    message: str
    frame: int = None


def frame_geometry(header=None, detector=None, overrides=None):
    """Combine geometry sources: file header, then detector file, then explicit values.

    Parameters
    ----------
    header : dict, optional
        From :func:`diffranet.io.read_geometry`.
    detector : DetectorSpec, optional
    overrides : dict, optional
        Any of ``pixel_size_mm``, ``distance_mm``, ``wavelength_A``,
        ``beam_center_px`` (None values are ignored).

    Returns
    -------
    geometry : FrameGeometry or None
        When pixel size, distance and wavelength are all known.
    beam_center_px : tuple or None
        The beam centre, for binning and cropping when there is no geometry.
    """
    values = {}
    if header:
        values.update({k: v for k, v in header.items() if k in _GEOMETRY_KEYS})
    if detector is not None:
        values.update({k: getattr(detector, k) for k in _GEOMETRY_KEYS if getattr(detector, k) is not None})
    if overrides:
        values.update({k: v for k, v in overrides.items() if k in _GEOMETRY_KEYS and v is not None})
    beam = values.get("beam_center_px")
    beam = None if beam is None else tuple(beam)
    if all(k in values for k in _GEOMETRY_KEYS[:3]):
        return FrameGeometry(values["pixel_size_mm"], values["distance_mm"], values["wavelength_A"], beam), beam
    return None, beam


def frame_files(paths):
    """The files to classify: each path itself, or for a directory its image files, sorted by name.

    Parameters
    ----------
    paths : iterable of path-like
        Files and directories.

    Yields
    ------
    str or FileError
        File paths: directories are replaced by the regular files (and
        symlinks to them) directly inside them whose extension
        :mod:`diffranet.io` reads, in name order (the data files of a DECTRIS
        master file in the directory are read through it, not again on
        their own); other paths are passed on
        unchanged (a missing one gives its error when read). A directory
        that cannot be listed gives a :class:`FileError`.
    """
    extensions = tuple(dio.supported_extensions())
    for path in paths:
        path = os.fspath(path)
        if not os.path.isdir(path):
            yield path
            continue
        try:
            listing = os.listdir(path)
        except OSError as exc:
            yield FileError(path, f"{path}: cannot list the directory ({exc.strerror or exc})")
            continue
        names = sorted(name for name in listing if name.lower().endswith(extensions) and not name.startswith("."))
        # a DECTRIS master file reads its data files' frames: those files are not read again on their own
        masters = {name[: -len("_master.h5")] for name in names if name.endswith("_master.h5")}
        names = [name for name in names if not _linked_by_master(name, masters)]
        for name in names:
            full = os.path.join(path, name)
            if not os.path.isdir(full):
                yield full


def failure_message(path, exc, frame=None):
    """One line naming the file (and frame) and what went wrong."""
    where = path if frame is None else f"{path}: frame {frame}"
    if isinstance(exc, MemoryError):
        text = "not enough memory to read it" + (f" ({exc})" if str(exc) else "")
    else:
        text = str(exc) or type(exc).__name__
        if text.startswith(f"{path}: "):
            text = text[len(path) + 2:]
    return f"{where}: {text}"


def iter_file_frames(paths, *, max_frame_pixels=dio.DEFAULT_MAX_FRAME_PIXELS):
    """Every frame of every file, one in memory at a time.

    Parameters
    ----------
    paths : iterable of path-like (or FileError, passed on)
    max_frame_pixels : int, default diffranet.io.DEFAULT_MAX_FRAME_PIXELS
        Largest frame read (see :func:`diffranet.io.read_image`).

    Yields
    ------
    (path, index, frame, mask, header) or FileError
        ``mask`` is the file's pixel mask (or None) and ``header`` its header
        geometry (:func:`diffranet.io.read_geometry`). A file that cannot be
        read, for whatever reason (unreadable, damaged, too large, out of
        memory), yields one :class:`FileError` and the next file follows.
    """
    limit = {"max_frame_pixels": max_frame_pixels}
    for path in paths:
        if isinstance(path, FileError):
            yield path
            continue
        path = str(path)
        index = None
        try:
            with dio.read_once(path):  # a CBF file: one read and decode for its mask, geometry and image
                mask = dio.read_mask(path, **limit)
                header = dio.read_geometry(path, **limit)
                frames = dio.iter_frames(path, **limit)
                first = next(frames, None)
            for index, frame in enumerate(() if first is None else itertools.chain([first], frames)):
                if mask is not None and mask.shape != frame.shape:
                    raise dio.ImageFormatError(f"{path}: mask shape {mask.shape} differs from frame {frame.shape}")
                yield path, index, frame, mask, header
        except Exception as exc:  # noqa: BLE001 - any failure of one file is that file's error record
            frame = None if index is None else index + 1  # the frame that failed follows the last one read
            yield FileError(path, failure_message(path, exc), frame)


def usable_mask(frame, mask, detector):
    """The frame's mask with its NaN pixels added (in a file, NaN marks a pixel without data).

    Raises
    ------
    ValueError
        Why the frame gets no verdict: a shape the detector cannot have,
        infinite values, or no finite value outside its mask.
    """
    if detector is not None and tuple(frame.shape) != tuple(detector.shape):
        raise ValueError(f"{frame.shape[0]} x {frame.shape[1]} pixels, but the detector {detector.name} has "
                         f"{detector.shape[0]} x {detector.shape[1]}")
    if frame.dtype.kind not in "fc":
        return mask
    finite = np.isfinite(frame)  # the one pass over the pixels; the rest only when some are not finite
    if not finite.all():
        if np.isinf(frame).any():
            raise ValueError("holds infinite values")
        mask = ~finite if mask is None else (np.asarray(mask, bool) | ~finite)
    if mask is not None and np.all(mask):
        raise ValueError("holds no finite value outside its mask")
    return mask
