"""`diffranet evaluate` on a class-folder set with a saved model file, and its errors."""

import json

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import confusion_matrix
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from diffranet.classes import CLASS_NAMES
from diffranet.cli import main
from diffranet.dataset.loader import load_split
from diffranet.features import GLCMExtractor
from diffranet.inference import Preprocessing, save_model


@pytest.fixture(scope="module")
def folder_set(tmp_path_factory, write_synthetic_dataset):
    out = tmp_path_factory.mktemp("folders")
    write_synthetic_dataset(out, n_per_class=10, size=48, seed=3, splits=("train", "test"))
    X, y = load_split(out, "train")
    pipeline = make_pipeline(GLCMExtractor(distances=[1, 2], angles=[0, 90]), StandardScaler(),
                             RandomForestClassifier(n_estimators=20, random_state=0)).fit(X, y)
    model = save_model(pipeline, out / "glcm-rf.dfm", class_names=CLASS_NAMES, preprocessing=Preprocessing(shape=(48, 48)))
    return out, model, pipeline


def test_evaluate_command(folder_set, tmp_path, capsys):
    data, model, pipeline = folder_set
    assert main(["evaluate", "--model", str(model), "--model", str(model), "--data", str(data), "--out",
                 str(tmp_path / "report"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "glcm-rf.dfm: 50 frames" in out and "glcm-rf.dfm (2): 50 frames" in out
    assert f"report: {tmp_path / 'report' / 'index.html'}" in out
    X, y = load_split(data, "test")
    expected = confusion_matrix(y, pipeline.predict(X), labels=range(5))
    document = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert document["confusion_matrix"] == expected.tolist()
    assert document["accuracy"] == np.trace(expected) / 50
    assert [m["confusion_matrix"] for m in document["models"]] == [expected.tolist()] * 2
    assert "accuracy_by_quantity" not in document  # class folders carry no label quantity
    assert document["models"][0]["metadata"]["class_names"] == list(CLASS_NAMES)


def test_evaluate_command_errors(folder_set, tmp_path, capsys):
    data, model, _ = folder_set
    assert main(["evaluate", "--model", str(tmp_path / "missing.dfm"), "--data", str(data), "--out",
                 str(tmp_path)]) == 2
    assert "missing.dfm" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(model), "--data", str(data), "--split", "val", "--out",
                 str(tmp_path)]) == 2
    assert "val" in capsys.readouterr().err
    pickle = tmp_path / "old.joblib"
    import joblib

    joblib.dump(folder_set[2], pickle)
    assert main(["evaluate", "--model", str(pickle), "--data", str(data), "--out", str(tmp_path / "r")]) == 2
    assert "pickle" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(pickle), "--trust", "--data", str(data), "--out", str(tmp_path / "r"),
                 "--quiet"]) == 0
