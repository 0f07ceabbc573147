"""Full-size detector frames: frames/s end to end and the CPU time of each stage.

Frames of real sizes, made on the fly (photon counts of about one per pixel, 300 spots on every
other frame, module gaps):

* EIGER 16M: 4362 x 4148 uint32, bslz4 over DECTRIS Stream V2 through ``diffranet stream``
  (``StreamService``), geometry, pixel mask and saturation in the start message;
* JUNGFRAU 4M: 2164 x 2068 float32 (photons, gaps flagged -1), simple format through
  ``diffranet stream``, the geometry given to the service (its resampling map built beforehand);
* PILATUS 6M: 2527 x 2463 int32 CBF files (gaps -1, geometry in the header) through
  ``diffranet classify``;
* 512 x 512 uint16 in the training detector's geometry, simple format (the case of
  ``test_stream_speed.py``, as a yardstick in the same run).

Every run uses the shipped model (``--model default``), verdicts with the spot figures of the model
input (the default ``peaks="input"``), one service process (``workers=1``) unless
``FRAME_BENCH_WORKERS`` says otherwise.

``test_stream_frames`` and ``test_classify_cbf_files``: frames/s with the sender (its own process)
on the same machine, or files/s of ``classify`` reading the files, and the CPU time per frame of the
service (not the sender) or of ``classify``; for streams also the p50 / p99 latency with the sender
paced at half the measured rate, and the peak RSS of the service's process (test harness included:
an upper bound).

``test_stage_cpu``: CPU ms per frame of each stage, one thread, measured on its own in this
process: taking the message apart, expanding bslz4 pixels, reading a CBF file, the finite check of
float frames, preprocessing by the Python route (``to_training_counts`` + ``to_8bit``: invalid
pixels, sparse products, background completion) and by the compiled route (``preprocess``) back to
back, for Stream V2 also the compiled route on the still-compressed pixels (what the service does),
the spot count, the model.

Run with ``pytest benchmarks/test_frame_speed.py -s`` (prints tables); ``FRAME_BENCH_FRAMES`` sets
the frames per stream run (default 300; 512 x 512 runs send ten times as many).
"""

import dataclasses
import functools
import os
import resource
import time

import numpy as np
import pytest
from test_stream_speed import _cpu_us, _run, push_frames

from diffranet.inference import FrameGeometry

N_FRAMES = int(os.environ.get("FRAME_BENCH_FRAMES", 300))
WORKERS = int(os.environ.get("FRAME_BENCH_WORKERS", 1))
N_DISTINCT = 4  # distinct frames sent in turn (two hits, two misses)


@dataclasses.dataclass(frozen=True)
class Size:
    shape: tuple
    dtype: str
    fmt: str  # how the frames arrive: "dectris" (Stream V2), "simple" or "cbf" (files)
    geometry: FrameGeometry = None
    module: tuple = None  # module shape and gaps (rows, cols) of the gap mask
    gap: tuple = None
    gap_value: float = None  # what the gaps hold in the frames
    saturation: float = None

    def gaps(self):
        from diffranet.detectors.masks import module_gap_mask

        return None if self.module is None else module_gap_mask(self.shape, self.module, self.gap)


SIZES = {
    "eiger16m": Size((4362, 4148), "<u4", "dectris", FrameGeometry(0.075, 200.0, 1.0, (2075.0, 2185.5)),
                     (514, 1030), (37, 10), 2 ** 32 - 1, 2 ** 32 - 1),
    "jungfrau4m": Size((2164, 2068), "<f4", "simple", FrameGeometry(0.075, 120.0, 1.0, (1034.0, 1082.0)),
                       (514, 1030), (36, 8), -1),
    "pilatus6m": Size((2527, 2463), "<i4", "cbf", FrameGeometry(0.172, 300.0, 1.0, (1231.5, 1263.5)),
                      (195, 487), (17, 7), -1, 1048575),
    "512": Size((512, 512), "<u2", "simple"),
}


def frames(name, n=N_DISTINCT):
    """``n`` frames of size ``name``: photons of about one per pixel (float32: with read-out noise), 300 spots
    of 3 x 3 pixels on every other frame, the gaps set to the gap value."""
    size = SIZES[name]
    rng = np.random.default_rng(0)
    gaps = size.gaps()
    out = []
    for i in range(n):
        counts = rng.poisson(0.5 if size.dtype == "<u4" else 1.0, size.shape).astype(np.float32)
        if size.dtype == "<f4":
            counts += rng.normal(0.0, 0.05, size.shape).astype(np.float32)
        if i % 2 == 0:
            rows = rng.integers(2, size.shape[0] - 2, 300)
            cols = rng.integers(2, size.shape[1] - 2, 300)
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    counts[rows + dr, cols + dc] += 400 if dr == dc == 0 else 60
        frame = counts.astype(size.dtype)
        if gaps is not None:
            frame[gaps] = size.gap_value
        out.append(frame)
    return out


def _send(name, address, fmt, n, rate_hz):
    """Sender process: frames of size ``name`` (Stream V2: geometry, pixel mask and saturation in the start)."""
    size = SIZES[name]
    start, mask = {}, None
    if fmt == "dectris":
        g = size.geometry
        start = {"pixel_size_m": g.pixel_size_mm * 1e-3, "distance_m": g.distance_mm * 1e-3,
                 "wavelength_A": g.wavelength_A, "beam_center_px": g.beam_center_px,
                 "saturation_value": size.saturation}
        mask = size.gaps().astype(np.uint32)
    push_frames(address, fmt, n, rate_hz, frames(name), start, mask)


@pytest.mark.parametrize("name", ["eiger16m", "jungfrau4m", "512"])
def test_stream_frames(benchmark, name):
    from diffranet.inference.modelfile import default_model_path

    from diffranet._allocator import keep_freed_memory

    keep_freed_memory()  # as the stream command does in its process (benchmarks run in their own)
    fmt, geometry = SIZES[name].fmt, SIZES[name].geometry
    n = N_FRAMES * (10 if name == "512" else 1)
    batch = 32 if name == "512" else 8  # a batch of expanded 16M frames holds 72 MB each

    if fmt != "dectris" and geometry is not None:
        # the resampling map of a geometry is built on its first frame and cached (about 2 s for a JUNGFRAU 4M):
        # built beforehand, as for the CBF files, so that the CPU time is that of a service already running
        from diffranet.inference import load_model, preprocess

        preprocess(frames(name, 1)[0], geometry=geometry, preprocessing=load_model(default_model_path()).preprocessing)

    def run(n, rate_hz):
        return _run(default_model_path(), fmt, WORKERS, n, rate_hz, send=functools.partial(_send, name),
                    geometry=None if fmt == "dectris" else geometry, batch_size=batch, queue_size=64)

    def measure():
        rate, _, _, cpu_ms = run(n, None)
        paced = 0.5 * rate  # latency with the sender at half the measured rate, as a detector would send
        _, p50, p99, _ = run(max(20, min(n, int(paced * 10))), paced)
        return rate, cpu_ms, paced, p50, p99

    rate, cpu_ms, paced, p50, p99 = benchmark.pedantic(measure, rounds=1, iterations=1)
    # this process runs the service (one process) and the harness; the sender runs in its own
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    benchmark.extra_info.update(frames_per_s=rate, cpu_ms_per_frame=cpu_ms, paced_hz=paced, latency_p50_ms=p50,
                                latency_p99_ms=p99, peak_rss_mb=rss_mb)
    print(f"\n{name:10s} {fmt:7s} workers={WORKERS}: {rate:7.1f} frames/s end to end | {cpu_ms:6.2f} CPU ms per "
          f"frame (service) | at {paced:.1f} Hz latency p50 {p50:.0f} ms p99 {p99:.0f} ms | peak RSS of the "
          f"service process {rss_mb:.0f} MB")


@pytest.fixture(scope="module")
def cbf_files(tmp_path_factory):
    """N_FRAMES // 5 PILATUS 6M CBF files (the distinct frames in turn), geometry in the header."""
    import fabio.cbfimage

    geometry, saturation = SIZES["pilatus6m"].geometry, SIZES["pilatus6m"].saturation
    header = (f"# Pixel_size {geometry.pixel_size_mm * 1e-3:g} m x {geometry.pixel_size_mm * 1e-3:g} m\r\n"
              f"# Detector_distance {geometry.distance_mm * 1e-3:g} m\r\n# Wavelength {geometry.wavelength_A:g} A\r\n"
              f"# Beam_xy ({geometry.beam_center_px[0]}, {geometry.beam_center_px[1]}) pixels\r\n"
              f"# Count_cutoff {saturation} counts")
    directory = tmp_path_factory.mktemp("pilatus6m")
    distinct = frames("pilatus6m")
    paths = []
    for i in range(max(N_FRAMES // 5, 8)):
        path = directory / f"frame_{i:05d}.cbf"
        fabio.cbfimage.CbfImage(data=distinct[i % len(distinct)],
                                header={"_array_data.header_contents": header}).write(str(path))
        paths.append(path)
    return paths


def test_classify_cbf_files(benchmark, cbf_files):
    """Files/s of ``diffranet classify --model default`` on PILATUS 6M CBF files (its ``classify_files``, one
    process), the model loaded and the resampling map of the geometry built (by a first file) beforehand."""
    import psutil

    from diffranet.inference import load_model
    from diffranet.inference.files import FileError
    from diffranet.live.files import classify_files
    from diffranet.inference.modelfile import default_model_path

    from diffranet._allocator import freeze_loaded_objects, keep_freed_memory

    model = load_model(default_model_path())
    keep_freed_memory()  # as the classify command does, once the model is loaded
    freeze_loaded_objects()
    list(classify_files(model, cbf_files[:1]))

    def measure():
        me = psutil.Process()
        cpu = sum(me.cpu_times()[:2])
        start = time.perf_counter()
        records = list(classify_files(model, cbf_files, batch_size=16))
        wall = time.perf_counter() - start
        assert len(records) == len(cbf_files) and not any(isinstance(r, FileError) for r in records)
        return len(cbf_files) / wall, (sum(me.cpu_times()[:2]) - cpu) / len(cbf_files) * 1e3

    rate, cpu_ms = benchmark.pedantic(measure, rounds=1, iterations=1)
    benchmark.extra_info.update(frames_per_s=rate, cpu_ms_per_frame=cpu_ms)
    print(f"\npilatus6m cbf     classify: {rate:7.1f} files/s end to end | {cpu_ms:6.2f} CPU ms per file")


def _cpu_ms(function, n):
    return _cpu_us(function, n) / 1e3


@pytest.mark.parametrize("name", ["eiger16m", "jungfrau4m", "pilatus6m", "512"])
def test_stage_cpu(benchmark, name, tmp_path):
    """CPU ms per frame of each stage, one thread; the Python and compiled preprocessing routes back to back."""
    import importlib

    from diffranet.inference import load_model
    from diffranet.inference.modelfile import default_model_path
    from diffranet.io import read_image
    from diffranet.live.dectris import Stream2Decoder, encode_image, encode_start
    from diffranet.live.simple import decode_simple, encode_simple
    from diffranet.live.spots import SpotCounter
    from diffranet.live.tuning import prepare_processing_thread
    from diffranet.simulation.response import to_8bit

    pp = importlib.import_module("diffranet.inference.preprocess")
    prepare_processing_thread()
    size = SIZES[name]
    geometry, saturation, fmt = size.geometry, size.saturation, size.fmt
    frame = frames(name, 1)[0]
    mask = size.gaps()
    model = load_model(default_model_path())
    preprocessing = model.preprocessing
    counter = SpotCounter(preprocessing)
    repeats = 20 if name == "512" else 5

    def python_route():
        counts, _ = pp.to_training_counts(frame, mask, geometry, preprocessing, saturation=saturation)
        return to_8bit(counts + np.float32(preprocessing.adc_offset))

    def stages():
        out = {}
        if fmt == "dectris":
            g = geometry
            decoder = Stream2Decoder(defer_decompression=True)
            decoder.decode(encode_start(1, image_shape=frame.shape, pixel_size_m=g.pixel_size_mm * 1e-3,
                                        distance_m=g.distance_mm * 1e-3, wavelength_A=g.wavelength_A,
                                        beam_center_px=g.beam_center_px, pixel_mask=mask.astype(np.uint32),
                                        saturation_value=saturation), 0.0)
            message = encode_image(1, 0, frame, compression="bslz4")
            out["decode a Stream V2 message (pixels left compressed)"] = _cpu_ms(
                lambda: decoder.decode(message, 0.0), repeats)
            packed = decoder.decode(message, 0.0).data
            out["expand bslz4 pixels"] = _cpu_ms(packed.expand, repeats)
        elif fmt == "cbf":
            import fabio.cbfimage

            path = tmp_path / "frame.cbf"
            fabio.cbfimage.CbfImage(data=frame).write(str(path))
            out["read the CBF file"] = _cpu_ms(lambda: read_image(path), repeats)
        else:
            parts = [bytes(part) for part in encode_simple(0, frame)]
            out["decode a simple-format message"] = _cpu_ms(lambda: decode_simple(parts), repeats)
        if geometry is not None:  # the Python route, stage by stage
            invalid = pp.invalid_pixels(frame, mask, saturation)
            sums, covered, expected = pp.resample(frame, invalid, geometry, preprocessing)
            center = preprocessing.geometry.center_px(preprocessing.shape)
            out["  Python route: invalid pixels"] = _cpu_ms(lambda: pp.invalid_pixels(frame, mask, saturation),
                                                          repeats)
            out["  Python route: resample (sparse products)"] = _cpu_ms(
                lambda: pp.resample(frame, invalid, geometry, preprocessing), repeats)
            out["  Python route: background completion + 8-bit"] = _cpu_ms(
                lambda: to_8bit(pp.complete(sums, covered, expected, center)[0] + np.float32(10.0)), repeats)
        if frame.dtype.kind == "f":  # the live service refuses frames with NaN or inf outside the mask
            out["finite check of the frame (count_nonfinite)"] = _cpu_ms(
                lambda: pp.count_nonfinite(frame, mask, 1), repeats)
        out["preprocess, Python route"] = _cpu_ms(python_route, repeats)
        out["preprocess(): compiled route (512: the 8-bit table)"] = _cpu_ms(
            lambda: pp.preprocess(frame, mask, geometry, preprocessing, saturation=saturation), repeats)
        image = pp.preprocess(frame, mask, geometry, preprocessing, saturation=saturation)
        assert np.array_equal(image, python_route())
        if fmt == "dectris":  # what the service does: the pixels read where they lie in the bslz4 blocks
            out["preprocess() of the bslz4 pixels (only the blocks the map reads expanded)"] = _cpu_ms(
                lambda: pp.preprocess(packed, mask, geometry, preprocessing, saturation=saturation), repeats)
            assert np.array_equal(pp.preprocess(packed, mask, geometry, preprocessing, saturation=saturation), image)
        images = np.repeat(image[None], 8, axis=0)
        out["spot count on the model input (batches of 8)"] = _cpu_ms(
            lambda: counter.summarise(images, geometry_known=geometry is not None), 5) / 8
        out["model, DeepFreak with significance (batches of 8)"] = _cpu_ms(
            lambda: model.predict_proba(images), 5) / 8
        return out

    result = benchmark.pedantic(stages, rounds=1, iterations=1)
    benchmark.extra_info.update({f"{k.strip()} (ms)": v for k, v in result.items()})
    print(f"\n{name}: CPU ms per frame, one thread")
    for stage, ms in result.items():
        print(f"  {stage:54s} {ms:8.2f}")
