"""Byte-string compression of DECTRIS Stream V2: bslz4 and lz4 in HDF5 framing.

Stream V2 wraps a compressed byte string in CBOR tag 56500 as
``[algorithm, modifier, payload]`` (DECTRIS "CBOR Tag for Compressed Byte
Strings"). Both algorithms use the framing of their HDF5 filters:

* a 12-byte header: the uncompressed size in bytes (uint64, big endian) and
  the block size in bytes (uint32, big endian);
* then one record per block: the compressed size (uint32, big endian) and the
  LZ4 block of that size.

``lz4``: the blocks hold the raw bytes; a block whose compressed size equals
its uncompressed size is stored as is (HDF5 LZ4 filter). ``bslz4``: the data
were bit-shuffled in blocks of ``block size / element size`` elements
(bitshuffle's HDF5 filter); the last partial block is cut to a multiple of 8
elements and the remaining fewer-than-8 elements follow uncompressed.

Decoding checks every size against the payload and a byte budget before
allocating anything (a header may not claim more blocks than the payload
can frame, nor more bytes than the caller allows), then decodes the blocks
into one output buffer with the compiled core's bounds-checked LZ4 decoder
(block boundaries from the size records, then the blocks in parallel, the
GIL released), so a truncated or corrupt payload raises
:class:`CompressionError` instead of reading past the buffer. ``lz4``:
``_core.decode_framed_lz4``. ``bslz4``: ``_core.decode_bslz4`` decodes each
block into a small buffer of its thread and bit-unshuffles it from there
into the output (the bytes of bitshuffle's ``bitunshuffle``; bitshuffle's
own LZ4 decoder trusts the sizes in the data and is not used). Every
bitshuffle block is LZ4-compressed: unlike the ``lz4`` framing, a block
whose compressed size equals its size is not taken as stored.

:meth:`CompressedArray.bslz4_layout` hands a reader that needs only part of
the pixels (the compiled frame path of
:func:`diffranet.inference.preprocess.preprocess`) the checked framing, so
it can expand only the blocks it reads.
"""

from __future__ import annotations

import math
import struct

import numpy as np

from .. import _core
from .._validation import check_threads
from .frames import describe_value

__all__ = ["CompressionError", "CompressedArray", "ALGORITHMS", "decompress", "compress", "expanded"]

#: Algorithms a Stream V2 payload may use.
ALGORITHMS = ("bslz4", "lz4")

_HEADER = struct.Struct(">QI")
_BLOCK_SIZE = struct.Struct(">I")
_BSHUF_MULTIPLE = 8            # bitshuffle blocks are multiples of 8 elements
_BSHUF_TARGET_BLOCK_BYTES = 8192  # bitshuffle's default block size in bytes
_LZ4_BLOCK_BYTES = 1 << 16


class CompressionError(ValueError):
    """A compressed byte string is truncated, corrupt or of an unknown kind."""


def _check_framing(payload, total, block_bytes, max_bytes):
    """Refuse, from the header alone, sizes the payload cannot hold or the budget does not allow.

    Every block needs at least its 4-byte size record, so a header whose
    block count exceeds what the payload can frame is refused before any
    block is read or any output allocated.
    """
    if max_bytes is not None and total > max_bytes:
        raise CompressionError(f"compressed data claim {total} bytes, more than the {max_bytes}-byte limit")
    if total and block_bytes == 0:
        raise CompressionError("block size of 0 bytes")
    blocks = -(-total // block_bytes) if total else 0
    if blocks * _BLOCK_SIZE.size > len(payload) - _HEADER.size:
        raise CompressionError(f"a header claiming {total} bytes in blocks of {block_bytes} needs {blocks} blocks, "
                               f"more than the {len(payload)}-byte payload can hold")


def _blocks(payload, offset, total, block_bytes, out, n_threads=None):
    """Decode ``total`` bytes of consecutive framed LZ4 blocks from ``payload[offset:]`` into ``out`` (uint8).

    Returns the offset after the last block. Blocks whose stored size equals
    their size are stored as is (HDF5 LZ4 filter).
    """
    try:
        return _core.decode_framed_lz4(payload, offset, total, block_bytes, out, check_threads(n_threads))
    except ValueError as exc:
        raise CompressionError(str(exc)) from None


def _header(payload):
    if len(payload) < _HEADER.size:
        raise CompressionError(f"compressed data of {len(payload)} bytes are shorter than their 12-byte header")
    return _HEADER.unpack_from(payload, 0)


def _decompress_lz4(payload, max_bytes):
    total, block_bytes = _header(payload)
    _check_framing(payload, total, block_bytes, max_bytes)
    out = np.empty(total, np.uint8)
    end = _blocks(payload, _HEADER.size, total, block_bytes, out)
    if end != len(payload):
        raise CompressionError(f"{len(payload) - end} bytes after the last LZ4 block")
    return out


def _bslz4_layout(payload, elem_size, max_bytes):
    """(elements, elements per block) of a bslz4 payload, its header and framing checked (nothing decoded)."""
    if isinstance(elem_size, bool) or not isinstance(elem_size, int) or elem_size not in (1, 2, 4, 8):
        raise CompressionError(f"bslz4 element size must be 1, 2, 4 or 8 bytes, got {describe_value(elem_size)}")
    total, block_bytes = _header(payload)
    if total % elem_size:
        raise CompressionError(f"{total} bytes are not a whole number of {elem_size}-byte elements")
    n = total // elem_size
    block = block_bytes // elem_size
    if n and (block == 0 or block % _BSHUF_MULTIPLE or block_bytes % elem_size):
        raise CompressionError(f"bslz4 block size of {block_bytes} bytes is not a multiple of 8 elements")
    compressed = n - n % _BSHUF_MULTIPLE  # elements in LZ4 blocks; the rest follow uncompressed
    _check_framing(payload, compressed * elem_size, block_bytes, max_bytes)
    if n == 0 and len(payload) != _HEADER.size:
        raise CompressionError(f"bslz4 data hold {len(payload) - _HEADER.size} bytes after the header, expected 0")
    return n, block


def _decompress_bslz4(payload, elem_size, max_bytes, n_threads=None):
    n, block = _bslz4_layout(payload, elem_size, max_bytes)
    out = np.empty(n * elem_size, np.uint8)
    if n:
        try:  # block by block: LZ4 into a small buffer of the thread, bit-unshuffled from there into out
            _core.decode_bslz4(payload, _HEADER.size, n, elem_size, block, out, check_threads(n_threads))
        except ValueError as exc:
            raise CompressionError(str(exc)) from None
    return out


def decompress(algorithm, modifier, payload, *, max_bytes=None):
    """Decompress one Stream V2 compressed byte string.

    Parameters
    ----------
    algorithm : {"bslz4", "lz4"}
        The first element of the tag-56500 array.
    modifier : int
        The second element: the element size in bytes for ``bslz4``,
        unused (0) for ``lz4``.
    payload : bytes-like
        The compressed bytes, HDF5 framing included.
    max_bytes : int, optional
        Refuse data whose header claims more bytes (checked, with the block
        count the payload can frame, before any output is allocated).

    Returns
    -------
    memoryview
        The decompressed bytes (read-only, one byte per element).

    Raises
    ------
    CompressionError
        Unknown algorithm, a size over ``max_bytes``, a header claiming
        more blocks than the payload can hold, truncated or corrupt data.

    Examples
    --------
    >>> data = np.arange(1000, dtype="<u2")
    >>> algorithm, elem_size, payload = compress(data, "bslz4")
    >>> np.array_equal(np.frombuffer(decompress(algorithm, elem_size, payload), "<u2"), data)
    True
    """
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise CompressionError(f"compressed data must be a byte string, got {type(payload).__name__}")
    if algorithm == "lz4":
        out = _decompress_lz4(payload, max_bytes)
    elif algorithm == "bslz4":
        out = _decompress_bslz4(payload, modifier, max_bytes)
    else:
        raise CompressionError(f"unknown compression {describe_value(algorithm)}; supported: {', '.join(ALGORITHMS)}")
    out.flags.writeable = False
    return memoryview(out)


def uncompressed_size(algorithm, payload):
    """Bytes the payload expands to, read from its header (without decompressing).

    Raises
    ------
    CompressionError
        Unknown algorithm, or a payload shorter than its header.
    """
    if algorithm not in ALGORITHMS:
        raise CompressionError(f"unknown compression {describe_value(algorithm)}; supported: {', '.join(ALGORITHMS)}")
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise CompressionError(f"compressed data must be a byte string, got {type(payload).__name__}")
    return _header(payload)[0]


class CompressedArray:
    """An array whose bytes are still compressed: dtype and shape known, pixels expanded on demand.

    The live service hands these to the process that classifies the frame,
    so decompression runs there (in parallel over worker processes) and the
    receiving process only parses message headers.

    Parameters
    ----------
    algorithm, modifier, payload
        The three elements of the tag-56500 array (see :func:`decompress`).
    dtype : numpy.dtype
    shape : tuple of int, optional
        Default: one dimension, as many elements as the header announces.

    Raises
    ------
    CompressionError
        Unknown algorithm, a payload shorter than its header, or an
        announced size that is not a whole number of elements or does not
        match ``shape``.
    """

    __slots__ = ("algorithm", "modifier", "payload", "dtype", "shape")

    def __init__(self, algorithm, modifier, payload, dtype, shape=None):
        self.algorithm, self.modifier, self.payload = algorithm, modifier, payload
        self.dtype = np.dtype(dtype)
        total = uncompressed_size(algorithm, payload)
        if total % self.dtype.itemsize:
            raise CompressionError(f"{total} bytes are not a whole number of {self.dtype} elements")
        n = total // self.dtype.itemsize
        shape = (n,) if shape is None else tuple(int(d) for d in shape)
        if math.prod(shape) != n:
            raise CompressionError(f"array dimensions {describe_value(list(shape))} do not match the {n} "
                                   "compressed elements")
        self.shape = shape

    @property
    def ndim(self):
        """Number of dimensions."""
        return len(self.shape)

    @property
    def size(self):
        """Number of elements (as the header announces them)."""
        return math.prod(self.shape)

    @property
    def nbytes(self):
        """Bytes of the expanded array."""
        return self.size * self.dtype.itemsize

    def reshape(self, shape):
        """The same compressed bytes seen with another shape of as many elements."""
        return CompressedArray(self.algorithm, self.modifier, self.payload, self.dtype, shape)

    def bslz4_layout(self):
        """Where the blocks of bslz4 pixels are, for a reader that expands only the blocks it reads.

        Returns
        -------
        (payload, offset, block_elements) or None
            The payload, the offset of the first block's size record (after
            the 12-byte header) and the elements per block, the header checked
            (the reader checks each block's framing as it reads it); None for
            ``lz4`` pixels, or bslz4 pixels shuffled in elements of another
            size than the dtype's.

        Raises
        ------
        CompressionError
            A header or framing that :meth:`expand` would refuse.
        """
        if self.algorithm != "bslz4" or self.modifier != self.dtype.itemsize:
            return None
        _, block = _bslz4_layout(self.payload, self.modifier, self.nbytes)
        return self.payload, _HEADER.size, block

    def expand(self):
        """The decompressed array (read-only view of the decompressed bytes).

        Raises
        ------
        CompressionError
            Truncated or corrupt data.
        """
        raw = decompress(self.algorithm, self.modifier, self.payload, max_bytes=self.nbytes)
        if len(raw) != self.nbytes:
            raise CompressionError(f"compressed data expand to {len(raw)} bytes, expected {self.nbytes}")
        return np.frombuffer(raw, dtype=self.dtype).reshape(self.shape)


def expanded(data):
    """``data`` itself, or the decompressed array of a :class:`CompressedArray`."""
    return data.expand() if isinstance(data, CompressedArray) else data


def compress(data, algorithm):
    """Compress an array as a Stream V2 detector would (the inverse of :func:`decompress`).

    Parameters
    ----------
    data : ndarray
        Array of 1, 2, 4 or 8-byte elements; its bytes are compressed in C order.
    algorithm : {"bslz4", "lz4"}

    Returns
    -------
    (algorithm, modifier, payload) : (str, int, bytes)
        The three elements of the tag-56500 array.
    """
    import lz4.block

    data = np.ascontiguousarray(data)
    raw = data.tobytes()
    if algorithm == "lz4":
        out = [_HEADER.pack(len(raw), _LZ4_BLOCK_BYTES)]
        for start in range(0, len(raw), _LZ4_BLOCK_BYTES):
            block = raw[start:start + _LZ4_BLOCK_BYTES]
            packed = lz4.block.compress(block, store_size=False)
            if len(packed) >= len(block):
                packed = block
            out += [_BLOCK_SIZE.pack(len(packed)), packed]
        return "lz4", 0, b"".join(out)
    if algorithm == "bslz4":
        import bitshuffle

        elem_size = data.dtype.itemsize
        if elem_size not in (1, 2, 4, 8):
            raise ValueError(f"bslz4 needs 1, 2, 4 or 8-byte elements, got {data.dtype}")
        block = max(_BSHUF_MULTIPLE, _BSHUF_TARGET_BLOCK_BYTES // elem_size)
        body = bitshuffle.compress_lz4(data.reshape(-1), block).tobytes() if data.size else b""
        return "bslz4", elem_size, _HEADER.pack(len(raw), block * elem_size) + body
    raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
