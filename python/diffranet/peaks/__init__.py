"""Bragg peak finding (peakfinder8-style, in the compiled core) and the peak-count hit finder."""

from __future__ import annotations

from .._lazy import lazy_exports

# public name -> module that defines it; the hit finder (scikit-learn) is imported on first use, so that
# the finder and the background estimates the preprocessing reads load without it
_PUBLIC = {
    "PEAK_DTYPE": "finder",
    "PeakFinderSettings": "finder",
    "count_peaks": "finder",
    "find_peaks": "finder",
    "find_peaks_batch": "finder",
    "ring_statistics": "finder",
    "PeakFinderHitFinder": "hitfinder",
}

__all__ = sorted(_PUBLIC)

__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC, __all__)
