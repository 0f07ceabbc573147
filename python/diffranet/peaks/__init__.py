"""Bragg peak finding (peakfinder8-style, in the compiled core) and the peak-count hit finder."""

from .finder import PEAK_DTYPE, PeakFinderSettings, count_peaks, find_peaks, find_peaks_batch, ring_statistics
from .hitfinder import PeakFinderHitFinder

__all__ = [
    "PEAK_DTYPE",
    "PeakFinderHitFinder",
    "PeakFinderSettings",
    "count_peaks",
    "find_peaks",
    "find_peaks_batch",
    "ring_statistics",
]
