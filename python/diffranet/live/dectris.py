"""DECTRIS Stream V2: CBOR start / image / end messages to frames.

Each ZMQ message is one CBOR map (RFC 8949), usually behind the
self-described CBOR tag 55799, whose first key ``type`` is ``"start"``,
``"image"`` or ``"end"``. Arrays use RFC 8746: typed arrays (tags 64-87:
the tag gives element type, size and byte order) inside multi-dimensional
arrays (tag 40, ``[[rows, cols], typed array]`` in row-major order). Any byte
string may be replaced by DECTRIS tag 56500 ``[algorithm, modifier, bytes]``,
the same bytes compressed with ``bslz4`` or ``lz4``
(:mod:`diffranet.live.compression`).

What diffranet takes from the messages:

* start: ``series_id``, ``series_unique_id``, ``image_size_x`` / ``_y``,
  ``channels`` (the first one is classified), ``pixel_mask`` (nonzero =
  ignore), ``saturation_value``, and the geometry: ``pixel_size_x`` (m),
  the detector distance (``detector_translation[2]`` in m, or
  ``detector_distance`` in m where a sender provides it),
  ``incident_wavelength`` (A; else from ``incident_energy`` in eV) and
  ``beam_center_x`` / ``beam_center_y`` (pixels);
* image: ``image_id``, ``series_id`` and ``data`` (channel -> 2-D array);
* end: ``series_id``.

Values missing from the start message come from the defaults given to
:class:`Stream2Decoder` (the command-line geometry options).

Messages are untrusted: before a message is decoded, its CBOR heads are
read to bound what decoding costs (at most :data:`MAX_MESSAGE_ITEMS` data
items; no tag whose decoding takes more than linear time or repeats data by
reference; map keys only strings, integers or simple values); each array's
dimensions and each compressed header's size are checked against
:class:`~diffranet.live.limits.StreamLimits` before anything of that size is
allocated; a number the decoder uses must
be finite (``10**400`` is refused, not overflowed); identifiers are kept
only as JSON-safe values (:func:`~diffranet.live.frames.safe_tags`); any
failure to decode becomes :class:`~diffranet.live.frames.MalformedMessage`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping

import numpy as np

from ..detectors import FrameGeometry
from .compression import CompressedArray, CompressionError, compress, decompress, expanded, uncompressed_size
from .frames import Frame, MalformedMessage, SeriesEnd, describe_exception, describe_value, safe_tags
from .limits import StreamLimits
from .series import SeriesInfo, series_key

__all__ = ["Stream2Decoder", "decode_message", "encode_start", "encode_image", "encode_end", "TYPED_ARRAY_TAGS",
           "MAX_MESSAGE_ITEMS"]

_SELF_DESCRIBED = b"\xd9\xd9\xf7"
_MULTI_DIM_ROW_MAJOR = 40
_MULTI_DIM_COLUMN_MAJOR = 1040
_COMPRESSED = 56500
_HC_PLANCK_EV_A = 12398.419843320026  # h c in eV * Angstrom

#: Most CBOR data items in one message (a start message holds a few hundred): each becomes a Python object
#: (over 100 bytes for a 1-byte empty map), so a budget in bytes alone would let a message grow 100-fold.
MAX_MESSAGE_ITEMS = 1 << 16
#: Tags the decoder would turn into far more work or memory than their bytes; Stream V2 uses none of them.
_REFUSED_TAGS = {
    4: "decimal fraction", 5: "bigfloat", 30: "rational number",  # conversions quadratic in the digits
    25: "string reference", 256: "string reference namespace",  # a few bytes repeat a whole string
    28: "shared value", 29: "shared value reference",  # ... or a whole structure, nested: exponential
    35: "regular expression", 36: "MIME message", 258: "set",  # compiled, parsed, hashed
}


def _typed_array_dtype(tag):
    """The NumPy dtype of an RFC 8746 typed-array tag (64-87), or None."""
    if not 64 <= tag <= 87 or tag == 76:  # 76 (signed 8-bit, little endian) is reserved
        return None
    is_float, signed, little, log_size = (tag >> 4) & 1, (tag >> 3) & 1, (tag >> 2) & 1, tag & 3
    if is_float:
        if log_size == 3:  # binary128: no NumPy type
            return None
        kind, size = "f", 2 << log_size
    else:
        kind, size = ("i" if signed else "u"), 1 << log_size
    order = "|" if size == 1 else ("<" if little else ">")
    return np.dtype(f"{order}{kind}{size}")


#: Typed-array tag -> dtype, for every RFC 8746 tag with a NumPy type.
TYPED_ARRAY_TAGS = {tag: _typed_array_dtype(tag) for tag in range(64, 88) if _typed_array_dtype(tag) is not None}
# dtype string -> tag; uint8 gets tag 64 (not the clamped 68)
_TAG_FOR_DTYPE = {dtype.str: tag for tag, dtype in sorted(TYPED_ARRAY_TAGS.items(), reverse=True)}


class _Compressed(tuple):
    """``(algorithm, modifier, payload)`` of a tag-56500 byte string left compressed."""


def _checked(limits, dims, what="array"):
    try:
        return limits.check_dimensions(dims, what)
    except ValueError as exc:
        raise MalformedMessage(str(exc)) from None


def _tag_hook(first, second, *, defer=False, limits):
    # cbor2 < 6 calls tag_hook(decoder, tag), cbor2 6 calls tag_hook(tag, immutable)
    tag = second if hasattr(second, "tag") else first
    value = tag.value
    if tag.tag == _COMPRESSED:
        if not isinstance(value, (list, tuple)) or len(value) != 3:
            raise MalformedMessage("compressed byte string (tag 56500) must be [algorithm, modifier, bytes]")
        claimed = uncompressed_size(value[0], value[2])  # unknown algorithm or truncated header: reject now
        if claimed > limits.max_decompressed_bytes:
            raise MalformedMessage(f"compressed byte string claims {claimed} bytes, more than the limit of "
                                   f"{limits.max_decompressed_bytes}")
        if defer:
            return _Compressed(value)
        return decompress(*value, max_bytes=limits.max_decompressed_bytes)
    dtype = TYPED_ARRAY_TAGS.get(tag.tag)
    if dtype is not None:
        if isinstance(value, _Compressed):
            array = CompressedArray(*value, dtype)
            _checked(limits, array.shape, "typed array")
            return array
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise MalformedMessage(f"typed array (tag {tag.tag}) must hold a byte string")
        if len(value) % dtype.itemsize:
            raise MalformedMessage(f"typed array of {len(value)} bytes is not a whole number of {dtype} elements")
        return np.frombuffer(value, dtype=dtype)
    if tag.tag in (_MULTI_DIM_ROW_MAJOR, _MULTI_DIM_COLUMN_MAJOR):
        if not isinstance(value, (list, tuple)) or len(value) != 2 or not isinstance(value[0], (list, tuple)):
            raise MalformedMessage("multi-dimensional array must be [dimensions, array]")
        dims, array = value
        dims = _checked(limits, dims)
        if isinstance(array, CompressedArray) and tag.tag == _MULTI_DIM_ROW_MAJOR:
            return array.reshape(dims)
        array = expanded(array)
        if not isinstance(array, np.ndarray):
            if not isinstance(array, (list, tuple)) or len(array) != math.prod(dims):
                raise MalformedMessage("multi-dimensional array must hold a typed array or as many numbers "
                                       "as its dimensions")
            array = np.asarray(array)
            if array.dtype.kind not in "biuf":
                raise MalformedMessage("multi-dimensional array must hold numbers")
        if math.prod(dims) != array.size:
            raise MalformedMessage(f"array dimensions {list(dims)} do not match its {array.size} elements")
        return array.reshape(dims, order="C" if tag.tag == _MULTI_DIM_ROW_MAJOR else "F")
    return tag


_DEFAULT_LIMITS = StreamLimits()


def _check_items(message, max_items=MAX_MESSAGE_ITEMS):
    """Refuse, from the CBOR heads alone, a message whose decoding would cost far more than its bytes.

    Reads the head of each data item (strings skipped by their length) and refuses more than
    ``max_items`` items, a tag of :data:`_REFUSED_TAGS`, and a map key that is not a string, an
    integer or a simple value: arrays, maps, tags and big integers can be made to share one hash,
    and a map of those takes quadratic time to build. Malformed heads are left to the decoder.
    """
    view = memoryview(message).cast("B") if not isinstance(message, bytes) else message
    size, pos, items = len(view), 0, 0
    stack = [[1, False, 0]]  # open containers: [items left (-1: until a break), is a map, items read]
    while stack:
        top = stack[-1]
        if top[0] == 0:
            stack.pop()
            continue
        if pos >= size:
            return
        initial = view[pos]
        pos += 1
        if initial == 0xFF:  # break: ends an indefinite container (elsewhere the decoder refuses it)
            stack.pop()
            continue
        major, info = initial >> 5, initial & 31
        is_key = top[1] and top[2] % 2 == 0
        top[2] += 1
        if top[0] > 0:
            top[0] -= 1
        items += 1
        if items > max_items:
            raise MalformedMessage(f"not a Stream V2 message: more than {max_items} CBOR data items")
        if info < 24:
            argument = info
        elif info < 28:
            width = 1 << (info - 24)
            argument = int.from_bytes(view[pos:pos + width], "big")
            pos += width
        elif info == 31 and major in (2, 3, 4, 5):
            argument = -1
        else:
            return
        if is_key and major not in (0, 1, 2, 3, 7):
            raise MalformedMessage("not a Stream V2 message: a map key must be a string, an integer or a simple value")
        if major in (2, 3):
            if argument >= 0:
                pos += argument
            else:
                stack.append([-1, False, 0])  # the chunks
        elif major == 4:
            stack.append([argument, False, 0])
        elif major == 5:
            stack.append([2 * argument if argument >= 0 else -1, True, 0])
        elif major == 6:
            if argument in _REFUSED_TAGS:
                raise MalformedMessage(f"not a Stream V2 message: CBOR tag {argument} ({_REFUSED_TAGS[argument]}) "
                                       "is not accepted")
            stack.append([1, False, 0])


def decode_message(message, *, defer_decompression=False, limits=None):
    """Decode one Stream V2 message into a dict (arrays as NumPy arrays, compressed data expanded).

    Parameters
    ----------
    message : bytes-like
        The CBOR bytes of one ZMQ message.
    defer_decompression : bool, default False
        Leave compressed typed arrays compressed, as
        :class:`~diffranet.live.compression.CompressedArray` (dtype and
        shape checked against the compressed header; the data are checked
        when expanded).
    limits : StreamLimits, optional
        Budgets for the message's size, its arrays' pixels and what
        compressed data may expand to (default: :class:`StreamLimits()`).

    Returns
    -------
    dict
        The top-level map; ``message["type"]`` is ``"start"``, ``"image"`` or ``"end"``.

    Raises
    ------
    MalformedMessage
        Not CBOR, not a map, unknown type, bad array or compressed data, a
        size over ``limits``, more than :data:`MAX_MESSAGE_ITEMS` data items,
        a tag of decimal fractions, bigfloats, rationals, string or value
        references, regular expressions, MIME messages or sets, or a map key
        that is an array, a map or a tagged item.
    """
    import cbor2

    limits = _DEFAULT_LIMITS if limits is None else limits
    if len(message) > limits.max_message_bytes:
        raise MalformedMessage(f"message of {len(message)} bytes is over the limit of {limits.max_message_bytes} "
                               "bytes")
    _check_items(message)
    try:
        decoded = cbor2.loads(message, tag_hook=functools.partial(_tag_hook, defer=defer_decompression,
                                                                  limits=limits))
    except MalformedMessage:
        raise
    except Exception as exc:  # any failure of the CBOR decoder or of a tag is this message's fault
        cause = exc.__cause__ if isinstance(exc.__cause__, (CompressionError, MalformedMessage)) else exc
        raise MalformedMessage(f"not a Stream V2 message: {describe_exception(cause)}") from None
    if not isinstance(decoded, Mapping):
        raise MalformedMessage(f"a Stream V2 message is a CBOR map, got {type(decoded).__name__}")
    kind = decoded.get("type")
    if kind not in ("start", "image", "end"):
        raise MalformedMessage(f"unknown Stream V2 message type {describe_value(kind)}")
    return dict(decoded)


def _finite(value, name, tags):
    """``value`` as a finite float; anything else (10**400, NaN, a string) is refused."""
    try:
        number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
    except OverflowError:
        number = math.nan
    if not math.isfinite(number):
        raise MalformedMessage(f"{name} must be a finite number, got {describe_value(value)}", tags)
    return number


def _number(message, key, tags):
    """A number of the message, None when absent; refused when present and not a finite number."""
    value = message.get(key)
    return None if value is None else _finite(value, key, tags)


def _series_tags(message):
    tags = {"series_id": message.get("series_id")}
    if "series_unique_id" in message:
        tags["series_unique_id"] = message["series_unique_id"]
    return safe_tags(tags)


class Stream2Decoder:
    """Turn the messages of a Stream V2 stream into frames, remembering the current series.

    Parameters
    ----------
    geometry : FrameGeometry, optional
        Geometry for series whose start message lacks pixel size, distance
        or wavelength (and for images that arrive before any start message).
    beam_center_px : tuple of float, optional
        Beam centre ``(x, y)`` in pixels when the start message has none.
    defer_decompression : bool, default False
        Leave the pixels of image messages compressed: ``Frame.data`` is then
        a :class:`~diffranet.live.compression.CompressedArray`, expanded by
        whoever classifies the frame (see :func:`decode_message`).
    limits : StreamLimits, optional
        Size budgets of a message (see :func:`decode_message`).

    The decoder remembers the last :data:`KNOWN_SERIES` series, from their
    start messages or adopted from other services
    (:mod:`diffranet.live.series`), so that late images of a series keep
    its settings when the next one has started.
    """

    #: Most series remembered.
    KNOWN_SERIES = 8

    def __init__(self, geometry=None, beam_center_px=None, *, defer_decompression=False, limits=None):
        self.geometry = geometry
        self.beam_center_px = beam_center_px
        self.defer_decompression = defer_decompression
        self.limits = _DEFAULT_LIMITS if limits is None else limits
        self._series = SeriesInfo(tags={}, geometry=geometry, beam_center_px=beam_center_px)
        self._known = {}  # series_key(series_id) -> SeriesInfo, oldest first

    @property
    def series(self):
        """The :class:`~diffranet.live.series.SeriesInfo` of the latest start message."""
        return self._series

    def knows(self, series_id):
        """Whether a start message (or an adopted series info) of ``series_id`` was seen."""
        return series_key(series_id) in self._known

    def adopt(self, info):
        """Remember a series announced by another service (it does not become the latest)."""
        key = series_key(info.tags.get("series_id"))
        self._known.pop(key, None)
        self._known[key] = info
        while len(self._known) > self.KNOWN_SERIES:
            self._known.pop(next(iter(self._known)))

    def _start(self, message):
        tags = _series_tags(message)
        size_x, size_y = message.get("image_size_x"), message.get("image_size_y")
        shape = None
        if size_x is not None or size_y is not None:
            try:
                shape = self.limits.check_dimensions([size_y, size_x], "image_size_y x image_size_x")
            except ValueError as exc:
                raise MalformedMessage(str(exc), tags) from None
        channels = message.get("channels")
        channel = channels[0] if isinstance(channels, (list, tuple)) and channels and isinstance(channels[0], str) else None
        mask = None
        masks = message.get("pixel_mask")
        if isinstance(masks, Mapping) and masks:
            mask = masks.get(channel) if channel in masks else next(iter(masks.values()))
            try:
                mask = expanded(mask)
            except CompressionError as exc:
                raise MalformedMessage(f"pixel_mask: {exc}", tags) from None
            except MemoryError:
                raise MalformedMessage("pixel_mask: out of memory while expanding it", tags) from None
            if not isinstance(mask, np.ndarray) or mask.ndim != 2:
                raise MalformedMessage("pixel_mask must map channels to 2-D arrays", tags)
            if shape is not None and mask.shape != shape:
                raise MalformedMessage(f"pixel_mask has shape {mask.shape}, the images {shape}", tags)
            mask = mask != 0
        saturation = _number(message, "saturation_value", tags)
        saturation = None if saturation is None else saturation + 1  # values above the last valid one

        center = (_number(message, "beam_center_x", tags), _number(message, "beam_center_y", tags))
        beam_center_px = center if None not in center else self.beam_center_px
        pixel_size_m = _number(message, "pixel_size_x", tags)
        distance_m = _number(message, "detector_distance", tags)
        translation = message.get("detector_translation")
        if distance_m is None and isinstance(translation, (list, tuple)) and len(translation) == 3:
            distance_m = _finite(translation[2], "detector_translation[2]", tags)
        wavelength_A = _number(message, "incident_wavelength", tags)
        energy_eV = _number(message, "incident_energy", tags)
        if wavelength_A is None and energy_eV:
            wavelength_A = _HC_PLANCK_EV_A / energy_eV
        default = self.geometry
        pixel_size_mm = pixel_size_m * 1e3 if pixel_size_m else (default.pixel_size_mm if default else None)
        distance_mm = distance_m * 1e3 if distance_m else (default.distance_mm if default else None)
        wavelength_A = wavelength_A or (default.wavelength_A if default else None)
        geometry = None
        if pixel_size_mm and distance_mm and wavelength_A:
            try:
                geometry = FrameGeometry(pixel_size_mm, distance_mm, wavelength_A, beam_center_px)
            except ValueError as exc:
                raise MalformedMessage(f"start message geometry: {exc}", tags) from None
        self._series = SeriesInfo(tags=tags, shape=shape, channel=channel, mask=mask, geometry=geometry,
                                  beam_center_px=beam_center_px, saturation=saturation)

    def _image(self, message, received):
        image_id = message.get("image_id")
        tags = {"id": safe_tags(image_id), **_series_tags(message)}
        series = self._known.get(series_key(tags["series_id"]), self._series)
        if isinstance(image_id, bool) or not isinstance(image_id, int) or not 0 <= image_id < 2**64:
            raise MalformedMessage(f"image_id must be an integer from 0 to 2**64 - 1, got {describe_value(image_id)}",
                                   tags)
        channels = message.get("data")
        if not isinstance(channels, Mapping) or not channels:
            raise MalformedMessage("image message has no data map", tags)
        data = channels.get(series.channel) if series.channel in channels else next(iter(channels.values()))
        if not isinstance(data, (np.ndarray, CompressedArray)) or data.ndim != 2 or data.dtype.kind not in "uif":
            raise MalformedMessage("image data must be a 2-D array of numbers", tags)
        same_series = series.tags.get("series_id") == tags["series_id"]
        if same_series and series.shape is not None and data.shape != series.shape:
            raise MalformedMessage(f"image has shape {data.shape}, the start message says {series.shape}", tags)
        if not same_series:  # no start message seen for this series: defaults only
            series = SeriesInfo(tags={}, geometry=self.geometry, beam_center_px=self.beam_center_px)
        saturation = series.saturation
        if saturation is None and data.dtype.kind == "u":
            saturation = float(np.iinfo(data.dtype).max)  # all bits set: no data (gap or bad pixel)
        return Frame(tags=tags, data=data, mask=series.mask if same_series else None, geometry=series.geometry,
                     beam_center_px=series.beam_center_px, saturation=saturation, received=received)

    def decode(self, message, received):
        """Decode one message.

        Parameters
        ----------
        message : bytes-like
        received : float
            ``time.monotonic()`` at arrival.

        Returns
        -------
        Frame, SeriesEnd or None
            A frame for an image message, a :class:`SeriesEnd` for an end
            message, None for a start message (its settings are kept).

        Raises
        ------
        MalformedMessage
        """
        decoded = decode_message(message, defer_decompression=self.defer_decompression, limits=self.limits)
        kind = decoded["type"]
        if kind == "start":
            self._start(decoded)
            self.adopt(self._series)
            return None
        if kind == "image":
            return self._image(decoded, received)
        return SeriesEnd(tags=_series_tags(decoded))


# --------------------------------------------------------------------------- encoding (senders, tests)


def _typed_array(array, compression):
    import cbor2

    array = np.ascontiguousarray(array)
    tag = _TAG_FOR_DTYPE.get(array.dtype.str)
    if tag is None:
        raise ValueError(f"no RFC 8746 typed-array tag for dtype {array.dtype}")
    payload = array.tobytes() if compression is None else cbor2.CBORTag(_COMPRESSED, list(compress(array, compression)))
    return cbor2.CBORTag(_MULTI_DIM_ROW_MAJOR, [list(array.shape), cbor2.CBORTag(tag, payload)])


def _dumps(message):
    import cbor2

    return _SELF_DESCRIBED + cbor2.dumps(message)


def encode_start(series_id, *, image_shape, pixel_size_m=None, distance_m=None, wavelength_A=None,
                 beam_center_px=None, pixel_mask=None, saturation_value=None, channel="threshold_1",
                 number_of_images=0, compression="bslz4", series_unique_id=None):
    """A Stream V2 start message (CBOR bytes), as a detector sends it when armed.

    Parameters
    ----------
    series_id : int
    image_shape : (rows, cols)
    pixel_size_m, distance_m, wavelength_A : float, optional
        Geometry (the distance goes into ``detector_translation``).
    beam_center_px : (x, y), optional
    pixel_mask : ndarray of uint32, optional
        Nonzero = bad pixel.
    saturation_value : int, optional
    channel : str
    number_of_images : int
    compression : {"bslz4", "lz4", None}
        How the pixel mask is compressed.
    series_unique_id : str, optional
    """
    message = {"type": "start", "series_id": int(series_id),
               "series_unique_id": series_unique_id or f"series-{series_id}",
               "channels": [channel], "image_size_x": int(image_shape[1]), "image_size_y": int(image_shape[0]),
               "number_of_images": int(number_of_images)}
    if pixel_size_m is not None:
        message["pixel_size_x"] = message["pixel_size_y"] = float(pixel_size_m)
    if distance_m is not None:
        message["detector_translation"] = [0.0, 0.0, float(distance_m)]
    if wavelength_A is not None:
        message["incident_wavelength"] = float(wavelength_A)
        message["incident_energy"] = _HC_PLANCK_EV_A / float(wavelength_A)
    if beam_center_px is not None:
        message["beam_center_x"], message["beam_center_y"] = float(beam_center_px[0]), float(beam_center_px[1])
    if saturation_value is not None:
        message["saturation_value"] = int(saturation_value)
    if pixel_mask is not None:
        message["pixel_mask"] = {channel: _typed_array(np.asarray(pixel_mask, dtype="<u4"), compression)}
        message["pixel_mask_enabled"] = True
    return _dumps(message)


def encode_image(series_id, image_id, data, *, channel="threshold_1", compression="bslz4", series_unique_id=None):
    """A Stream V2 image message (CBOR bytes) holding one channel's 2-D frame.

    Parameters
    ----------
    series_id, image_id : int
    data : ndarray, shape (rows, cols)
        uint8, uint16 or uint32 pixels as a detector sends them (any
        dtype with a typed-array tag works).
    channel : str
    compression : {"bslz4", "lz4", None}
    series_unique_id : str, optional
    """
    data = np.asarray(data)
    if data.ndim != 2:
        raise ValueError(f"data must be 2-D, got shape {data.shape}")
    return _dumps({"type": "image", "series_id": int(series_id),
                   "series_unique_id": series_unique_id or f"series-{series_id}", "image_id": int(image_id),
                   "data": {channel: _typed_array(data, compression)}})


def encode_end(series_id, *, series_unique_id=None):
    """A Stream V2 end message (CBOR bytes)."""
    return _dumps({"type": "end", "series_id": int(series_id),
                   "series_unique_id": series_unique_id or f"series-{series_id}"})
