"""The file source: every frame of image files, as :class:`~diffranet.live.frames.Frame` objects into the pipeline.

Files are read by :mod:`diffranet.inference.files` (one frame in memory at a
time, each file's mask and header geometry); here each frame becomes a
``Frame`` tagged ``{"file", "frame"}`` and goes through the same
:class:`~diffranet.live.pipeline.FramePipeline` as a detector stream's, so
``classify``, ``watch`` and ``stream`` give the same verdicts with the same
fields (``label``, ``hit``, ``proba``, ``n_peaks``, ``d_min_A``,
``latency_ms``). A file source never drops a frame: it waits for room in
flight instead.

In a file, NaN marks a pixel without data (converted detectors write it
into gaps and bad pixels): it is masked, where a stream frame with NaN gets an
error. A frame with infinite values, or with no finite value, gets an error.
"""

from __future__ import annotations

import dataclasses
import itertools
import queue
import threading


from .. import io as dio
from ..inference.beam_center import find_beam_center, with_beam_center
from ..inference.files import FileError, failure_message, frame_files, frame_geometry, iter_file_frames, usable_mask
from .frames import Frame, dropped_record
from .limits import frame_bytes
from .pipeline import FramePipeline
from .sinks import stamp_latency

__all__ = ["FrameRecord", "file_frames", "feed_frames", "error_of", "error_text", "classify_files"]


def error_of(item):
    """The record of a :class:`~diffranet.inference.files.FileError`."""
    return {"file": item.file, "frame": item.frame, "error": item.message}


def file_frames(paths, *, detector=None, overrides=None, max_frame_pixels=dio.DEFAULT_MAX_FRAME_PIXELS):
    """Every frame of ``paths`` as a :class:`Frame`, or a :class:`FileError` for what cannot be used.

    Parameters
    ----------
    paths : iterable of path-like
        Image files, or directories (their image files in name order: :func:`frame_files`).
    detector : DetectorSpec, optional
        Geometry and saturation of the frames (over the files' headers); a
        frame of another shape gets an error.
    overrides : dict, optional
        Geometry values over both (:func:`~diffranet.inference.files.frame_geometry`).
    max_frame_pixels : int
        Largest frame read; a larger file gets an error, unread.

    Yields
    ------
    Frame or FileError
        In file and frame order; the header's saturation (CBF
        ``Count_cutoff``, NeXus ``saturation_value``) is the frame's unless
        the detector file gives one. When neither the header, the detector
        file nor ``overrides`` give a beam centre, it is found in the file's
        first frames that show one
        (:func:`~diffranet.inference.beam_center.find_beam_center`; at most
        :data:`BEAM_CENTER_TRIES`), else the frame's middle is used.
    """
    geometry_cache = {}
    found = {}  # path -> (beam centre found in its frames or None, frames tried)
    for item in iter_file_frames(frame_files(paths), max_frame_pixels=max_frame_pixels):
        if isinstance(item, FileError):
            yield item
            continue
        path, index, data, mask, header = item
        key = (path, tuple(sorted((k, tuple(v) if isinstance(v, tuple) else v) for k, v in header.items())))
        if key not in geometry_cache:
            geometry_cache.clear()
            geometry_cache[key] = frame_geometry(header, detector, overrides)
        geometry, beam = geometry_cache[key]
        saturation = header.get("saturation") if detector is None or detector.saturation is None \
            else detector.saturation
        try:
            mask = usable_mask(data, mask, detector)
        except ValueError as exc:
            yield FileError(path, failure_message(path, exc, index), index)
            continue
        if beam is None:  # frame_geometry puts a known centre in both
            geometry, beam = with_beam_center(geometry, _found_beam_center(found, path, data, mask, saturation))
        yield Frame(tags={"file": path, "frame": index}, data=data, mask=mask, geometry=geometry,
                    beam_center_px=beam, saturation=saturation, finite=True)  # usable_mask masked NaN, refused inf


#: Frames of one file searched for its beam centre (a blank frame has none to show) before its middle is used.
BEAM_CENTER_TRIES = 8


def _found_beam_center(found, path, data, mask, saturation):
    """The file's beam centre (or None), searched in its first frames until one shows it (:func:`find_beam_center`)."""
    if path not in found:
        found.clear()  # one file at a time
        found[path] = (None, 0)
    centre, tries = found[path]
    if centre is None and tries < BEAM_CENTER_TRIES:
        centre = find_beam_center(data, mask, saturation)
        found[path] = (centre, tries + 1)
    return centre


def feed_frames(pipeline, items, seq, stop=None):
    """Number each item of ``items`` (from ``seq``) and hand it to ``pipeline``; returns when they are all in.

    A frame waits for room in flight (never dropped); an error gets its
    record in the same sequence. With ``stop``, feeding ends when it is set
    (the frames already in go on to their verdicts).
    """
    give_up = (lambda: stop.is_set()) if stop is not None else (lambda: False)
    for item in items:
        if stop is not None and stop.is_set():
            return
        number = next(seq)
        if isinstance(item, FileError):
            pipeline.record(number, error_of(item))
            continue
        if not pipeline.reserve(number, item.tags, item.received, frame_bytes(item), give_up):
            pipeline.record(number, dropped_record(item.tags))
            return
        pipeline.submit(number, item)


@dataclasses.dataclass
class FrameRecord:
    """The verdict on one frame of a file (the fields of a ``classify`` JSON line)."""

    file: str
    frame: int
    label: str
    hit: bool
    proba: list
    n_peaks: int
    d_min_A: float
    latency_ms: float

    def to_dict(self):
        return dataclasses.asdict(self)


def error_text(record):
    """The one-line message of an error record: a file's own says where; one from the pipeline gets the place."""
    if "stage" in record:
        return f"{record.get('file')}: frame {record.get('frame')}: {record['error']}"
    return record["error"]


def _as_record(record):
    if "error" in record:
        return FileError(record["file"], error_text(record), record.get("frame"))
    return FrameRecord(record["file"], record["frame"], record["label"], record["hit"], record["proba"],
                       record["n_peaks"], record["d_min_A"], record["latency_ms"])


def classify_files(model, paths, *, detector=None, overrides=None, batch_size=16,
                   max_frame_pixels=dio.DEFAULT_MAX_FRAME_PIXELS, input="auto", peaks="input"):
    """Classify every frame of ``paths`` through the pipeline (one thread), yielding each record in order.

    Parameters
    ----------
    model : SavedModel, str or path
    paths : iterable of path-like
        Image files (directories: their image files in name order).
    detector, overrides, max_frame_pixels
        As for :func:`file_frames`.
    batch_size : int, default 16
        Most frames per model call.
    input : {"auto", "counts", "8bit"}, default "auto"
    peaks : {"input", "frame", "none"}, default "input"

    Yields
    ------
    FrameRecord or FileError
        In file and frame order. ``latency_ms`` runs from the moment the
        frame was read to its verdict. Any failure with one file or frame
        (unreadable, too large, non-finite counts, out of memory, the model
        refusing it) is one :class:`FileError` and the run goes on.
    """
    done = object()
    out = queue.SimpleQueue()

    failure = []
    pipeline = FramePipeline(model, lambda record: out.put(stamp_latency(record)), batch_size=batch_size, input=input, peaks=peaks, queue_size=4 * batch_size,
                             on_failure=lambda stage, exc: failure.append(exc)).start()
    stop = threading.Event()

    def feed():
        try:
            feed_frames(pipeline, file_frames(paths, detector=detector, overrides=overrides,
                                              max_frame_pixels=max_frame_pixels), itertools.count(), stop)
        except BaseException as exc:  # noqa: BLE001 - reported to the caller below
            failure.append(exc)
        finally:
            pipeline.finish()
            out.put(done)

    thread = threading.Thread(target=feed, name="diffranet-file-source", daemon=True)
    thread.start()
    try:
        while (record := out.get()) is not done:
            yield _as_record(record)
    finally:  # the caller stopped early (or the run ended): stop reading files
        stop.set()
        thread.join()
    if failure:
        raise failure[0]
