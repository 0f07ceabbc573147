"""Keyword arguments that every renderer of the compiled core takes.

The Bragg and background renderers see the detector and the beam through the
same arguments, converted here once, so that their images average over the
same subpixels and sources.
"""

from __future__ import annotations


def detector_args(detector, oversample):
    """Geometry of ``detector`` split into ``oversample`` x ``oversample`` subpixels."""
    rows, cols = detector.shape
    return {"rows": rows, "cols": cols, "pixel_size_mm": detector.pixel_size_mm, "origin_mm": detector.origin_mm,
            "fast_axis": detector.fast_axis, "slow_axis": detector.slow_axis, "normal": detector.normal,
            "oversample": oversample}


def beam_args(beam):
    """Sources, fluence (photons/m^2) and polarisation of ``beam``."""
    directions, wavelengths, weights = beam.sampled_sources()
    return {"source_directions": directions, "source_wavelengths_A": wavelengths, "source_weights": weights,
            "fluence": beam.fluence_photons_per_m2, "polarization_fraction": beam.polarization_fraction,
            "polarization_axis": beam.polarization_axis}
