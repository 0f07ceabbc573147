"""Hostile messages against ``diffranet stream``: each gets one error record, and the next good frame its verdict.

Every input is generated here, small. A service runs in this process on
loopback (one per format for the whole module); the test binds the PUSH
socket, sends a hostile message then a good frame, and reads the log: the
hostile message's record sits just before the good frame's verdict.
"""

import datetime
import itertools
import json
import os
import struct
import threading
import time

import cbor2
import numpy as np
import psutil
import pytest
import zmq
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from diffranet.live import StageFailure, StreamLimits, StreamService
from diffranet.live.compression import CompressionError, compress, decompress
from diffranet.live.dectris import encode_image, encode_start
from diffranet.live.frames import describe_exception, describe_value, json_safe
from diffranet.live.simple import encode_simple
from diffranet.live.sinks import RecordWriter
from live.harness import SIZE, TIMEOUT_S, frames_with_spots, free_address, running_service

_GOOD_FRAME = frames_with_spots(1, seed=11)[0]
_MiB = 2**20


def _strict_json(line):
    """Parse one log line as strict JSON (NaN and Infinity are not JSON)."""
    def refuse(name):
        raise AssertionError(f"not JSON: {name} in {line[:200]!r}")

    return json.loads(line, parse_constant=refuse)


def _rss_bytes():
    return psutil.Process(os.getpid()).memory_info().rss


class _Client:
    """The sender's side of a running service: a bound PUSH socket and the service's log, read as it grows."""

    def __init__(self, address, log_path, source_format):
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.PUSH)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.SNDTIMEO, int(TIMEOUT_S * 1000))  # never block a test for ever
        self.socket.bind(address)
        self.log_path = log_path
        self.format = source_format
        self._offset = 0
        self._ids = itertools.count(10**6)

    def send(self, message):
        """Send one message: bytes (one part) or a list of parts."""
        if isinstance(message, (bytes, bytearray)):
            self.socket.send(message)
        else:
            self.socket.send_multipart(message)

    def send_good(self, frame_id):
        """Send a good frame (Stream V2: after a start message that resets the series a hostile one changed)."""
        if self.format == "simple":
            self.send(list(encode_simple(frame_id, _GOOD_FRAME)))
        else:
            self.send(encode_start(1, image_shape=(SIZE, SIZE)))  # no record of its own
            self.send(encode_image(1, frame_id, _GOOD_FRAME))

    def new_records(self, until, timeout=TIMEOUT_S):
        """Records appended to the log since the last call, read until ``until(record)`` is true for one."""
        records = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log_path.exists():
                with open(self.log_path, encoding="utf-8") as f:
                    f.seek(self._offset)
                    text = f.read()
                complete = text[:text.rfind("\n") + 1]
                self._offset += len(complete.encode())
                records += [_strict_json(line) for line in complete.splitlines()]
                if any(until(r) for r in records):
                    return records
            time.sleep(0.005)
        raise AssertionError(f"the service did not answer in {timeout} s; records so far: {records[-5:]}")

    def exchange(self, bad):
        """Send ``bad`` then a good frame; return the records of ``bad`` (those before the good verdict)."""
        good_id = next(self._ids)
        self.send(bad)
        self.send_good(good_id)
        records = self.new_records(lambda r: r.get("id") == good_id)
        verdict = records.pop()
        assert verdict["id"] == good_id and verdict["label"] in ("blank", "no-crystal", "weak", "good", "strong")
        return records

    def close(self):
        self.socket.close(linger=0)
        self.context.term()


def _client_fixture(tmp_path_factory, model_path, source_format):
    log_path = tmp_path_factory.mktemp(source_format) / "log.jsonl"
    input_address, publish_address = free_address(), free_address()
    service = StreamService(model_path, input_address, publish_address, source_format=source_format,
                            log_path=log_path, queue_size=64)
    client = _Client(input_address, log_path, source_format)
    with running_service(service):
        client.send_good(0)
        client.new_records(lambda r: r.get("id") == 0)
        yield client
    client.close()


@pytest.fixture(scope="module")
def simple_client(tmp_path_factory, model_path):
    yield from _client_fixture(tmp_path_factory, model_path, "simple")


@pytest.fixture(scope="module")
def dectris_client(tmp_path_factory, model_path):
    yield from _client_fixture(tmp_path_factory, model_path, "dectris")


def _one_error(records, stage, match):
    assert len(records) == 1, records
    record = records[0]
    assert record["stage"] == stage and match in record["error"], record
    return record


# --------------------------------------------------------------------------- simple format


def _header(**fields):
    return json.dumps({"id": 1, "shape": [SIZE, SIZE], "dtype": "<u2", **fields}).encode()


_PIXELS = _GOOD_FRAME.tobytes()

SIMPLE_HOSTILE = {
    "header of 30,000 [": ([b"[" * 30_000, _PIXELS], "deeper than"),
    "id of 5,000 digits": ([b'{"id": ' + b"7" * 5000 + b', "shape": [2, 2], "dtype": "<u1"}', b"1234"], "5000 digits"),
    "sub-array dtype": ([_header(dtype="(100000000000,)u1"), _PIXELS], "dtype must name"),
    "id NaN": ([b'{"id": NaN, "shape": [128, 128], "dtype": "<u2"}', _PIXELS], "NaN"),
    "id 1e400": ([b'{"id": 1e400, "shape": [128, 128], "dtype": "<u2"}', _PIXELS], "1e400"),
    "id -Infinity": ([b'{"id": -Infinity, "shape": [128, 128], "dtype": "<u2"}', _PIXELS], "Infinity"),
    "shape of 10**10 pixels": ([_header(shape=[100_000, 100_000]), b"\0" * 8], "than the limit"),
    "shape of 2**62 squared": ([_header(shape=[2**62, 2**62]), b"\0" * 8], "than the limit"),
    "negative shape": ([_header(shape=[-128, -128]), _PIXELS], "positive integers"),
    "3-D shape": ([_header(shape=[2, 64, 128]), _PIXELS], "[rows, cols]"),
    "short buffer": ([_header(), _PIXELS[:-2]], "needs 32768"),
    "one part": ([_header()], "two-part"),
    "four parts": ([_header(), _PIXELS, b"x", b"y"], "4 parts"),
    "header not UTF-8": ([b"\xff\xfe{", _PIXELS], "not JSON"),
    "header a list": ([b"[1, 2]", _PIXELS], "JSON object"),
    "header string of 20,000 escaped quotes, never closed": ([b'{"id": "' + b'\\"[' * 20_000, _PIXELS],
                                                             "not JSON"),
    "header over 64 kB": ([b'{"id": "' + b"a" * 70_000 + b'"}', _PIXELS], "too long"),
    "id an object": ([_header(id={"a": 1}), _PIXELS], "number or a string"),
    "dtype complex": ([_header(dtype="<c8"), _PIXELS], "dtype must name"),
    "dtype object": ([_header(dtype="O"), _PIXELS], "dtype must name"),
    "dtype record": ([_header(dtype="u1,u1"), _PIXELS], "dtype must name"),
    "NaN frame": ([_header(dtype="<f4"), np.full((SIZE, SIZE), np.nan, "<f4").tobytes()], "non-finite"),
    "infinite pixels": ([_header(dtype="<f8"), np.where(_GOOD_FRAME > 5, np.inf, 1.0).astype("<f8").tobytes()],
                        "non-finite"),
    "pixels beyond float32": ([_header(dtype="<f8"), np.where(_GOOD_FRAME > 5, 1e300, 1.0).astype("<f8").tobytes()],
                              "non-finite"),
}


@pytest.mark.parametrize("name", sorted(SIMPLE_HOSTILE))
def test_simple_hostile_message_gets_one_error_record_and_the_service_goes_on(simple_client, name):
    message, match = SIMPLE_HOSTILE[name]
    stage = "classify" if "non-finite" in match else ("receive" if "parts" in match else "decode")
    _one_error(simple_client.exchange(message), stage, match)


def test_simple_error_records_keep_a_safe_id(simple_client):
    record = _one_error(simple_client.exchange([_header(id="frame-7", shape=[1, 2**40]), b""]), "decode", "limit")
    assert record["id"] == "frame-7"
    record = _one_error(simple_client.exchange([_header(id=2**70, dtype="<f2x"), _PIXELS]), "decode", "digits")
    assert "id" not in record  # an id over 20 digits is refused with the header


# --------------------------------------------------------------------------- DECTRIS Stream V2


def _cbor(message):
    return b"\xd9\xd9\xf7" + cbor2.dumps(message)


def _start(**fields):
    return _cbor({"type": "start", "series_id": 2, "series_unique_id": "hostile", "channels": ["threshold_1"],
                  "image_size_x": SIZE, "image_size_y": SIZE, **fields})


def _lz4_header(total_bytes, block_bytes, body=b"\0\0\0\0"):
    return struct.pack(">QI", total_bytes, block_bytes) + body


def _array(dims, tag, payload):
    return cbor2.CBORTag(40, [dims, cbor2.CBORTag(tag, payload)])


def _compressed(algorithm, modifier, payload):
    return cbor2.CBORTag(56500, [algorithm, modifier, payload])


def _image(image_id=5, series_id=1, data=None, **fields):
    if data is None:
        data = _array([SIZE, SIZE], 69, _GOOD_FRAME.tobytes())
    return _cbor({"type": "image", "series_id": series_id, "image_id": image_id, "data": {"threshold_1": data},
                  **fields})


def _lz4_bomb(total_bytes, block_bytes=2**16):
    """A valid lz4 payload of zeros: one compressed block repeated (a ~4 MB message expanding to 1 GiB)."""
    import lz4.block

    block = lz4.block.compress(bytes(block_bytes), store_size=False)
    record = struct.pack(">I", len(block)) + block
    return struct.pack(">QI", total_bytes, block_bytes) + record * (total_bytes // block_bytes)


def _raw_image(key, raw_value):
    """An image message whose ``key`` holds ``raw_value``, CBOR bytes written by hand."""
    return b"\xd9\xd9\xf7\xa2" + cbor2.dumps("type") + cbor2.dumps("image") + cbor2.dumps(key) + raw_value


def _empty_maps(n):
    """An array of ``n`` empty maps: one byte each in the message, over 100 bytes each decoded."""
    return b"\x9a" + struct.pack(">I", n) + b"\xa0" * n


def _shared_values(levels, width=4):
    """Value sharing (tags 28, 29) nested: level k holds ``width`` references to level k - 1 (width**levels leaves)."""
    items = [b"\xd8\x1c" + cbor2.dumps(["x" * 40])]
    items += [b"\xd8\x1c" + bytes([0x80 + width]) + (b"\xd8\x1d" + cbor2.dumps(k - 1)) * width
              for k in range(1, levels)]
    return bytes([0x80 + levels]) + b"".join(items)


def _colliding_keys(n):
    """A map of ``n`` big-integer keys that all have the same hash (multiples of 2**61 - 1, Python's hash modulus)."""
    keys = [b"\xc2\x4a" + ((2**61 - 1) * k + 2**70).to_bytes(10, "big") + b"\x00" for k in range(n)]
    return b"\xba" + struct.pack(">I", n) + b"".join(keys)


DECTRIS_HOSTILE = {
    "start pixel_size_x 10**400": (_start(pixel_size_x=10**400), "start", "pixel_size_x must be a finite"),
    "start detector_translation 10**400": (_start(detector_translation=[0, 0, 10**400]), "start",
                                           "detector_translation[2]"),
    "start saturation_value 10**400": (_start(saturation_value=10**400), "start", "saturation_value"),
    "start wavelength NaN": (_start(incident_wavelength=float("nan")), "start", "incident_wavelength"),
    "start beam centre a string": (_start(beam_center_x="middle", beam_center_y=1.0), "start", "beam_center_x"),
    "start image size 10**400": (_start(image_size_x=10**400), "start", "than the limit"),
    "start mask lz4 2**30 bytes in blocks of 1": (
        _start(pixel_mask={"threshold_1": _array([2**15, 2**13], 70, _compressed("lz4", 0, _lz4_header(2**30, 1)))}),
        "any", "than the limit"),
    "start mask lz4 128 MiB in blocks of 1": (
        _start(pixel_mask={"threshold_1": _array([2**13, 2**12], 70, _compressed("lz4", 0, _lz4_header(2**27, 1)))}),
        "start", "blocks"),
    "start mask lz4 2**63 bytes": (
        _start(pixel_mask={"threshold_1": _array([2, 2], 70, _compressed("lz4", 0, _lz4_header(2**63, 2**16)))}),
        "any", "than the limit"),
    "image_id a CBOR date": (_image(image_id=cbor2.CBORTag(1, 1.7e9)), "image", "image_id must be"),
    "image_id 10**400": (_image(image_id=10**400), "image", "image_id must be"),
    "image bslz4 claiming 1 TB": (
        _image(data=_array([2**20, 2**20], 64, _compressed("bslz4", 1, _lz4_header(2**40, 8192)))), "image",
        "than the limit"),
    "image lz4 of 4 MB expanding to 1 GiB": (
        _image(data=_array([2**15, 2**15], 64, _compressed("lz4", 0, _lz4_bomb(2**30)))), "image",
        "than the limit"),
    "image dims 10**400": (_image(data=_array([10**400, 1], 69, b"")), "image", "than the limit"),
    "image dims negative": (_image(data=_array([-1, 4], 69, b"")), "image", "non-negative integers"),
    "image of NaN": (_image(data=_array([SIZE, SIZE], 85, np.full((SIZE, SIZE), np.nan, "<f4").tobytes())),
                     "image", "non-finite"),
    "image of strings": (_image(data=cbor2.CBORTag(40, [[2, 2], ["a", "b", "c", "d"]])), "image", "numbers"),
    "message of 100,000 nested arrays": (b"\x81" * 100_000, "image", "not a Stream V2 message"),
    "not CBOR": (b"\xff\xff\xff", "image", "not a Stream V2 message"),
    "two parts": ([_image(), _image()], "image", "one part"),
    "unknown type": (_cbor({"type": 10**400}), "image", "unknown Stream V2 message type"),
    "4 MB of empty maps": (_raw_image("user_data", _empty_maps(4_000_000)), "image", "65536 CBOR data items"),
    "shared values nested 11 deep": (_raw_image("series_id", _shared_values(11)), "image", "tag 28 (shared value)"),
    "decimal fraction of 300 kB": (_image(user_data=cbor2.CBORTag(4, [-3, 2**(8 * 300_000) - 1])), "image",
                                   "tag 4 (decimal fraction)"),
}


@pytest.mark.parametrize("name", sorted(DECTRIS_HOSTILE))
def test_dectris_hostile_message_gets_one_error_record_and_the_service_goes_on(dectris_client, name):
    message, kind, match = DECTRIS_HOSTILE[name]  # kind "start": the record names the series
    rss_before = _rss_bytes()
    stage = "classify" if "non-finite" in match else "decode"
    record = _one_error(dectris_client.exchange(message), stage, match)
    if kind == "start":
        assert record["series_id"] == 2 and record["series_unique_id"] == "hostile"
    growth_mb = (_rss_bytes() - rss_before) / _MiB
    assert growth_mb < 100, f"{name}: RSS grew by {growth_mb:.0f} MB"


@pytest.mark.parametrize("series_id, expected", [(10**20000, None), (cbor2.CBORTag(1, 0), "1970-01-01T00:00:00+00:00"),
                                                 (b"\x00\x01", None), (float("inf"), None), (-(2**63), -(2**63))],
                         ids=["10**20000", "date", "bytes", "inf", "-2**63"])
def test_dectris_odd_series_ids_are_written_as_json(dectris_client, series_id, expected):
    # the image itself is good: it gets a verdict, with the series id made JSON-safe
    records = dectris_client.exchange(_image(image_id=77, series_id=series_id))
    assert len(records) == 1 and records[0]["id"] == 77 and "label" in records[0]
    assert records[0]["series_id"] == expected


# --------------------------------------------------------------------------- work bounded by the message


def _random_integer(n_bytes):
    return int.from_bytes(np.random.default_rng(n_bytes).bytes(n_bytes), "big") | 1


# each took the decoder 3 to 15 s of CPU (the service's receive loop, every later frame waiting), or hundreds of MB
COSTLY_DECTRIS = {
    "4 MB of empty maps": (_raw_image("user_data", _empty_maps(4_000_000)), "65536 CBOR data items"),
    "shared values nested 11 deep": (_raw_image("series_id", _shared_values(11)), "tag 28"),
    "decimal fraction of 300 kB": (_raw_image("x", cbor2.dumps(cbor2.CBORTag(4, [-3, _random_integer(300_000)]))),
                                   "tag 4"),
    "bigfloat of 200 kB": (_raw_image("x", cbor2.dumps(cbor2.CBORTag(5, [-3, _random_integer(200_000)]))), "tag 5"),
    "rational of 2 x 300 kB": (_raw_image("x", cbor2.dumps(cbor2.CBORTag(30, [_random_integer(300_000),
                                                                               _random_integer(300_001)]))),
                               "tag 30"),
    "MIME message of 4 MB": (_raw_image("x", cbor2.dumps(cbor2.CBORTag(36, "a: b\n" * 800_000))), "tag 36"),
    "30,000 keys of one hash": (_raw_image("user_data", _colliding_keys(30_000)), "map key must be"),
}


@pytest.mark.parametrize("name", sorted(COSTLY_DECTRIS))
def test_dectris_decoding_costs_no_more_than_the_message(name):
    from diffranet.live.dectris import Stream2Decoder
    from diffranet.live.frames import MalformedMessage

    message, match = COSTLY_DECTRIS[name]
    cpu = time.thread_time()
    with pytest.raises(MalformedMessage, match=match):
        Stream2Decoder().decode(message, received=0.0)
    assert time.thread_time() - cpu < 1.0


@pytest.mark.parametrize("key", [[1, 2], {"a": 1}, cbor2.CBORTag(1, 0), 2**70])
def test_dectris_map_keys_are_strings_integers_or_simple_values(key):
    from diffranet.live.dectris import decode_message
    from diffranet.live.frames import MalformedMessage

    with pytest.raises(MalformedMessage, match="map key must be"):
        decode_message(_raw_image("user_data", b"\xa1" + cbor2.dumps(key) + b"\x00"))
    assert decode_message(_raw_image("user_data", cbor2.dumps({"a": 1, b"b": 2, -3: 3, 2**64 - 1: 4, None: 5,
                                                               1.5: 6})))["user_data"][None] == 5


def test_simple_header_scan_is_linear():
    # 60 kB of escaped quotes and brackets, the string never closed: the scan for strings started again
    # from every quote (14 s)
    from diffranet.live.frames import MalformedMessage
    from diffranet.live.simple import decode_simple

    cpu = time.thread_time()
    with pytest.raises(MalformedMessage, match="header"):
        decode_simple([b'{"id": "' + b'\\"[' * 20_000, _PIXELS])
    assert time.thread_time() - cpu < 1.0


# --------------------------------------------------------------------------- budgets


def test_default_limits_admit_the_largest_detectors():
    limits = StreamLimits()
    for rows, cols in [(4362, 4148), (4164, 4150)]:  # EIGER2 16M; JUNGFRAU 16M with its gaps
        assert limits.check_dimensions([rows, cols]) == (rows, cols)
        assert rows * cols * 4 <= limits.max_message_bytes  # a uint32 frame, uncompressed
        assert rows * cols * 8 <= limits.max_decompressed_bytes
    with pytest.raises(ValueError, match="max_frame_pixels"):
        StreamLimits(max_frame_pixels=0)
    with pytest.raises(ValueError, match="than the limit"):
        StreamLimits(max_frame_pixels=100).check_dimensions([11, 10])


def test_dimensions_of_huge_integers_are_refused_before_their_product():
    # the product of eight 300 kB integers took 5 s (an image message of 2.4 MB); of 1 MB ones, 70 s
    from diffranet.live.dectris import Stream2Decoder
    from diffranet.live.frames import MalformedMessage

    huge = 2**(8 * 300_000) - 1
    cpu = time.thread_time()
    with pytest.raises(ValueError, match="than the limit"):
        StreamLimits().check_dimensions([huge] * 8)
    with pytest.raises(MalformedMessage, match="than the limit"):
        Stream2Decoder().decode(_image(data=_array([huge] * 8, 69, b"")), received=0.0)
    assert time.thread_time() - cpu < 1.0
    with pytest.raises(ValueError, match="than the limit"):  # a side over the budget beside a side of 0
        StreamLimits(max_frame_pixels=100).check_dimensions([0, 101])
    assert StreamLimits(max_frame_pixels=100).check_dimensions([0, 100]) == (0, 100)


class TestCompressedHeaders:
    """Sizes a compressed header claims are refused from the header: nothing of that size is allocated."""

    @pytest.mark.parametrize("algorithm, modifier", [("lz4", 0), ("bslz4", 1), ("bslz4", 4)])
    @pytest.mark.parametrize("total_bytes, block_bytes", [(2**30, 1), (2**40, 8192), (2**63, 2**16),
                                                          (2**64 - 8, 2**32 - 8)])
    def test_claims_the_payload_cannot_frame(self, algorithm, modifier, total_bytes, block_bytes):
        rss_before = _rss_bytes()
        with pytest.raises(CompressionError, match="blocks|more than|block size"):
            decompress(algorithm, modifier, _lz4_header(total_bytes, block_bytes))
        assert _rss_bytes() - rss_before < 50 * _MiB

    def test_output_cap(self):
        payload = compress(np.zeros(10_000, "<u2"), "lz4")[2]
        assert len(decompress("lz4", 0, payload, max_bytes=20_000)) == 20_000
        with pytest.raises(CompressionError, match="more than the 19999-byte limit"):
            decompress("lz4", 0, payload, max_bytes=19_999)

    def test_a_valid_bomb_peaks_near_its_output_size(self):
        # 270 kB expanding to 64 MiB: the output buffer plus one block, not a list of parts and their copies
        payload = _lz4_bomb(64 * _MiB)
        rss_before = _rss_bytes()
        out = decompress("lz4", 0, payload)
        growth_mb = (_rss_bytes() - rss_before) / _MiB
        assert len(out) == 64 * _MiB and out[-1] == 0
        assert growth_mb < 80, f"RSS grew by {growth_mb:.0f} MB for 64 MiB of output"


def _service_with(tmp_path, model, **kwargs):
    input_address, publish_address = free_address(), free_address()
    service = StreamService(model, input_address, publish_address, log_path=tmp_path / "log.jsonl", **kwargs)
    return service, _Client(input_address, tmp_path / "log.jsonl", "simple")


def test_frame_pixel_and_message_byte_budgets(tmp_path, model):
    limits = StreamLimits(max_message_bytes=80 * 1024, max_frame_pixels=SIZE * SIZE)
    service, client = _service_with(tmp_path, model, limits=limits)
    try:
        with running_service(service):
            big = frames_with_spots(1, shape=(SIZE, 2 * SIZE))[0]
            _one_error(client.exchange(list(encode_simple(1, big))), "decode", "than the limit")
            # a part over max_message_bytes never reaches the service: ZMQ drops the sender's connection,
            # reconnects, and the next frames are served
            client.send(list(encode_simple(2, np.zeros((SIZE, 3 * SIZE), "<u2"))))
            verdict = None
            for frame_id in range(100, 200):
                client.send_good(frame_id)
                try:
                    verdict = client.new_records(lambda r: "label" in r, timeout=0.5)
                    break
                except AssertionError:
                    continue
            assert verdict is not None and all(r.get("id") != 2 for r in verdict)
    finally:
        client.close()


class _GatedModel:
    """A model whose first call waits for a gate: frames pile up in flight while it waits."""

    def __init__(self, model):
        self.model = model
        self.gate = threading.Event()

    def __getattr__(self, name):  # the rest of the saved model's interface
        return getattr(self.model, name)

    def preprocess(self, *args, **kwargs):
        assert self.gate.wait(TIMEOUT_S)
        return self.model.preprocess(*args, **kwargs)


def test_queue_is_bounded_in_bytes(tmp_path, model):
    frame_bytes = SIZE * SIZE * 2
    gated = _GatedModel(model)
    limits = StreamLimits(max_queue_bytes=3 * frame_bytes + 100)
    service, client = _service_with(tmp_path, gated, queue_size=100, limits=limits)
    try:
        with running_service(service) as (_, result):
            for frame_id in range(10):
                client.send_good(frame_id)
            deadline = time.monotonic() + TIMEOUT_S
            while service._pipeline.waiting < 7 and time.monotonic() < deadline:  # frames 3-9 dropped at once
                time.sleep(0.01)
            gated.gate.set()
            records = client.new_records(lambda r: r.get("id") == 9)
    finally:
        client.close()
    assert [r["id"] for r in records] == list(range(10))
    assert all("label" in r and not r.get("dropped") for r in records[:3])
    assert all(r["dropped"] for r in records[3:])
    assert (result["final"].frames, result["final"].dropped) == (3, 7)


# --------------------------------------------------------------------------- stages that cannot go on


class _Fatal(BaseException):
    """Not an Exception: nothing that handles one message catches it, as when a thread is torn down."""


class _DyingModel:
    def __init__(self, model):
        self.preprocessing = model.preprocessing

    def preprocess(self, *args, **kwargs):
        raise _Fatal("the classifier thread is gone")


def _run_until_it_stops(service, send):
    outcome = {}

    def target():
        try:
            outcome["final"] = service.run(threading.Event())
        except BaseException as exc:  # what the test inspects
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    send()
    thread.join(10)
    assert not thread.is_alive(), "the service kept running, deaf, after a stage stopped"
    return outcome


@pytest.mark.parametrize("stage", ["classify", "write"])
def test_a_stage_that_cannot_go_on_stops_the_service(tmp_path, model, stage):
    input_address = free_address()
    log_path = "/dev/full" if stage == "write" else tmp_path / "log.jsonl"  # /dev/full: every write fails
    service = StreamService(model if stage == "write" else _DyingModel(model), input_address, free_address(),
                            log_path=log_path)
    client = _Client(input_address, tmp_path / "unused.jsonl", "simple")
    try:
        outcome = _run_until_it_stops(service, lambda: [client.send_good(i) for i in range(3)])
    finally:
        client.close()
    error = outcome.get("error")
    assert isinstance(error, StageFailure) and error.stage == stage, outcome
    assert error.final is not None and error.final.status_line()


def test_cli_exits_non_zero_when_a_stage_stops(tmp_path, model_path):
    from diffranet.cli import main

    input_address = free_address()
    client = _Client(input_address, tmp_path / "unused.jsonl", "simple")
    sender = threading.Thread(target=lambda: [client.send_good(i) for i in range(3)], daemon=True)
    sender.start()
    try:
        status = main(["stream", "--model", str(model_path), "--input", input_address, "--publish", free_address(),
                       "--log", "/dev/full", "--quiet"])
    finally:
        sender.join(TIMEOUT_S)
        client.close()
    assert status == 1


# --------------------------------------------------------------------------- records


class TestRecords:
    def test_the_writer_writes_any_record_as_json_and_its_summary_never_raises(self, tmp_path):
        import io

        stream = io.StringIO()
        writer = RecordWriter(None, [stream]).start()
        odd = [{"id": float("nan"), "error": "x"}, {"id": 10**20000, "label": "good", "hit": True},
               {"id": datetime.datetime(2024, 1, 1), "v": b"\x00"}, {"id": cbor2.CBORTag(99, [1])},
               {"id": [[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]}, {"id": 1, "proba": [float("inf"), 0.5]}]
        for record in odd:
            writer.put(record)
        final = writer.close()
        lines = [_strict_json(line) for line in stream.getvalue().splitlines()]
        assert len(lines) == len(odd)
        assert [line["id"] for line in lines[:3]] == [None, None, "2024-01-01T00:00:00"]
        assert lines[5]["proba"] == [None, 0.5]
        assert (final.errors, final.frames) == (1, 1)

    def test_a_failed_writer_still_reports_its_counts(self):
        class Broken:
            def write(self, text):
                raise OSError(28, "No space left on device")

            def flush(self):
                pass

        failures = []
        writer = RecordWriter(None, [Broken()], on_failure=lambda stage, exc: failures.append((stage, exc))).start()
        writer.put({"id": 1, "label": "good", "hit": True})
        final = writer.close()
        assert [stage for stage, _ in failures] == ["write"] and isinstance(failures[0][1], OSError)
        assert final is not None and final.status_line()

    @pytest.mark.parametrize("exc, text", [(MemoryError(), "out of memory (MemoryError)"),
                                           (RecursionError("maximum recursion depth exceeded"), "RecursionError"),
                                           (OverflowError("int too large to convert to float"), "OverflowError"),
                                           (KeyError(), "KeyError")])
    def test_error_text_is_never_empty(self, exc, text):
        assert text in describe_exception(exc)

    @pytest.mark.parametrize("value", ["\x00" * 4 * _MiB, ["\x00" * 4 * _MiB], (b"\x00" * 4 * _MiB, 1),
                                       cbor2.CBORTag(99, "\x00" * 4 * _MiB),
                                       type("Sub", (tuple,), {})(["\x00" * 4 * _MiB])],
                             ids=["string", "list", "tuple of bytes", "unknown tag", "tuple subclass"])
    def test_describing_a_value_writes_out_only_what_is_shown(self, value):
        # repr() wrote a string of NULs out whole, four bytes each, only to keep 120 characters
        import tracemalloc

        tracemalloc.start()
        try:
            text = describe_value(value)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert len(text) <= 130 and peak < _MiB

    def test_json_safe_bounds(self):
        assert json_safe([2**64 - 1, 2**64, -(2**63), -(2**63) - 1, np.float32(0.5), np.int64(3)]) == \
            [2**64 - 1, None, -(2**63), None, 0.5, 3]


# --------------------------------------------------------------------------- fuzzing


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)

_simple_headers = st.fixed_dictionaries(
    {}, optional={"id": _json_values, "shape": st.lists(st.integers(-5, 2**70), max_size=4) | _json_values,
                  "dtype": st.sampled_from(["<u2", "<f4", ">i8", "u1", "(3,)u1", "<c8", "O", "S4", "M8", "<f16"])
                  | st.text(max_size=12)})


def _json_header(header):
    try:
        return json.dumps(header).encode()  # may hold NaN / Infinity, as a hostile sender may write
    except ValueError:  # integers over the str conversion limit
        return b"{}"


_simple_messages = st.one_of(
    st.tuples(_simple_headers.map(_json_header), st.binary(max_size=64)).map(list),
    st.tuples(_simple_headers.map(_json_header), st.just(_PIXELS)).map(list),
    st.lists(st.binary(max_size=256), min_size=1, max_size=4),
)


@seed(20261207)
@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(message=_simple_messages)
def test_fuzz_simple(simple_client, message):
    rss_before = _rss_bytes()
    records = simple_client.exchange(message)
    assert len(records) <= 1  # the message's record (error or verdict), then the good verdict
    assert (_rss_bytes() - rss_before) / _MiB < 100


def _cbor_values(leaves):
    return st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
        | st.builds(cbor2.CBORTag, st.sampled_from([1, 2, 40, 64, 69, 70, 85, 56500, 1040, 55799]), inner),
        max_leaves=10)


_cbor_leaves = (st.none() | st.booleans() | st.integers(-(2**80), 2**80) | st.sampled_from([10**400, -(10**400)])
                | st.floats() | st.text(max_size=10) | st.binary(max_size=40)
                | st.builds(_lz4_header, st.integers(0, 2**64 - 1), st.integers(0, 2**32 - 1))
                | st.sampled_from(["lz4", "bslz4", "threshold_1"]))


@st.composite
def _dectris_messages(draw):
    kind = draw(st.sampled_from(["mutated", "structured"]))
    if kind == "mutated":  # a valid message with a few bytes changed, cut or repeated
        base = bytearray(draw(st.sampled_from([
            encode_start(3, image_shape=(SIZE, SIZE), pixel_size_m=172e-6, distance_m=0.1, wavelength_A=1.0,
                         pixel_mask=np.zeros((SIZE, SIZE), np.uint32), compression="lz4"),
            encode_image(1, 5, _GOOD_FRAME, compression="bslz4"),
            encode_image(1, 5, _GOOD_FRAME, compression="lz4")])))
        for _ in range(draw(st.integers(1, 6))):
            position = draw(st.integers(0, len(base) - 1))
            base[position] = draw(st.integers(0, 255))
        return bytes(base[:draw(st.integers(1, len(base)))])
    fields = draw(st.dictionaries(
        st.sampled_from(["series_id", "image_id", "data", "pixel_mask", "image_size_x", "image_size_y", "channels",
                         "saturation_value", "pixel_size_x", "detector_translation", "incident_energy",
                         "beam_center_x", "beam_center_y", "series_unique_id"]),
        _cbor_values(_cbor_leaves), max_size=6))
    message = {"type": draw(st.sampled_from(["start", "image", "end"])), **fields}
    try:
        return _cbor(message)
    except (ValueError, TypeError, OverflowError, cbor2.CBOREncodeError):
        return _cbor({"type": "end"})


@seed(20261207)
@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(message=_dectris_messages())
def test_fuzz_dectris(dectris_client, message):
    rss_before = _rss_bytes()
    records = dectris_client.exchange(message)
    assert len(records) <= 1  # an error, a verdict or an end record; a start message has none
    assert (_rss_bytes() - rss_before) / _MiB < 100


# --------------------------------------------------------------------------- the hit writer


class _RefusingHits:
    """A hit sink that cannot take a frame (as when a frame's shape is one HDF5 cannot hold)."""

    def add(self, record, frame):
        raise MemoryError

    def tick(self):
        pass


def test_a_hit_frame_the_hit_writer_refuses_keeps_its_verdict(tmp_path):
    from diffranet.live.sinks import FRAME_KEY

    log_path = tmp_path / "log.jsonl"
    with open(log_path, "w", encoding="utf-8") as log_file:
        writer = RecordWriter(None, [log_file], hits=_RefusingHits()).start()
        writer.put({"id": 1, "label": "strong", "hit": True, FRAME_KEY: object()})
        writer.put({"id": 2, "label": "blank", "hit": False})
        final = writer.close()
    records = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert [r["id"] for r in records] == [1, 2] and writer.failure is None and final.frames == 2
    assert records[0]["write_error"] == "out of memory (MemoryError)" and "hit_file" not in records[0]
    assert "write_error" not in records[1]


def test_the_hit_file_stores_a_verdict_json_cannot_take_as_valid_json(tmp_path):
    h5py = pytest.importorskip("h5py")
    from diffranet.live import HitWriter
    from diffranet.live.frames import Frame

    writer = HitWriter(tmp_path, compression="none").start()
    where = writer.add({"id": 1, "hit": True, "d_min_A": float("nan"), "raw": b"\x00"},
                       Frame({"id": 1}, np.ones((8, 9), np.uint16)))
    writer.close()
    with h5py.File(where["hit_file"], "r") as f:
        stored = f["entry/diffranet/verdict"][()][where["hit_event"]]
    assert json.loads(stored, parse_constant=lambda name: pytest.fail(f"{name} in a stored verdict")) == \
        {"id": 1, "hit": True, "d_min_A": None, "raw": None}
