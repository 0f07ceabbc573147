import json

import joblib
import numpy as np
import pytest

from diffranet.search import ClassicSpace, search_classic

# A tiny space: 3 x 3 GLCM combinations or 2 LBP settings, with RF or SVM.
TINY = ClassicSpace(
    extractors=("glcm", "lbp"),
    glcm_distances=(1, 2),
    glcm_angles=(0, 90),
    lbp_points=(4, 8),
    lbp_radius=(1,),
    rf_n_estimators=(10,),
    svm_c=(1.0, 32.0),
)


def _configs(trials):
    return [t["result"]["config"] for t in trials.trials]


class TestSearchClassic:
    def test_runs_and_saves_best(self, tiny_split, tmp_path):
        result = search_classic(*tiny_split, max_evals=6, out_dir=tmp_path, space=TINY, progress=False)
        assert len(result.trials.trials) == 6
        accuracies = [t["result"]["val_accuracy"] for t in result.trials.trials]
        assert result.best_val_accuracy == max(accuracies)
        # the refitted pipeline reproduces the best validation accuracy
        X_val, y_val = tiny_split[2], tiny_split[3]
        assert result.model.score(X_val, y_val) == pytest.approx(result.best_val_accuracy)
        saved = joblib.load(tmp_path / "best_model.joblib")
        np.testing.assert_array_equal(saved.predict(X_val), result.model.predict(X_val))
        info = json.loads((tmp_path / "best_model.joblib.json").read_text())
        assert info["config"] == result.best_config
        # 4 extractor settings at most: repeated ones come from the cache
        assert result.n_features_computed <= len({json.dumps(c["extractor"]) for c in _configs(result.trials)})

    def test_resume_continues_like_an_uninterrupted_search(self, tiny_split, tmp_path):
        full = search_classic(*tiny_split, max_evals=5, out_dir=tmp_path / "full", space=TINY, progress=False)
        search_classic(*tiny_split, max_evals=3, out_dir=tmp_path / "split", space=TINY, progress=False)
        resumed = search_classic(
            *tiny_split, max_evals=5, out_dir=tmp_path / "split", space=TINY, resume=True, progress=False
        )
        assert _configs(resumed.trials) == _configs(full.trials)
        # features of the first three evaluations were read back from disk
        assert resumed.n_features_computed < len(resumed.trials.trials)

    def test_existing_trials_need_resume(self, tiny_split, tmp_path):
        search_classic(*tiny_split, max_evals=1, out_dir=tmp_path, space=TINY, progress=False)
        with pytest.raises(FileExistsError, match="resume"):
            search_classic(*tiny_split, max_evals=2, out_dir=tmp_path, space=TINY, progress=False)

    def test_resume_with_other_space(self, tiny_split, tmp_path):
        search_classic(*tiny_split, max_evals=1, out_dir=tmp_path, space=TINY, progress=False)
        with pytest.raises(ValueError, match="another space"):
            search_classic(*tiny_split, max_evals=2, out_dir=tmp_path, resume=True, progress=False)

    def test_resume_without_saved_search(self, tiny_split, tmp_path):
        with pytest.raises(FileNotFoundError, match="no saved search"):
            search_classic(*tiny_split, max_evals=1, out_dir=tmp_path, space=TINY, resume=True, progress=False)

    def test_failed_bovw_evaluations_are_recorded(self, tiny_split, tmp_path):
        # the tiny images hold far fewer distinct SIFT descriptors than 5000 visual words:
        # every BoVW vocabulary fails to fit and is recorded as a failed trial
        space = ClassicSpace(extractors=("glcm", "bovw"), glcm_distances=(1,), glcm_angles=(0,), rf_n_estimators=(10,),
                             bovw_clusters=(5000,))
        result = search_classic(*tiny_split, max_evals=6, out_dir=tmp_path, space=space, progress=False)
        statuses = {t["result"]["status"] for t in result.trials.trials}
        assert statuses == {"ok", "fail"}
        assert result.best_config["extractor"]["name"] == "glcm"

    def test_bad_max_evals(self, tiny_split, tmp_path):
        with pytest.raises(ValueError, match="max_evals"):
            search_classic(*tiny_split, max_evals=0, out_dir=tmp_path, space=TINY, progress=False)
