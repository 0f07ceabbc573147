"""The presets' physical choices: background scatterers and detector PSF."""

import json

import numpy as np
import pytest

from diffranet import Detector, PixelArrayResponse
from diffranet.dataset import get_preset, training_preset
from diffranet.dataset.presets import PRESETS, Preset, ShotDraws
from diffranet.detectors import load_detector
from diffranet.simulation.structure_factors import StructureFactors


def test_paper_preset_background_and_psf():
    preset = get_preset("diffranet")
    background = preset.background
    assert background.compton and background.diffuse is None
    assert [m.name for m in background.materials] == ["water", "air"]
    response = preset.response.to_dict()
    assert (response["psf"], response["psf_fwhm_um"]) == ("fiber", 46.0)


def test_compton_adds_a_few_percent_growing_with_angle():
    # the numbers docs/background.md gives for the paper's geometry
    preset = get_preset("diffranet")
    det, beam = preset.detector, preset.beam
    with_compton = preset.background.render(det, beam).astype(np.float64)
    without = preset.background.with_(compton=False).render(det, beam).astype(np.float64)
    assert with_compton.sum() / without.sum() == pytest.approx(1.044, abs=0.002)
    ratio = with_compton / without
    two_theta = det.two_theta_deg()
    # S(s) = 0 forward, so the share grows with the scattering angle
    assert ratio.min() >= 1.0 and ratio[two_theta < 3].max() < 1.005
    assert 1.06 < ratio[two_theta > 30].mean() < 1.09


def test_compton_must_be_bool():
    with pytest.raises(ValueError, match="compton"):
        get_preset("quick").background.with_(compton="yes")


class TestPresetOfValues:
    """A preset holds the simulator's value objects and derives the rest from them."""

    def test_json_round_trip(self):
        for preset in PRESETS.values():
            again = Preset.from_dict(json.loads(preset.to_json()))
            assert again == preset and again.to_json() == preset.to_json()

    def test_label_rule_follows_the_response(self):
        preset = get_preset("diffranet")
        sharper = preset.with_(response=preset.response.with_(psf_fwhm_um=80.0, readout_rms_photons=1.0))
        rule = sharper.label_rule()
        assert (rule.psf, rule.psf_fwhm_um, rule.readout_rms_photons) == ("fiber", 80.0, 1.0)
        assert rule.pixel_size_mm == preset.detector.pixel_size_mm
        counter = preset.with_(response=PixelArrayResponse())
        rule = counter.label_rule()
        assert (rule.psf, rule.calibration_rms, rule.readout_rms_photons) == (None, 0.0, 0.0)
        assert counter.input_offset_adu == 0.0 and preset.input_offset_adu == 10.0

    def test_flat_parameters_of_older_sets_are_read(self):
        flat = {"name": "diffranet", "shape": [512, 512], "distance_mm": 80.0, "water_um": 10.0,
                "k_sigma": 5.0, "class_fractions": [0.164, 0.259, 0.266, 0.194, 0.117]}
        assert Preset.from_dict(flat) == get_preset("diffranet")
        older = Preset.from_dict({**flat, "distance_mm": 100.0, "psf_fwhm_um": 80.0, "weak_min": 5})
        assert older.detector.distance_mm == 100.0 and older.label_rule().psf_fwhm_um == 80.0
        assert older.labels.weak_min == 5
        with pytest.raises(ValueError, match="unknown parameters"):
            Preset.from_dict({**flat, "bogus": 1})

    def test_a_user_detector_round_trips_with_its_gaps(self):
        spec = load_detector("pilatus6m")
        preset = training_preset(spec)
        text = preset.to_json()
        assert len(text) < 20_000  # the gap mask is packed, not listed pixel by pixel
        again = Preset.from_dict(json.loads(text))
        np.testing.assert_array_equal(again.detector.mask, spec.gap_mask())
        assert again == preset and again.frame_geometry() == spec.geometry()

    @pytest.mark.parametrize("changes, match", [
        (dict(detector="paper"), "detector must be a Detector"),
        (dict(response=None), "response must be a CCDResponse or PixelArrayResponse"),
        (dict(structure_factors="4rvy"), "structure_factors"),
        (dict(oversample=0), "oversample"),
        (dict(name=""), "name"),
    ])
    def test_parts_are_checked(self, changes, match):
        with pytest.raises(ValueError, match=match):
            get_preset("quick").with_(**changes)

    def test_crystal_carries_no_table(self):
        quick = get_preset("quick")
        table = StructureFactors(np.array([[1, 0, 0]]), np.array([10.0]), cell=quick.crystal.cell)
        with pytest.raises(ValueError, match="structure factors"):
            quick.with_(crystal=quick.crystal.with_(structure_factors=table))

    def test_shot_draws_are_checked(self):
        with pytest.raises(ValueError, match="class_fractions"):
            ShotDraws(class_fractions=(0.5, 0.5, 0.5, 0.0, 0.0))
        with pytest.raises(ValueError, match="fluence_rms"):
            ShotDraws(fluence_rms=0.0)
        with pytest.raises(ValueError, match="strong_target_max"):
            get_preset("quick").with_(shots=ShotDraws(strong_target_max=10))


class TestDetectorMask:
    def test_packed_mask_round_trips_and_old_lists_are_read(self):
        mask = np.zeros((7, 9), bool)
        mask[2, 3] = mask[6, 8] = mask[0, 0] = True
        det = Detector((7, 9), mask=mask)
        np.testing.assert_array_equal(Detector.from_dict(det.to_dict()).mask, mask)
        listed = {**det.to_dict(), "mask": np.argwhere(mask).tolist()}
        np.testing.assert_array_equal(Detector.from_dict(listed).mask, mask)

    def test_damaged_mask_is_a_value_error(self):
        data = Detector((4, 4), mask=np.eye(4, dtype=bool)).to_dict()
        with pytest.raises(ValueError, match="mask"):
            Detector.from_dict({**data, "mask": {**data["mask"], "data": "not base64!"}})
        with pytest.raises(ValueError, match="mask"):
            Detector.from_dict({**data, "shape": [40, 40]})
