"""End-to-end speed of `diffranet stream`: frames/s, p50 / p99 latency and CPU time, per model, one process and fan-out.

A sender process pushes 512 x 512 uint16 frames over loopback TCP; the service classifies them and
publishes verdicts; a subscriber counts them. Two runs per configuration:

* throughput: the sender pushes as fast as it can, ``overflow="block"`` (nothing dropped); frames/s
  is verdicts / time from the first to the last verdict;
* latency: the sender is paced at half the measured throughput; p50 / p99 of ``latency_ms``
  (receipt to publication) of those verdicts.

Also reported: the CPU time per frame used by the service and its workers (not the sender, which
runs in its own process), and its inverse, frames per CPU-second. On a shared machine wall-clock
rates measure the other users as much as the service; CPU time does not, and bounds the rate on
dedicated cores: frames/s <= cores x frames per CPU-second.

``test_stage_cpu`` splits the CPU time of one frame into the service's stages (decode, expand,
preprocess, model, record), measured on their own in this process.

Models: the paper's best classic configuration (GLCM + 100-tree random forest, five classes), the
peak-finder hit finder (hit / miss) and the shipped DeepFreak model (``--model default``).

Run with ``pytest benchmarks/test_stream_speed.py -s`` (prints a table); set ``STREAM_BENCH_FRAMES``
to change the number of frames (default 3000) and ``STREAM_BENCH_PEAKS=none`` to leave out the
spot figures (``--peaks none``).
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
#: Where the verdicts' spot figures come from (``--peaks``): "input" (the default of `stream`) or "none".
PEAKS = os.environ.get("STREAM_BENCH_PEAKS", "input")
SHAPE = (512, 512)
N_DISTINCT = 32  # distinct frames, sent in turn (the sender must not be the bottleneck)
BATCH_SIZE = 32
#: The start message of the Stream V2 runs: the paper's detector, so no resampling is needed.
PAPER_START = {"pixel_size_m": 172e-6, "distance_m": 0.08, "wavelength_A": 1.5}


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
    """Sender process: the 512 x 512 frames, Stream V2 with the paper's detector (see :func:`push_frames`)."""
    push_frames(address, fmt, n, rate_hz, _frames(), PAPER_START)


def push_frames(address, fmt, n, rate_hz, frames, start_fields, mask=None):
    """Pre-encode the distinct frames, then push n messages (paced if rate_hz); Stream V2 starts with
    ``encode_start(**start_fields)`` (and ``mask`` as its pixel mask), bslz4 images."""
    from diffranet.live.dectris import encode_end, encode_image, encode_start
    from diffranet.live.simple import encode_simple

    if fmt == "dectris":
        start = encode_start(1, image_shape=frames[0].shape, number_of_images=n, pixel_mask=mask, **start_fields)
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
            push.send(images[i % len(frames)], copy=False)
        else:
            push.send_multipart(encode_simple(i, frames[i % len(frames)]), copy=False)
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


def _run(model_path, fmt, workers, n, rate_hz, *, send=_send, geometry=None, batch_size=BATCH_SIZE, queue_size=256):
    """(frames/s, latency p50, p99, service CPU ms per frame) of n frames that ``send(address, fmt, n, rate_hz)``
    pushes from its own process."""
    from diffranet._allocator import freeze_loaded_objects

    input_address, publish_address = _address(), _address()
    service = StreamService(model_path, input_address, publish_address, source_format=fmt, workers=workers,
                            overflow="block", queue_size=queue_size, batch_size=batch_size, geometry=geometry,
                            peaks=PEAKS)
    stop, ready, final = threading.Event(), threading.Event(), {}
    thread = threading.Thread(target=lambda: final.setdefault("s", service.run(stop, ready)), daemon=True)
    thread.start()
    assert ready.wait(300)
    freeze_loaded_objects()  # as the stream command does once the model is loaded
    context = zmq.Context()
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.setsockopt(zmq.RCVHWM, 0)
    sub.connect(publish_address)
    time.sleep(0.5)
    sender = multiprocessing.get_context("spawn").Process(target=send, args=(input_address, fmt, n, rate_hz))
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
def models(tmp_path_factory):
    """Model files: GLCM + 100-tree random forest (five classes), the peak-finder hit finder (hit / miss)
    and the shipped DeepFreak model (five classes)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline

    from diffranet import PeakFinderHitFinder
    from diffranet.classes import CLASS_NAMES, HITMISS_NAMES
    from diffranet.features import GLCMExtractor
    from diffranet.inference import preprocess, save_model
    from diffranet.inference.modelfile import default_model_path

    rng = np.random.default_rng(1)
    frames = _frames()
    X = np.stack([preprocess(f) for f in frames])
    y = rng.integers(0, 5, len(X))
    y[:5] = np.arange(5)
    directory = tmp_path_factory.mktemp("bench")
    glcm_rf = make_pipeline(GLCMExtractor(), RandomForestClassifier(n_estimators=100, random_state=0)).fit(X, y)
    finder = PeakFinderHitFinder(min_peaks=10).fit(X, (np.arange(len(X)) % 2 == 0).astype(int))
    return {"glcm+rf": save_model(glcm_rf, directory / "glcm_rf.dfm", class_names=CLASS_NAMES),
            "peakfinder": save_model(finder, directory / "peakfinder.dfm", class_names=HITMISS_NAMES),
            "deepfreak": default_model_path()}


@pytest.mark.parametrize("model_name", ["glcm+rf", "peakfinder", "deepfreak"])
@pytest.mark.parametrize("fmt", ["simple", "dectris"])
@pytest.mark.parametrize("workers", [1, 2])
def test_stream_speed(benchmark, models, model_name, fmt, workers):
    def measure():
        rate, _, _, cpu_ms = _run(models[model_name], fmt, workers, N_FRAMES, rate_hz=None)
        paced = max(10.0, 0.5 * rate)
        _, p50, p99, _ = _run(models[model_name], fmt, workers, min(N_FRAMES, int(paced * 5)), rate_hz=paced)
        return rate, cpu_ms, paced, p50, p99

    rate, cpu_ms, paced, p50, p99 = benchmark.pedantic(measure, rounds=1, iterations=1)
    benchmark.extra_info.update(frames_per_s=rate, cpu_ms_per_frame=cpu_ms, frames_per_cpu_s=1e3 / cpu_ms,
                                paced_hz=paced, latency_p50_ms=p50, latency_p99_ms=p99)
    print(f"\n{model_name:10s} {fmt:7s} workers={workers}: {rate:6.0f} frames/s wall | {cpu_ms:.2f} CPU ms per frame "
          f"= {1e3 / cpu_ms:5.0f} frames per CPU-s (service + workers) | at {paced:.0f} Hz latency "
          f"p50 {p50:.1f} ms p99 {p99:.1f} ms")


def _cpu_us(function, n):
    function()
    start = time.process_time()
    for _ in range(n):
        function()
    return (time.process_time() - start) / n * 1e6


def test_stage_cpu(benchmark, models):
    """CPU microseconds per frame of each stage, one thread (as in the service's threads and workers)."""
    from diffranet.inference import FrameGeometry, load_model, preprocess
    from diffranet.live.dectris import Stream2Decoder, encode_image, encode_start
    from diffranet.live.simple import decode_simple, encode_simple
    from diffranet.live.sinks import RecordWriter
    from diffranet.live.tuning import prepare_processing_thread

    prepare_processing_thread()
    frames = _frames()
    frame = frames[0]
    simple = [bytes(part) for part in encode_simple(0, frame)]
    decoder = Stream2Decoder(defer_decompression=True)
    decoder.decode(encode_start(1, image_shape=SHAPE, **PAPER_START), 0.0)
    image = encode_image(1, 0, frame, compression="bslz4")
    compressed = decoder.decode(image, 0.0).data
    gap = np.zeros(SHAPE, bool)
    gap[:, 250:260] = True
    other = FrameGeometry(0.15, 90.0, 1.3)
    images = np.stack([preprocess(f) for f in frames])
    loaded = {name: load_model(path) for name, path in models.items()}

    class _Null:
        def write(self, _):
            pass

        def flush(self):
            pass

    writer = RecordWriter(None, [_Null()])
    record = {"id": 1, "label": "good", "hit": True, "proba": [0.0, 0.02, 0.1, 0.8, 0.08], "_received": 0.0}

    def stages():
        out = {
            "decode simple message": _cpu_us(lambda: decode_simple(simple), 500),
            "decode Stream V2 message (pixels left compressed)": _cpu_us(lambda: decoder.decode(image, 0.0), 500),
            "expand bslz4 pixels": _cpu_us(compressed.expand, 100),
            "preprocess, training geometry, nothing masked (8-bit table)": _cpu_us(
                lambda: preprocess(frame, geometry=FrameGeometry(0.172, 80.0, 1.5), saturation=65535), 100),
            "preprocess, training geometry, module-gap mask": _cpu_us(lambda: preprocess(frame, gap), 10),
            "preprocess, other geometry (resampling)": _cpu_us(lambda: preprocess(frame, geometry=other), 10),
            "write one record (JSON, log, counts)": _cpu_us(lambda: writer._write(dict(record)), 2000),
        }
        for name, model in loaded.items():
            for batch in (1, BATCH_SIZE):
                out[f"model {name}, batches of {batch}"] = _cpu_us(
                    lambda: model.predict_proba(images[:batch]), max(1, 64 // batch)) / batch
        return out

    result = benchmark.pedantic(stages, rounds=1, iterations=1)
    benchmark.extra_info.update({f"{k} (us)": v for k, v in result.items()})
    print()
    for name, us in result.items():
        print(f"{name:62s} {us:9.0f} us CPU per frame")
