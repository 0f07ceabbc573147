import dataclasses

import pytest

from diffranet.inference import PAPER_PREPROCESSING, FrameGeometry, Preprocessing


class TestFrameGeometry:
    def test_round_trip_and_frozen(self):
        g = FrameGeometry(0.172, 351.0, 0.9686, (1231.5, 1263.5))
        assert FrameGeometry.from_dict(g.to_dict()) == g
        with pytest.raises(dataclasses.FrozenInstanceError):
            g.distance_mm = 1.0

    def test_default_center_is_frame_center(self):
        assert FrameGeometry(0.1, 100.0, 1.0).center_px((10, 20)) == (10.0, 5.0)

    def test_resolution(self):
        # 2theta = 45 deg at radius = distance: d = lambda / (2 sin 22.5 deg)
        assert FrameGeometry(0.1, 100.0, 1.0).resolution_A(100.0) == pytest.approx(1.0 / (2 * 0.3826834))

    @pytest.mark.parametrize("kwargs, match", [
        ({"pixel_size_mm": 0.0}, "pixel_size_mm"),
        ({"distance_mm": -1.0}, "distance_mm"),
        ({"wavelength_A": float("nan")}, "wavelength_A"),
        ({"beam_center_px": (1.0,)}, "beam_center_px"),
    ])
    def test_bad_values(self, kwargs, match):
        params = {"pixel_size_mm": 0.1, "distance_mm": 100.0, "wavelength_A": 1.0, **kwargs}
        with pytest.raises(ValueError, match=match):
            FrameGeometry(**params)

    def test_unknown_key(self):
        with pytest.raises(ValueError, match="unknown parameters"):
            FrameGeometry.from_dict({"pixel_size_mm": 0.1, "distance_mm": 1.0, "wavelength_A": 1.0, "energy": 1})


class TestPreprocessing:
    def test_paper_defaults(self):
        p = PAPER_PREPROCESSING
        assert p.shape == (512, 512) and p.adc_offset == 10.0
        assert p.geometry == FrameGeometry(0.172, 80.0, 1.5, (256.0, 256.0))

    def test_round_trip(self):
        p = Preprocessing(shape=(64, 32), geometry=FrameGeometry(0.5, 60.0, 1.0), adc_offset=0.0, bin_factor=2)
        assert Preprocessing.from_dict(p.to_dict()) == p
        assert p.geometry.beam_center_px == (16.0, 32.0)

    @pytest.mark.parametrize("kwargs, match", [
        ({"shape": (0, 5)}, "shape"),
        ({"transform": "log"}, "transform"),
        ({"adc_offset": -1.0}, "adc_offset"),
        ({"bin_factor": 0}, "bin_factor"),
        ({"geometry": "paper"}, "geometry"),
    ])
    def test_bad_values(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            Preprocessing(**kwargs)
