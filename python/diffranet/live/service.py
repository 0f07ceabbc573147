"""The stream service: a ZMQ source, bounded processing, ordered verdicts on a PUB socket and a log.

Data flow (one thread per arrow's source)::

    PULL --> receive + decode --> [<= queue_size frames in flight] --> classify --> order --> PUB + log
             (caller's thread)                                       (backend)              (writer thread)

Every message gets a sequence number when it arrives and produces exactly one
record (verdict, drop or error, plus one record per Stream V2 end message),
released in that order.

Overload policy (``overflow``):

* ``"drop"`` (default): when ``queue_size`` frames are in flight, a new
  frame is dropped at once: it gets a record ``{"id": ..., "label": null,
  "hit": null, "dropped": true}`` on the PUB socket and in the log, and is
  counted. The socket is always drained, so the sender never stalls and
  memory stays bounded by ``queue_size`` frames.
* ``"block"``: the service stops reading until a slot frees; the ZMQ
  buffers fill and the sender's PUSH socket blocks (back-pressure). No frame
  is dropped; the detector side must tolerate the wait.

Shutdown (:meth:`StreamService.run` returns when ``stop`` is set): the
messages already waiting on the socket are taken (for at most
``drain_s``), every frame in flight is classified and published, the log is
flushed and closed, and the final counts are returned.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from pathlib import Path

import zmq

from .._validation import check_choice, check_int, check_nonnegative, check_positive
from ..inference import load_model
from .dectris import Stream2Decoder
from .frames import MalformedMessage, SeriesEnd, dropped_record, error_record
from .parallel import OrderedMerger, ProcessBackend, ThreadBackend
from .processing import FrameClassifier
from .series import HeldFrame, SeriesSharing
from .simple import decode_simple
from .sinks import FRAME_KEY, RECEIVED_KEY, RecordWriter
from .spots import PEAK_SOURCES
from .tuning import prepare_processing_thread

__all__ = ["StreamService", "FORMATS", "OVERFLOW_POLICIES"]

#: Input formats: the simple JSON header + pixels message, DECTRIS Stream V2.
FORMATS = ("simple", "dectris")
#: What happens to a frame when ``queue_size`` frames are in flight.
OVERFLOW_POLICIES = ("drop", "block")

log = logging.getLogger("diffranet.live")


def _check_address(name, address):
    if not isinstance(address, str) or "://" not in address:
        raise ValueError(f"{name} must be a ZMQ address such as tcp://127.0.0.1:9999, got {address!r}")
    return address


class StreamService:
    """Classify frames from a ZMQ PUSH stream and publish verdicts.

    Parameters
    ----------
    model : str, path or SavedModel
        Model file or name (loaded here, or by each worker); a loaded
        model is accepted with ``workers=1``.
    input_address : str
        Where the detector (or sender) binds its PUSH socket; the service
        connects a PULL socket to it.
    publish_address : str
        Where the service binds its PUB socket for verdicts.
    source_format : {"simple", "dectris"}
    geometry : FrameGeometry, optional
        Geometry of the frames (Stream V2: used for whatever the start
        message does not give).
    beam_center_px : (x, y), optional
        Beam centre in pixels when there is no full geometry.
    queue_size : int, default 256
        Most frames in flight (received, not yet published).
    overflow : {"drop", "block"}, default "drop"
    workers : int, default 1
        1: classify on a thread of this process; N >= 2: N worker processes.
    batch_size : int, default 32
        Most frames per model call.
    log_path : str or path, optional
        JSON-lines log, appended to.
    trust : bool
        Allow legacy pickle model files (see :func:`~diffranet.inference.load_model`).
    status : callable, optional
        Called with a :class:`~diffranet.live.stats.StatsSnapshot` every
        ``status_interval_s`` seconds and at the end.
    status_interval_s : float, default 1.0
    drain_s : float, default 1.0
        At shutdown, how long to keep taking messages already sent.
    receive_buffer : int, default 64
        ZMQ receive high-water mark (messages buffered by ZMQ before the
        sender blocks).
    peaks : {"input", "frame", "none"}, default "input"
        Where the peak count and the resolution of the outermost peak
        (``n_peaks``, ``d_min_A``) of each verdict come from: the model input,
        the frame, or nowhere (both null).
    hits : HitWriter, optional
        Receives the frames of the hits (:mod:`diffranet.live.hits`);
        started and closed (completed) by :meth:`run`.
    series_publish : str, optional
        Stream V2 with several pullers: where to bind the PUB socket that
        announces the series whose start message this service receives
        (:mod:`diffranet.live.series`).
    series_subscribe : sequence of str, default ()
        The other pullers' ``series_publish`` addresses.
    series_wait_s : float, default 2.0
        Longest wait for the series info of an image (with ``series_subscribe``).
    """

    def __init__(self, model, input_address, publish_address, *, source_format="simple", geometry=None,
                 beam_center_px=None, queue_size=256, overflow="drop", workers=1, batch_size=32, log_path=None,
                 trust=False, status=None, status_interval_s=1.0, drain_s=1.0, receive_buffer=64, peaks="input",
                 hits=None, series_publish=None, series_subscribe=(), series_wait_s=2.0):
        self.model = model
        self.input_address = _check_address("input_address", input_address)
        self.publish_address = _check_address("publish_address", publish_address)
        self.source_format = check_choice("source_format", source_format, FORMATS)
        self.geometry = geometry
        self.beam_center_px = beam_center_px
        self.queue_size = check_int("queue_size", queue_size, minimum=1)
        self.overflow = check_choice("overflow", overflow, OVERFLOW_POLICIES)
        self.workers = check_int("workers", workers, minimum=1)
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        self.log_path = None if log_path is None else Path(log_path)
        self.trust = trust
        self.status = status
        self.status_interval_s = check_positive("status_interval_s", status_interval_s)
        self.drain_s = check_nonnegative("drain_s", drain_s)
        self.receive_buffer = check_int("receive_buffer", receive_buffer, minimum=1)
        if self.workers > 1 and not isinstance(model, (str, Path)):
            raise ValueError("workers > 1 needs the model as a file name or path (each worker loads it)")
        self.peaks = check_choice("peaks", peaks, PEAK_SOURCES)
        self.hits = hits
        self.series_publish = None if series_publish is None else _check_address("series_publish", series_publish)
        self.series_subscribe = [_check_address("series_subscribe", a) for a in series_subscribe]
        self.series_wait_s = check_nonnegative("series_wait_s", series_wait_s)
        if (self.series_publish or self.series_subscribe) and self.source_format != "dectris":
            raise ValueError("series_publish / series_subscribe share Stream V2 series: use source_format='dectris'")
        self._sharing = None
        self._frames = {}  # sequence number -> Frame, kept for the hit writer
        self._pending = {}
        self._slots = threading.BoundedSemaphore(self.queue_size)

    # ------------------------------------------------------------------ decoding

    def _decoder(self, context):
        if self.source_format == "dectris":
            # pixels stay compressed here: they are expanded where the frame is classified
            decoder = Stream2Decoder(self.geometry, self.beam_center_px, defer_decompression=True)
            if self.series_publish or self.series_subscribe:
                self._sharing = SeriesSharing(decoder, context, publish=self.series_publish,
                                              subscribe=self.series_subscribe, wait_s=self.series_wait_s)
                decoder = self._sharing

            def decode(socket, received):
                return decoder.decode(socket.recv(copy=False).buffer, received)
        else:
            def decode(socket, received):
                return decode_simple(socket.recv_multipart(copy=False), geometry=self.geometry,
                                     beam_center_px=self.beam_center_px, received=received)
        return decode

    # ------------------------------------------------------------------ results

    def _on_results(self, results):
        for seq, result in results:
            tags, received = self._pending.pop(seq)
            if isinstance(result, Exception):
                log.warning("frame %s not classified: %s", tags, result)
                record = error_record(tags, result)
            else:
                record = {**tags, **result, RECEIVED_KEY: received}
            frame = self._frames.pop(seq, None)
            if frame is not None and record.get("hit"):
                record[FRAME_KEY] = frame
            self._slots.release()
            self._merger.add(seq, record)

    def _admit(self, stop):
        if self.overflow == "drop":
            return self._slots.acquire(blocking=False)
        while not stop.is_set():
            if self._slots.acquire(timeout=0.1):
                return True
        return False

    def _handle(self, socket, decode, seq, stop):
        received = time.monotonic()
        try:
            item = decode(socket, received)
        except MalformedMessage as exc:
            log.warning("message skipped: %s", exc)
            self._merger.add(next(seq), error_record(exc.tags, exc))
            return
        if item is None:  # a Stream V2 start message: settings kept by the decoder
            return
        number = next(seq)
        if isinstance(item, SeriesEnd):
            self._merger.add(number, {**item.tags, "end": True})
            return
        if not self._admit(stop):
            self._merger.add(number, dropped_record(item.tags))
            return
        self._pending[number] = (item.tags, item.received)
        if isinstance(item, HeldFrame):  # its series info may come from another service
            self._sharing.hold(number, item)
        else:
            self._submit(number, item)

    def _submit(self, number, frame):
        if self.hits is not None:
            self._frames[number] = frame
        self._backend.submit(number, frame)

    def _release_held(self, everything=False):
        for number, item in self._sharing.release(everything=everything):
            if isinstance(item, MalformedMessage):
                tags, _ = self._pending.pop(number)
                self._slots.release()
                self._merger.add(number, error_record({**tags, **item.tags}, item))
            else:
                self._submit(number, item)

    # ------------------------------------------------------------------ run

    def _make_backend(self, context):
        if self.workers == 1:
            model = load_model(self.model, trust=self.trust) if isinstance(self.model, (str, Path)) else self.model
            return ThreadBackend(FrameClassifier(model, peaks=self.peaks), self._on_results, self.batch_size)
        return ProcessBackend(self.model, self.trust, self.workers, self._on_results, self.batch_size, context,
                              peaks=self.peaks)

    def run(self, stop, ready=None):
        """Serve until ``stop`` is set; return the final :class:`~diffranet.live.stats.StatsSnapshot`.

        Parameters
        ----------
        stop : threading.Event
            Set it (e.g. from a SIGINT / SIGTERM handler) to shut down cleanly.
        ready : threading.Event, optional
            Set once the model is loaded and the sockets are open.

        Raises
        ------
        ValueError
            The model cannot be loaded, or an address cannot be used.
        """
        context = zmq.Context()
        publish = context.socket(zmq.PUB)
        publish.setsockopt(zmq.SNDHWM, 100_000)
        try:
            publish.bind(self.publish_address)
        except zmq.ZMQError as exc:
            publish.close(linger=0)
            context.term()
            raise ValueError(f"cannot bind the publish socket to {self.publish_address}: {exc}") from None
        log_file = None
        try:
            decode = self._decoder(context)
            self._backend = self._make_backend(context).start()
            if self.log_path is not None:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                log_file = open(self.log_path, "a", encoding="utf-8")
            if self.hits is not None:
                self.hits.start()
            writer = RecordWriter(publish, [log_file] if log_file else [], queue_size=self.queue_size,
                                  queue_depth=lambda: len(self._pending), status=self.status,
                                  status_interval_s=self.status_interval_s, hits=self.hits).start()
            self._merger = OrderedMerger(writer.put)
            socket = context.socket(zmq.PULL)
            socket.setsockopt(zmq.RCVHWM, self.receive_buffer)
            socket.connect(self.input_address)
            if ready is not None:
                ready.set()
            self._serve(socket, stop, decode)
            socket.close(linger=0)
            self._finish()
            final = writer.close()
        finally:
            if self.hits is not None:
                self.hits.close()  # completes the open file: no hit lost at shutdown
            if self._sharing is not None:
                self._sharing.close()
            if log_file is not None:
                log_file.close()
            publish.close(linger=1000)
            context.term()
        return final

    def _serve(self, socket, stop, decode):
        prepare_processing_thread()  # decoding: one frame per thread is faster than OpenMP within a frame
        seq = itertools.count()
        self._seq = seq
        poller = zmq.Poller()
        poller.register(socket, zmq.POLLIN)
        sharing = self._sharing
        if sharing is not None and sharing.subscriber is not None:
            poller.register(sharing.subscriber, zmq.POLLIN)
        while not stop.is_set():
            if socket in dict(poller.poll(100)):
                self._handle(socket, decode, seq, stop)
            if sharing is not None:
                self._release_held()
        # shutdown: take what has already arrived, without waiting for more
        drain_until = time.monotonic() + self.drain_s
        overflow, self.overflow = self.overflow, "drop"
        while time.monotonic() < drain_until and socket.poll(0):
            self._handle(socket, decode, seq, stop)
        if sharing is not None:
            self._release_held(everything=True)
        self.overflow = overflow

    def _finish(self, timeout_s=60.0):
        """Wait for the frames in flight, stop the backend."""
        deadline = time.monotonic() + timeout_s
        while self._pending and time.monotonic() < deadline:
            time.sleep(0.01)
        self._backend.close()
        for number, (tags, _) in sorted(self._pending.items()):  # only after a stuck model: never silent
            self._merger.add(number, dropped_record(tags))
        self._pending.clear()
        self._frames.clear()
