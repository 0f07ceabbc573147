"""Processing and ordering layers: batches with one bad frame, verdicts put back in order."""

import random

import numpy as np
import pytest

from diffranet.live.frames import Frame
from diffranet.live.parallel import OrderedMerger
from diffranet.live.processing import FrameClassifier
from live.harness import frames_with_spots


def _verdicts(results):
    """The model's part of each verdict (without the spot figures)."""
    return [{key: result[key] for key in ("label", "hit", "proba")} for result in results]


def test_a_frame_the_model_rejects_gets_an_error_and_the_others_their_verdicts(model):
    data = frames_with_spots(4, seed=8)
    mask = np.zeros(data.shape[1:], bool)
    mask[:5] = True
    frames = [Frame({"id": 0}, data[0], mask=mask), Frame({"id": 1}, data[1], mask=mask),
              Frame({"id": 2}, data[2], mask=np.zeros((3, 3), bool)),  # mask of the wrong shape
              Frame({"id": 3}, data[3])]
    results = FrameClassifier(model).classify(frames)
    assert isinstance(results[2], ValueError)
    assert _verdicts(results[:2]) == model.classify(list(data[:2]), masks=[mask, mask])
    assert _verdicts([results[3]]) == model.classify([data[3]])


def test_batches_split_where_geometry_changes(model):
    from diffranet.inference import FrameGeometry

    data = frames_with_spots(3, seed=9)
    geometry = FrameGeometry(0.688, 80.0, 1.5)
    frames = [Frame({}, data[0]), Frame({}, data[1], geometry=geometry), Frame({}, data[2])]
    results = FrameClassifier(model).classify(frames)
    assert _verdicts([results[1]]) == model.classify([data[1]], geometry=geometry)
    assert _verdicts([results[0], results[2]]) == model.classify([data[0], data[2]])


def test_verdicts_carry_the_peak_count_and_the_outermost_peak_resolution_when_the_geometry_is_known(model):
    from diffranet.inference import FrameGeometry
    from diffranet.live.spots import SpotCounter

    data = frames_with_spots(1, seed=11)[0].copy()
    data[:] = np.random.default_rng(11).poisson(2.0, data.shape)
    spots = [(30, 40), (90, 100), (64, 120)]  # (row, col) of 2 x 2-pixel spots; the last is the outermost
    for row, col in spots:
        data[row:row + 2, col:col + 2] += 400
    geometry = FrameGeometry(0.688, 80.0, 1.5)  # the model's training geometry: one pixel per input pixel
    with_geometry, without = FrameClassifier(model).classify([Frame({}, data, geometry=geometry), Frame({}, data)])
    assert with_geometry["n_peaks"] == without["n_peaks"] == len(spots)
    # its centroid, x = 121, y = 65 from the corner of pixel (0, 0), is hypot(57, 1) px from the beam at
    # (64, 64): 39.2 mm at 80 mm, 2 theta = 26.1 deg
    expected_A = 1.5 / (2 * np.sin(np.arctan(np.hypot(57, 1) * 0.688 / 80.0) / 2))
    assert with_geometry["d_min_A"] == pytest.approx(expected_A, abs=0.01)
    assert without["d_min_A"] is None  # binned and cropped: no resolution
    assert SpotCounter(model.preprocessing).d_min_A([], []) is None
    quiet = FrameClassifier(model, peaks="none").classify([Frame({}, data, geometry=geometry)])[0]
    assert (quiet["n_peaks"], quiet["d_min_A"]) == (None, None)
    assert _verdicts([quiet]) == _verdicts([with_geometry])


def test_peaks_on_the_frame_reach_beyond_the_model_input_and_skip_masked_pixels(model):
    from diffranet.inference import FrameGeometry

    rng = np.random.default_rng(12)
    data = rng.poisson(2.0, (256, 256)).astype(np.int32)
    geometry = FrameGeometry(0.172, 40.0, 1.0, (128.0, 128.0))
    data[10:12, 10:12] += 400  # near the corner: beyond what the model's 128 x 128 input sees
    data[100:102, 150:152] += 400
    data[200:202, 60:62] += 5000  # a hot block, masked
    data[50, 50] = -1  # a gap flag: ignored, not a negative peak's neighbour
    mask = np.zeros(data.shape, bool)
    mask[200:202, 60:62] = True
    on_frame, on_input = (FrameClassifier(model, peaks=peaks).classify([Frame({}, data, mask=mask,
                                                                               geometry=geometry)])[0]
                          for peaks in ("frame", "input"))
    assert on_frame["n_peaks"] == 2
    # the corner spot's centroid, (11, 11) from the corner of pixel (0, 0), is 117 * sqrt(2) px from the beam
    radius_mm = 117 * np.sqrt(2) * 0.172
    assert on_frame["d_min_A"] == pytest.approx(1.0 / (2 * np.sin(np.arctan(radius_mm / 40.0) / 2)), abs=0.01)
    # the model input (0.688 mm pixels at 80 mm, 1.5 A) sees down to 2.31 A at its corner
    corner_A = 1.5 / (2 * np.sin(np.arctan(64 * np.sqrt(2) * 0.688 / 80.0) / 2))
    assert on_input["d_min_A"] is None or on_input["d_min_A"] >= corner_A - 0.01
    assert on_frame["d_min_A"] < corner_A
    assert _verdicts([on_frame]) == _verdicts([on_input])
    unplaced = FrameClassifier(model, peaks="frame").classify([Frame({}, data, mask=mask)])[0]
    assert unplaced["n_peaks"] == 2 and unplaced["d_min_A"] is None
    with pytest.raises(ValueError, match="peaks"):
        FrameClassifier(model, peaks="raw")


def test_spot_counter_rejects_images_that_are_not_model_inputs(model):
    from diffranet.live.spots import SpotCounter

    counter = SpotCounter(model.preprocessing)
    with pytest.raises(ValueError, match="uint8 of shape"):
        counter.summarise(np.zeros((1, 8, 8), np.uint8), geometry_known=True)
    with pytest.raises(ValueError, match="uint8 of shape"):
        counter.summarise(np.zeros((1, *model.preprocessing.shape), np.float32), geometry_known=True)
    with pytest.raises(ValueError, match="PeakFinderSettings"):
        SpotCounter(model.preprocessing, settings={"min_snr": 3})
    assert counter.summarise(np.zeros((0, *model.preprocessing.shape), np.uint8), geometry_known=True) == []


def test_ordered_merger_releases_in_sequence_whatever_the_arrival_order():
    out = []
    merger = OrderedMerger(out.append)
    order = list(range(500))
    random.Random(0).shuffle(order)
    for seq in order:
        merger.add(seq, seq)
        assert out == list(range(len(out)))  # never out of order, never ahead of a gap
    assert out == list(range(500)) and merger.waiting == 0


def test_compressed_frames_are_expanded_and_a_corrupt_one_gets_an_error(model):
    from diffranet.live.compression import CompressedArray, compress

    data = frames_with_spots(4, seed=10)
    frames = []
    for i, frame in enumerate(data):
        algorithm, modifier, payload = compress(frame, "bslz4" if i % 2 else "lz4")
        if i == 2:
            payload = payload[:-40]  # truncated in transit
        frames.append(Frame({"id": i}, CompressedArray(algorithm, modifier, payload, frame.dtype, frame.shape)))
    results = FrameClassifier(model).classify(frames)
    assert isinstance(results[2], ValueError)
    assert _verdicts([results[i] for i in (0, 1, 3)]) == model.classify([data[i] for i in (0, 1, 3)])


def test_masks_reach_workers_once_as_files(tmp_path):
    from diffranet.live.parallel import _MaskFiles

    sender, worker = _MaskFiles(tmp_path), _MaskFiles(tmp_path)
    mask = np.zeros((6, 7), bool)
    mask[1, 2] = True
    name = sender.name(mask, 0)
    assert sender.name(mask, 1) == name == sender.name(mask.copy(), 2)  # by content
    other = mask.copy()
    other[0, 0] = True
    assert sender.name(other, 3) != name
    assert sender.name(mask.reshape(7, 6), 4) != name  # same pixels, other shape
    loaded = worker.load(name)
    assert np.array_equal(loaded, mask) and worker.load(name) is loaded and not loaded.flags.writeable
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({name, sender.name(other, 5),
                                                                 sender.name(mask.reshape(7, 6), 6)})
    with pytest.raises(ValueError, match="bad mask name"):
        worker.load("../elsewhere.npy")


def test_a_mask_file_goes_once_forgotten_and_its_frames_answered(tmp_path):
    from diffranet.live.parallel import _MaskFiles

    sender = _MaskFiles(tmp_path, keep=2)
    masks = np.zeros((4, 5, 5), bool)
    for i in range(4):
        masks[i, i] = True
    names = [sender.name(masks[i], seq=i) for i in range(4)]
    assert len(set(names)) == 4 and len(list(tmp_path.iterdir())) == 4  # frames 0 and 1 wait for their verdicts
    sender.answered([0, 2])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[1:])  # mask 2 is still remembered
    sender.answered([1, 3])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[2:])
    assert sender.name(masks[0], seq=4) == names[0] and (tmp_path / names[0]).exists()  # written again


def test_worker_processes_give_torch_one_thread():
    # two workers with torch's default thread count each spent 3-5 times the CPU per frame of one
    torch = pytest.importorskip("torch")
    from diffranet.live.tuning import one_torch_thread

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        one_torch_thread()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)


def test_thread_backend_leaves_the_callers_allocator_alone(monkeypatch, model):
    # mallopt changes the allocator of the whole process: only the package's own processes may call it
    import diffranet._allocator
    import diffranet.live.tuning
    from diffranet.live.parallel import ThreadBackend
    from diffranet.live.processing import FrameClassifier

    calls = []
    monkeypatch.setattr(diffranet._allocator, "keep_freed_memory", lambda: calls.append("allocator"))
    monkeypatch.setattr(diffranet.live.tuning, "keep_freed_memory", lambda: calls.append("tuning"))
    results = []
    backend = ThreadBackend(FrameClassifier(model), results.extend).start()
    backend.submit(0, Frame({"id": 0}, frames_with_spots(1)[0]))
    backend.close()
    assert [seq for seq, _ in results] == [0] and isinstance(results[0][1], dict) and calls == []
    diffranet.live.tuning.prepare_worker_process()
    assert calls == ["tuning"]


def test_spot_figures_do_not_depend_on_the_spot_counters_threads(model):
    from diffranet.inference import FrameGeometry

    data = frames_with_spots(6, seed=4)
    rng = np.random.default_rng(4)
    for frame in data[::2]:  # 2 x 2-pixel spots: peaks of two pixels or more
        for row, col in rng.integers(5, data.shape[1] - 7, (12, 2)):
            frame[row:row + 2, col:col + 2] += 400
    frames = [Frame({}, frame, geometry=FrameGeometry(0.688, 80.0, 1.5)) for frame in data]
    one, two = (FrameClassifier(model, n_threads=n).classify(frames) for n in (1, 2))
    assert [(a["n_peaks"], a["d_min_A"]) for a in one] == [(b["n_peaks"], b["d_min_A"]) for b in two]
    assert any(a["n_peaks"] for a in one)
    with pytest.raises(ValueError, match="n_threads"):
        FrameClassifier(model, n_threads=0)


@pytest.mark.parametrize("peaks", ["input", "frame"])
def test_bslz4_frames_with_geometry_read_compressed_give_the_verdicts_of_the_expanded_frames(model, peaks):
    from diffranet.inference import FrameGeometry
    from diffranet.live.compression import CompressedArray, compress

    geometry = FrameGeometry(0.1, 120.0, 1.0, (300.0, 280.0))
    data = frames_with_spots(3, shape=(600, 640), seed=11).astype("<u4")
    mask = np.zeros(data.shape[1:], bool)
    mask[100:110] = True
    frames = [Frame({"id": i}, CompressedArray(*compress(frame, "bslz4"), frame.dtype, frame.shape), mask=mask,
                    geometry=geometry, saturation=60000) for i, frame in enumerate(data)]
    truncated = frames[1].data.payload[:-300]  # cut in transit
    frames[1] = Frame({"id": 1}, CompressedArray("bslz4", 4, truncated, "<u4", data.shape[1:]), mask=mask,
                      geometry=geometry, saturation=60000)
    classifier = FrameClassifier(model, peaks=peaks)
    results = classifier.classify(frames)
    assert isinstance(results[1], ValueError)
    expected = FrameClassifier(model, peaks=peaks).classify(
        [Frame({"id": i}, data[i], mask=mask, geometry=geometry, saturation=60000) for i in (0, 2)])
    assert [results[0], results[2]] == expected
