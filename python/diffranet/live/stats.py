"""Running counts of the live service and its status line."""

from __future__ import annotations

import collections
import dataclasses
import math
import time

import numpy as np

__all__ = ["LiveStats", "StatsSnapshot"]


@dataclasses.dataclass(frozen=True)
class StatsSnapshot:
    """The service's counts at one moment.

    Attributes
    ----------
    frames : int
        Frames classified (verdicts written).
    hits : int
        Verdicts that are hits.
    dropped : int
        Frames dropped under overload (or at shutdown, never classified).
    errors : int
        Messages or files that could not be classified.
    frames_per_s : float
        Classification rate over the last status interval.
    queue_depth, queue_size : int
        Frames accepted and not yet written; the bound on that number.
    latency_p50_ms, latency_p99_ms : float
        Median and 99th percentile of ``latency_ms`` over the recent
        verdicts (NaN before the first).
    """

    frames: int
    hits: int
    dropped: int
    errors: int
    frames_per_s: float
    queue_depth: int
    queue_size: int
    latency_p50_ms: float
    latency_p99_ms: float

    @property
    def hit_rate(self):
        """Fraction of the classified frames that are hits (0 before the first)."""
        return self.hits / self.frames if self.frames else 0.0

    def latency_text(self):
        """``'latency p50 1.2 ms p99 4.5 ms'``, or ``'no latency yet'`` before the first verdict.

        Examples
        --------
        >>> StatsSnapshot(0, 0, 0, 0, 0.0, 0, 256, float("nan"), float("nan")).latency_text()
        'no latency yet'
        """
        if math.isnan(self.latency_p50_ms) or math.isnan(self.latency_p99_ms):
            return "no latency yet"
        return f"latency p50 {self.latency_p50_ms:.1f} ms p99 {self.latency_p99_ms:.1f} ms"

    def status_line(self):
        """One line for a terminal: rate, hit rate, queue, drops, errors, latency.

        Examples
        --------
        >>> StatsSnapshot(100, 25, 3, 1, 998.7, 4, 256, 1.25, 4.5).status_line()
        '999 frames/s | 100 frames, hit rate 25.0% | queue 4/256 | dropped 3 | errors 1 | latency p50 1.2 ms p99 4.5 ms'
        """
        return (f"{self.frames_per_s:.0f} frames/s | {self.frames} frames, hit rate {100 * self.hit_rate:.1f}% | "
                f"queue {self.queue_depth}/{self.queue_size} | dropped {self.dropped} | errors {self.errors} | "
                f"{self.latency_text()}")

    def to_dict(self):
        """JSON-serialisable counts (with ``hit_rate``)."""
        return {**dataclasses.asdict(self), "hit_rate": self.hit_rate}


class LiveStats:
    """Counts updated by the one thread that writes records (not thread-safe by design).

    Parameters
    ----------
    queue_size : int
        Bound on the frames in flight (for the status line).
    window : int
        Number of recent latencies kept for the percentiles.
    """

    def __init__(self, queue_size=0, window=20_000):
        self.queue_size = queue_size
        self.frames = self.hits = self.dropped = self.errors = 0
        self._latencies = collections.deque(maxlen=window)
        self._last_time = time.monotonic()
        self._last_frames = 0
        self._rate = 0.0

    def count(self, record):
        """Count one written record (verdict, drop or error)."""
        if record.get("dropped"):
            self.dropped += 1
        elif "error" in record:
            self.errors += 1
        elif "label" in record:
            self.frames += 1
            self.hits += bool(record.get("hit"))
            if "latency_ms" in record:
                self._latencies.append(record["latency_ms"])

    def snapshot(self, queue_depth=0):
        """The counts now; the rate is measured since the previous snapshot."""
        now = time.monotonic()
        elapsed = now - self._last_time
        if elapsed > 0.05:
            self._rate = (self.frames - self._last_frames) / elapsed
            self._last_time, self._last_frames = now, self.frames
        if self._latencies:
            p50, p99 = np.percentile(np.fromiter(self._latencies, float), [50, 99])
        else:
            p50 = p99 = float("nan")
        return StatsSnapshot(self.frames, self.hits, self.dropped, self.errors, self._rate, queue_depth,
                             self.queue_size, float(p50), float(p99))
