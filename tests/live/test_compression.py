"""bslz4 / lz4 in HDF5 framing, as DECTRIS Stream V2 carries them."""

import struct

import numpy as np
import pytest
from diffranet.live.compression import CompressedArray, CompressionError, _decompress_bslz4, compress, decompress


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
    _damage(name, modifier, payload, data.nbytes, seed=3, tries=300, most_bytes=5)


def _damage(name, modifier, payload, nbytes, *, seed, tries, most_bytes):
    """Change 1 to ``most_bytes`` random bytes after the header, ``tries`` times: each decodes to
    ``nbytes`` bytes or raises CompressionError."""
    rng = np.random.default_rng(seed)
    for _ in range(tries):
        damaged = bytearray(payload)
        for at in rng.integers(12, len(payload), rng.integers(1, most_bytes + 1)):
            damaged[at] = rng.integers(0, 256)
        try:
            out = decompress(name, modifier, bytes(damaged))
        except CompressionError:
            continue
        assert len(out) == nbytes


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


def _bitshuffle_payload(data, block):
    """bslz4 framing of ``data`` with ``block`` elements per block, by bitshuffle's own compressor."""
    import bitshuffle

    body = bitshuffle.compress_lz4(data, block).tobytes() if data.size else b""
    return struct.pack(">QI", data.nbytes, block * data.itemsize) + body


class TestBslz4Expansion:
    """The compiled expansion (LZ4 and bit-unshuffle block by block) gives bitshuffle's bytes."""

    @pytest.mark.parametrize("dtype", ["u1", "<u2", "<u4", "<u8"])
    @pytest.mark.parametrize("block", [8, 24, 136, 2048])
    def test_equals_bitshuffle(self, dtype, block):
        import bitshuffle

        rng = np.random.default_rng(block)
        for n in (1, 7, 8, 9, 127, 128, 129, 2047, 2048, 2049, 4119, 10_007):
            data = rng.integers(0, np.iinfo(dtype).max, n, dtype=dtype, endpoint=True)
            data[: n // 2] = rng.poisson(0.7, n // 2)  # compressible as detector frames are
            payload = _bitshuffle_payload(data, block)
            reference = bitshuffle.decompress_lz4(np.frombuffer(payload[12:], np.uint8), data.shape, data.dtype,
                                                  block)
            for n_threads in (1, 2, 3):
                expanded = np.frombuffer(_decompress_bslz4(payload, data.itemsize, None, n_threads), dtype)
                assert np.array_equal(expanded, reference) and np.array_equal(expanded, data), (n, n_threads)

    def test_a_block_whose_lz4_size_equals_its_size_is_still_lz4(self):
        """bitshuffle always compresses; a block that LZ4 happens to pack into exactly its own size is LZ4 too."""
        rng = np.random.default_rng(0)
        for _ in range(5000):
            data = rng.integers(0, 256, 24, dtype=np.uint8)
            data[rng.permutation(24)[:20]] = 0
            payload = _bitshuffle_payload(data, 24)
            if struct.unpack(">I", payload[12:16])[0] == 24:
                break
        else:
            pytest.fail("no block of 24 bytes packed into 24 bytes")
        assert decompress("bslz4", 1, payload) == data.tobytes()

    @pytest.mark.parametrize("dtype", ["u1", "<u2", "<u4", "<u8"])
    def test_damaged_payloads_raise_never_crash(self, dtype):
        data = np.random.default_rng(4).poisson(1.0, 9001).astype(dtype)
        _, elem_size, payload = compress(data, "bslz4")
        _damage("bslz4", elem_size, payload, data.nbytes, seed=5, tries=200, most_bytes=7)
        for cut in (13, 16, 17, len(payload) // 3, len(payload) - 1):
            with pytest.raises(CompressionError):
                decompress("bslz4", elem_size, payload[:cut])
        garbage = payload[:12] + np.random.default_rng(6).integers(0, 256, len(payload) - 12, dtype=np.uint8).tobytes()
        with pytest.raises(CompressionError):
            decompress("bslz4", elem_size, garbage)

    def test_kernel_refuses_bad_framing_arguments(self):
        from diffranet import _core

        data = np.arange(64, dtype="<u2")
        payload = _bitshuffle_payload(data, 16)
        out = np.empty(data.nbytes, np.uint8)
        _core.decode_bslz4(payload, 12, 64, 2, 16, out, 1)
        assert np.array_equal(out.view("<u2"), data)
        for change, match in ((dict(block_elements=12), "multiple of 8"), (dict(block_elements=0), "multiple of 8"),
                              (dict(elem_size=3), "element size"), (dict(offset=len(payload) + 1), "offset"),
                              (dict(offset=-1), "offset"), (dict(n_elements=65), "out must hold"),
                              (dict(out=np.empty(data.nbytes, np.int8)), "out"),
                              (dict(payload=np.zeros((2, 8), np.uint8)), "contiguous byte string")):
            arguments = dict(payload=payload, offset=12, n_elements=64, elem_size=2, block_elements=16, out=out,
                             n_threads=1)
            with pytest.raises(ValueError, match=match):
                _core.decode_bslz4(**{**arguments, **change})
        with pytest.raises(ValueError, match="block"):  # blocks of 8 where the data have blocks of 16
            _core.decode_bslz4(payload, 12, 64, 2, 8, out, 1)


def test_bslz4_layout():
    data = np.arange(5000, dtype="<u4").reshape(50, 100)
    packed = CompressedArray(*compress(data, "bslz4"), data.dtype, data.shape)
    payload, offset, block = packed.bslz4_layout()
    assert (payload, offset, block) == (packed.payload, 12, 2048)
    assert CompressedArray(*compress(data, "lz4"), data.dtype, data.shape).bslz4_layout() is None
    bytewise = CompressedArray("bslz4", 1, compress(data.view(np.uint8), "bslz4")[2], data.dtype, data.shape)
    assert bytewise.bslz4_layout() is None  # shuffled in bytes, read as uint32: expanded, not read block by block
    bad = CompressedArray("bslz4", 4, struct.pack(">QI", data.nbytes, 12) + payload[12:], data.dtype, data.shape)
    with pytest.raises(CompressionError, match="multiple of 8"):
        bad.bslz4_layout()
