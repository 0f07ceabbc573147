"""DECTRIS Stream V2 messages: CBOR, RFC 8746 typed / multi-dimensional arrays, tag 56500 compression."""

import struct

import cbor2
import numpy as np
import pytest

from diffranet.live.dectris import (TYPED_ARRAY_TAGS, Stream2Decoder, decode_message, encode_end, encode_image,
                                    encode_start)
from diffranet.live.frames import Frame, MalformedMessage, SeriesEnd


def test_typed_array_tags_follow_rfc_8746():
    # RFC 8746 table 2, written out
    expected = {64: "|u1", 65: ">u2", 66: ">u4", 67: ">u8", 68: "|u1", 69: "<u2", 70: "<u4", 71: "<u8",
                72: "|i1", 73: ">i2", 74: ">i4", 75: ">i8", 77: "<i2", 78: "<i4", 79: "<i8",
                80: ">f2", 81: ">f4", 82: ">f8", 84: "<f2", 85: "<f4", 86: "<f8"}
    assert {tag: dtype.str for tag, dtype in TYPED_ARRAY_TAGS.items()} == expected


def _hand_made_image(data, algorithm):
    """An image message built from the specification with cbor2 directly (not with encode_image)."""
    import bitshuffle
    import lz4.block

    raw = data.tobytes()
    if algorithm == "bslz4":
        block = 4096
        body = bitshuffle.compress_lz4(data.ravel(), block).tobytes()
        payload = struct.pack(">QI", len(raw), block * 2) + body
        compressed = cbor2.CBORTag(56500, ["bslz4", 2, payload])
    else:
        packed = lz4.block.compress(raw, store_size=False)
        compressed = cbor2.CBORTag(56500, ["lz4", 0, struct.pack(">QII", len(raw), len(raw), len(packed)) + packed])
    message = {"type": "image", "image_id": 41, "series_id": 9, "series_unique_id": "abc",
               "real_time": [1, 1000], "start_time": [0, 1000], "stop_time": [1, 1000],
               "data": {"threshold_1": cbor2.CBORTag(40, [list(data.shape), cbor2.CBORTag(69, compressed)])}}
    return b"\xd9\xd9\xf7" + cbor2.dumps(message)


@pytest.mark.parametrize("algorithm", ["bslz4", "lz4"])
def test_hand_made_image_message(algorithm):
    data = np.random.default_rng(0).poisson(4.0, (30, 50)).astype("<u2")
    frame = Stream2Decoder().decode(_hand_made_image(data, algorithm), received=1.0)
    assert isinstance(frame, Frame)
    assert frame.tags == {"id": 41, "series_id": 9, "series_unique_id": "abc"}
    assert frame.data.shape == (30, 50) and np.array_equal(frame.data, data)
    assert frame.saturation == 65535.0  # no start message: all bits set means no data


def test_start_supplies_geometry_mask_and_saturation():
    mask = np.zeros((40, 60), np.uint32)
    mask[3, 4] = 1
    mask[10, :] = 8  # a gap row
    decoder = Stream2Decoder()
    start = encode_start(5, image_shape=(40, 60), pixel_size_m=75e-6, distance_m=0.12, wavelength_A=0.98,
                         beam_center_px=(30.5, 20.25), pixel_mask=mask, saturation_value=40000)
    assert decoder.decode(start, received=0.0) is None
    frame = decoder.decode(encode_image(5, 0, np.ones((40, 60), "<u2")), received=0.0)
    g = frame.geometry
    assert (g.pixel_size_mm, g.distance_mm, g.wavelength_A) == pytest.approx((0.075, 120.0, 0.98))
    assert g.beam_center_px == (30.5, 20.25)
    assert np.array_equal(frame.mask, mask != 0)
    assert frame.saturation == 40001.0
    assert isinstance(decoder.decode(encode_end(5), received=0.0), SeriesEnd)


def test_start_values_win_over_defaults_which_fill_the_gaps():
    from diffranet.inference import FrameGeometry

    decoder = Stream2Decoder(FrameGeometry(0.172, 80.0, 1.5), beam_center_px=(1.0, 2.0))
    decoder.decode(encode_start(1, image_shape=(8, 8), distance_m=0.2), received=0.0)
    frame = decoder.decode(encode_image(1, 3, np.zeros((8, 8), "<u2")), received=0.0)
    assert frame.geometry.distance_mm == pytest.approx(200.0)
    assert frame.geometry.pixel_size_mm == pytest.approx(0.172)
    assert frame.geometry.wavelength_A == pytest.approx(1.5)
    assert frame.beam_center_px == (1.0, 2.0)


def test_wavelength_from_energy():
    message = decode_message(b"\xd9\xd9\xf7" + cbor2.dumps({"type": "start", "series_id": 1,
                                                             "incident_energy": 12398.419843320026,
                                                             "pixel_size_x": 1e-4, "detector_translation": [0, 0, 0.1]}))
    decoder = Stream2Decoder()
    decoder.decode(b"\xd9\xd9\xf7" + cbor2.dumps(message), received=0.0)
    frame = decoder.decode(encode_image(1, 0, np.zeros((4, 4), "<u4")), received=0.0)
    assert frame.geometry.wavelength_A == pytest.approx(1.0)


@pytest.mark.parametrize("compression", ["bslz4", "lz4", None])
@pytest.mark.parametrize("dtype", ["u1", "<u2", "<u4"])
def test_encode_decode(compression, dtype):
    data = np.random.default_rng(2).poisson(5.0, (17, 23)).astype(dtype)
    frame = Stream2Decoder().decode(encode_image(2, 7, data, compression=compression), received=0.0)
    assert frame.data.dtype == np.dtype(dtype) and np.array_equal(frame.data, data)


def test_first_channel_of_the_start_message_is_classified():
    decoder = Stream2Decoder()
    decoder.decode(b"\xd9\xd9\xf7" + cbor2.dumps({"type": "start", "series_id": 1,
                                                   "channels": ["threshold_2", "threshold_1"]}), received=0.0)
    a, b = np.zeros((2, 2), "<u2"), np.ones((2, 2), "<u2")
    image = cbor2.loads(encode_image(1, 0, a, channel="threshold_1", compression=None)[3:])
    image["data"]["threshold_2"] = cbor2.CBORTag(40, [[2, 2], cbor2.CBORTag(69, b.tobytes())])
    frame = decoder.decode(cbor2.dumps(image), received=0.0)
    assert np.array_equal(frame.data, b)


def _cbor(message):
    return b"\xd9\xd9\xf7" + cbor2.dumps(message)


@pytest.mark.parametrize("message, match", [
    (b"", "not a Stream V2 message"),
    (b"\x00", "CBOR map"),
    (_cbor({"type": "status"}), "unknown Stream V2 message type"),
    (_cbor({"image_id": 1}), "unknown Stream V2 message type"),
    (_cbor({"type": "image", "image_id": "x", "series_id": 1, "data": {}}), "image_id must be"),
    (_cbor({"type": "image", "image_id": 1, "series_id": 1}), "no data map"),
    (_cbor({"type": "image", "image_id": 1, "series_id": 1,
            "data": {"c": cbor2.CBORTag(40, [[3, 3], cbor2.CBORTag(69, bytes(8))])}}), "do not match"),
    (_cbor({"type": "image", "image_id": 1, "series_id": 1,
            "data": {"c": cbor2.CBORTag(69, bytes(3))}}), "whole number"),
    (_cbor({"type": "image", "image_id": 1, "series_id": 1,
            "data": {"c": cbor2.CBORTag(40, [[2], cbor2.CBORTag(69, bytes(4))])}}), "2-D array"),
    (_cbor({"type": "image", "image_id": 1, "series_id": 1,
            "data": {"c": cbor2.CBORTag(40, [[2, 2], cbor2.CBORTag(69, cbor2.CBORTag(56500, ["zstd", 0, b""]))])}}),
     "unknown compression"),
    (encode_image(1, 1, np.zeros((64, 64), "<u2"))[:-20], "not a Stream V2 message"),
])
def test_malformed(message, match):
    with pytest.raises(MalformedMessage, match=match):
        Stream2Decoder().decode(message, received=0.0)


def test_image_shape_must_match_the_start_message():
    decoder = Stream2Decoder()
    decoder.decode(encode_start(3, image_shape=(8, 8)), received=0.0)
    with pytest.raises(MalformedMessage, match="start message says") as info:
        decoder.decode(encode_image(3, 12, np.zeros((8, 9), "<u2")), received=0.0)
    assert info.value.tags["id"] == 12


def _image_with_payload(data, algorithm, payload):
    tag = cbor2.CBORTag(56500, [algorithm, data.dtype.itemsize if algorithm == "bslz4" else 0, payload])
    return _cbor({"type": "image", "image_id": 3, "series_id": 1,
                  "data": {"c": cbor2.CBORTag(40, [list(data.shape), cbor2.CBORTag(69, tag)])}})


@pytest.mark.parametrize("compression", ["bslz4", "lz4"])
@pytest.mark.parametrize("dtype", ["u1", "<u2", "<u4"])
def test_deferred_decompression_gives_the_same_pixels(compression, dtype):
    from diffranet.live.compression import CompressedArray

    data = np.random.default_rng(3).poisson(5.0, (17, 23)).astype(dtype)
    message = encode_image(2, 7, data, compression=compression)
    frame = Stream2Decoder(defer_decompression=True).decode(message, received=0.0)
    assert isinstance(frame.data, CompressedArray)
    assert (frame.data.shape, frame.data.dtype, frame.data.ndim) == (data.shape, data.dtype, 2)
    assert np.array_equal(frame.data.expand(), Stream2Decoder().decode(message, received=0.0).data)


def test_deferred_decompression_checks_the_header_at_once_and_the_data_when_expanded():
    from diffranet.live.compression import CompressionError, compress

    data = np.arange(64, dtype="<u2").reshape(8, 8)
    decoder = Stream2Decoder(defer_decompression=True)
    _, _, payload = compress(data, "bslz4")
    with pytest.raises(MalformedMessage, match="unknown compression"):
        decoder.decode(_image_with_payload(data, "zstd", payload), received=0.0)
    with pytest.raises(MalformedMessage, match="do not match"):
        decoder.decode(_image_with_payload(np.zeros((8, 9), "<u2"), "bslz4", payload), received=0.0)
    with pytest.raises(MalformedMessage, match="shorter than their 12-byte header"):
        decoder.decode(_image_with_payload(data, "bslz4", payload[:5]), received=0.0)
    truncated = decoder.decode(_image_with_payload(data, "bslz4", payload[:-10]), received=0.0)
    with pytest.raises(CompressionError):
        truncated.data.expand()


def test_compressed_pixel_mask_in_a_deferred_start_message():
    mask = np.zeros((12, 10), np.uint32)
    mask[2, 3] = 1
    decoder = Stream2Decoder(defer_decompression=True)
    decoder.decode(encode_start(1, image_shape=(12, 10), pixel_mask=mask, compression="lz4"), received=0.0)
    frame = decoder.decode(encode_image(1, 0, np.ones((12, 10), "<u2")), received=0.0)
    assert isinstance(frame.mask, np.ndarray) and np.array_equal(frame.mask, mask != 0)
