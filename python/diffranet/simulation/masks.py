"""Detector masks, defined in :mod:`diffranet.detectors.masks` and re-exported here."""

from __future__ import annotations

from ..detectors.masks import bad_pixel_mask, module_gap_mask

__all__ = ["bad_pixel_mask", "module_gap_mask"]
