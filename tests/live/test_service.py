"""The stream service end to end: a sender process on loopback, the service, a subscriber."""

import json
import os
import threading
import time

import numpy as np
import psutil
import pytest

from diffranet.live import StreamService
from diffranet.live.sender import send_simple, send_stream2
from live.harness import SIZE, TIMEOUT_S, frames_with_spots, free_address, running_service, start_process


def _verdicts(records):
    return [r for r in records if "label" in r and not r.get("dropped")]


def _read_log(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _check_verdicts_match_model(records, model, frames, ids, **classify_kwargs):
    expected = model.classify(list(frames), **classify_kwargs)
    assert [r["id"] for r in records] == list(ids)
    for record, verdict in zip(records, expected):
        assert {k: record[k] for k in ("label", "hit", "proba")} == verdict
        assert record["latency_ms"] >= 0


def test_simple_stream_every_frame_once_in_order_with_malformed_messages(tmp_path, model_path, model):
    n = 40
    frames = frames_with_spots(n, seed=1)
    ids = [1000 + 3 * i for i in range(n)]
    bad = {5: [[b"only one part"]], 17: [[b"{not json", b"x"]],
           30: [[json.dumps({"id": "x", "shape": [SIZE, SIZE], "dtype": "<u2"}).encode(), b"short"]]}
    input_address, publish_address = free_address(), free_address()
    service = StreamService(model_path, input_address, publish_address, log_path=tmp_path / "log.jsonl",
                            queue_size=n + 10)
    with running_service(service) as (subscriber, result):
        sender = start_process(send_simple, input_address, frames, ids, extra_messages=bad)
        assert subscriber.wait_for(lambda r: len(r) >= n), f"{len(subscriber.records)} of {n} verdicts"
        sender.join(TIMEOUT_S)
    published = subscriber.records
    assert len(published) == n  # errors are logged, not published
    _check_verdicts_match_model(published, model, frames, ids)
    log = _read_log(tmp_path / "log.jsonl")
    assert [r for r in log if "error" not in r] == published
    errors = [r for r in log if "error" in r]
    assert len(errors) == 3 and errors[2]["id"] == "x"
    # errors sit where their messages arrived
    positions = [i for i, r in enumerate(log) if "error" in r]
    assert positions == [5, 18, 32]
    final = result["final"]
    assert (final.frames, final.errors, final.dropped) == (n, 3, 0)
    assert final.hits == sum(r["hit"] for r in published)


@pytest.mark.parametrize("compression", ["bslz4", "lz4"])
def test_dectris_stream_geometry_and_mask_from_start(tmp_path, model_path, model, compression):
    from diffranet.inference import FrameGeometry

    n = 24
    frames = frames_with_spots(n, seed=2)
    mask = np.zeros((SIZE, SIZE), np.uint32)
    mask[:, 60:64] = 1  # a module gap
    frames[:, :, 60:64] = 65535
    start = {"pixel_size_m": 688e-6, "distance_m": 0.08, "wavelength_A": 1.5, "beam_center_px": (64.0, 64.0),
             "pixel_mask": mask, "saturation_value": 60000}
    input_address, publish_address = free_address(), free_address()
    service = StreamService(model_path, input_address, publish_address, source_format="dectris",
                            log_path=tmp_path / "log.jsonl")
    with running_service(service) as (subscriber, _):
        sender = start_process(send_stream2, input_address, frames, series_id=77, compression=compression,
                               start=start, extra_messages={4: [b"\xd9\xd9\xf7\xa1dtypedjunk"], 9: [b"\xff"]})
        assert subscriber.wait_for(lambda r: any(x.get("end") for x in r)), "no end-of-series record"
        sender.join(TIMEOUT_S)
    verdicts = _verdicts(subscriber.records)
    assert all(r["series_id"] == 77 and r["series_unique_id"] == "series-77" for r in verdicts)
    geometry = FrameGeometry(0.688, 80.0, 1.5, (64.0, 64.0))
    _check_verdicts_match_model(verdicts, model, frames, range(n), masks=list(np.broadcast_to(mask != 0, frames.shape)),
                                geometry=geometry, saturation=60001)
    assert subscriber.records[-1] == {"series_id": 77, "series_unique_id": "series-77", "end": True}
    log = _read_log(tmp_path / "log.jsonl")
    assert sum("error" in r for r in log) == 2


def test_fan_out_workers_give_the_same_verdicts_in_order(tmp_path, model_path, model):
    n = 60
    frames = frames_with_spots(n, seed=3)
    input_address, publish_address = free_address(), free_address()
    service = StreamService(model_path, input_address, publish_address, workers=2, batch_size=4,
                            log_path=tmp_path / "log.jsonl", queue_size=n)
    with running_service(service) as (subscriber, result):
        sender = start_process(send_simple, input_address, frames, extra_messages={20: [[b"bad"]]})
        assert subscriber.wait_for(lambda r: len(r) >= n), f"{len(subscriber.records)} of {n} verdicts"
        sender.join(TIMEOUT_S)
    _check_verdicts_match_model(subscriber.records, model, frames, range(n))
    log = _read_log(tmp_path / "log.jsonl")
    assert [i for i, r in enumerate(log) if "error" in r] == [20]
    assert result["final"].frames == n


def test_fan_out_stream2_workers_expand_pixels_share_the_mask_and_isolate_a_corrupt_frame(tmp_path, model_path, model):
    import cbor2

    from diffranet.inference import FrameGeometry
    from diffranet.live.compression import compress

    n = 30
    frames = frames_with_spots(n, seed=6)
    mask = np.zeros((SIZE, SIZE), np.uint32)
    mask[:, 60:64] = 1
    _, _, payload = compress(frames[0], "bslz4")
    corrupt = b"\xd9\xd9\xf7" + cbor2.dumps({"type": "image", "series_id": 5, "series_unique_id": "series-5",
                                              "image_id": 999, "data": {"threshold_1": cbor2.CBORTag(40, [
                                                  [SIZE, SIZE], cbor2.CBORTag(69, cbor2.CBORTag(
                                                      56500, ["bslz4", 2, payload[:-100]]))])}})
    start = {"pixel_size_m": 688e-6, "distance_m": 0.08, "wavelength_A": 1.5, "pixel_mask": mask}
    input_address, publish_address = free_address(), free_address()
    service = StreamService(model_path, input_address, publish_address, source_format="dectris", workers=2,
                            batch_size=4, queue_size=n + 5, log_path=tmp_path / "log.jsonl")
    with running_service(service) as (subscriber, result):
        sender = start_process(send_stream2, input_address, frames, series_id=5, start=start,
                               extra_messages={11: [corrupt]})
        assert subscriber.wait_for(lambda r: any(x.get("end") for x in r)), "no end-of-series record"
        sender.join(TIMEOUT_S)
    _check_verdicts_match_model(_verdicts(subscriber.records), model, frames, range(n),
                                masks=list(np.broadcast_to(mask != 0, frames.shape)),
                                geometry=FrameGeometry(0.688, 80.0, 1.5), saturation=65535)
    log = _read_log(tmp_path / "log.jsonl")
    errors = [i for i, r in enumerate(log) if "error" in r]
    assert len(errors) == 1 and log[errors[0]]["id"] == 999 and errors[0] == 11
    assert result["final"].frames == n and result["final"].errors == 1


def test_fan_out_workers_keep_only_the_mask_files_in_use(tmp_path, model_path, model):
    # every series with a mask of its own left a file for the service's life (up to 64 MB each)
    import glob

    import zmq

    from diffranet.live.dectris import encode_image, encode_start

    n = 20
    frames = frames_with_spots(n, seed=8)
    masks = np.zeros((n, SIZE, SIZE), bool)
    for i in range(n):
        masks[i, :, 4 * i:4 * i + 8] = True
    input_address, publish_address = free_address(), free_address()
    service = StreamService(model_path, input_address, publish_address, source_format="dectris", workers=2,
                            batch_size=4, queue_size=2 * n, log_path=tmp_path / "log.jsonl")
    context = zmq.Context()
    push = context.socket(zmq.PUSH)
    push.bind(input_address)
    try:
        with running_service(service) as (subscriber, _):
            for i in range(n):
                push.send(encode_start(100 + i, image_shape=(SIZE, SIZE), pixel_mask=masks[i]))
                push.send(encode_image(100 + i, i, frames[i]))
            assert subscriber.wait_for(lambda r: len(r) >= n), f"{len(subscriber.records)} of {n} verdicts"
            mask_files = glob.glob(os.path.join(service._pipeline._backend._dir.name, "mask-*"))
    finally:
        push.close(linger=0)
        context.term()
    assert len(mask_files) <= 8  # the masks remembered; the others' frames all answered
    _check_verdicts_match_model(subscriber.records, model, frames, range(n), masks=list(masks), saturation=65535)


def _rss_sampler(stop, samples, records):
    process = psutil.Process(os.getpid())
    while not stop.is_set():
        samples.append((len(records), process.memory_info().rss))
        time.sleep(0.02)


def test_overload_drops_are_counted_and_memory_stays_flat(tmp_path, model_path):
    n = 1500  # 190 MB of 256 x 256 frames sent as fast as loopback allows, into a queue of 4
    input_address, publish_address = free_address(), free_address()
    service = StreamService(model_path, input_address, publish_address, queue_size=4, receive_buffer=4,
                            log_path=tmp_path / "log.jsonl")
    frames = np.broadcast_to(frames_with_spots(1, shape=(2 * SIZE, 2 * SIZE), seed=4)[0], (n, 2 * SIZE, 2 * SIZE))
    stop, samples = threading.Event(), []
    with running_service(service) as (subscriber, result):
        sampler = threading.Thread(target=_rss_sampler, args=(stop, samples, subscriber.records), daemon=True)
        sampler.start()
        sender = start_process(send_simple, input_address, frames)
        assert subscriber.wait_for(lambda r: len(r) >= n), f"{len(subscriber.records)} of {n} records"
        sender.join(TIMEOUT_S)
        stop.set()
        sampler.join(5)
    records = subscriber.records
    assert [r["id"] for r in records] == list(range(n))  # every frame accounted for, once, in order
    dropped = [r for r in records if r.get("dropped")]
    assert len(dropped) > 0 and all(r["label"] is None and r["hit"] is None for r in dropped)
    final = result["final"]
    assert final.dropped == len(dropped) and final.frames + final.dropped == n
    # after the first quarter of the stream (imports, allocator warm-up) memory no longer grows
    warm = max(rss for count, rss in samples if count <= n // 4)
    growth_mb = (max(rss for _, rss in samples) - warm) / 2**20
    assert growth_mb < 20, f"memory grew by {growth_mb:.0f} MB while {n} frames of 128 kB arrived"


def test_block_policy_back_pressures_and_loses_nothing(tmp_path, model_path):
    n = 30
    frames = frames_with_spots(n, seed=5)
    input_address, publish_address = free_address(), free_address()
    service = StreamService(model_path, input_address, publish_address, queue_size=2, overflow="block",
                            receive_buffer=2, batch_size=2, log_path=tmp_path / "log.jsonl")
    with running_service(service) as (subscriber, result):
        sender = start_process(send_simple, input_address, frames)
        assert subscriber.wait_for(lambda r: len(r) >= n), f"{len(subscriber.records)} of {n} records"
        sender.join(TIMEOUT_S)
    assert [r["id"] for r in subscriber.records] == list(range(n))
    assert result["final"].dropped == 0


def test_bad_arguments(model_path):
    with pytest.raises(ValueError, match="input_address"):
        StreamService(model_path, "localhost:5", "tcp://127.0.0.1:1")
    with pytest.raises(ValueError, match="source_format"):
        StreamService(model_path, "tcp://127.0.0.1:1", "tcp://127.0.0.1:2", source_format="hdf5")
    with pytest.raises(ValueError, match="overflow"):
        StreamService(model_path, "tcp://127.0.0.1:1", "tcp://127.0.0.1:2", overflow="wait")
    with pytest.raises(ValueError, match="queue_size"):
        StreamService(model_path, "tcp://127.0.0.1:1", "tcp://127.0.0.1:2", queue_size=0)


def test_publish_address_in_use(model_path):
    import zmq

    address = free_address()
    context = zmq.Context()
    holder = context.socket(zmq.PUB)
    holder.bind(address)
    try:
        with pytest.raises(ValueError, match="cannot bind"):
            StreamService(model_path, free_address(), address).run(threading.Event())
    finally:
        holder.close(linger=0)
        context.term()
