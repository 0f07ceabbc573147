"""Several services pulling from one detector: what they share about each Stream V2 series.

A DECTRIS detector's Stream V2 PUSH socket deals its messages round-robin to
every connected PULL socket: a start message reaches one puller, and the
others receive images of a series whose geometry and pixel mask they never
saw. Each service therefore

1. **announces** every series whose start message it receives: a small
   "series info" message (shape, channel, mask, geometry, saturation, not the
   detector's flatfields) on a PUB socket it binds (``publish``), sent at once
   and again every ``republish_s`` seconds, so that a service that connects or
   restarts mid-series still learns it;
2. **listens** to the other services' announcements on a SUB socket connected
   to each of them (``subscribe``), and adopts what it hears;
3. **holds** an image of a series it does not know yet (it counts in the
   queue of frames in flight) until the series info arrives, for at most
   ``wait_s`` seconds; then the image is decoded again with the series'
   settings, or, when nothing came, classified with the command-line
   geometry and no mask (and a warning is logged), as a single service does
   with images of a series it missed. Later images of a series given up that
   way do not wait (unless its info arrives after all).

The series info message (multipart ZMQ, every part checked on receipt):

1. the topic ``b"diffranet-series/1"``;
2. a JSON object of at most 64 kB: ``tags`` (``series_id``,
   ``series_unique_id``), ``shape`` ``[rows, cols]`` or null, ``channel``, ``geometry`` (as
   :meth:`FrameGeometry.to_dict`) or null, ``beam_center_px``, ``saturation``,
   ``mask_shape`` ``[rows, cols]`` or null;
3. the mask, ``True`` = ignore, as ``zlib(numpy.packbits(mask))`` (empty
   without a mask): a few kB for an EIGER 16M module-gap mask.

A series info message is as untrusted as a detector message: its shapes are
checked against the service's :class:`~diffranet.live.limits.StreamLimits`
before the mask is inflated, and a message refused for any reason is logged
and reported (``on_error``: the service writes an error record with
``"stage": "series"``), never fatal. Held images count against the
service's budgets of frames in flight (``queue_size``, ``max_queue_bytes``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
import zlib

import numpy as np
import zmq

from .._validation import check_nonnegative, check_positive
from ..detectors import FrameGeometry
from .frames import Frame, LimitedLog, describe_exception, safe_tags
from .limits import StreamLimits, frame_bytes

__all__ = ["SeriesInfo", "SeriesSharing", "HeldFrame", "encode_series", "decode_series", "series_key",
           "SERIES_TOPIC"]

#: First part of every series info message (its ZMQ subscription topic).
SERIES_TOPIC = b"diffranet-series/1"

#: Largest series info message accepted (bytes): a packed 18-megapixel mask is 2.3 MB before zlib.
MAX_SERIES_MESSAGE = 64 << 20

_MAX_SIDE = 1 << 16
#: Longest JSON header of a series info message (bytes): a real one is a few hundred bytes, and parsing
#: megabytes of JSON then walking the values takes seconds in the receive loop.
_MAX_HEADER_BYTES = 64 * 1024

log = logging.getLogger("diffranet.live")


@dataclasses.dataclass(frozen=True)
class SeriesInfo:
    """What the frames of one Stream V2 series share, from its start message.

    Attributes
    ----------
    tags : dict
        ``series_id`` and, when sent, ``series_unique_id``.
    shape : tuple of int or None
        ``(rows, cols)`` of the images.
    channel : str or None
        The channel classified (the first of the start message's).
    mask : ndarray of bool or None
        True for pixels to ignore.
    geometry : FrameGeometry or None
    beam_center_px : tuple of float or None
    saturation : float or None
        Values at or above it are ignored.
    """

    tags: dict
    shape: tuple = None
    channel: str = None
    mask: np.ndarray = None
    geometry: object = None
    beam_center_px: tuple = None
    saturation: float = None


def series_key(series_id):
    """``series_id`` as a dict key (a list or map from a hostile message is not hashable: its JSON text stands in)."""
    try:
        hash(series_id)
    except TypeError:
        return ("json", json.dumps(series_id, sort_keys=True, default=repr))
    return series_id


@dataclasses.dataclass(frozen=True)
class HeldFrame:
    """An image message of a series not known yet, waiting for the series info (or its deadline).

    ``nbytes``: the memory it holds until published (:func:`~diffranet.live.limits.frame_bytes`), counted
    against ``max_queue_bytes`` while it waits as for any frame in flight.
    """

    tags: dict
    received: float
    message: object
    deadline: float
    nbytes: int = 0


def encode_series(info):
    """The multipart series info message of a :class:`SeriesInfo` (see the module docstring)."""
    mask = b""
    if info.mask is not None:
        mask = zlib.compress(np.packbits(np.ascontiguousarray(info.mask, dtype=bool)).tobytes(), 1)
    header = {"tags": info.tags, "shape": None if info.shape is None else list(info.shape),
              "channel": info.channel, "geometry": None if info.geometry is None else info.geometry.to_dict(),
              "beam_center_px": None if info.beam_center_px is None else list(info.beam_center_px),
              "saturation": info.saturation, "mask_shape": None if info.mask is None else list(info.mask.shape)}
    return [SERIES_TOPIC, json.dumps(header).encode(), mask]


def _shape(name, value):
    if value is None:
        return None
    if (not isinstance(value, list) or len(value) != 2
            or any(isinstance(v, bool) or not isinstance(v, int) or not 0 < v <= _MAX_SIDE for v in value)):
        raise ValueError(f"{name} must be [rows, cols] of 1 to {_MAX_SIDE}, got {value!r}")
    return tuple(value)


def _finite_number(name, value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number or null, got {value!r}")
    return float(value)


def decode_series(parts, limits=None):
    """The :class:`SeriesInfo` of a series info message.

    ``limits`` (default :class:`~diffranet.live.limits.StreamLimits()`) bounds
    the image and mask shapes before the mask is inflated, as for any message.

    Raises
    ------
    ValueError
        For anything but a well-formed message (wrong topic or number of
        parts, bad or over 64 kB of JSON, shapes, numbers, geometry, or mask
        bytes), or a shape over ``limits.max_frame_pixels``.
    """
    limits = StreamLimits() if limits is None else limits
    parts = [bytes(getattr(part, "buffer", part)) for part in parts]
    if len(parts) != 3 or parts[0] != SERIES_TOPIC:
        raise ValueError("not a series info message (topic, JSON, mask)")
    if len(parts[1]) > _MAX_HEADER_BYTES:
        raise ValueError(f"series info header of {len(parts[1])} bytes is over the limit of {_MAX_HEADER_BYTES}")
    try:
        header = json.loads(parts[1])
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"series info header is not JSON: {exc}") from None
    if not isinstance(header, dict) or not isinstance(header.get("tags"), dict):
        raise ValueError("series info header must be an object with the series tags")
    tags = safe_tags({key: header["tags"][key] for key in ("series_id", "series_unique_id") if key in header["tags"]})
    if "series_id" not in tags:
        raise ValueError("series info without a series_id")
    channel = header.get("channel")
    if channel is not None and not isinstance(channel, str):
        raise ValueError(f"channel must be a string or null, got {channel!r}")
    geometry = None
    if header.get("geometry") is not None:
        if not isinstance(header["geometry"], dict):
            raise ValueError("geometry must be an object or null")
        try:
            geometry = FrameGeometry.from_dict(header["geometry"])
        except Exception as exc:  # missing or mistyped fields of a hostile message
            raise ValueError(f"series info geometry: {describe_exception(exc)}") from None
    center = header.get("beam_center_px")
    if center is not None:
        if not isinstance(center, list) or len(center) != 2:
            raise ValueError(f"beam_center_px must be [x, y] or null, got {center!r}")
        center = (_finite_number("beam_center_px", center[0]), _finite_number("beam_center_px", center[1]))
    shape = _shape("shape", header.get("shape"))
    mask_shape = _shape("mask_shape", header.get("mask_shape"))
    for what, dims in (("series info shape", shape), ("series info mask", mask_shape)):
        if dims is not None:
            limits.check_dimensions(dims, what)  # before the mask is inflated: a zlib bomb stays small
    mask = None
    if mask_shape is not None:
        n_bytes = (mask_shape[0] * mask_shape[1] + 7) // 8
        inflate = zlib.decompressobj()
        try:
            packed = inflate.decompress(parts[2], n_bytes + 1)
        except zlib.error as exc:
            raise ValueError(f"series info mask: {exc}") from None
        if len(packed) != n_bytes or not inflate.eof:
            raise ValueError(f"series info mask does not hold {mask_shape[0]} x {mask_shape[1]} pixels")
        mask = np.unpackbits(np.frombuffer(packed, np.uint8), count=mask_shape[0] * mask_shape[1])
        mask = mask.reshape(mask_shape).astype(bool)
        mask.flags.writeable = False
    elif parts[2]:
        raise ValueError("series info mask bytes without a mask_shape")
    return SeriesInfo(tags=tags, shape=shape, channel=channel, mask=mask,
                      geometry=geometry, beam_center_px=center,
                      saturation=_finite_number("saturation", header.get("saturation")))


class SeriesSharing:
    """Announce, learn and wait for series info between services pulling from one detector.

    Parameters
    ----------
    decoder : Stream2Decoder
        The service's decoder: it keeps the series it knows
        (:meth:`~diffranet.live.dectris.Stream2Decoder.adopt`).
    context : zmq.Context
    publish : str, optional
        Address to bind the PUB socket for this service's announcements.
    subscribe : sequence of str
        The other services' ``publish`` addresses.
    wait_s : float, default 2.0
        Longest wait for the series info of an image (only with ``subscribe``).
    republish_s : float, default 1.0
        Interval between repeated announcements of the latest series started here.
    on_error : callable, optional
        Called with the exception of every series info message refused (the
        service makes it an error record); it is logged either way.

    Raises
    ------
    ValueError
        An address that cannot be bound or connected.
    """

    def __init__(self, decoder, context, *, publish=None, subscribe=(), wait_s=2.0, republish_s=1.0,
                 on_error=None):
        self.decoder = decoder
        self.on_error = on_error
        self.wait_s = check_nonnegative("wait_s", wait_s)
        self.republish_s = check_positive("republish_s", republish_s)
        self._held = {}  # sequence number -> HeldFrame, in arrival order
        self._given_up = {}  # series_id -> None: series whose info did not come in time (an ordered set)
        self._log = LimitedLog(log)  # a flood of bad series info (or series) must not become a flood of log lines
        self._own = None  # the parts of the latest announcement
        self._next_announcement = math.inf
        self.publisher = self.subscriber = None
        try:
            if publish is not None:
                self.publisher = context.socket(zmq.PUB)
                self.publisher.setsockopt(zmq.LINGER, 0)
                self.publisher.bind(publish)
            if subscribe:
                self.subscriber = context.socket(zmq.SUB)
                self.subscriber.setsockopt(zmq.LINGER, 0)
                self.subscriber.setsockopt(zmq.MAXMSGSIZE,
                                           min(MAX_SERIES_MESSAGE, decoder.limits.max_message_bytes))
                self.subscriber.setsockopt(zmq.SUBSCRIBE, SERIES_TOPIC)
                for address in subscribe:
                    self.subscriber.connect(address)
        except zmq.ZMQError as exc:
            self.close()
            raise ValueError(f"series sharing: cannot open {publish!r} / {list(subscribe)!r}: {exc}") from None

    @property
    def held(self):
        """Images waiting for their series info."""
        return len(self._held)

    def close(self):
        """Close the sockets (and log the warnings held back)."""
        self._log.flush()
        for sock in (self.publisher, self.subscriber):
            if sock is not None:
                sock.close(linger=0)

    def _announce(self, now):
        if self.publisher is None or self._own is None:
            return
        try:
            self.publisher.send_multipart(self._own, flags=zmq.NOBLOCK)
        except zmq.Again:  # nobody keeps up: the next announcement repeats it
            pass
        self._next_announcement = now + self.republish_s

    def decode(self, message, received):
        """Decode one Stream V2 message as the decoder does; hold an image of an unknown series.

        Returns
        -------
        Frame, SeriesEnd, HeldFrame or None
            A :class:`HeldFrame` when the image's series is not known and
            other services may announce it.

        Raises
        ------
        MalformedMessage
        """
        item = self.decoder.decode(message, received)
        if item is None:  # a start message: announce the series
            self._own = encode_series(self.decoder.series)
            self._announce(time.monotonic())
        elif isinstance(item, Frame) and self.subscriber is not None:
            series_id = item.tags.get("series_id")
            if not self.decoder.knows(series_id) and series_key(series_id) not in self._given_up:
                return HeldFrame(item.tags, received, message, received + self.wait_s, frame_bytes(item))
        return item

    def hold(self, seq, held):
        """Keep ``held`` (sequence number ``seq``) until :meth:`release` gives it back."""
        self._held[seq] = held

    def _learn(self):
        while self.subscriber.poll(0):
            try:
                parts = self.subscriber.recv_multipart(flags=zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            try:
                self.decoder.adopt(decode_series(parts, self.decoder.limits))
            except Exception as exc:  # anything a hostile message provokes: that message only
                self._log.warning("series info ignored", "series info message ignored: %s", describe_exception(exc))
                if self.on_error is not None:
                    self.on_error(exc)

    def release(self, *, everything=False):
        """Adopt the announcements received, repeat ours when due; return the held images that can go.

        Parameters
        ----------
        everything : bool
            Release every held image (at shutdown), known series or not.

        Returns
        -------
        list of (int, Frame or Exception)
            In arrival order: each image decoded again with what is now known,
            or why it could not be (a :class:`~diffranet.live.frames.MalformedMessage`, say).
        """
        now = time.monotonic()
        if now >= self._next_announcement:
            self._announce(now)
        if self.subscriber is None:
            return []
        self._learn()
        released = []
        for seq, held in list(self._held.items()):
            known = self.decoder.knows(held.tags.get("series_id"))
            if not (known or everything or now >= held.deadline):
                continue
            del self._held[seq]
            if not known and series_key(held.tags.get("series_id")) not in self._given_up:
                self._given_up[series_key(held.tags.get("series_id"))] = None
                while len(self._given_up) > 64:
                    self._given_up.pop(next(iter(self._given_up)))
                # a few lines, not one per series: a sender may make up a new series for every image
                self._log.warning("series info missing", "no series info for series %s within %.1f s: its images "
                                  "are classified without the start message's geometry and mask",
                                  held.tags.get("series_id"), self.wait_s)
            try:
                released.append((seq, self.decoder.decode(held.message, held.received)))
            except Exception as exc:  # MalformedMessage, and anything a hostile message provokes
                released.append((seq, exc))
        return released
