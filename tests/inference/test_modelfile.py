import io
import json
import os
import pickle
import zipfile

import joblib
import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from diffranet.classes import CLASS_NAMES, HITMISS_NAMES
from diffranet.features import GLCMExtractor
from diffranet.inference import (
    PAPER_PREPROCESSING, ModelFileError, SavedModel, VerdictRule, load_model, preprocess, save_model, verdict,
)
from inference_helpers import SMALL, spotty_images


class Boom:
    """Unpickling this runs code: it writes a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def write_archive(path, meta, member, payload):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("diffranet-model.json", json.dumps(meta))
        archive.writestr(member, payload)


def skops_meta(**changes):
    return {"format": "diffranet-model", "format_version": 1, "kind": "skops", "class_names": list(CLASS_NAMES),
            "preprocessing": PAPER_PREPROCESSING.to_dict(), **changes}


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(5)
    return np.concatenate([spotty_images(6, rng, 0), spotty_images(6, rng, 60)])


class TestRoundTrip:
    def test_pipeline_predicts_the_same(self, small_model_file, images, tmp_path):
        model = load_model(small_model_file)
        assert model.class_names == CLASS_NAMES and model.preprocessing == SMALL
        assert model.metadata["training"] == {"n_images": 40}
        assert model.metadata["diffranet_version"] and model.metadata["kind"] == "skops"
        proba = model.predict_proba(images)
        np.testing.assert_array_equal(proba[:, [1, 4]], model.estimator.predict_proba(images))
        assert np.all(proba[:, [0, 2, 3]] == 0)
        # the model learnt the difference: misses first, hits after
        assert [v["hit"] for v in model.verdicts(proba)] == [False] * 6 + [True] * 6
        again = load_model(save_model(model.estimator, tmp_path / "again.dfm", class_names=CLASS_NAMES,
                                      preprocessing=SMALL))
        np.testing.assert_array_equal(again.predict_proba(images), proba)

    def test_svm_without_probabilities_gives_one_hot(self, images, tmp_path):
        y = np.repeat([0, 1], 6)
        svm = make_pipeline(GLCMExtractor(distances=[1], angles=[0]), StandardScaler(), SVC()).fit(images, y)
        model = load_model(save_model(svm, tmp_path / "svm.dfm", class_names=HITMISS_NAMES, preprocessing=SMALL))
        proba = model.predict_proba(images)
        np.testing.assert_array_equal(proba[np.arange(12), svm.predict(images)], 1.0)
        assert proba.sum() == 12

    def test_string_classes(self, images, tmp_path):
        y = np.repeat(["miss", "hit"], 6)
        rf = RandomForestClassifier(n_estimators=5, random_state=0).fit(images.reshape(12, -1), y)
        with pytest.raises(ValueError, match="not among class_names"):
            save_model(rf, tmp_path / "x.dfm", class_names=("no", "yes"))
        model = SavedModel(rf, HITMISS_NAMES, SMALL)
        assert model._columns.tolist() == [1, 0]  # classes_ sorted: "hit", "miss"

    def test_classify_raw_frames(self, small_model_file):
        model = load_model(small_model_file)
        rng = np.random.default_rng(0)
        frames = rng.poisson(1.0, (2, 256, 256)).astype(np.float32)
        frames[1][rng.integers(0, 256, 300), rng.integers(0, 256, 300)] = 5000.0
        verdicts = model.classify(frames, masks=np.zeros((256, 256), bool))
        assert [v["hit"] for v in verdicts] == [False, True]
        assert verdicts[1]["label"] == "strong" and len(verdicts[1]["proba"]) == 5
        expected = model.predict_proba(np.stack([preprocess(f, preprocessing=SMALL) for f in frames]))
        np.testing.assert_array_equal([v["proba"] for v in verdicts], expected)

    def test_predict_proba_checks_input(self, small_model_file):
        model = load_model(small_model_file)
        with pytest.raises(ValueError, match="uint8 of shape"):
            model.predict_proba(np.zeros((1, 512, 512), np.uint8))
        with pytest.raises(ValueError, match="uint8 of shape"):
            model.predict_proba(np.zeros((1, 64, 64), np.float32))

    def test_verdict(self):
        # a hit from the threshold on: a veto keeps the frame the model cannot decide
        assert verdict([0.5, 0.5], HITMISS_NAMES) == {"label": "hit", "hit": True, "proba": [0.5, 0.5]}
        assert verdict([0.51, 0.49], HITMISS_NAMES)["hit"] is False
        assert verdict([0.1, 0.9], HITMISS_NAMES)["hit"] is True


class TestVerdictRule:
    """The hit side first (the hit classes' summed probability against the threshold), then its best class."""

    def test_the_side_decides_before_the_class(self):
        proba = [[0.45, 0.0, 0.3, 0.25, 0.0],   # blank most probable, hit classes 0.55
                 [0.2, 0.35, 0.3, 0.15, 0.0],   # hit classes 0.45
                 [0.0, 0.0, 0.1, 0.2, 0.7]]
        labels, hits = VerdictRule().decide(proba, CLASS_NAMES)
        assert [CLASS_NAMES[k] for k in labels] == ["weak", "no-crystal", "strong"]
        assert hits.tolist() == [True, False, True]
        labels, hits = VerdictRule(hit_threshold=0.4).decide(proba, CLASS_NAMES)
        assert [CLASS_NAMES[k] for k in labels] == ["weak", "weak", "strong"] and hits.all()
        labels, hits = VerdictRule(hit_threshold=0.9).decide(proba, CLASS_NAMES)
        assert [CLASS_NAMES[k] for k in labels] == ["blank", "no-crystal", "strong"]
        assert hits.tolist() == [False, False, True]

    def test_verdicts_of_a_saved_model_follow_its_rule(self, small_model_file):
        model = load_model(small_model_file)
        proba = np.array([[0.2, 0.35, 0.3, 0.15, 0.0]])
        assert model.rule == VerdictRule() and model.verdicts(proba)[0]["hit"] is False
        lenient = model.with_rule(VerdictRule(hit_threshold=0.4, abstain=0.5))
        assert lenient.verdicts(proba)[0] == {"label": "uncertain", "hit": True, "proba": proba[0].tolist(),
                                              "uncertain": True}
        assert model.rule == VerdictRule()  # a copy: the loaded model keeps its own

    def test_classes_all_on_one_side_go_by_the_most_probable(self):
        labels, hits = VerdictRule().decide([[0.3, 0.7]], ("blank", "no-crystal"))
        assert labels.tolist() == [1] and not hits.any()

    @pytest.mark.parametrize("bad", [dict(hit_threshold=0.0), dict(hit_threshold=1.0), dict(hit_threshold=np.nan),
                                     dict(hit_threshold=True), dict(hit_threshold="0.5"), dict(abstain=0.0),
                                     dict(abstain=1.5), dict(abstain=np.nan)])
    def test_bad_values(self, bad):
        with pytest.raises(ValueError):
            VerdictRule(**bad)

    def test_a_saved_model_takes_only_a_rule(self, small_model_file):
        with pytest.raises(ValueError, match="VerdictRule"):
            load_model(small_model_file).with_rule(0.4)

    def test_unfitted_or_bad_names(self, tmp_path):
        with pytest.raises(ValueError, match="not fitted"):
            save_model(RandomForestClassifier(), tmp_path / "x.dfm", class_names=CLASS_NAMES)
        with pytest.raises(ValueError, match="two distinct"):
            save_model(RandomForestClassifier(), tmp_path / "x.dfm", class_names=("a", "a"))
        assert not list(tmp_path.iterdir())


class TestDeepFreak:
    def test_rebuilt_from_config_and_weights(self, tmp_path):
        pytest.importorskip("torch")
        from diffranet import DeepFreakClassifier

        rng = np.random.default_rng(0)
        X = rng.integers(0, 255, (8, 32, 32), dtype=np.uint8)
        y = np.arange(8) % 2
        clf = DeepFreakClassifier(depth=18, width=4, input_size=32, head_pool_size=None, epochs=1, batch_size=4,
                                  random_state=0).fit(X, y)
        path = save_model(clf, tmp_path / "df.dfm", class_names=HITMISS_NAMES,
                          preprocessing=SMALL.__class__(shape=(32, 32)))
        with zipfile.ZipFile(path) as archive:
            assert sorted(archive.namelist()) == ["diffranet-model.json", "network.onnx", "weights.safetensors"]
        model = load_model(path)
        assert type(model.estimator) is DeepFreakClassifier
        np.testing.assert_allclose(model.predict_proba(X), clf.predict_proba(X), rtol=1e-6, atol=1e-7)
        assert model.metadata["deepfreak"]["params"]["depth"] == 18


class TestRefused:
    def test_skops_referencing_os_system(self, tmp_path):
        import skops.io as sio

        path = tmp_path / "evil.dfm"
        write_archive(path, skops_meta(), "estimator.skops", sio.dumps(os.system))
        with pytest.raises(ModelFileError, match=r"types that diffranet does not load.*posix\.system|nt\.system"):
            load_model(path)

    def test_pickle_inside_the_archive(self, tmp_path):
        marker = tmp_path / "ran"
        path = tmp_path / "evil.dfm"
        write_archive(path, skops_meta(), "estimator.skops", pickle.dumps(Boom(str(marker))))
        with pytest.raises(ModelFileError, match="damaged estimator data"):
            load_model(path)
        write_archive(path, skops_meta(kind="deepfreak", deepfreak={"params": {}, "fitted": {}}),
                      "weights.safetensors", pickle.dumps(Boom(str(marker))))
        with pytest.raises(ModelFileError, match="damaged"):
            load_model(path)
        assert not marker.exists()

    def test_torch_checkpoint_is_not_a_model_file(self, tmp_path):
        # a torch .pt file is a zip holding data.pkl
        marker = tmp_path / "ran"
        path = tmp_path / "model.pt"
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("archive/data.pkl", pickle.dumps(Boom(str(marker))))
        with pytest.raises(ModelFileError, match="not a diffranet model file"):
            load_model(path, trust=True)
        assert not marker.exists()

    def test_bare_pickle_needs_trust(self, tmp_path):
        marker = tmp_path / "ran"
        path = tmp_path / "old.joblib"
        joblib.dump(Boom(str(marker)), path)
        with pytest.raises(ModelFileError, match="pickle / joblib file, which can run arbitrary code"):
            load_model(path)
        assert not marker.exists()

    def test_old_joblib_model_with_trust(self, small_model_file, images, tmp_path):
        estimator = load_model(small_model_file).estimator
        path = tmp_path / "old.joblib"
        joblib.dump(estimator, path)
        model = load_model(path, trust=True)
        assert model.class_names == CLASS_NAMES and model.metadata["trusted"]
        assert model.preprocessing == SMALL.__class__(shape=(64, 64))     # the paper's geometry at 64 x 64
        np.testing.assert_array_equal(model.predict_proba(images), load_model(small_model_file).predict_proba(images))

    @pytest.mark.parametrize("meta, match", [
        ({"format": "other"}, "does not describe"),
        (skops_meta(format_version=99), "format version 99"),
        (skops_meta(kind="onnx"), "'kind' must be one of"),
        (skops_meta(preprocessing={"shape": [1]}), "'preprocessing': shape must be"),
    ])
    def test_bad_description(self, tmp_path, meta, match):
        path = tmp_path / "bad.dfm"
        write_archive(path, meta, "estimator.skops", b"")
        with pytest.raises(ModelFileError, match=match):
            load_model(path)

    def test_not_a_model(self, tmp_path):
        (tmp_path / "text.dfm").write_text("hello")
        with pytest.raises(ModelFileError, match="not a diffranet model file"):
            load_model(tmp_path / "text.dfm")
        with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
            archive.writestr("x", b"")
        with pytest.raises(ModelFileError, match="zip archive without"):
            load_model(tmp_path / "other.zip")
        with pytest.raises(FileNotFoundError):
            load_model(tmp_path / "missing.dfm")

    def test_default_model_missing(self, monkeypatch, tmp_path):
        # an installation without the shipped model file
        from diffranet.inference import modelfile

        monkeypatch.chdir(tmp_path)
        monkeypatch.setattr(modelfile, "default_model_path", lambda: None)
        with pytest.raises(ModelFileError, match="no default model is shipped"):
            load_model("default")
