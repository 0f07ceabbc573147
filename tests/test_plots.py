"""diffranet.plots: the one grey-scale rule, the gallery (per-panel or shared scale, empty panels), figures saved."""

import numpy as np
import pytest

from diffranet import plots


def read_png(path):
    from matplotlib.image import imread

    return np.asarray(imread(path))


class TestGreyWindow:
    def test_percentiles_of_all_pixels(self):
        ramp = np.arange(1000, dtype=np.int64).reshape(10, 100) % 256
        assert plots.grey_window([ramp], 0, 100) == (0, 255)
        # 0.5th and 99.9th percentiles of 0..199 (both images together)
        low, high = np.arange(100), np.arange(100, 200)
        assert plots.grey_window([low, high]) == (int(np.floor(np.percentile(np.r_[low, high], 0.5))),
                                                  int(np.ceil(np.percentile(np.r_[low, high], 99.9))))

    def test_flat_image_still_has_a_range(self):
        assert plots.grey_window([np.full((4, 4), 7)]) == (7, 8)


class TestGallery:
    IMAGES = [np.full((200, 200), 10, np.uint8), None, (np.arange(40000).reshape(200, 200) % 251).astype(np.uint8)]

    def test_per_panel_scale_is_stated_and_empty_panels_are_left_blank(self, tmp_path):
        path, scaling = plots.gallery_figure(self.IMAGES, ["flat", "", "ramp"], tmp_path / "g.png", "three",
                                             columns=3, panel_px=200)
        assert "per panel" in scaling and "maximum of" not in scaling
        assert read_png(path).std() > 0

    def test_shared_scale_states_one_window(self, tmp_path):
        _, scaling = plots.gallery_figure(self.IMAGES, ["flat", "", "ramp"], tmp_path / "g.png", "three",
                                          shared_scale=True, panel_px=100)
        vmin, vmax = plots.grey_window([self.IMAGES[0], self.IMAGES[2]])
        assert f"8-bit values {vmin} (black) to {vmax} (white)" in scaling
        assert "maximum of 2 x 2 detector pixels" in scaling  # 200 pixels shown on 100

    def test_bad_input(self, tmp_path):
        with pytest.raises(ValueError, match="at least one image"):
            plots.gallery_figure([None], [""], tmp_path / "g.png", "none")
        with pytest.raises(ValueError, match="titles"):
            plots.gallery_figure(self.IMAGES, ["one"], tmp_path / "g.png", "short")


def test_display_image_keeps_one_pixel_spots():
    image = np.zeros((5, 5), np.uint8)
    image[4, 4] = 200
    small, factor = plots.display_image(image, 2)
    assert factor == 3 and small.shape == (2, 2) and small[1, 1] == 200 and small.sum() == 200


def test_confusion_matrix_figure(tmp_path):
    path = plots.confusion_matrix_figure([[3, 1], [0, 4]], ("miss", "hit"), tmp_path / "cm.png",
                                         precision=[1.0, 0.8], recall=[0.75, float("nan")])
    assert path == tmp_path / "cm.png" and read_png(path).std() > 0
