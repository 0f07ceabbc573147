"""The simple frame format: JSON header + raw pixels."""

import json

import numpy as np
import pytest

from diffranet.live.frames import MalformedMessage
from diffranet.live.simple import decode_simple, encode_simple


def test_round_trip_keeps_id_shape_dtype_and_pixels():
    data = np.arange(12, dtype=">i4").reshape(3, 4)
    frame = decode_simple(encode_simple("run7-0042", data))
    assert frame.tags == {"id": "run7-0042"}
    assert frame.data.dtype == np.dtype(">i4")
    assert np.array_equal(frame.data, data)


def _message(header, payload):
    return [json.dumps(header).encode(), payload]


@pytest.mark.parametrize("parts, match", [
    ([b"{}"], "two-part"),
    ([b"{}", b"", b""], "two-part"),
    ([b"not json", b""], "not JSON"),
    ([b"[1, 2]", b""], "JSON object"),
    (_message({"shape": [2, 2], "dtype": "<u2"}, bytes(8)), "no \"id\""),
    (_message({"id": [1], "shape": [2, 2], "dtype": "<u2"}, bytes(8)), "id must be"),
    (_message({"id": 1, "shape": [4], "dtype": "<u2"}, bytes(8)), "shape must be"),
    (_message({"id": 1, "shape": [2, 0], "dtype": "<u2"}, bytes(8)), "shape must be"),
    (_message({"id": 1, "shape": [2, 2.5], "dtype": "<u2"}, bytes(8)), "shape must be"),
    (_message({"id": 1, "shape": [2, 2], "dtype": "<U2"}, bytes(8)), "dtype must"),
    (_message({"id": 1, "shape": [2, 2], "dtype": "complex"}, bytes(8)), "dtype must"),
    (_message({"id": 1, "shape": [2, 2], "dtype": 7}, bytes(8)), "dtype must"),
    (_message({"id": 1, "shape": [2, 2], "dtype": "<u2"}, bytes(7)), "holds 7 bytes"),
    (_message({"id": 1, "shape": [2, 2], "dtype": "<u4"}, bytes(8)), "needs 16"),
])
def test_malformed(parts, match):
    with pytest.raises(MalformedMessage, match=match):
        decode_simple(parts)


def test_malformed_keeps_the_id_when_known():
    with pytest.raises(MalformedMessage) as info:
        decode_simple(_message({"id": 5, "shape": [2, 2], "dtype": "<u2"}, bytes(3)))
    assert info.value.tags == {"id": 5}
