import numpy as np
import pytest

from diffranet.dataset import class_counts, class_sequence, shot_simulator
from diffranet.dataset.presets import CLASS_FRACTIONS_PAPER
from diffranet.dataset.shots import ShotRenderer, _pulse_photons, image_rng


class TestClassSequence:
    def test_prefix_independent_of_length(self):
        longer = class_sequence(500, CLASS_FRACTIONS_PAPER)
        assert np.array_equal(longer[:137], class_sequence(137, CLASS_FRACTIONS_PAPER))

    @pytest.mark.parametrize("n", [1, 7, 100, 2_400, 10_000, 12_600])
    def test_counts_within_one_of_shares(self, n):
        counts = class_counts(n, CLASS_FRACTIONS_PAPER)
        assert counts.sum() == n
        assert np.all(np.abs(counts - n * np.asarray(CLASS_FRACTIONS_PAPER)) < 1)

    def test_paper_split_counts(self):
        assert class_counts(10_000, CLASS_FRACTIONS_PAPER).tolist() == [1640, 2590, 2660, 1940, 1170]
        assert class_counts(2_400, CLASS_FRACTIONS_PAPER).tolist() == [394, 622, 638, 465, 281]
        assert class_counts(12_600, CLASS_FRACTIONS_PAPER).tolist() == [2067, 3263, 3352, 2444, 1474]


class TestDraws:
    def test_rng_depends_on_every_key(self):
        draws = {key: image_rng(*key).random() for key in
                 [(0, "train", 0, 0), (1, "train", 0, 0), (0, "val", 0, 0), (0, "train", 1, 0), (0, "train", 0, 1)]}
        assert len(set(draws.values())) == len(draws)

    def test_pulse_photons(self, quick):
        assert _pulse_photons(quick, 0.0, blank=True) <= 0 and _pulse_photons(quick, 0.999, blank=True) <= 0
        low, high = _pulse_photons(quick, 1e-9, blank=False), _pulse_photons(quick, 0.5, blank=False)
        assert 0 < low < 1e6 * quick.beam.photons and high > quick.beam.photons
        # the median of the positive part of N(m, m): m (1 + ndtri(ndtr(-1) + 0.5 (1 - ndtr(-1)))) = 1.2002 m
        assert high == pytest.approx(1.2002 * quick.beam.photons, rel=1e-3)


@pytest.fixture(scope="module")
def renderer(tiny):
    return ShotRenderer(tiny, None)


class TestShotRenderer:
    @pytest.mark.parametrize("label", [0, 1, 2, 3, 4])
    def test_label_reached_and_stored(self, renderer, label):
        image, row = renderer.render(3, "train", 11, label)
        assert image.dtype == np.uint8 and image.shape == renderer.preset.shape
        assert row["label"] == label
        if label >= 2:
            assert renderer.rule.classify(int(row["n_detectable_spots"])) == label
            assert row["n_detectable_spots"] == row["target_spots"]
            assert row["n_significant_spots"] > 0
            assert 0 < row["volume_scale"] <= renderer.preset.shots.max_volume_scale
        else:
            assert row["volume_scale"] == 0 and row["n_significant_spots"] == row["n_detectable_spots"] == 0
        assert (row["photons"] == 0) == (label == 0)

    @pytest.mark.parametrize("label", [2, 3, 4])
    def test_stored_counts_match_the_rule_on_the_remade_shot(self, renderer, label):
        """The counts stored from the unit image's thresholds equal the rule applied to the remade images."""
        _, row = renderer.render(5, "val", 3, label)
        sim = shot_simulator(renderer.preset, row)
        bragg, background = sim.bragg(seed=int(row["seed"])), sim.background_image()
        mask = renderer.mask
        assert renderer.rule.count(bragg, background, mask) == row["n_detectable_spots"]
        assert renderer.rule.count_significant(bragg, background, mask) == row["n_significant_spots"]

    def test_blank_is_detector_noise(self, renderer):
        image, row = renderer.render(3, "train", 4, 0)
        assert row["photons_drawn"] <= 0 and row["background_photons"] == 0
        assert abs(float(image.mean()) - np.sqrt(renderer.preset.input_offset_adu)) < 0.5

    @pytest.mark.parametrize("label", [0, 1, 3])
    def test_simulator_remakes_the_image(self, renderer, label):
        image, row = renderer.render(3, "val", 2, label)
        sim = shot_simulator(renderer.preset, row)
        assert np.array_equal(sim.simulate(seed=int(row["seed"])).image8, image)


@pytest.fixture(scope="module")
def paper():
    """The paper's preset itself: 512 x 512, 300 domains, protein structure factors."""
    from diffranet.dataset import get_preset

    preset = get_preset("diffranet")
    return ShotRenderer(preset, preset.load_structure_factors())


@pytest.mark.slow
class TestDiffranetPreset:
    @pytest.mark.parametrize("label", [0, 1, 2, 3, 4])
    def test_every_class(self, paper, label):
        image, row = paper.render(0, "test", label, label)
        assert image.shape == (512, 512) and row["label"] == label
        if label >= 2:
            low, high = paper.rule.class_range(label)
            assert low <= row["n_detectable_spots"] < high
            assert 0 < row["volume_scale"] <= 2.7e7

    def test_simulator_remakes_a_crystal_image(self, paper):
        image, row = paper.render(0, "test", 4, 4)
        sim = shot_simulator(paper.preset, row, structure_factors=paper.structure_factors)
        assert np.array_equal(sim.simulate(seed=int(row["seed"])).image8, image)
