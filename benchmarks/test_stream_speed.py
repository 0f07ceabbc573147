"""End-to-end speed of `diffranet stream`: frames/s and p50 / p99 latency, per model, one process and fan-out.

A sender process pushes 512 x 512 uint16 frames over loopback TCP; the service classifies them and
publishes verdicts; a subscriber counts them. Two runs per configuration:

* throughput: the sender pushes as fast as it can, ``overflow="block"`` (nothing dropped); frames/s
  is verdicts / time from the first to the last verdict;
* latency: the sender is paced at half the measured throughput; p50 / p99 of ``latency_ms``
  (receipt to publication) of those verdicts.

Also reported: CPU milliseconds per frame used by the service and its workers (not the sender), which
bounds the rate on dedicated cores when the machine is shared: frames/s <= cores * 1000 / CPU ms.

Run with ``pytest benchmarks/test_stream_speed.py -s`` (prints a table); set ``STREAM_BENCH_FRAMES``
to change the number of frames (default 3000).
"""

import json
import multiprocessing
import os
import socket
import threading
import time

import numpy as np
import pytest
import zmq

from diffranet.live import StreamService

N_FRAMES = int(os.environ.get("STREAM_BENCH_FRAMES", 3000))
SHAPE = (512, 512)
N_DISTINCT = 32  # distinct frames, sent in turn (the sender must not be the bottleneck)


def _address():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def _frames():
    rng = np.random.default_rng(0)
    frames = rng.poisson(1.0, (N_DISTINCT, *SHAPE)).astype("<u2")
    for i in range(0, N_DISTINCT, 2):
        frames[i, rng.integers(0, SHAPE[0], 60), rng.integers(0, SHAPE[1], 60)] += 2000
    return frames


def _send(address, fmt, n, rate_hz):
    """Sender process: pre-encode the distinct frames, then push n messages (paced if rate_hz)."""
    from diffranet.live.dectris import encode_end, encode_image, encode_start
    from diffranet.live.simple import encode_simple

    frames = _frames()
    if fmt == "dectris":
        start = encode_start(1, image_shape=SHAPE, pixel_size_m=172e-6, distance_m=0.08, wavelength_A=1.5,
                             number_of_images=n)
        images = [encode_image(1, i, f, compression="bslz4") for i, f in enumerate(frames)]
    context = zmq.Context()
    push = context.socket(zmq.PUSH)
    push.setsockopt(zmq.SNDHWM, 64)
    push.bind(address)
    if fmt == "dectris":
        push.send(start)
    t0 = time.monotonic()
    for i in range(n):
        if rate_hz:
            delay = t0 + i / rate_hz - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        if fmt == "dectris":
            push.send(images[i % N_DISTINCT], copy=False)
        else:
            push.send_multipart(encode_simple(i, frames[i % N_DISTINCT]), copy=False)
    if fmt == "dectris":
        push.send(encode_end(1))
    push.close(linger=60_000)
    context.term()


def _service_cpu_s(exclude=None):
    """CPU seconds used so far by this process (service, subscriber) and its worker processes."""
    import psutil

    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        if child.pid != exclude:
            try:
                total += sum(child.cpu_times()[:2])
            except psutil.NoSuchProcess:
                pass
    return total


def _run(model_path, fmt, workers, n, rate_hz):
    input_address, publish_address = _address(), _address()
    service = StreamService(model_path, input_address, publish_address, source_format=fmt, workers=workers,
                            overflow="block", queue_size=256, batch_size=32)
    stop, ready, final = threading.Event(), threading.Event(), {}
    thread = threading.Thread(target=lambda: final.setdefault("s", service.run(stop, ready)), daemon=True)
    thread.start()
    assert ready.wait(300)
    context = zmq.Context()
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.setsockopt(zmq.RCVHWM, 0)
    sub.connect(publish_address)
    time.sleep(0.5)
    sender = multiprocessing.get_context("spawn").Process(target=_send, args=(input_address, fmt, n, rate_hz))
    cpu_before = _service_cpu_s()
    sender.start()
    latencies, times = [], []
    while len(latencies) < n and sub.poll(60_000):
        record = json.loads(sub.recv())
        if "latency_ms" in record:
            latencies.append(record["latency_ms"])
            times.append(time.monotonic())
    cpu_ms_per_frame = (_service_cpu_s(exclude=sender.pid) - cpu_before) / max(len(latencies), 1) * 1e3
    sender.join(60)
    stop.set()
    thread.join(120)
    sub.close(linger=0)
    context.term()
    assert len(latencies) == n, f"{len(latencies)} of {n} verdicts"
    rate = (n - 1) / (times[-1] - times[0])
    return rate, np.percentile(latencies, 50), np.percentile(latencies, 99), cpu_ms_per_frame


@pytest.fixture(scope="module")
def glcm_rf_model(tmp_path_factory):
    """The paper's best classic configuration (GLCM + random forest) for 512 x 512 frames."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline

    from diffranet.classes import CLASS_NAMES
    from diffranet.features import GLCMExtractor
    from diffranet.inference import preprocess, save_model

    rng = np.random.default_rng(1)
    frames = _frames()
    X = np.stack([preprocess(f) for f in frames])
    y = rng.integers(0, 5, len(X))
    y[:5] = np.arange(5)
    estimator = make_pipeline(GLCMExtractor(), RandomForestClassifier(n_estimators=100, random_state=0)).fit(X, y)
    return save_model(estimator, tmp_path_factory.mktemp("bench") / "glcm_rf.dfm", class_names=CLASS_NAMES)


@pytest.mark.parametrize("fmt", ["simple", "dectris"])
@pytest.mark.parametrize("workers", [1, 2])
def test_stream_speed(benchmark, glcm_rf_model, fmt, workers):
    def measure():
        rate, _, _, cpu_ms = _run(glcm_rf_model, fmt, workers, N_FRAMES, rate_hz=None)
        paced = max(10.0, 0.5 * rate)
        _, p50, p99, _ = _run(glcm_rf_model, fmt, workers, min(N_FRAMES, int(paced * 5)), rate_hz=paced)
        return rate, cpu_ms, paced, p50, p99

    rate, cpu_ms, paced, p50, p99 = benchmark.pedantic(measure, rounds=1, iterations=1)
    benchmark.extra_info.update(frames_per_s=rate, cpu_ms_per_frame=cpu_ms, paced_hz=paced, latency_p50_ms=p50,
                                latency_p99_ms=p99)
    print(f"\nglcm+rf {fmt:7s} workers={workers}: {rate:7.0f} frames/s, {cpu_ms:.2f} CPU ms per frame "
          f"(service + workers); at {paced:.0f} Hz latency p50 {p50:.1f} ms p99 {p99:.1f} ms")
