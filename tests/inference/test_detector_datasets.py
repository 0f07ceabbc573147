"""Training sets rendered on the shipped detectors (small cropped windows: the full detectors are expensive)."""

import dataclasses
import json

import numpy as np
import pytest

from diffranet.cli import main
from diffranet.dataset import load_arrays, training_preset
from diffranet.dataset.presets import get_preset
from diffranet.detectors import load_detector
from diffranet.inference.training_input import preset_preprocessing


def small_window(name):
    """A 48 x 48 window around the beam, moved close enough to the sample to catch spots."""
    spec = load_detector(name).cropped((48, 48))
    return dataclasses.replace(spec, distance_mm=48 * spec.pixel_size_mm * 0.6)


@pytest.mark.parametrize("name", ["paper", "pilatus6m", "eiger16m"])
def test_renders_labelled_images_on_the_detector(name, tmp_path):
    spec = small_window(name)
    preset = training_preset(spec, "quick")
    detector = preset.detector
    assert detector.shape == (48, 48) and detector.distance_mm == spec.distance_mm
    bx, by = spec.beam_center_px
    assert detector.beam_center_mm == pytest.approx((bx * spec.pixel_size_mm, by * spec.pixel_size_mm))
    path = tmp_path / "data.toml"
    path.write_text("\n".join(f"{k} = {json.dumps(list(v) if isinstance(v, tuple) else v)}"
                              for k, v in spec.to_dict().items() if v is not None) + "\n")
    assert main(["dataset", "--out", str(tmp_path / "set"), "--preset", "quick", "--detector", str(path),
                 "--n-train", "10", "--n-val", "0", "--n-test", "0", "--workers", "1", "--quiet"]) == 0
    images, labels = load_arrays(tmp_path / "set", "train")
    assert images.shape == (10, 48, 48) and images.dtype == np.uint8
    assert set(labels.tolist()) <= {0, 1, 2, 3, 4} and len(set(labels.tolist())) >= 3
    gaps = spec.gap_mask()
    if spec.kind == "pixel_array":
        assert gaps.any()                                    # the beam centre sits between modules
        assert np.all(images[:, gaps] == 0)                  # dead pixels count nothing
        assert images[:, ~gaps].max() > 0
    else:
        assert not gaps.any() and np.median(images) >= 3      # the CCD offset: sqrt(10 ADU) = 3
    # a model trained on this set expects this detector's geometry
    recorded = json.loads((tmp_path / "set" / "dataset.json").read_text())["preset"]
    expected = preset_preprocessing(recorded)
    assert expected.shape == (48, 48) and expected.geometry == spec.geometry()
    assert expected.adc_offset == (0.0 if spec.kind == "pixel_array" else 10.0)


def test_shipped_names_give_full_detectors():
    for name, shape in (("pilatus6m", (2527, 2463)), ("eiger16m", (4371, 4150))):
        preset = training_preset(load_detector(name))
        assert preset.shape == shape and preset.response.__class__.__name__ == "PixelArrayResponse"
        assert preset.label_rule().readout_rms_photons == 0.0
        assert preset.labels == get_preset("diffranet").labels       # labelled by the same rule
