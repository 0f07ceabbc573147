"""Shots on real detector sizes, preprocessed as files are (diffranet.training.native)."""

import numpy as np
import pytest

from diffranet.dataset.regimes import Regimes
from diffranet.detectors import FrameGeometry
from diffranet.inference.preprocess import preprocess
from diffranet.peaks import PeakFinderHitFinder
import diffranet.training.native as native
from diffranet.training.native import FAMILIES, LABEL_CYCLE, DetectorFamily, NativeRenderer, render_set

# a small detector of 100 um pixels: four of them per side fill less than one input pixel's 172 um
SMALL = DetectorFamily("small", (600, 640), 0.100, (70.0, 120.0), (1, 0, 0))
SMALL_CCD = DetectorFamily("small CCD", (560, 560), 0.090, (60.0, 90.0), (0, 0, 1))


@pytest.fixture(scope="module")
def renderer():
    return NativeRenderer(families=(SMALL, SMALL_CCD))


def test_families_are_real_detector_sizes():
    names = [f.name for f in FAMILIES]
    assert len(set(names)) == len(names)
    for family in FAMILIES:
        regimes = family.regimes()
        assert regimes.shape == family.shape and regimes.pixel_size_mm == family.pixel_size_mm
        assert regimes.distance_mm == family.distance_mm
        assert family.shape[0] * family.shape[1] > 512 * 512  # larger than the model input


def test_family_keeps_the_base_draws():
    base = Regimes(photons=(1e9, 1e10))
    assert SMALL.regimes(base).photons == (1e9, 1e10)


def test_a_shot_is_the_regime_shot_on_that_detector_preprocessed(renderer):
    image8, info = renderer.render(3, "test", 5, 3)
    assert image8.shape == (512, 512) and image8.dtype == np.uint8
    assert info["label"] == 3 and info["family"] in ("small", "small CCD")
    setup = info["setup"]
    assert tuple(setup["detector"]["shape"]) in ((600, 640), (560, 560))
    assert info["n_detectable_spots"] >= Regimes().labels.good_min  # the class holds on the real detector
    # the same shot, rendered again, preprocessed by hand: the same input
    family = next(f for f in renderer.families if f.name == info["family"])
    index = renderer.families.index(family)
    counts, shot, _ = renderer._renderers[index].render_counts(3, "test-native", 5, 3)
    det = shot.detector
    centre = tuple(x / det.pixel_size_mm for x in det.direct_beam_mm)
    geometry = FrameGeometry(det.pixel_size_mm, det.distance_mm, shot.wavelength_A, centre)
    expected = preprocess(counts, det.mask, geometry if info["geometry_given"] else None, beam_center_px=centre)
    np.testing.assert_array_equal(image8, expected)


def test_same_seed_same_image_other_index_other_image(renderer):
    a, _ = renderer.render(1, "train", 2, 2)
    b, _ = renderer.render(1, "train", 2, 2)
    c, _ = renderer.render(1, "train", 9, 2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_share_without_geometry():
    always = NativeRenderer(families=(SMALL,), no_geometry_share=1.0)
    never = NativeRenderer(families=(SMALL,), no_geometry_share=0.0)
    _, info_always = always.render(0, "test", 0, 1)
    _, info_never = never.render(0, "test", 0, 1)
    assert info_never["geometry_given"]
    # without geometry unless the beam is off the frame (binning needs it on the frame)
    centre = np.array(info_always["setup"]["detector"]["beam_center_mm"]) / SMALL.pixel_size_mm
    on_frame = 0 <= centre[0] < SMALL.shape[1] and 0 <= centre[1] < SMALL.shape[0]
    assert info_always["geometry_given"] == (not on_frame)


def test_strong_shots_show_spots_after_preprocessing(renderer):
    counter = PeakFinderHitFinder(min_peaks=10).fit(np.zeros((1, 512, 512), np.uint8), [0])
    strong = np.stack([renderer.render(4, "test", i, 4)[0] for i in range(3)])
    blank = np.stack([renderer.render(4, "test", i, 0)[0] for i in range(3)])
    assert counter.count_peaks(strong).min() >= 10
    # blanks carry only the detector's flaws (hot pixels, cosmic-ray tracks): few peaks, if any
    assert np.median(counter.count_peaks(blank)) < 10


@pytest.mark.parametrize("kwargs, match", [
    ({"families": ()}, "families"),
    ({"families": ("PILATUS",)}, "families"),
    ({"no_geometry_share": 1.5}, "no_geometry_share"),
])
def test_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NativeRenderer(**kwargs)


def test_bad_label(renderer):
    with pytest.raises(ValueError, match="label"):
        renderer.render(0, "test", 0, 5)


def test_render_set_writes_whole_files_and_resumes(tmp_path, renderer, monkeypatch):
    monkeypatch.setattr(native, "CHUNK", 2)
    X, y, info = render_set(tmp_path, "val", 3, 5, renderer=renderer, progress=False)
    assert X.shape == (3, 512, 512) and y.tolist() == list(LABEL_CYCLE[:3])
    assert [i["label"] for i in info] == y.tolist()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["val-000000.npz", "val-000002.npz"]
    # a second run reads the files: rendering is not called again
    monkeypatch.setattr(native, "_render_chunk", lambda job: pytest.fail("rendered again"))
    X2, y2, _ = render_set(tmp_path, "val", 3, 5, renderer=renderer, progress=False)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)


def test_render_set_resumes_a_missing_file(tmp_path, renderer, monkeypatch):
    monkeypatch.setattr(native, "CHUNK", 2)
    X, _, _ = render_set(tmp_path, "val", 4, 5, renderer=renderer, progress=False)
    (tmp_path / "val-000002.npz").unlink()
    X2, _, _ = render_set(tmp_path, "val", 4, 5, renderer=renderer, progress=False)
    np.testing.assert_array_equal(X, X2)

