import numpy as np
import pytest

from diffranet.detectors import SHIPPED, DetectorSpec, load_detector


class TestShipped:
    def test_names(self):
        assert SHIPPED == ("eiger16m", "paper", "pilatus6m")

    @pytest.mark.parametrize("name, shape, modules", [
        ("paper", (512, 512), 0), ("pilatus6m", (2527, 2463), 60), ("eiger16m", (4371, 4150), 32),
    ])
    def test_load(self, name, shape, modules):
        from scipy import ndimage

        spec = load_detector(name)
        assert spec.shape == shape and spec.name == name
        gaps = spec.gap_mask()
        assert gaps.shape == shape
        # the gaps cut the detector into its modules
        assert (ndimage.label(~gaps)[1] if modules else 0) == modules
        g = spec.geometry()
        assert g.beam_center_px == spec.beam_center_px or spec.beam_center_px is None

    def test_from_file_and_round_trip(self, tmp_path):
        path = tmp_path / "mine.toml"
        path.write_text('kind = "pixel_array"\nshape = [100, 80]\npixel_size_mm = 0.075\ndistance_mm = 150.0\n'
                        'wavelength_A = 1.0\nbeam_center_px = [40.5, 50.0]\n')
        spec = load_detector(path)
        assert spec.name == "mine" and spec.geometry().beam_center_px == (40.5, 50.0)
        assert DetectorSpec.from_dict(spec.to_dict()) == spec

    def test_cropped_keeps_the_gaps(self):
        full = load_detector("pilatus6m")
        crop = full.cropped((48, 40))
        top, left = crop.origin_px
        np.testing.assert_array_equal(crop.gap_mask(), full.gap_mask()[top:top + 48, left:left + 40])
        bx, by = full.beam_center_px
        assert crop.beam_center_px == (bx - left, by - top)

    @pytest.mark.parametrize("text, match", [
        ("kind = 'ccd'\nshape = [4, 4]\n", "missing"),
        ("kind = 'cmos'\nshape = [4, 4]\npixel_size_mm = 1\ndistance_mm = 1\nwavelength_A = 1\n", "kind"),
        ("kind = 'ccd'\nshape = [4, 4]\npixel_size_mm = -1\ndistance_mm = 1\nwavelength_A = 1\n", "pixel_size_mm"),
        ("kind = 'ccd'\nshape = [4, 4]\npixel_size_mm = 1\ndistance_mm = 1\nwavelength_A = 1\ncolour = 1\n",
         "unknown"),
        ("kind = [", "not valid TOML"),
    ])
    def test_bad_files(self, tmp_path, text, match):
        path = tmp_path / "bad.toml"
        path.write_text(text)
        with pytest.raises(ValueError, match=match):
            load_detector(path)

    def test_missing(self):
        with pytest.raises(FileNotFoundError, match="shipped detectors: eiger16m, paper, pilatus6m"):
            load_detector("pilatus2m")


def test_inference_keeps_the_old_names():
    from diffranet.detectors import FrameGeometry
    from diffranet.inference import FrameGeometry as inference_geometry
    from diffranet.inference import detector_files

    assert detector_files.load_detector is load_detector and detector_files.DetectorSpec is DetectorSpec
    assert inference_geometry is FrameGeometry
