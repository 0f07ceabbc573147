"""Live hit finding: classify frames as a detector produces them.

Layers (each knows one thing):

* sources: :mod:`~diffranet.live.watch` (files appearing in a directory),
  :mod:`~diffranet.live.simple` (JSON header + pixels over ZMQ),
  :mod:`~diffranet.live.dectris` (DECTRIS Stream V2, CBOR over ZMQ, with
  :mod:`~diffranet.live.compression`);
* processing: :mod:`~diffranet.live.processing` (frames -> verdicts with a
  saved model, with the spot figures of :mod:`~diffranet.live.spots`);
* parallelisation: :mod:`~diffranet.live.parallel` (one thread, or worker
  processes behind PUSH / PULL; verdicts put back in arrival order);
* sinks: :mod:`~diffranet.live.sinks` (PUB socket + JSON-lines log),
  :mod:`~diffranet.live.hits` (hit frames to NXmx / CXI files) and
  :mod:`~diffranet.live.stats` (status line);
* :mod:`~diffranet.live.series`: the Stream V2 series info that several
  services pulling from one detector share;
* :mod:`~diffranet.live.service` ties a ZMQ source to the rest, with bounded
  queues and a documented overload policy; :mod:`~diffranet.live.limits`
  holds the byte budgets every message is checked against.
"""

from __future__ import annotations

from .frames import Frame, MalformedMessage
from .hits import HitWriter
from .limits import StreamLimits
from .service import FORMATS, OVERFLOW_POLICIES, StageFailure, StreamService
from .signals import stop_on_signals
from .sinks import RecordWriter
from .stats import StatsSnapshot
from .watch import DirectoryWatcher, watch_directory

__all__ = ["DirectoryWatcher", "FORMATS", "Frame", "HitWriter", "MalformedMessage", "OVERFLOW_POLICIES",
           "RecordWriter", "StageFailure", "StatsSnapshot", "StreamLimits", "StreamService", "stop_on_signals",
           "watch_directory"]
