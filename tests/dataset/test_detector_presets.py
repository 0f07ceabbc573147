import pytest

from diffranet import paper_ccd as public_paper_ccd
from diffranet.dataset import PRESETS, paper_ccd, training_preset
from diffranet.detectors import load_detector


class TestPaperCCD:
    def test_is_the_paper_preset_response(self):
        assert public_paper_ccd is paper_ccd
        assert paper_ccd() == PRESETS["diffranet"].response
        assert paper_ccd(flicker_rms=1.0, calibration_seed=3) == PRESETS["diffranet"].response.with_(
            flicker_rms=1.0, calibration_seed=3)


class TestTrainingPreset:
    def test_pixel_array_counts_photons(self):
        spec = load_detector("pilatus6m").cropped((32, 40))
        preset = training_preset(spec, "quick")
        assert preset.name == "quick@pilatus6m-32x40" and preset.shape == (32, 40)
        assert preset.label_rule().readout_rms_photons == 0.0 and preset.input_offset_adu == 0.0
        assert preset.response.saturation == spec.saturation
        assert preset.response.to_dict()["model"] == "pixel_array"

    def test_ccd_keeps_the_base_response(self):
        preset = training_preset(load_detector("paper"), "quick")
        assert preset.response.with_(saturation=1.0) == PRESETS["quick"].response.with_(saturation=1.0)
        assert preset.response.saturation == load_detector("paper").saturation
        # the same thresholds and noise, on this detector's pixels
        assert preset.label_rule().to_dict() == {**PRESETS["quick"].label_rule().to_dict(), "pixel_size_mm": 0.172}

    @pytest.mark.parametrize("detector", ["pilatus6m", None, {"kind": "ccd"}])
    def test_not_a_detector(self, detector):
        with pytest.raises(ValueError, match="DetectorSpec"):
            training_preset(detector)
