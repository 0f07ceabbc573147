"""Training regimes: drawn set-ups are valid value objects that span the ranges; shots are labelled by physics."""

import json
import math

import numpy as np
import pytest

from diffranet.dataset.labels import LabelRule
import diffranet.dataset.regimes as regimes_module
from diffranet.dataset.regimes import (
    CELLS,
    PREPROCESSING_OFFSET_ADU,
    DETECTOR_KINDS,
    ICE_RING_D_A,
    RegimeRenderer,
    Regimes,
    ShotSetup,
    _ice_rings,
    _radius_px,
)
from diffranet.simulation.response import CCDResponse, PixelArrayResponse, to_8bit


@pytest.fixture(scope="module")
def setups():
    regimes = Regimes()
    return [regimes.sample(np.random.default_rng(seed)) for seed in range(200)]


class TestSample:
    def test_same_generator_state_same_setup(self):
        a = Regimes().sample(np.random.default_rng(7)).to_dict()
        b = Regimes().sample(np.random.default_rng(7)).to_dict()
        assert a == b

    def test_setups_are_validated_value_objects(self, setups):
        for setup in setups[:20]:
            assert isinstance(setup, ShotSetup)
            assert isinstance(setup.rule, LabelRule)
            assert isinstance(setup.response, (CCDResponse, PixelArrayResponse))
            assert setup.beam().wavelength_A == setup.wavelength_A
            with pytest.raises(AttributeError):
                setup.photons = 1.0

    def test_the_distribution_spans_the_regimes(self, setups):
        kinds = {s.detector_kind for s in setups}
        assert kinds == set(DETECTOR_KINDS)
        assert any(s.background is None for s in setups) and any(s.background is not None for s in setups)
        assert any(s.ice_ring_photons > 0 for s in setups)
        assert len({s.cell_index for s in setups}) == len(CELLS)
        wavelengths = [s.wavelength_A for s in setups]
        assert min(wavelengths) < 0.8 and max(wavelengths) > 1.8
        photons = np.log10([s.photons for s in setups])
        assert photons.min() < 9 and photons.max() > 12
        off = [s for s in setups if not all(0 <= x <= 512 * 0.172 for x in s.detector.direct_beam_mm)]
        assert 0.03 < len(off) / len(setups) < 0.2  # some beams miss the detector
        assert any(s.detector.mask is not None for s in setups)
        assert any(s.hot_pixels for s in setups) and any(s.cosmic_rays for s in setups)

    def test_detector_weights_leave_kinds_out(self):
        regimes = Regimes(detector_weights=(1.0, 0.0, 1.0))
        kinds = {regimes.sample(np.random.default_rng(seed)).detector_kind for seed in range(60)}
        assert kinds == {"photon_counting", "ccd"}

    def test_label_rule_follows_the_detector(self, setups):
        for s in setups:
            if s.detector_kind == "photon_counting":
                assert s.rule.readout_rms_photons == 0 and s.rule.psf is None
            elif s.detector_kind == "ccd":
                assert s.rule.readout_rms_photons >= 1 and s.rule.psf == "fiber"
                assert s.rule.psf_fwhm_um == s.response.psf_fwhm_um

    def test_to_dict_is_json_and_fits_the_table(self, setups):
        assert max(len(json.dumps(s.to_dict(), sort_keys=True)) for s in setups) < 2048

    @pytest.mark.parametrize("changes", [dict(max_attempts=0), dict(class_fractions=(0.5, 0.5)), dict(cells=()),
                                         dict(cells=((10.0, 10.0, 10.0, 90.0, 90.0),)),
                                         dict(cells=((10.0, -1.0, 10.0, 90.0, 90.0, 90.0),)),
                                         dict(detector_weights=(1.0, 0.0)), dict(detector_weights=(0.0, 0.0, 0.0)),
                                         dict(photons=(1e10, 1e8)), dict(distance_mm=(0.0, 10.0))])
    def test_bad_regimes(self, changes):
        with pytest.raises(ValueError):
            Regimes(**changes)

    def test_json_round_trip(self):
        regimes = Regimes(photons=(1e9, 1e12))
        assert Regimes.from_dict(json.loads(regimes.to_json())) == regimes


class TestIceRings:
    def test_rings_at_their_bragg_radius(self):
        setup = Regimes().sample(np.random.default_rng(3))
        setup = ShotSetup(**{**setup.__dict__, "ice_ring_photons": 100.0})
        radius = _radius_px(setup.detector)
        image = _ice_rings(setup, radius)
        det = setup.detector
        r = det.distance_mm * math.tan(2 * math.asin(setup.wavelength_A / (2 * ICE_RING_D_A[0]))) / det.pixel_size_mm
        on = np.abs(radius - r) < 0.5
        if on.any():
            assert image[on].mean() > 50
        assert image[np.abs(radius - r) > 40].max() < image.max()


class TestRender:
    @pytest.mark.parametrize("index", [0, 1])
    def test_blank_shots_have_no_beam(self, index):
        image8, row = RegimeRenderer(Regimes()).render(0, "test", index, 0)
        assert image8.dtype == np.uint8 and image8.shape == (512, 512)
        assert row["photons"] == 0 and row["n_detectable_spots"] == 0 and row["label"] == 0

    def test_crystal_shots_reach_their_class_and_repeat(self):
        regimes = Regimes(cells=(CELLS[1], CELLS[2]))  # small cells: quick structure-factor tables
        renderer = RegimeRenderer(regimes)
        rule = LabelRule(weak_min=regimes.labels.weak_min, good_min=regimes.labels.good_min,
                         strong_min=regimes.labels.strong_min)
        for index, label in ((3, 2), (4, 3)):
            image8, row = renderer.render(11, "test", index, label)
            assert rule.classify(int(row["n_detectable_spots"])) == label
            setup = json.loads(row["setup"].item())
            assert setup["crystal"]["cell"] in [list(c) for c in regimes.cells] and row["volume_scale"] > 0
            again, _ = RegimeRenderer(regimes).render(11, "test", index, label)
            assert np.array_equal(image8, again)

    def test_a_set_up_over_the_render_budget_is_drawn_again(self, monkeypatch):
        regimes = Regimes(cells=(CELLS[1],))
        _, first = RegimeRenderer(regimes).render(11, "test", 3, 2)
        refused = []

        def once_too_costly(simulator):
            refused.append(simulator.detector.shape)
            return len(refused) > 1

        monkeypatch.setattr(regimes_module, "_within_budget", once_too_costly)
        _, row = RegimeRenderer(regimes).render(11, "test", 3, 2)
        assert len(refused) >= 2 and row["attempt"] > first["attempt"]

    def test_raw_counts_are_the_image_before_masking_and_8_bit(self):
        renderer = RegimeRenderer(Regimes(cells=(CELLS[1],)))
        counts, setup, row = renderer.render_counts(2, "test", 1, 1)
        image8, row8 = renderer.render(2, "test", 1, 1)
        assert counts.dtype == np.float32 and counts.shape == image8.shape
        assert row["setup"] == row8["setup"]
        if setup.detector.mask is None:
            np.testing.assert_array_equal(to_8bit(counts + np.float32(PREPROCESSING_OFFSET_ADU)), image8)
        else:
            keep = ~setup.detector.mask
            np.testing.assert_array_equal(to_8bit(counts + np.float32(PREPROCESSING_OFFSET_ADU))[keep], image8[keep])

    def test_no_crystal_shot_has_no_spots_but_a_beam(self):
        image8, row = RegimeRenderer(Regimes()).render(0, "test", 5, 1)
        assert row["photons"] > 0 and row["n_detectable_spots"] == 0 and row["volume_scale"] == 0


class TestGenerator:
    def test_dataset_of_regimes(self, tmp_path):
        from diffranet.dataset import generate_dataset
        from diffranet.dataset.loader import load_arrays
        from diffranet.inference.training_input import training_input

        regimes = Regimes(cells=(CELLS[2],))  # lysozyme-like: every class within reach
        generate_dataset(tmp_path, preset=regimes, n_train=5, n_val=0, n_test=0, seed=3, workers=1, progress=False)
        X, y, table = load_arrays(tmp_path, "train", metadata=True)
        assert X.shape == (5, 512, 512) and y.tolist() == table["label"].tolist()
        for image, row in zip(X, table):
            again, _ = RegimeRenderer(regimes).render(3, "train", int(row["index"]), int(row["label"]))
            assert np.array_equal(image, again)
            assert json.loads(row["setup"].item())["detector_kind"] in DETECTOR_KINDS
        preprocessing, summary = training_input(tmp_path, X.shape[1:], y)
        assert preprocessing.geometry.distance_mm == 80.0 and preprocessing.shape == (512, 512)
        assert summary["preset"]["kind"] == "regimes"


class TestForADetector:
    def test_regimes_around_one_detector(self):
        from diffranet.dataset import training_preset
        from diffranet.detectors import load_detector

        spec = load_detector("pilatus6m")
        regimes = training_preset(spec, "regimes")
        assert isinstance(regimes, Regimes) and regimes.name == "regimes@" + spec.name
        assert regimes.detector_weights == (1.0, 0.0, 0.0)  # a photon counter
        assert regimes.distance_mm[0] < spec.distance_mm < regimes.distance_mm[1]
        setup = regimes.sample(np.random.default_rng(0))
        assert setup.detector_kind == "photon_counting" and setup.detector.shape == (512, 512)
