"""Per-detector TOML files, defined in :mod:`diffranet.detectors` and re-exported here."""

from __future__ import annotations

from ..detectors.spec import SHIPPED, DetectorSpec, load_detector

__all__ = ["DetectorSpec", "load_detector", "SHIPPED"]
