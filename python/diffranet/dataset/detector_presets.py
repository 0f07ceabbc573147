"""Presets on a detector: the paper's CCD, and a training preset for a beamline's detector.

Both are preset matters: the paper's detector values live in
``PRESETS["diffranet"]``, and a training set for a user's detector keeps a
base preset's experiment and swaps its detector for a
:class:`~diffranet.detectors.DetectorSpec`.
"""

from __future__ import annotations

import dataclasses

from ..detectors import DetectorSpec
from ..simulation.response import CCDResponse, PixelArrayResponse
from .presets import PRESETS, get_preset, simulation_detector
from .regimes import Regimes

__all__ = ["paper_ccd", "training_preset"]

#: Largest count the simulated photon counter holds exactly (float32 counts stay exact below 2**24).
_MAX_EXACT_COUNT = 2.0**24
#: Saturation of a photon-counting detector file that names none: a 20-bit counter.
_DEFAULT_COUNTER_SATURATION = 2.0**20 - 1


def paper_ccd(flicker_rms=0.0, calibration_seed=0):
    """The DiffraNet paper's detector: ``PRESETS["diffranet"].response`` with a fluence flicker and calibration.

    A fiber-coupled CCD with the paper's PSF, 4 % calibration error, 3-photon
    read-out noise and offset 10; the values live in
    :class:`diffranet.dataset.presets.Preset`.

    Parameters
    ----------
    flicker_rms : float, default 0.0
        The paper drew each pulse's fluence from a Gaussian with RMS equal to
        the mean (clipped at zero); pass 1.0 to draw it here, or keep 0 when
        the fluence of each image is set elsewhere.
    calibration_seed : int, default 0
        Identifies the detector.

    Returns
    -------
    CCDResponse

    Examples
    --------
    >>> paper_ccd().psf_fwhm_um
    46.0
    """
    return PRESETS["diffranet"].response.with_(flicker_rms=flicker_rms, calibration_seed=calibration_seed)


def training_preset(detector, base="diffranet"):
    """A dataset preset that renders training images on ``detector``.

    The crystal, beam, background, class shares and label rule are those of
    ``base``; the detector (shape, pixel size, distance, wavelength, beam
    centre, module gaps) is ``detector``. A ``pixel_array`` detector counts
    photons (no PSF, read-out noise, gain error or offset, and the label rule
    counts no read-out noise); a ``ccd`` keeps ``base``'s fiber-coupled CCD.

    Parameters
    ----------
    detector : DetectorSpec
        For example :func:`diffranet.detectors.load_detector` of a TOML file.
    base : str, dict or Preset, default "diffranet"
        The preset to start from (:func:`~diffranet.dataset.presets.get_preset`).

    Returns
    -------
    Preset, or Regimes for a ``base`` of regimes: the same distributions with
    ``detector``'s kind only (photon counting for a ``pixel_array``, CCD for a
    ``ccd``) and its distance and wavelength as the centres of their ranges;
    the images stay on the model-input grid every frame is resampled onto.

    Raises
    ------
    ValueError
        If ``detector`` is not a :class:`DetectorSpec` or ``base`` not a preset.

    Examples
    --------
    >>> from diffranet.detectors import load_detector
    >>> training_preset(load_detector("pilatus6m").cropped((64, 64)), "quick").name
    'quick@pilatus6m-64x64'
    """
    if not isinstance(detector, DetectorSpec):
        raise ValueError(f"detector must be a DetectorSpec (see load_detector), got {type(detector).__name__}")
    base = get_preset(base)
    if isinstance(base, Regimes):
        return _regimes_for(detector, base)
    changes = {"name": f"{base.name}@{detector.name}", "detector": simulation_detector(detector),
               "beam": base.beam.with_(wavelength_A=detector.wavelength_A)}
    if detector.kind == "pixel_array":
        # the simulated counter holds at most 2**24 (float32 counts stay exact): far above any spot here
        saturation = (min(detector.saturation, _MAX_EXACT_COUNT) if detector.saturation is not None
                      else _DEFAULT_COUNTER_SATURATION)
        changes["response"] = PixelArrayResponse(saturation=saturation)
    else:  # a CCD: the base's, or the paper's when the base counts photons
        ccd = base.response if isinstance(base.response, CCDResponse) else PRESETS["diffranet"].response
        changes["response"] = ccd if detector.saturation is None else ccd.with_(saturation=detector.saturation)
    return base.with_(**changes)


def _regimes_for(detector, regimes):
    """Regimes drawn around one detector: its kind, distances and wavelengths within 25 % of its own."""
    weights = (1.0, 0.0, 0.0) if detector.kind == "pixel_array" else (0.0, 0.0, 1.0)
    return dataclasses.replace(
        regimes, name=f"{regimes.name}@{detector.name}", detector_weights=weights,
        distance_mm=(0.8 * detector.distance_mm, 1.25 * detector.distance_mm),
        wavelength_A=(0.8 * detector.wavelength_A, 1.25 * detector.wavelength_A))
