import pytest
from hyperopt import pyll

from diffranet.search import PAPER_BEST, TABLE8, ClassicSpace, default_configuration, hyperopt_space
from diffranet.search.spaces import SVM_C, SVM_GAMMA, non_empty_subsets


class TestTable8:
    def test_svm_values(self):
        assert SVM_C == (1.0, 2**-5, 2**-3, 2**-1, 2, 2**3, 2**5, 2**7, 2**9, 2**11, 2**13, 2**15)
        assert SVM_GAMMA == (0.0, 2**-15, 2**-13, 2**-11, 2**-9, 2**-7, 2**-5, 2**-3, 2**-1, 2, 2**3)

    def test_rf_and_extractor_values(self):
        assert TABLE8.rf_n_estimators == (10, 100, 1000)
        assert TABLE8.rf_max_depth == (None, 2, 4, 6, 8, 10, 20)
        assert TABLE8.lbp_points == (4, 8, 16, 24) and TABLE8.lbp_radius == (0, 1, 2, 3)
        assert TABLE8.bovw_clusters == (10, 25, 50, 100, 250, 500, 1000, 5000)

    def test_glcm_combinations(self):
        # 2**5 - 1 non-empty sets of distances, 2**4 - 1 of angles
        assert len(non_empty_subsets(TABLE8.glcm_distances)) == 31
        assert len(non_empty_subsets(TABLE8.glcm_angles)) == 15

    def test_samples_are_configurations(self):
        expression = hyperopt_space(TABLE8)
        for seed in range(20):
            config = pyll.stochastic.sample(expression, rng=__import__("numpy").random.default_rng(seed))
            assert config["extractor"]["name"] in ("glcm", "lbp", "bovw")
            assert config["model"]["name"] in ("svm", "rf")
            if config["extractor"]["name"] == "glcm":
                assert len(config["extractor"]["distances"]) >= 1


class TestClassicSpace:
    def test_empty_values(self):
        with pytest.raises(ValueError, match="glcm_angles must list at least one value"):
            ClassicSpace(glcm_angles=())

    def test_unknown_extractor(self):
        with pytest.raises(ValueError, match="extractors must be among"):
            ClassicSpace(extractors=("hog",))


class TestDefaultConfiguration:
    def test_paper_best_pairs(self):
        assert default_configuration("glcm", "rf") == PAPER_BEST[("glcm", "rf")]
        assert default_configuration("glcm", "svm") == PAPER_BEST[("glcm", "svm")]

    def test_lbp_with_rf(self):
        config = default_configuration("lbp", "rf")
        assert config["extractor"] == {"name": "lbp", "n_points": 24, "radius": 3}
        assert config["model"]["name"] == "rf"

    def test_unknown_features(self):
        with pytest.raises(ValueError, match="features"):
            default_configuration("hog", "rf")
