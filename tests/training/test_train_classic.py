import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.svm import SVC

from diffranet.cli import main
from diffranet.features import GLCMExtractor
from diffranet.inference import load_model
from diffranet.search.spaces import PAPER_BEST
from diffranet.training import build_pipeline, split_scores


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, write_synthetic_dataset):
    out = tmp_path_factory.mktemp("data")
    write_synthetic_dataset(out, n_per_class=8, size=48, seed=0)
    return out


class TestBuildPipeline:
    def test_paper_glcm_svm(self):
        model = build_pipeline(PAPER_BEST[("glcm", "svm")])
        glcm, svm = model.steps[0][1], model.steps[-1][1]
        assert isinstance(glcm, GLCMExtractor) and glcm.distances == [1, 5, 8] and glcm.angles == [0, 90, 135]
        assert isinstance(svm, SVC) and svm.C == 32.0 and svm.gamma == 0.5
        assert svm.class_weight == {0: 0.25, 1: 0.25, 2: 0.166, 3: 0.166, 4: 0.166}

    def test_gamma_zero_is_auto(self):
        config = {"extractor": {"name": "lbp", "n_points": 8, "radius": 1},
                  "model": {"name": "svm", "C": 1.0, "gamma": 0.0, "class_weight": "balanced"}}
        assert build_pipeline(config).steps[-1][1].gamma == "auto"

    def test_paper_glcm_rf(self):
        rf = build_pipeline(PAPER_BEST[("glcm", "rf")], random_state=3).steps[-1][1]
        assert isinstance(rf, RandomForestClassifier)
        assert (rf.n_estimators, rf.max_depth, rf.max_features, rf.random_state) == (100, 20, "sqrt", 3)

    def test_unknown_extractor(self):
        with pytest.raises(ValueError, match="extractor name"):
            build_pipeline({"extractor": {"name": "hog"}, "model": PAPER_BEST[("glcm", "rf")]["model"]})


class TestEvaluate:
    def test_hit_miss_accuracy(self):
        class Fixed:
            def predict(self, X):
                return np.array([1, 0, 3, 2, 4, 2])

        # true: blank, no-crystal, weak, good, strong, no-crystal
        result = split_scores(Fixed(), None, np.array([0, 1, 2, 3, 4, 1]))
        assert result["accuracy"] == pytest.approx(1 / 6)  # only strong is right
        assert result["hit_miss_accuracy"] == pytest.approx(5 / 6)  # the last no-crystal -> weak
        assert result["confusion_matrix"][0] == [0, 1, 0, 0, 0]


class TestCli:
    def test_train(self, data_dir, tmp_path, capsys):
        out = tmp_path / "glcm-rf.dfm"
        assert main(["train", "--features", "glcm", "--model", "rf", "--data", str(data_dir), "--out", str(out)]) == 0
        info = json.loads(Path(f"{out}.json").read_text())
        assert info["config"] == PAPER_BEST[("glcm", "rf")]
        assert info["metrics"]["test"]["n_images"] == 40
        assert "test: accuracy" in capsys.readouterr().out
        model = load_model(out)
        assert model.predict_proba(np.zeros((1, 48, 48), np.uint8)).shape == (1, 5)
        assert model.preprocessing.shape == (48, 48)
        assert model.metadata["training"]["n_images"] == 40
        assert model.metadata["training"]["config"] == PAPER_BEST[("glcm", "rf")]

    def test_search_classic_and_resume(self, data_dir, tmp_path, capsys):
        argv = ["search", "classic", "--data", str(data_dir), "--max-evals", "2", "--out", str(tmp_path)]
        assert main(argv) == 0
        # a second run without --resume refuses to overwrite the trials
        assert main(argv) == 2
        assert "--resume" in capsys.readouterr().err
        assert main(argv[:5] + ["3"] + argv[6:] + ["--resume"]) == 0
        info = json.loads((tmp_path / "best_model.dfm.json").read_text())
        assert info["metrics"]["n_evals"] == 3
        assert "hit_miss_accuracy" in info["metrics"]["test"]
