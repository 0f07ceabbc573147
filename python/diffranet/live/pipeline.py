"""The pipeline every source feeds: frames in flight, the processing backend, records in arrival order.

A source (a ZMQ stream, files, a watched folder) numbers each message or file
frame as it arrives and hands it to a :class:`FramePipeline`:

* :meth:`~FramePipeline.reserve` takes room for a frame in the budgets of
  frames and bytes in flight (at once, or waiting until the caller gives up);
* :meth:`~FramePipeline.submit` sends it to the backend (one thread of this
  process, or worker processes: :mod:`~diffranet.live.parallel`), where a
  :class:`~diffranet.live.processing.FrameClassifier` gives its verdict and
  spot figures;
* :meth:`~FramePipeline.record` puts any other record (an error, a drop, the
  end of a series) in the same sequence;
* every record reaches ``emit`` (the sink: a
  :class:`~diffranet.live.sinks.RecordWriter`) in sequence order, whatever
  order the backend finishes in.

So a verdict from a file and one from a detector stream are made by the same
code and have the same fields.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import zmq

from .._validation import check_choice, check_int
from ..inference import VerdictRule, load_model
from ..inference.preprocess import INPUT_KINDS
from .frames import LimitedLog, describe_exception, dropped_record, error_record
from .parallel import OrderedMerger, ProcessBackend, ThreadBackend
from .processing import FrameClassifier
from .sinks import FRAME_KEY, RECEIVED_KEY
from .spots import PEAK_SOURCES

__all__ = ["FramePipeline", "InFlight"]

log = logging.getLogger("diffranet.live")


class InFlight:
    """Frames received and not yet published, bounded in number and in bytes (thread-safe).

    A frame over the byte budget on its own is still admitted when nothing
    else is in flight, so that every frame the message budget allows can be
    classified.
    """

    def __init__(self, max_frames, max_bytes):
        self.max_frames, self.max_bytes = max_frames, max_bytes
        self.frames = self.bytes = 0
        self._room = threading.Condition()

    def _fits(self, nbytes):
        return self.frames == 0 or (self.frames < self.max_frames and self.bytes + nbytes <= self.max_bytes)

    def acquire(self, nbytes, give_up=None):
        """Take room for a frame of ``nbytes``: at once, or (with ``give_up``) wait until ``give_up()`` is true.

        ``give_up`` is called every 0.1 s without the lock held, so that it may
        free room itself (release frames held for their series info).
        """
        while True:
            with self._room:
                if self._fits(nbytes):
                    self.frames += 1
                    self.bytes += nbytes
                    return True
                if give_up is None:
                    return False
                self._room.wait(0.1)
            if give_up():
                return False

    def release(self, nbytes):
        """Give back the room of one frame."""
        with self._room:
            self.frames -= 1
            self.bytes -= nbytes
            self._room.notify_all()


class FramePipeline:
    """Classify numbered frames on a backend and emit every record in number order.

    Parameters
    ----------
    model : str, path or SavedModel
        Model file or name (loaded here, or by each worker); a loaded model is
        accepted with ``workers=1``.
    emit : callable
        Called with each record, in sequence order (a verdict carries the
        frame's arrival time under :data:`~diffranet.live.sinks.RECEIVED_KEY`,
        and with ``keep_hit_frames`` a hit its frame under
        :data:`~diffranet.live.sinks.FRAME_KEY`).
    workers : int, default 1
        1: classify on a thread of this process; N >= 2: N worker processes.
    batch_size : int, default 32
    trust : bool
        Allow legacy pickle model files.
    peaks : {"input", "frame", "none"}, default "input"
    input : {"auto", "counts", "8bit"}, default "auto"
        What the frames hold (:func:`~diffranet.inference.preprocess.preprocess`).
    rule : VerdictRule, optional
        How probabilities become verdicts (hit threshold, abstention), in
        every worker (:meth:`~diffranet.inference.SavedModel.with_rule`);
        None: the model's own rule.
    queue_size : int, default 256
        Most frames in flight.
    max_queue_bytes : int, default 2**31
        Most bytes of frames in flight.
    keep_hit_frames : bool, default False
        Keep each frame until its verdict, so that a hit record carries it (for a hit writer).
    on_failure : callable, optional
        Called with ``(stage, exception)`` when the backend cannot go on.
    """

    def __init__(self, model, emit, *, workers=1, batch_size=32, trust=False, peaks="input", input="auto",
                 rule=None, queue_size=256, max_queue_bytes=2**31, keep_hit_frames=False, on_failure=None):
        self.model = model
        self.workers = check_int("workers", workers, minimum=1)
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        self.trust = trust
        self.peaks = check_choice("peaks", peaks, PEAK_SOURCES)
        self.input = check_choice("input", input, INPUT_KINDS)
        if rule is not None and not isinstance(rule, VerdictRule):
            raise ValueError(f"rule must be a VerdictRule, got {type(rule).__name__}")
        self.rule = rule
        if self.workers > 1 and not isinstance(model, (str, Path)):
            raise ValueError("workers > 1 needs the model as a file name or path (each worker loads it)")
        self.keep_hit_frames = keep_hit_frames
        self.on_failure = on_failure
        self._in_flight = InFlight(check_int("queue_size", queue_size, minimum=1),
                                   check_int("max_queue_bytes", max_queue_bytes, minimum=1))
        self._merger = OrderedMerger(emit)
        self._pending = {}  # sequence number -> (tags, received, nbytes)
        self._log = LimitedLog(log)  # a stream of bad messages must not become a stream of log lines
        self._frames = {}  # sequence number -> Frame, kept for the hit writer
        self._backend = None

    def start(self, context=None):
        """Load the model (or start the workers); returns self.

        Raises
        ------
        ValueError
            The model cannot be loaded (or a worker could not load it).
        """
        if self.workers == 1:
            model = load_model(self.model, trust=self.trust) if isinstance(self.model, (str, Path)) else self.model
            if self.rule is not None:
                model = model.with_rule(self.rule)
            # the one classifier thread counts spots on every core this process may use (its own OpenMP
            # default is one thread; worker processes keep one thread each)
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
            classifier = FrameClassifier(model, peaks=self.peaks, input=self.input, n_threads=cores)
            classifier.warm_up()  # before the first frame, which would otherwise wait for the model's first call
            self._backend = ThreadBackend(classifier, self._on_results, self.batch_size,
                                          on_failure=self.on_failure)
        else:
            self._backend = ProcessBackend(self.model, self.trust, self.workers, self._on_results, self.batch_size,
                                           context, on_failure=self.on_failure, peaks=self.peaks, input=self.input,
                                           rule=self.rule)
        self._backend.start()
        return self

    @property
    def in_flight(self):
        """Frames taken in and not yet given their record."""
        return len(self._pending)

    @property
    def waiting(self):
        """Records held back until an earlier one is emitted."""
        return self._merger.waiting

    def tags(self, seq):
        """The tags of frame ``seq`` in flight."""
        return self._pending[seq][0]

    def reserve(self, seq, tags, received, nbytes, give_up=None):
        """Take room for frame ``seq`` of ``nbytes``; False (nothing taken) if there is none.

        Without ``give_up`` the answer is immediate; with it, the call waits
        for room until ``give_up()`` returns True.
        """
        if not self._in_flight.acquire(nbytes, give_up):
            return False
        self._pending[seq] = (tags, received, nbytes)
        return True

    def submit(self, seq, frame):
        """Send frame ``seq`` (room reserved) to the backend; a frame it cannot take gets its error record."""
        if self.keep_hit_frames:
            self._frames[seq] = frame
        try:
            self._backend.submit(seq, frame)
        except zmq.ZMQError:
            raise
        except Exception as exc:  # e.g. out of memory copying the frame to a worker
            self._frames.pop(seq, None)
            self.give_back(seq, frame.tags, exc, "classify")

    def give_back(self, seq, tags, exc, stage):
        """A frame in flight that will not be classified: free its room, emit its error record."""
        _, _, nbytes = self._pending.pop(seq)
        self._in_flight.release(nbytes)
        self.error(seq, tags, exc, stage)

    def error(self, seq, tags, exc, stage):
        """Emit the error record of message ``seq`` (which took no room)."""
        self._log.warning("message skipped", "message skipped (%s): %s", stage, describe_exception(exc))
        self.record(seq, error_record(tags, exc, stage))

    def record(self, seq, record):
        """Emit ``record`` as number ``seq`` (a drop, an error, an end of series)."""
        self._merger.add(seq, record)

    def _on_results(self, results):
        for seq, result in results:
            tags, received, nbytes = self._pending.pop(seq)
            if isinstance(result, BaseException):
                self._log.warning("frame not classified", "frame %s not classified: %s", tags,
                                  describe_exception(result))
                record = error_record(tags, result, "classify")
            else:
                record = {**tags, **result, RECEIVED_KEY: received}
            frame = self._frames.pop(seq, None)
            if frame is not None and record.get("hit"):
                record[FRAME_KEY] = frame
            self._in_flight.release(nbytes)
            self._merger.add(seq, record)

    def finish(self, timeout_s=60.0, failed=None):
        """Wait for the frames in flight (until ``failed`` is set), stop the backend.

        A frame still without a verdict after ``timeout_s`` (a stuck model)
        gets a drop record: never silent.
        """
        deadline = time.monotonic() + timeout_s
        while self._pending and time.monotonic() < deadline and not (failed is not None and failed.is_set()):
            time.sleep(0.01)
        if self._backend is not None:
            self._backend.close()
        for seq, (tags, _, _) in sorted(self._pending.items()):
            self._merger.add(seq, dropped_record(tags))
        self._pending.clear()
        self._frames.clear()
        self._log.flush()
