"""Helpers of the live tests: free loopback ports, test frames, a subscriber, a service run on a thread."""

import contextlib
import json
import socket
import threading
import time

import numpy as np
import zmq
from zmq.utils.monitor import recv_monitor_message

#: Upper bound on any wait in these tests, so that a bug fails a test instead of hanging the suite.
TIMEOUT_S = 90.0

#: Side of the test frames and of the test model's input (pixels).
SIZE = 128


def free_address():
    """A tcp://127.0.0.1:PORT address with a port that is free now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def frames_with_spots(n, shape=(SIZE, SIZE), seed=0):
    """Raw uint16 frames: Poisson background, every third frame with bright spots."""
    rng = np.random.default_rng(seed)
    frames = rng.poisson(2.0, (n, *shape)).astype("<u2")
    for i in range(0, n, 3):
        rows, cols = rng.integers(10, shape[0] - 10, 20), rng.integers(10, shape[1] - 10, 20)
        frames[i, rows, cols] += 3000
    return frames


class Subscriber:
    """Collect JSON records from a PUB socket on a thread."""

    def __init__(self, address):
        self.records = []
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.SUB)
        self._socket.setsockopt(zmq.SUBSCRIBE, b"")
        self._socket.setsockopt(zmq.RCVHWM, 0)
        # the subscription goes out right after the handshake: wait_connected() waits for that event
        self._monitor = self._socket.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
        self._socket.connect(address)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            if self._socket.poll(100):
                self.records.append(json.loads(self._socket.recv()))

    def wait_connected(self, timeout=TIMEOUT_S):
        """Wait until the connection to the publisher is up (its handshake done), or fail."""
        if not self._monitor.poll(int(timeout * 1000)):
            raise TimeoutError(f"no connection to the publisher within {timeout} s")
        recv_monitor_message(self._monitor)

    def wait_for(self, predicate, timeout=TIMEOUT_S):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.records):
                return True
            time.sleep(0.05)
        return False

    def close(self):
        self._stop.set()
        self._thread.join(5)
        self._socket.disable_monitor()
        self._monitor.close(linger=0)
        self._socket.close(linger=0)
        self._context.term()


@contextlib.contextmanager
def running_service(service):
    """Run a StreamService on a thread; yield (subscriber, result dict); stop it on exit."""
    stop, ready, result = threading.Event(), threading.Event(), {}

    def target():
        try:
            result["final"] = service.run(stop, ready)
        except BaseException as exc:  # surfaced to the test
            result["error"] = exc
            ready.set()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    assert ready.wait(TIMEOUT_S), "service did not start"
    if "error" in result:
        raise result["error"]
    subscriber = Subscriber(service.publish_address)
    subscriber.wait_connected()  # frames published before the subscription arrives would be lost
    try:
        yield subscriber, result
    finally:
        stop.set()
        thread.join(TIMEOUT_S)
        subscriber.close()
    assert not thread.is_alive(), "service did not stop"
    if "error" in result:
        raise result["error"]


def start_process(target, *args, **kwargs):
    """Run ``target(*args, **kwargs)`` in a fresh (spawned) process."""
    import multiprocessing

    process = multiprocessing.get_context("spawn").Process(target=target, args=args, kwargs=kwargs, daemon=True)
    process.start()
    return process


def stream_until_sigterm(options, log, sender, n_lines):
    """Run ``diffranet stream OPTIONS --log LOG`` beside ``sender`` (a started process) until LOG holds
    ``n_lines`` verdicts (or the service ends), then send SIGTERM; return ``(returncode, stderr)``."""
    import os
    import signal
    import subprocess
    import sys

    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    service = subprocess.Popen([sys.executable, "-m", "diffranet", "stream", *map(str, options), "--log", str(log)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline and service.poll() is None:
            if log.exists() and log.read_text().count("\n") >= n_lines:
                break
            time.sleep(0.05)
        service.send_signal(signal.SIGTERM)
        _, stderr = service.communicate(timeout=TIMEOUT_S)
    finally:
        if service.poll() is None:
            service.kill()
            service.communicate()
        sender.kill()
    return service.returncode, stderr
