"""Processing and ordering layers: batches with one bad frame, verdicts put back in order."""

import random

import numpy as np
import pytest

from diffranet.live.frames import Frame
from diffranet.live.parallel import OrderedMerger
from diffranet.live.processing import FrameClassifier
from live.harness import frames_with_spots


def test_a_frame_the_model_rejects_gets_an_error_and_the_others_their_verdicts(model):
    data = frames_with_spots(4, seed=8)
    mask = np.zeros(data.shape[1:], bool)
    mask[:5] = True
    frames = [Frame({"id": 0}, data[0], mask=mask), Frame({"id": 1}, data[1], mask=mask),
              Frame({"id": 2}, data[2], mask=np.zeros((3, 3), bool)),  # mask of the wrong shape
              Frame({"id": 3}, data[3])]
    results = FrameClassifier(model).classify(frames)
    assert isinstance(results[2], ValueError)
    assert results[:2] == model.classify(list(data[:2]), masks=[mask, mask])
    assert results[3] == model.classify([data[3]])[0]


def test_batches_split_where_geometry_changes(model):
    from diffranet.inference import FrameGeometry

    data = frames_with_spots(3, seed=9)
    geometry = FrameGeometry(0.688, 80.0, 1.5)
    frames = [Frame({}, data[0]), Frame({}, data[1], geometry=geometry), Frame({}, data[2])]
    results = FrameClassifier(model).classify(frames)
    assert results[1] == model.classify([data[1]], geometry=geometry)[0]
    assert [results[0], results[2]] == model.classify([data[0], data[2]])


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
    assert [results[i] for i in (0, 1, 3)] == model.classify([data[i] for i in (0, 1, 3)])


def test_masks_reach_workers_once_as_files(tmp_path):
    from diffranet.live.parallel import _MaskFiles

    sender, worker = _MaskFiles(tmp_path), _MaskFiles(tmp_path)
    mask = np.zeros((6, 7), bool)
    mask[1, 2] = True
    name = sender.name(mask)
    assert sender.name(mask) == name == sender.name(mask.copy())  # by content
    other = mask.copy()
    other[0, 0] = True
    assert sender.name(other) != name
    assert sender.name(mask.reshape(7, 6)) != name  # same pixels, other shape
    loaded = worker.load(name)
    assert np.array_equal(loaded, mask) and worker.load(name) is loaded and not loaded.flags.writeable
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({name, sender.name(other),
                                                                 sender.name(mask.reshape(7, 6))})
    with pytest.raises(ValueError, match="bad mask name"):
        worker.load("../elsewhere.npy")


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
