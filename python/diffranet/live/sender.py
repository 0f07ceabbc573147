"""Stand-in detectors: send frames over ZMQ in the simple or the DECTRIS Stream V2 format.

Used to try a ``diffranet stream`` set-up without a detector, and by the
tests and benchmarks. The sender binds a PUSH socket, as a detector does;
the service connects to it.
"""

from __future__ import annotations

import time

import numpy as np
import zmq
from .dectris import encode_end, encode_image, encode_start
from .simple import encode_simple

__all__ = ["send_simple", "send_stream2"]


def _pace(start, index, rate_hz):
    if rate_hz:
        delay = start + index / rate_hz - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def _push(address, linger_s, monitor=False):
    """A bound PUSH socket; with ``monitor``, also a monitor of its handshakes, attached before binding."""
    context = zmq.Context()
    socket = context.socket(zmq.PUSH)
    socket.setsockopt(zmq.LINGER, int(linger_s * 1000))
    watcher = socket.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED) if monitor else None
    socket.bind(address)
    return context, socket, watcher


def _wait_for_pullers(socket, monitor, n, timeout_s):
    """Wait until ``n`` PULL sockets have connected (a detector is armed after its receivers connect).

    Raises
    ------
    TimeoutError
        Fewer than ``n`` connected within ``timeout_s``.
    """
    from zmq.utils.monitor import recv_monitor_message

    try:
        connected = 0
        deadline = time.monotonic() + timeout_s
        while connected < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not monitor.poll(int(remaining * 1000)):
                raise TimeoutError(f"{connected} of {n} pullers connected within {timeout_s:.0f} s")
            if recv_monitor_message(monitor)["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                connected += 1
    finally:
        socket.disable_monitor()
        monitor.close(linger=0)


def send_simple(address, frames, ids=None, *, rate_hz=None, extra_messages=None, linger_s=30.0):
    """Send frames as simple-format messages from a PUSH socket bound to ``address``.

    Parameters
    ----------
    address : str
        e.g. ``tcp://127.0.0.1:5555``.
    frames : iterable of ndarray
        2-D frames; a 3-D array is sent frame by frame.
    ids : iterable, optional
        One id per frame (default 0, 1, 2, ...).
    rate_hz : float, optional
        Frames per second (default: as fast as possible).
    extra_messages : dict of int -> list of bytes, optional
        Raw multipart messages sent just before frame ``index`` (to test
        malformed input).
    linger_s : float
        How long closing waits for unsent messages.

    Returns
    -------
    dict
        ``{"sent": number of frames, "seconds": duration}``.
    """
    context, socket, _ = _push(address, linger_s)
    extra_messages = extra_messages or {}
    start = time.monotonic()
    count = 0
    try:
        for index, frame in enumerate(frames):
            for message in extra_messages.get(index, ()):
                socket.send_multipart(message)
            _pace(start, index, rate_hz)
            socket.send_multipart(encode_simple(index if ids is None else ids[index], frame), copy=False)
            count += 1
    finally:
        socket.close()
        context.term()
    return {"sent": count, "seconds": time.monotonic() - start}


def send_stream2(address, frames, *, series_id=1, compression="bslz4", rate_hz=None, start=None,
                 extra_messages=None, linger_s=30.0, pullers=None, pullers_timeout_s=30.0):
    """Send one Stream V2 series (start, one image message per frame, end) from a bound PUSH socket.

    Parameters
    ----------
    address : str
    frames : ndarray, shape (n, rows, cols), or list of 2-D arrays
        Image data (typically uint16 or uint32).
    series_id : int
    compression : {"bslz4", "lz4", None}
    rate_hz : float, optional
    start : dict, optional
        Keyword arguments of :func:`~diffranet.live.dectris.encode_start`
        (geometry, pixel mask, saturation value).
    extra_messages : dict of int -> list of bytes, optional
        Raw messages sent just before image ``index``.
    linger_s : float
    pullers : int, optional
        Wait until this many PULL sockets have connected before sending (a
        PUSH socket deals its messages round-robin only to the connected
        ones), for at most ``pullers_timeout_s`` seconds.
    pullers_timeout_s : float

    Returns
    -------
    dict
        ``{"sent": number of images, "seconds": duration}``.
    """
    frames = list(frames)
    shape = np.shape(frames[0]) if frames else (0, 0)
    context, socket, monitor = _push(address, linger_s, monitor=bool(pullers))
    extra_messages = extra_messages or {}
    try:
        if pullers:
            _wait_for_pullers(socket, monitor, pullers, pullers_timeout_s)
        begin = time.monotonic()
        socket.send(encode_start(series_id, image_shape=shape, number_of_images=len(frames),
                                 compression=compression, **(start or {})))
        for index, frame in enumerate(frames):
            for message in extra_messages.get(index, ()):
                socket.send(message)
            _pace(begin, index, rate_hz)
            socket.send(encode_image(series_id, index, frame, compression=compression))
        socket.send(encode_end(series_id))
    finally:
        socket.close()
        context.term()
    return {"sent": len(frames), "seconds": time.monotonic() - begin}
