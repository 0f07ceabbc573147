"""The presets' physical choices: background scatterers and detector PSF."""

import dataclasses

import numpy as np
import pytest

from diffranet.dataset import get_preset


def test_paper_preset_background_and_psf():
    preset = get_preset("diffranet")
    background = preset.background()
    assert background.compton and background.diffuse is None
    assert [m.name for m in background.materials] == ["water", "air"]
    response = preset.response().to_dict()
    assert (response["psf"], response["psf_fwhm_um"]) == ("fiber", 46.0)


def test_compton_adds_a_few_percent_growing_with_angle():
    # the numbers docs/background.md gives for the paper's geometry
    preset = get_preset("diffranet")
    det = preset.detector()
    beam = preset.beam(preset.mean_photons, preset.wavelength_A)
    with_compton = preset.background().render(det, beam).astype(np.float64)
    without = dataclasses.replace(preset, compton=False).background().render(det, beam).astype(np.float64)
    assert with_compton.sum() / without.sum() == pytest.approx(1.044, abs=0.002)
    ratio = with_compton / without
    two_theta = det.two_theta_deg()
    # S(s) = 0 forward, so the share grows with the scattering angle
    assert ratio.min() >= 1.0 and ratio[two_theta < 3].max() < 1.005
    assert 1.06 < ratio[two_theta > 30].mean() < 1.09


def test_compton_must_be_bool():
    with pytest.raises(ValueError, match="compton"):
        dataclasses.replace(get_preset("quick"), compton="yes")
