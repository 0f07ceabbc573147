"""Classify every frame of image files: the source (files -> frames) and the batching.

:func:`iter_file_frames` reads files one frame at a time with each file's mask
and header geometry; :func:`classify_files` preprocesses each frame as it is
read, scores frames in batches, and yields one record per frame (or per
unreadable file) for the caller to write out.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from .. import io as dio
from .geometry import FrameGeometry
from .preprocess import preprocess

__all__ = ["FrameRecord", "FileError", "iter_file_frames", "classify_files", "frame_geometry", "Summary"]

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


def iter_file_frames(paths):
    """Every frame of every file, one in memory at a time.

    Yields
    ------
    (path, index, frame, mask, header) or FileError
        ``mask`` is the file's pixel mask (or None) and ``header`` its header
        geometry (:func:`diffranet.io.read_geometry`). A file that cannot be
        read yields one :class:`FileError` and the next file follows.
    """
    for path in paths:
        path = str(path)
        index = 0
        try:
            mask = dio.read_mask(path)
            header = dio.read_geometry(path)
            for index, frame in enumerate(dio.iter_frames(path)):
                if mask is not None and mask.shape != frame.shape:
                    raise dio.ImageFormatError(f"{path}: mask shape {mask.shape} differs from frame {frame.shape}")
                yield path, index, frame, mask, header
        except (OSError, ValueError) as exc:
            yield FileError(path, str(exc) if path in str(exc) else f"{path}: {exc}", index or None)


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


def classify_files(model, paths, *, detector=None, overrides=None, batch_size=16):
    """Classify every frame of ``paths`` with a :class:`SavedModel`, in batches.

    Parameters
    ----------
    model : SavedModel
    paths : iterable of path-like
    detector : DetectorSpec, optional
        Geometry and saturation of the frames (over the files' headers).
    overrides : dict, optional
        Geometry values over both (see :func:`frame_geometry`).
    batch_size : int, default 16
        Frames scored together.

    Yields
    ------
    FrameRecord or FileError
        In file and frame order. ``latency_ms`` runs from the moment the frame
        was read to its verdict (it includes waiting for the batch to fill).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    saturation = None if detector is None else detector.saturation
    pending = []  # (path, index, image8, t_read)

    def flush():
        images = np.stack([item[2] for item in pending])
        proba = model.predict_proba(images)
        now = time.perf_counter()
        records = []
        for (path, index, _, t_read), row in zip(pending, proba):
            v = model.verdicts([row])[0]
            records.append(FrameRecord(path, index, v["label"], v["hit"], v["proba"], (now - t_read) * 1e3))
        pending.clear()
        return records

    geometry_cache = {}
    for item in iter_file_frames(paths):
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
        try:
            image8 = preprocess(frame, mask, geometry, model.preprocessing, beam_center_px=beam, saturation=saturation)
        except ValueError as exc:
            yield from flush() if pending else ()
            yield FileError(path, f"{path}: frame {index}: {exc}", index)
            continue
        pending.append((path, index, image8, t_read))
        if len(pending) >= batch_size:
            yield from flush()
    if pending:
        yield from flush()
