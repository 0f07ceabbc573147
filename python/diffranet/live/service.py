"""The stream service: a ZMQ source, bounded processing, ordered verdicts on a PUB socket and a log.

Data flow (one thread per arrow's source)::

    PULL --> receive + decode --> [<= queue_size frames in flight] --> classify --> order --> PUB + log
             (caller's thread)                                       (backend)              (writer thread)

Every message gets a sequence number when it arrives and produces exactly one
record (verdict, drop or error, plus one record per Stream V2 end message),
released in that order.

Hostile input: each stage (receive, decode, classify, write) turns any
exception raised by one message into one error record
``{**tags, "error": reason, "stage": stage}`` for that message and goes on;
so does the series side channel of several pullers (a refused series info
message gets a record with ``"stage": "series"``), and a hit frame the hit
writer cannot take keeps its verdict, with a ``write_error``.
Sizes are checked against :class:`~diffranet.live.limits.StreamLimits`
before anything is allocated (ZMQ itself refuses longer messages); images
held while they wait for their series info count against both budgets of
frames in flight. A stage
that cannot go on (its thread ended, a worker process died, the log cannot
be written) stops the service at once: :meth:`StreamService.run` raises
:class:`StageFailure` after publishing what it can, so a supervisor sees a
failed process, never a live one that no longer answers.

Overload policy (``overflow``):

* ``"drop"`` (default): when ``queue_size`` frames, or ``max_queue_bytes``
  bytes of frames, are in flight, a new frame is dropped at once: it gets a
  record ``{"id": ..., "label": null, "hit": null, "dropped": true}`` on the
  PUB socket and in the log, and is counted. The socket is always drained,
  so the sender never stalls and memory stays bounded by both budgets.
* ``"block"``: the service stops reading until there is room; the ZMQ
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
from .dectris import Stream2Decoder
from .frames import MalformedMessage, SeriesEnd, describe_exception, dropped_record
from .limits import StreamLimits, frame_bytes
from .pipeline import FramePipeline
from .series import HeldFrame, SeriesSharing
from .simple import decode_simple
from .sinks import RecordWriter
from .spots import PEAK_SOURCES
from .tuning import prepare_processing_thread

__all__ = ["StreamService", "StageFailure", "FORMATS", "OVERFLOW_POLICIES"]

#: Input formats: the simple JSON header + pixels message, DECTRIS Stream V2.
FORMATS = ("simple", "dectris")
#: What happens to a frame when ``queue_size`` frames are in flight.
OVERFLOW_POLICIES = ("drop", "block")

log = logging.getLogger("diffranet.live")

#: Input connection events followed: a loss, and ZMQ's attempts to connect again.
_CONNECTION_EVENTS = (zmq.EVENT_DISCONNECTED | zmq.EVENT_CONNECT_RETRIED | zmq.EVENT_CONNECT_DELAYED
                      | zmq.EVENT_CONNECTED)
#: A connection lost and not retried for this long was given up by ZMQ (it retries after 0.1 s by default).
_GAVE_UP_S = 1.0


class StageFailure(RuntimeError):
    """A stage of the service stopped and cannot go on (``stage``: receive, decode, classify or write)."""

    def __init__(self, stage, cause):
        super().__init__(f"the {stage} stage stopped: {describe_exception(cause)}")
        self.stage = stage
        self.final = None  # the counts when the service stopped (set by StreamService.run)


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
    limits : StreamLimits, optional
        Largest message, largest frame in pixels, most bytes in flight
        (default: :class:`~diffranet.live.limits.StreamLimits()`); images
        held for their series info count in flight.
    rule : VerdictRule, optional
        How probabilities become verdicts (hit threshold, abstention); None:
        the model's own rule.
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
                 trust=False, status=None, status_interval_s=1.0, drain_s=1.0, receive_buffer=64, limits=None,
                 peaks="input", hits=None, series_publish=None, series_subscribe=(), series_wait_s=2.0,
                 rule=None):
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
        self.limits = StreamLimits() if limits is None else limits
        if not isinstance(self.limits, StreamLimits):
            raise ValueError(f"limits must be a StreamLimits, got {type(self.limits).__name__}")
        if self.workers > 1 and not isinstance(model, (str, Path)):
            raise ValueError("workers > 1 needs the model as a file name or path (each worker loads it)")
        self.peaks = check_choice("peaks", peaks, PEAK_SOURCES)
        self.rule = rule
        self.hits = hits
        self.series_publish = None if series_publish is None else _check_address("series_publish", series_publish)
        self.series_subscribe = [_check_address("series_subscribe", a) for a in series_subscribe]
        self.series_wait_s = check_nonnegative("series_wait_s", series_wait_s)
        if (self.series_publish or self.series_subscribe) and self.source_format != "dectris":
            raise ValueError("series_publish / series_subscribe share Stream V2 series: use source_format='dectris'")
        self._sharing = None
        self._pipeline = None
        self._writer = None
        self._failure = None
        self._failed = threading.Event()

    # ------------------------------------------------------------------ decoding

    def _decoder(self, context):
        """``decode(parts, received)`` for the source format."""
        if self.source_format == "dectris":
            # pixels stay compressed here: they are expanded where the frame is classified
            decoder = Stream2Decoder(self.geometry, self.beam_center_px, defer_decompression=True,
                                     limits=self.limits)
            if self.series_publish or self.series_subscribe:
                self._sharing = SeriesSharing(decoder, context, publish=self.series_publish,
                                              subscribe=self.series_subscribe, wait_s=self.series_wait_s,
                                              on_error=self._series_error)
                decoder = self._sharing

            def decode(parts, received):
                if len(parts) != 1:
                    raise MalformedMessage(f"a Stream V2 message has one part, got {len(parts)}")
                return decoder.decode(parts[0].buffer, received)
        else:
            def decode(parts, received):
                return decode_simple(parts, self.limits, geometry=self.geometry,
                                     beam_center_px=self.beam_center_px, received=received)
        return decode

    @staticmethod
    def _receive(socket, max_parts=2):
        """The parts of one message; parts beyond ``max_parts`` are taken off the socket and counted, not kept."""
        parts = [socket.recv(copy=False)]
        while len(parts) < max_parts and socket.getsockopt(zmq.RCVMORE):
            parts.append(socket.recv(copy=False))
        extra = 0
        while socket.getsockopt(zmq.RCVMORE):
            socket.recv(copy=False)
            extra += 1
        if extra:
            raise MalformedMessage(f"message of {len(parts) + extra} parts, at most {max_parts} expected")
        return parts

    # ------------------------------------------------------------------ failures

    def _fail(self, stage, exc):
        """A stage cannot go on (any thread): remember the first failure and stop serving."""
        if self._failure is None:
            self._failure = StageFailure(stage, exc)
            log.error("%s", self._failure)
        self._failed.set()

    # ------------------------------------------------------------------ frames into the pipeline

    def _error(self, number, tags, exc, stage):
        self._pipeline.error(number, tags, exc, stage)

    def _handle(self, socket, decode, seq, stop):
        received = time.monotonic()
        try:
            parts = self._receive(socket)
        except zmq.ZMQError:
            raise  # the socket itself failed: the receive stage cannot go on
        except Exception as exc:  # one message's fault (too many parts, out of memory): its record, then go on
            self._error(next(seq), getattr(exc, "tags", {}), exc, "receive")
            return
        try:
            item = decode(parts, received)
        except Exception as exc:  # MalformedMessage, and anything a hostile message provokes
            self._error(next(seq), getattr(exc, "tags", {}), exc, "decode")
            return
        finally:
            del parts
        if item is None:  # a Stream V2 start message: settings kept by the decoder
            return
        number = next(seq)
        if isinstance(item, SeriesEnd):
            self._pipeline.record(number, {**item.tags, "end": True})
            return
        nbytes = item.nbytes if isinstance(item, HeldFrame) else frame_bytes(item)
        give_up = (lambda: self._waiting(stop)) if self.overflow == "block" else None
        if not self._pipeline.reserve(number, item.tags, item.received, nbytes, give_up):
            self._pipeline.record(number, dropped_record(item.tags))
            return
        if isinstance(item, HeldFrame):  # its series info may come from another service
            self._sharing.hold(number, item)
        else:
            self._pipeline.submit(number, item)

    def _waiting(self, stop):
        """While blocked for room (overflow "block"): let held images go when they can; True to give up."""
        if self._sharing is not None:
            self._release_held()  # held images take room too: without this, they could wait forever
        return stop.is_set() or self._failed.is_set()

    def _series_error(self, exc):
        """A series info message refused (the series side channel): its own error record."""
        self._error(next(self._seq), getattr(exc, "tags", {}), exc, "series")

    def _release_held(self, everything=False):
        for number, item in self._sharing.release(everything=everything):
            if isinstance(item, Exception):
                tags = self._pipeline.tags(number)
                self._pipeline.give_back(number, {**tags, **getattr(item, "tags", {})}, item, "decode")
            else:
                self._pipeline.submit(number, item)

    # ------------------------------------------------------------------ run

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
        StageFailure
            A stage stopped and could not go on (raised as soon as it is
            noticed, after the records already made are written).
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
            # the model is loaded first: a model that cannot be read stops the run before anything is written
            self._pipeline = FramePipeline(
                self.model, lambda record: self._writer.put(record), workers=self.workers,
                batch_size=self.batch_size, trust=self.trust, peaks=self.peaks, rule=self.rule,
                queue_size=self.queue_size,
                max_queue_bytes=self.limits.max_queue_bytes, keep_hit_frames=self.hits is not None,
                on_failure=self._fail).start(context)
            if self.log_path is not None:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                log_file = open(self.log_path, "a", encoding="utf-8")
            if self.hits is not None:
                self.hits.start()
            writer = self._writer = RecordWriter(
                publish, [log_file] if log_file else [], queue_size=self.queue_size,
                queue_depth=lambda: self._pipeline.in_flight, status=self.status,
                status_interval_s=self.status_interval_s, on_failure=self._fail, hits=self.hits).start()
            socket = context.socket(zmq.PULL)
            socket.setsockopt(zmq.RCVHWM, self.receive_buffer)
            # ZMQ refuses (and drops the connection of) a longer message part before allocating it
            socket.setsockopt(zmq.MAXMSGSIZE, self.limits.max_message_bytes)
            socket.connect(self.input_address)
            if ready is not None:
                ready.set()
            try:
                self._serve(socket, stop, decode)
            except Exception as exc:  # the receive loop itself failed (not one message)
                self._fail("receive", exc)
            socket.close(linger=0)
            self._finish()
            final = writer.close()
        finally:
            if self.hits is not None:
                self.hits.close()  # completes the open file: no hit lost at shutdown
            if self._sharing is not None:
                self._sharing.close()
            if log_file is not None:
                try:
                    log_file.close()
                except OSError as exc:  # the last lines could not be written (disk full)
                    self._fail("write", exc)
            publish.close(linger=1000)
            context.term()
        if self._failure is not None:
            self._failure.final = final
            raise self._failure
        return final

    def _serve(self, socket, stop, decode):
        prepare_processing_thread()  # decoding: one frame per thread is faster than OpenMP within a frame
        seq = itertools.count()
        self._seq = seq
        monitor = socket.get_monitor_socket(_CONNECTION_EVENTS)
        poller = zmq.Poller()
        poller.register(socket, zmq.POLLIN)
        poller.register(monitor, zmq.POLLIN)
        sharing = self._sharing
        if sharing is not None and sharing.subscriber is not None:
            poller.register(sharing.subscriber, zmq.POLLIN)
        dropped_at = None  # when the connection was lost and ZMQ has not tried again since
        try:
            while not stop.is_set() and not self._failed.is_set():
                events = dict(poller.poll(100))
                if socket in events:
                    self._handle(socket, decode, seq, stop)
                if sharing is not None:
                    self._release_held()
                while monitor.poll(0):
                    dropped_at = self._connection_lost_at(monitor)
                if dropped_at is not None and time.monotonic() - dropped_at > _GAVE_UP_S and not socket.poll(0):
                    self._reconnect(socket)
                    dropped_at = None
        finally:
            socket.disable_monitor()
            monitor.close(linger=0)
        # shutdown: take what has already arrived, without waiting for more
        if self._failed.is_set():
            return
        drain_until = time.monotonic() + self.drain_s
        overflow, self.overflow = self.overflow, "drop"
        while time.monotonic() < drain_until and socket.poll(0):
            self._handle(socket, decode, seq, stop)
        if sharing is not None:
            self._release_held(everything=True)
        self.overflow = overflow

    @staticmethod
    def _connection_lost_at(monitor):
        """The next connection event: now if the connection was lost, None if ZMQ connects or retries."""
        from zmq.utils.monitor import recv_monitor_message

        event = recv_monitor_message(monitor)["event"]
        return time.monotonic() if event == zmq.EVENT_DISCONNECTED else None

    def _reconnect(self, socket):
        """Open the input connection again after ZMQ dropped it for good.

        ZMQ drops the connection of a sender whose message part is over
        ``max_message_bytes`` and, as for any protocol error, does not try
        again (after an ordinary loss it retries at once): without this the
        service would stay up and deaf. Called once every message already
        received has been taken, so none is lost.
        """
        log.warning("input connection to %s dropped (a message part over %d bytes?) and not retried by ZMQ; "
                    "connecting again", self.input_address, self.limits.max_message_bytes)
        try:
            socket.disconnect(self.input_address)
        except zmq.ZMQError:  # already gone
            pass
        socket.connect(self.input_address)

    def _finish(self, timeout_s=60.0):
        """Wait for the frames in flight, stop the backend."""
        self._pipeline.finish(timeout_s, self._failed)
