"""bslz4 / lz4 in HDF5 framing, as DECTRIS Stream V2 carries them."""

import struct

import numpy as np
import pytest

from diffranet.live.compression import CompressionError, compress, decompress


@pytest.mark.parametrize("algorithm", ["bslz4", "lz4"])
@pytest.mark.parametrize("dtype", ["u1", "<u2", "<u4", "<i4", "<f4", "<u8"])
@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 4095, 4096, 4103, 70_001])
def test_round_trip(algorithm, dtype, n):
    data = np.random.default_rng(n).poisson(3.0, n).astype(dtype)
    name, modifier, payload = compress(data, algorithm)
    assert name == algorithm
    assert np.array_equal(np.frombuffer(decompress(name, modifier, payload), dtype), data)


def test_bslz4_matches_bitshuffle_decoder():
    """The payload after the 12-byte header is bitshuffle's own LZ4 stream; its decoder agrees."""
    import bitshuffle

    data = np.random.default_rng(0).poisson(2.0, (64, 100)).astype("<u2")
    _, elem_size, payload = compress(data, "bslz4")
    total, block_bytes = struct.unpack(">QI", payload[:12])
    assert (total, elem_size) == (data.nbytes, 2)
    reference = bitshuffle.decompress_lz4(np.frombuffer(payload[12:], np.uint8), (data.size,), np.dtype("<u2"),
                                          block_bytes // elem_size)
    assert np.array_equal(np.frombuffer(decompress("bslz4", 2, payload), "<u2"), reference)


def test_lz4_hand_framed():
    """HDF5 LZ4 framing written by hand: one compressed block, then one stored raw."""
    import lz4.block

    first, second = b"a" * 1000, bytes(range(200))
    packed = lz4.block.compress(first[:600], store_size=False)
    # the second block (200 bytes) is stored as is: its compressed size equals its size
    payload = (struct.pack(">QI", 800, 600) + struct.pack(">I", len(packed)) + packed
               + struct.pack(">I", 200) + first[600:800])
    assert decompress("lz4", 0, payload) == first[:800]
    payload = struct.pack(">QI", 200, 4096) + struct.pack(">I", 200) + second
    assert decompress("lz4", 0, payload) == second


@pytest.mark.parametrize("period", [1, 2, 3, 5, 7, 8, 13, 300])
def test_repeating_bytes_decode_as_lz4_block_does(period):
    """Matches that overlap their own output (a distance shorter than the match) repeat the pattern."""
    import lz4.block

    pattern = np.random.default_rng(period).integers(0, 256, period, dtype=np.uint8).tobytes()
    raw = (b"x" * 17 + pattern * (70_000 // period) + bytes(range(50)))[:65_536]
    packed = lz4.block.compress(raw, store_size=False)
    assert len(packed) < len(raw) // 4
    payload = struct.pack(">QI", len(raw), 65_536) + struct.pack(">I", len(packed)) + packed
    assert decompress("lz4", 0, payload) == lz4.block.decompress(packed, uncompressed_size=len(raw)) == raw


@pytest.mark.parametrize("algorithm", ["bslz4", "lz4"])
def test_damaged_payloads_raise_or_decode_never_crash(algorithm):
    """Random byte changes anywhere in the blocks: a CompressionError, or bytes of the announced size."""
    data = np.random.default_rng(2).poisson(1.0, 30_000).astype("<u4")
    name, modifier, payload = compress(data, algorithm)
    rng = np.random.default_rng(3)
    for _ in range(300):
        damaged = bytearray(payload)
        for at in rng.integers(12, len(payload), rng.integers(1, 6)):
            damaged[at] = rng.integers(0, 256)
        try:
            out = decompress(name, modifier, bytes(damaged))
        except CompressionError:
            continue
        assert len(out) == data.nbytes


@pytest.mark.parametrize("algorithm", ["bslz4", "lz4"])
def test_truncated_or_corrupt(algorithm):
    data = np.random.default_rng(1).poisson(2.0, 20_000).astype("<u2")
    name, modifier, payload = compress(data, algorithm)
    for cut in (0, 5, 12, 15, len(payload) // 2, len(payload) - 1):
        with pytest.raises(CompressionError):
            decompress(name, modifier, payload[:cut])
    with pytest.raises(CompressionError):
        decompress(name, modifier, payload + b"\0")
    corrupt = bytearray(payload)
    corrupt[16:40] = b"\xff" * 24
    with pytest.raises(CompressionError):
        decompress(name, modifier, bytes(corrupt))


def test_bad_arguments():
    with pytest.raises(CompressionError, match="unknown compression"):
        decompress("zstd", 0, b"")
    with pytest.raises(CompressionError, match="element size"):
        decompress("bslz4", 3, struct.pack(">QI", 6, 8192))
    with pytest.raises(CompressionError, match="byte string"):
        decompress("lz4", 0, [1, 2])
    with pytest.raises(ValueError):
        compress(np.zeros(3), "gzip")
