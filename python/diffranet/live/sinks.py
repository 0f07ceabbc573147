"""The sink layer: every record published on a ZMQ PUB socket and appended to a JSON-lines log.

Records arrive in frame order (see :class:`~diffranet.live.parallel.OrderedMerger`).
A :class:`RecordWriter` thread owns the PUB socket and the log: it writes
each record as one JSON line, flushes the log after every batch (so a crash
loses at most the batch being written), counts the records into
:class:`~diffranet.live.stats.LiveStats`, and reports a status snapshot at a
fixed interval. With a hit sink (:class:`~diffranet.live.hits.HitWriter`),
the frames of hit verdicts go to it too, and their records say where
(``hit_file``, ``hit_event``); a hit frame the hit writer refuses keeps its
verdict, with the reason as ``write_error``.

Whatever a record holds (non-finite numbers, huge integers, dates, byte
strings from a hostile message), the line written is valid JSON: a record
that ``json.dumps(..., allow_nan=False)`` refuses is written through
:func:`~diffranet.live.frames.json_safe` (see :func:`~diffranet.live.frames.json_line`). Only a failure of the output
itself (the log's disk full, say) stops the writer; it is then reported to
``on_failure`` and :meth:`RecordWriter.close` still returns the counts.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

import zmq

from .frames import describe_exception, json_line
from .stats import LiveStats

__all__ = ["RecordWriter", "RECEIVED_KEY", "FRAME_KEY", "stamp_latency"]

#: Key of the ``time.monotonic()`` arrival time a record carries to the writer (removed before writing).
RECEIVED_KEY = "_received"
#: Key of the :class:`~diffranet.live.frames.Frame` a verdict carries to the hit sink (removed before writing).
FRAME_KEY = "_frame"

_STOP = object()


def stamp_latency(record, now=None):
    """Replace the arrival time a record carries (:data:`RECEIVED_KEY`) by its ``latency_ms``; returns it."""
    received = record.pop(RECEIVED_KEY, None)
    if received is not None:
        now = time.monotonic() if now is None else now
        record["latency_ms"] = round((now - received) * 1e3, 3)
    return record

log = logging.getLogger("diffranet.live")


class RecordWriter:
    """Write records from a queue on a background thread.

    Parameters
    ----------
    publish : zmq.Socket, optional
        PUB socket for verdicts, drops and end-of-series records (errors
        are only logged).
    streams : list of text files or callables
        Each record is written to each file as one JSON line (the log,
        stdout); a callable gets the record itself (a command's own output).
    queue_size : int
        The bound on frames in flight (for the status line).
    queue_depth : callable, optional
        Returns the number of frames in flight.
    status : callable, optional
        Called with a :class:`~diffranet.live.stats.StatsSnapshot` every
        ``status_interval_s`` seconds and once at the end.
    status_interval_s : float
    on_failure : callable, optional
        Called with ``("write", exception)`` if writing to a stream or the
        socket fails; the writer then stops.
    hits : HitWriter, optional
        Receives the frame of every hit verdict that carries one (under
        :data:`FRAME_KEY`); its owner closes it after :meth:`close`.
    """

    def __init__(self, publish=None, streams=(), *, queue_size=0, queue_depth=None, status=None,
                 status_interval_s=1.0, on_failure=None, hits=None):
        self.publish = publish
        self.streams = list(streams)
        self.hits = hits
        self.stats = LiveStats(queue_size)
        self._queue_depth = queue_depth or (lambda: 0)
        self._status = status
        self._interval = status_interval_s
        self._queue = queue.SimpleQueue()
        self._on_failure = on_failure
        self._thread = threading.Thread(target=self._run, name="diffranet-record-writer", daemon=True)
        self.final = None
        self.failure = None

    def start(self):
        """Start the writer thread."""
        self._thread.start()
        return self

    def put(self, record):
        """Queue one record (any thread)."""
        self._queue.put(record)

    def close(self, timeout=30.0):
        """Write what is queued, flush, stop the thread; return the final :class:`StatsSnapshot`.

        The counts are returned even if the writer stopped early (see ``failure``).
        """
        self._queue.put(_STOP)
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self.final is None:  # the thread stopped on a failure or did not finish in time
            self.final = self.stats.snapshot(self._queue_depth())
        return self.final

    @property
    def alive(self):
        """Whether the writer thread is running."""
        return self._thread.is_alive()

    def _write(self, record):
        if not isinstance(record, dict):
            record = {"error": f"not a record: {type(record).__name__}"}
        stamp_latency(record)
        frame = record.pop(FRAME_KEY, None)
        if frame is not None and self.hits is not None and record.get("hit"):
            try:
                record.update(self.hits.add(record, frame))
            except Exception as exc:  # this frame only (a shape HDF5 cannot hold, out of memory): keep serving
                log.warning("hit frame %s not written: %s", record.get("id"), describe_exception(exc))
                record["write_error"] = describe_exception(exc)
        line = json_line(record)
        if self.publish is not None and "error" not in record:
            try:
                self.publish.send_string(line, flags=zmq.NOBLOCK)
            except zmq.Again:  # no subscriber keeps up: PUB drops by design; the log still has it
                pass
        for stream in self.streams:
            if callable(stream):
                stream(record)
            else:
                stream.write(line + "\n")
        self.stats.count(record)

    def _report(self):
        snapshot = self.stats.snapshot(self._queue_depth())
        if self._status is not None:
            self._status(snapshot)
        return snapshot

    def _run(self):
        try:
            self._loop()
        except BaseException as exc:  # the output failed: stop, and say so rather than go deaf
            self.failure = exc
            if self._on_failure is None:
                raise
            self._on_failure("write", exc)

    def _loop(self):
        next_report = time.monotonic() + self._interval
        running = True
        while running:
            try:
                item = self._queue.get(timeout=min(self._interval, 0.2))
            except queue.Empty:
                item = None
            batch = [] if item is None else [item]
            while item is not None and len(batch) < 4096:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            for record in batch:
                if record is _STOP:
                    running = False
                    continue
                self._write(record)
            if batch:
                for stream in self.streams:
                    if not callable(stream):
                        stream.flush()
            if self.hits is not None:
                self.hits.tick()
            if time.monotonic() >= next_report:
                self._report()
                next_report = time.monotonic() + self._interval
        self.final = self._report()

