"""Classify every frame of image files: the source (files -> frames) and the batching.

:func:`iter_file_frames` reads files one frame at a time with each file's mask
and header geometry; :func:`classify_files` preprocesses each frame as it is
read, scores frames in batches, and yields one record per frame (or per
unreadable file) for the caller to write out.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import time

import numpy as np

from .. import io as dio
from .geometry import FrameGeometry
from .preprocess import preprocess

__all__ = ["FrameRecord", "FileError", "iter_file_frames", "classify_files", "frame_files", "frame_geometry",
           "Summary"]

_GEOMETRY_KEYS = ("pixel_size_mm", "distance_mm", "wavelength_A", "beam_center_px")


@dataclasses.dataclass
class FileError:
    """A file (or a frame of it) that could not be read."""

    file: str
    message: str
    frame: int = None


@dataclasses.dataclass
class FrameRecord:
    """The verdict on one frame."""

    file: str
    frame: int
    label: str
    hit: bool
    proba: list
    latency_ms: float

    def to_dict(self):
        """``{"file", "frame", "label", "hit", "proba", "latency_ms"}``."""
        return dataclasses.asdict(self)


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
        :mod:`diffranet.io` reads, in name order; other paths are passed on
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
        for name in names:
            full = os.path.join(path, name)
            if not os.path.isdir(full):
                yield full


def _failure_message(path, exc, frame=None):
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
    input : {"auto", "counts", "8bit"}, default "auto"
        What the frames hold (:func:`diffranet.inference.preprocess.preprocess`).

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
            yield FileError(path, _failure_message(path, exc), frame)


def _frame_problem(frame, mask, detector):
    """Why a frame gets no verdict (a shape the detector cannot have, no finite counts), or None."""
    if detector is not None and tuple(frame.shape) != tuple(detector.shape):
        return (f"{frame.shape[0]} x {frame.shape[1]} pixels, but the detector {detector.name} has "
                f"{detector.shape[0]} x {detector.shape[1]}")
    if frame.dtype.kind in "fc":
        if np.isinf(frame).any():
            return "holds infinite values"
        valid = ~np.isnan(frame) if mask is None else ~(np.isnan(frame) | mask)
        if not valid.any():
            return "holds no finite value outside its mask"
    return None


class Summary:
    """Frames, hits, hit rate and frames/s of a run."""

    def __init__(self):
        self.frames = 0
        self.hits = 0
        self.errors = 0
        self.start = time.perf_counter()

    def add(self, record):
        """Count one :class:`FrameRecord` or :class:`FileError`."""
        if isinstance(record, FileError):
            self.errors += 1
        else:
            self.frames += 1
            self.hits += bool(record.hit)

    def to_dict(self):
        """``frames``, ``hits``, ``hit_rate``, ``frames_per_s``, ``seconds``, ``unreadable``."""
        seconds = time.perf_counter() - self.start
        return {"frames": self.frames, "hits": self.hits,
                "hit_rate": self.hits / self.frames if self.frames else 0.0,
                "frames_per_s": self.frames / seconds if seconds > 0 else 0.0,
                "seconds": seconds, "unreadable": self.errors}


def classify_files(model, paths, *, detector=None, overrides=None, batch_size=16,
                   max_frame_pixels=dio.DEFAULT_MAX_FRAME_PIXELS, input="auto"):
    """Classify every frame of ``paths`` with a :class:`SavedModel`, in batches.

    Parameters
    ----------
    model : SavedModel
    paths : iterable of path-like
        Image files (directories: see :func:`frame_files`).
    detector : DetectorSpec, optional
        Geometry and saturation of the frames (over the files' headers);
        frames of another shape get an error record.
    overrides : dict, optional
        Geometry values over both (see :func:`frame_geometry`).
    batch_size : int, default 16
        Frames scored together.
    max_frame_pixels : int, default diffranet.io.DEFAULT_MAX_FRAME_PIXELS
        Largest frame read; larger files get an error record unread.

    Yields
    ------
    FrameRecord or FileError
        In file and frame order. ``latency_ms`` runs from the moment the frame
        was read to its verdict (it includes waiting for the batch to fill).
        Any failure with one file or frame (unreadable, too large, non-finite
        counts, out of memory) is one :class:`FileError` and the run goes on;
        the header's saturation (CBF ``Count_cutoff``, NeXus
        ``saturation_value``) masks pixels at or above it unless the detector
        file gives one.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    pending = []  # (path, index, image8, t_read)

    def flush():
        try:
            proba = model.predict_proba(np.stack([item[2] for item in pending]))
        except Exception as exc:  # noqa: BLE001 - the model failing on a batch fails those frames, not the run
            records = [FileError(path, f"{path}: frame {index}: classification failed "
                                       f"({type(exc).__name__}: {exc})", index) for path, index, _, _ in pending]
            pending.clear()
            return records
        now = time.perf_counter()
        records = []
        for (path, index, _, t_read), row in zip(pending, proba):
            v = model.verdicts([row])[0]
            records.append(FrameRecord(path, index, v["label"], v["hit"], v["proba"], (now - t_read) * 1e3))
        pending.clear()
        return records

    geometry_cache = {}
    for item in iter_file_frames(frame_files(paths), max_frame_pixels=max_frame_pixels):
        if isinstance(item, FileError):
            yield from flush() if pending else ()
            yield item
            continue
        path, index, frame, mask, header = item
        t_read = time.perf_counter()
        key = (path, tuple(sorted((k, tuple(v) if isinstance(v, tuple) else v) for k, v in header.items())))
        if key not in geometry_cache:
            geometry_cache.clear()
            geometry_cache[key] = frame_geometry(header, detector, overrides)
        geometry, beam = geometry_cache[key]
        saturation = header.get("saturation") if detector is None or detector.saturation is None \
            else detector.saturation
        try:
            problem = _frame_problem(frame, mask, detector)
            if problem is not None:
                raise ValueError(problem)
            image8 = preprocess(frame, mask, geometry, model.preprocessing, beam_center_px=beam, saturation=saturation,
                                input=input)
        except Exception as exc:  # noqa: BLE001 - one frame's failure is that frame's error record
            yield from flush() if pending else ()
            yield FileError(path, _failure_message(path, exc, index), index)
            continue
        pending.append((path, index, image8, t_read))
        if len(pending) >= batch_size:
            yield from flush()
    if pending:
        yield from flush()
