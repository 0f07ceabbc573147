"""Several services pulling from one Stream V2 sender: the series info they share, end to end on loopback."""

import json
import time
import zlib

import numpy as np
import pytest
import zmq

from diffranet.inference import FrameGeometry
from diffranet.live.dectris import Stream2Decoder, encode_end, encode_image, encode_start
from diffranet.live.frames import Frame
from diffranet.live.series import SERIES_TOPIC, SeriesInfo, decode_series, encode_series
from live.harness import SIZE, TIMEOUT_S, free_address, running_service, start_process

GEOMETRY = FrameGeometry(0.688, 80.0, 1.5, (64.0, 64.0))


def _info(series_id=5):
    mask = np.zeros((30, 20), bool)
    mask[3, :] = True
    mask[29, 19] = True
    return SeriesInfo(tags={"series_id": series_id, "series_unique_id": f"u{series_id}"}, shape=(30, 20),
                      channel="threshold_1", mask=mask, geometry=GEOMETRY, beam_center_px=(64.0, 64.0),
                      saturation=60001.0)


class TestSeriesMessage:
    def test_round_trip(self):
        info = _info()
        decoded = decode_series(encode_series(info))
        assert np.array_equal(decoded.mask, info.mask) and not decoded.mask.flags.writeable
        assert (decoded.tags, decoded.shape, decoded.channel, decoded.geometry, decoded.beam_center_px,
                decoded.saturation) == (info.tags, info.shape, info.channel, info.geometry, info.beam_center_px,
                                        info.saturation)
        bare = SeriesInfo(tags={"series_id": 1})
        assert decode_series(encode_series(bare)) == bare

    @staticmethod
    def _with_header(**changes):
        topic, header, mask = encode_series(_info())
        header = {**json.loads(header), **changes}
        return [topic, json.dumps(header).encode(), mask]

    @pytest.mark.parametrize("parts, message", [
        ([SERIES_TOPIC, b"{}"], "not a series info message"),
        ([b"other-topic", b"{}", b""], "not a series info message"),
        ([SERIES_TOPIC, b"{not json", b""], "not JSON"),
        ([SERIES_TOPIC, b"[]", b""], "object with the series tags"),
        ([SERIES_TOPIC, b'{"tags": {"series_unique_id": "u"}}', b""], "without a series_id"),
        ([SERIES_TOPIC, b'{"tags": {"series_id": 1}}', b"\x00"], "mask bytes without a mask_shape"),
    ])
    def test_malformed_messages_are_refused(self, parts, message):
        with pytest.raises(ValueError, match=message):
            decode_series(parts)

    @pytest.mark.parametrize("changes, message", [
        ({"channel": 3}, "channel"),
        ({"geometry": "near"}, "geometry"),
        ({"geometry": {"pixel_size_mm": -1, "distance_mm": 80.0, "wavelength_A": 1.5}}, "pixel_size_mm"),
        ({"beam_center_px": [1.0]}, "beam_center_px"),
        ({"beam_center_px": [1.0, float("nan")]}, "beam_center_px"),
        ({"saturation": "high"}, "saturation"),
        ({"shape": [0, 20]}, "shape"),
        ({"mask_shape": [30, 21]}, "does not hold 30 x 21"),
        ({"mask_shape": [1 << 17, 2]}, "mask_shape"),
    ])
    def test_bad_header_values_are_refused(self, changes, message):
        with pytest.raises(ValueError, match=message):
            decode_series(self._with_header(**changes))

    def test_a_mask_that_inflates_beyond_its_shape_is_refused(self):
        topic, header, _ = encode_series(_info())
        with pytest.raises(ValueError, match="does not hold"):
            decode_series([topic, header, zlib.compress(b"\x00" * 10_000)])
        with pytest.raises(ValueError, match="series info mask"):
            decode_series([topic, header, b"not zlib"])


def test_decoder_uses_an_adopted_series_and_remembers_a_bounded_number():
    info = _info(series_id=5)
    decoder = Stream2Decoder()
    image = encode_image(5, 0, np.ones((30, 20), np.uint16), compression=None)
    frame = decoder.decode(image, 0.0)
    assert frame.mask is None and frame.geometry is None and not decoder.knows(5)
    decoder.adopt(info)
    frame = decoder.decode(image, 0.0)
    assert decoder.knows(5) and frame.mask is info.mask and frame.geometry == GEOMETRY
    assert frame.saturation == 60001.0
    assert decoder.decode(encode_start(9, image_shape=(30, 20)), 0.0) is None
    assert decoder.series.tags["series_id"] == 9
    assert decoder.decode(image, 0.0).mask is info.mask  # a late image of series 5 keeps its settings
    for series_id in range(100, 100 + Stream2Decoder.KNOWN_SERIES):
        decoder.adopt(SeriesInfo(tags={"series_id": series_id}))
    assert not decoder.knows(5) and not decoder.knows(9) and decoder.knows(100)


def _spot_frames(n, mask):
    """uint16 frames; every other one crowded with spots; bright 2 x 2 blocks where the mask is set."""
    rng = np.random.default_rng(31)
    frames = rng.poisson(2.0, (n, SIZE, SIZE)).astype("<u2")
    for i in range(0, n, 2):
        for row, col in rng.integers(10, SIZE - 12, (300, 2)):
            frames[i, row:row + 2, col:col + 2] += 300
    rows, cols = np.nonzero(mask)
    frames[:, rows, cols] = 5000  # hot pixels: peaks unless masked
    return frames


def _expected(frames, start):
    """The frames one service that sees every message makes of the images (the reference for both pullers)."""
    decoder = Stream2Decoder()
    assert decoder.decode(encode_start(8, image_shape=(SIZE, SIZE), **start), 0.0) is None
    return [decoder.decode(encode_image(8, i, frame), 0.0) for i, frame in enumerate(frames)]


def _log(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_two_services_pulling_from_one_sender_each_know_the_series(tmp_path, model_path, model):
    from diffranet.live import StreamService
    from diffranet.live.processing import FrameClassifier
    from diffranet.live.sender import send_stream2

    n = 16
    mask = np.zeros((SIZE, SIZE), np.uint32)
    mask[20:22, 100:102] = 1
    mask[100:102, 30:32] = 1
    frames = _spot_frames(n, mask)
    start = {"pixel_size_m": 688e-6, "distance_m": 0.08, "wavelength_A": 1.5, "beam_center_px": (64.0, 64.0),
             "pixel_mask": mask, "saturation_value": 60000}
    input_address = free_address()
    series_a, series_b = free_address(), free_address()
    services = [
        StreamService(model_path, input_address, free_address(), source_format="dectris",
                      log_path=tmp_path / "a.jsonl", series_publish=series_a, series_subscribe=[series_b],
                      series_wait_s=TIMEOUT_S),
        StreamService(model_path, input_address, free_address(), source_format="dectris",
                      log_path=tmp_path / "b.jsonl", series_publish=series_b, series_subscribe=[series_a],
                      series_wait_s=TIMEOUT_S),
    ]
    with running_service(services[0]) as (sub_a, _), running_service(services[1]) as (sub_b, _):
        sender = start_process(send_stream2, input_address, frames, series_id=8, start=start, pullers=2)
        sender.join(TIMEOUT_S)
        assert sender.exitcode == 0, "the sender did not see both pullers"
        assert sub_a.wait_for(lambda r: len(r) + len(sub_b.records) >= n + 1), "verdicts missing"
    logs = [_log(tmp_path / "a.jsonl"), _log(tmp_path / "b.jsonl")]
    verdicts = [[r for r in log if "label" in r] for log in logs]
    assert all(verdicts), "round-robin: each service classifies some of the images"
    ids = sorted(r["id"] for part in verdicts for r in part)
    assert ids == list(range(n))  # every image exactly once
    assert sum(1 for log in logs for r in log if r.get("end")) == 1
    assert not any("error" in r or r.get("dropped") for log in logs for r in log)
    # both services classified with the start message's geometry, mask and saturation: exactly what a
    # single service that saw every message gives, spot figures included
    expected = FrameClassifier(model).classify(_expected(frames, start))
    for part in verdicts:
        for record in part:
            assert {k: record[k] for k in ("label", "hit", "proba", "n_peaks", "d_min_A")} == expected[record["id"]]
    without_mask = FrameClassifier(model).classify([Frame({}, frames[1], geometry=GEOMETRY)])[0]
    assert without_mask["n_peaks"] > expected[1]["n_peaks"]  # the test can tell a missing mask
    assert any(r["d_min_A"] is not None for part in verdicts for r in part)


def test_images_of_a_series_nobody_announces_wait_then_use_the_defaults(tmp_path, model_path, model):
    from diffranet.live import StreamService
    from diffranet.live.processing import FrameClassifier

    frames = _spot_frames(4, np.zeros((SIZE, SIZE), bool))
    input_address = free_address()
    service = StreamService(model_path, input_address, free_address(), source_format="dectris",
                            log_path=tmp_path / "log.jsonl", series_subscribe=[free_address()], series_wait_s=0.3)
    context = zmq.Context()
    push = context.socket(zmq.PUSH)
    push.bind(input_address)
    try:
        with running_service(service) as (subscriber, result):
            for i, frame in enumerate(frames[:3]):  # the start message went to a puller that is not there
                push.send(encode_image(4, i, frame))
            assert subscriber.wait_for(lambda r: len(r) >= 3), "held images never released"
            push.send(encode_image(4, 3, frames[3]))  # the series is given up: no more waiting
            push.send(encode_end(4))
            assert subscriber.wait_for(lambda r: len(r) >= 5)
    finally:
        push.close(linger=0)
        context.term()
    records = _log(tmp_path / "log.jsonl")
    assert [r.get("id") for r in records[:4]] == [0, 1, 2, 3] and records[4]["end"]
    assert all(r["latency_ms"] >= 300 for r in records[:3])  # held for the series info
    assert records[3]["latency_ms"] < 300
    expected = FrameClassifier(model).classify([Frame({}, f, saturation=65535.0) for f in frames])
    assert [{k: r[k] for k in ("label", "proba", "n_peaks", "d_min_A")} for r in records[:4]] == \
        [{k: v[k] for k in ("label", "proba", "n_peaks", "d_min_A")} for v in expected]
    assert result["final"].frames == 4


def test_series_sharing_is_refused_for_the_simple_format(model_path):
    from diffranet.live import StreamService

    with pytest.raises(ValueError, match="source_format='dectris'"):
        StreamService(model_path, free_address(), free_address(), series_publish=free_address())
    with pytest.raises(ValueError, match="series_subscribe"):
        StreamService(model_path, free_address(), free_address(), source_format="dectris",
                      series_subscribe=["localhost:5"])


def test_stream_command_refuses_series_sharing_without_stream_v2(model_path, capsys):
    from diffranet.cli import main

    status = main(["stream", "--model", str(model_path), "--input", free_address(), "--publish", free_address(),
                   "--series-publish", free_address(), "--quiet"])
    assert status == 2
    assert "source_format='dectris'" in capsys.readouterr().err


def test_the_stand_in_detector_waits_for_its_pullers_and_says_when_they_do_not_come():
    from diffranet.live.sender import send_stream2

    with pytest.raises(TimeoutError, match="0 of 2 pullers"):
        send_stream2(free_address(), np.zeros((1, 4, 4), np.uint16), pullers=2, pullers_timeout_s=0.2, linger_s=0)


# --------------------------------------------------------------------------- the side channel is untrusted too


def test_series_info_shapes_are_held_to_the_pixel_budget_before_the_mask_is_inflated():
    from diffranet.live.limits import StreamLimits

    parts = encode_series(_info())  # 30 x 20 images and mask
    assert decode_series(parts, StreamLimits(max_frame_pixels=600)).shape == (30, 20)
    with pytest.raises(ValueError, match="max_frame_pixels"):
        decode_series(parts, StreamLimits(max_frame_pixels=599))


def test_a_series_info_header_over_64_kB_is_refused_unparsed():
    # 10 MB of JSON: parsed, then its 5 million tags walked, it held the receive loop for 6 s
    header = b'{"tags": {"series_id": 1, "series_unique_id": [' + b"0," * 5_000_000 + b'0]}}'
    cpu = time.thread_time()
    with pytest.raises(ValueError, match="over the limit of 65536"):
        decode_series([SERIES_TOPIC, header, b""])
    assert time.thread_time() - cpu < 1.0
    small = json.dumps({"tags": {"series_id": 1, "series_unique_id": "u" * 60_000}}).encode()
    assert decode_series([SERIES_TOPIC, small, b""]).tags["series_unique_id"] == "u" * 4096  # cut as any tag


def test_images_of_ever_new_series_log_a_few_lines_not_one_each(caplog):
    import logging

    from diffranet.live.series import HeldFrame, SeriesSharing

    context = zmq.Context()
    sharing = SeriesSharing(Stream2Decoder(), context, subscribe=[free_address()], wait_s=0.0)
    try:
        with caplog.at_level(logging.WARNING, logger="diffranet.live"):
            for i in range(40):  # no info will come for any of these series
                held = sharing.decode(encode_image(1000 + i, i, np.zeros((4, 4), np.uint16)), received=0.0)
                assert isinstance(held, HeldFrame)
                sharing.hold(i, held)
            released = sharing.release()
    finally:
        sharing.close()
        context.term()
    assert [seq for seq, _ in released] == list(range(40)) and all(isinstance(f, Frame) for _, f in released)
    assert 1 <= sum("no series info" in r.getMessage() for r in caplog.records) <= 10


def test_a_series_id_that_is_a_list_is_a_series_like_any_other():
    cbor2 = pytest.importorskip("cbor2")
    info = SeriesInfo(tags={"series_id": [7, "a"]}, geometry=GEOMETRY)
    assert decode_series(encode_series(info)).tags == {"series_id": [7, "a"]}
    decoder = Stream2Decoder()
    message = cbor2.loads(encode_image(7, 0, np.ones((30, 20), np.uint16), compression=None))
    image = cbor2.dumps({**message, "series_id": [7, "a"]})  # Stream V2 says an integer; a sender may not
    assert decoder.decode(image, 0.0).geometry is None and not decoder.knows([7, "a"])
    decoder.adopt(info)
    assert decoder.knows([7, "a"]) and not decoder.knows("[7, \"a\"]")
    assert decoder.decode(image, 0.0).geometry == GEOMETRY


def test_a_refused_series_info_message_is_an_error_record_and_the_service_goes_on(tmp_path, model_path):
    from diffranet.live import StreamService

    input_address, announcer_address = free_address(), free_address()
    service = StreamService(model_path, input_address, free_address(), source_format="dectris",
                            log_path=tmp_path / "log.jsonl", series_subscribe=[announcer_address],
                            series_wait_s=TIMEOUT_S)
    context = zmq.Context()
    push, announcer = context.socket(zmq.PUSH), context.socket(zmq.PUB)
    push.bind(input_address)
    announcer.bind(announcer_address)
    # a geometry without its fields, a series id that is no key, a zlib bomb of a mask
    topic, header, _ = encode_series(SeriesInfo(tags={"series_id": 3}))
    hostile = [[topic, json.dumps({"tags": {"series_id": 3}, "geometry": {}}).encode(), b""],
               [topic, json.dumps({"tags": {"series_id": 3}, "mask_shape": [65536, 65536]}).encode(),
                zlib.compress(b"\x00" * 2**20)]]
    try:
        with running_service(service) as (subscriber, result):
            path, deadline = tmp_path / "log.jsonl", time.monotonic() + TIMEOUT_S
            while not (path.exists() and path.read_text()):  # a SUB socket misses what comes before it connects
                assert time.monotonic() < deadline, "no record of the refused series info"
                for message in hostile:
                    announcer.send_multipart(message)
                time.sleep(0.2)
            announcer.send_multipart(encode_series(SeriesInfo(tags={"series_id": 3}, geometry=GEOMETRY)))
            push.send(encode_start(4, image_shape=(SIZE, SIZE)))  # own series: never held
            push.send(encode_image(4, 0, np.ones((SIZE, SIZE), np.uint16)))
            assert subscriber.wait_for(lambda r: any(x.get("id") == 0 for x in r)), "the service stopped serving"
    finally:
        push.close(linger=0)
        announcer.close(linger=0)
        context.term()
    assert "error" not in result
    errors = [r for r in _log(tmp_path / "log.jsonl") if "error" in r]
    assert errors and all(r["stage"] == "series" for r in errors)
    assert any("geometry" in r["error"] for r in errors) and any("max_frame_pixels" in r["error"] for r in errors)


def test_images_held_for_their_series_count_against_the_byte_budget(tmp_path, model_path):
    from diffranet.live import StreamLimits, StreamService

    frame_bytes = SIZE * SIZE * 2  # uncompressed uint16
    input_address = free_address()
    service = StreamService(model_path, input_address, free_address(), source_format="dectris",
                            log_path=tmp_path / "log.jsonl", series_subscribe=[free_address()],
                            series_wait_s=TIMEOUT_S, queue_size=100,
                            limits=StreamLimits(max_queue_bytes=2 * frame_bytes + 100))
    context = zmq.Context()
    push = context.socket(zmq.PUSH)
    push.bind(input_address)
    try:
        with running_service(service) as (_, result):
            for i in range(4):  # a series nobody announces: every image waits for its info
                push.send(encode_image(6, i, np.ones((SIZE, SIZE), np.uint16), compression=None))
            deadline = time.monotonic() + TIMEOUT_S
            while service._pipeline.waiting < 2 and time.monotonic() < deadline:  # images 2, 3 dropped at once
                time.sleep(0.01)
            assert service._sharing.held == 2
    finally:
        push.close(linger=0)
        context.term()
    records = _log(tmp_path / "log.jsonl")
    assert [r["id"] for r in records] == [0, 1, 2, 3]
    assert ["label" in r and not r.get("dropped") for r in records] == [True, True, False, False]
    assert (result["final"].frames, result["final"].dropped) == (2, 2)
