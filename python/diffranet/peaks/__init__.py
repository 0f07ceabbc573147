"""Bragg peak finding (peakfinder8-style, in the compiled core) and the peak-count hit finder."""

from __future__ import annotations

import importlib

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


def __getattr__(name):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
