"""Byte budgets of the stream service: what one message may claim, and what may wait in memory.

Every size a message announces (a ZMQ message's length, an array's
dimensions, a compressed header's uncompressed size) is checked against
these budgets before anything of that size is allocated, so a small hostile
message cannot make the service allocate much more than the message itself.

The defaults admit the largest detectors in use: a DECTRIS EIGER2 16M frame
(4148 x 4362 = 18.1 Mpixels, 72 MB as uint32) and a JUNGFRAU 16M frame
(about 17 Mpixels with its gaps), uncompressed, with room to spare. The
pixel budget is the one of every file reader,
:data:`diffranet._budget.DEFAULT_MAX_FRAME_PIXELS` (2**26, which also admits
an unbinned Rayonix MX340-HS), so a frame the service takes can also be read
back from a file.
"""

from __future__ import annotations

import dataclasses
import math

from .._budget import DEFAULT_MAX_FRAME_PIXELS
from .._validation import check_int
from .compression import CompressedArray
from .frames import describe_value

__all__ = ["StreamLimits", "DEFAULT_MAX_MESSAGE_BYTES", "DEFAULT_MAX_FRAME_PIXELS", "DEFAULT_MAX_QUEUE_BYTES",
           "frame_bytes"]

#: Largest ZMQ message (or message part) accepted: 128 MiB, an EIGER2 16M uint32 frame is 72 MB.
DEFAULT_MAX_MESSAGE_BYTES = 128 * 2**20
#: Most bytes of frames in flight (received, not yet published): 512 MiB, seven EIGER2 16M uint32 frames.
DEFAULT_MAX_QUEUE_BYTES = 512 * 2**20
#: Largest element of a frame in bytes (float64, uint64): bounds any decompressed byte string.
_MAX_ITEMSIZE = 8


@dataclasses.dataclass(frozen=True)
class StreamLimits:
    """What one message may claim and how much may wait, validated once.

    Parameters
    ----------
    max_message_bytes : int, default 128 MiB
        Largest message part received; ZMQ refuses a longer one before it is
        allocated (it drops the sender's connection, which the service then
        opens again).
    max_frame_pixels : int, default DEFAULT_MAX_FRAME_PIXELS (2**26)
        Largest array (frame or pixel mask) a message may declare, in pixels.
    max_queue_bytes : int, default 512 MiB
        Most bytes of frames in flight (a frame counts its received bytes
        plus its expanded pixels); a frame larger than that is still taken
        when nothing else is in flight.
    """

    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_frame_pixels: int = DEFAULT_MAX_FRAME_PIXELS
    max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES

    def __post_init__(self):
        for field in dataclasses.fields(self):
            check_int(field.name, getattr(self, field.name), minimum=1, maximum=2**62)

    @property
    def max_decompressed_bytes(self):
        """Most bytes any compressed byte string may expand to (the largest frame of 8-byte pixels)."""
        return self.max_frame_pixels * _MAX_ITEMSIZE

    def check_dimensions(self, dims, what="array"):
        """Return ``dims`` as a tuple of ints if they are non-negative integers within the pixel budget.

        Raises
        ------
        ValueError
            Dimensions that are not non-negative integers, more pixels than ``max_frame_pixels``, or a
            side longer than that (even beside a side of 0).
        """
        if (not isinstance(dims, (list, tuple)) or len(dims) > 32
                or any(isinstance(d, bool) or not isinstance(d, int) or d < 0 for d in dims)):
            raise ValueError(f"{what} dimensions must be non-negative integers, got {describe_value(dims)}")
        # each side first: the product of a few megabyte-long integers takes minutes
        if any(d > self.max_frame_pixels for d in dims) or math.prod(dims) > self.max_frame_pixels:
            raise ValueError(f"{what} of {describe_value(list(dims))} has more pixels (or a longer side) than the "
                             f"limit of {self.max_frame_pixels} (max_frame_pixels)")
        return tuple(dims)


def frame_bytes(frame):
    """Memory a frame holds until published: its received bytes and, if compressed, its expanded pixels."""
    data = frame.data
    if isinstance(data, CompressedArray):
        return len(data.payload) + data.nbytes
    return data.nbytes
