"""`diffranet demo` end to end at a reduced size: render, train, classify, report."""

import json

import numpy as np
from PIL import Image

from diffranet.classes import CLASS_NAMES
from diffranet.cli import main
from diffranet.dataset import load_arrays
from diffranet.inference import load_model


def test_demo_renders_trains_and_reports(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--preset", "quick", "--size", "25", "--workers", "1",
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    report = tmp_path / "report"
    assert f"report: {report / 'index.html'}" in out

    # the rendered test set: every class, labels consistent with their label quantity
    data_dir = tmp_path / "data" / "quick-seed0-n25"
    X, y, table = load_arrays(data_dir, "test", metadata=True)
    assert X.shape == (25, 64, 64) and set(y.tolist()) == set(range(5))
    assert (table["n_significant_spots"][y <= 1] == 0).all() and (table["n_significant_spots"][y >= 2] > 0).all()
    assert load_arrays(data_dir, "train")[0].shape == (50, 64, 64)

    # metrics.json agrees with the confusion matrix and with the saved model's own predictions
    document = json.loads((report / "metrics.json").read_text())
    matrix = np.array(document["confusion_matrix"])
    assert matrix.shape == (5, 5) and matrix.sum(axis=1).tolist() == np.bincount(y, minlength=5).tolist()
    assert document["accuracy"] == np.trace(matrix) / 25
    model = load_model(tmp_path / "model.dfm")
    predicted, hit_pred = model.rule.decide(model.predict_proba(X), model.class_names)  # classify's verdicts
    assert (predicted == y).mean() == document["accuracy"]
    hit = y >= 2
    assert document["hitmiss_accuracy"] == (hit == hit_pred).mean()
    assert document["hitmiss_accuracy"] > 0.6  # the model has learnt something (chance: ~0.5)
    # one summary line per model shown (here only the model trained here: no shipped model for 64 x 64)
    assert f"model.dfm: accuracy {100 * document['accuracy']:.1f} %" in out
    assert "default:" not in out
    assert sum(document["data"]["class_counts"].values()) == 25

    # the report: the PNGs decode, the gallery shows two shots per class, the page embeds them
    for name in ("gallery.png", "roc.png", "precision-recall.png", "accuracy-by-spots.png", "confusion-model.dfm.png"):
        with Image.open(report / name) as image:
            pixels = np.asarray(image.convert("L"))
        assert min(pixels.shape) > 100 and pixels.std() > 5
    html = (report / "index.html").read_text()
    assert html.count("data:image/png;base64,") >= 5 and "grey scale" in html
    assert all(name in html for name in CLASS_NAMES)


def test_demo_rejects_a_bad_size(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--preset", "quick", "--size", "2"]) == 2
    assert "size" in capsys.readouterr().err


BLOCK_TORCH = """
import importlib.abc, sys
class _NoTorch(importlib.abc.MetaPathFinder):  # as on an install without torch
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("torch", "onnx"):
            raise ImportError(f"No module named {name!r}")
sys.meta_path.insert(0, _NoTorch())
from diffranet.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_demo_without_torch_shows_the_shipped_model(tmp_path):
    """The README's first command installs no torch: the demo still shows the shipped DeepFreak model."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", BLOCK_TORCH, "demo", "--out", str(tmp_path), "--size", "5",
                             "--workers", "1", "--quiet"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "default: accuracy" in result.stdout and "model.dfm: accuracy" in result.stdout
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert "default" in json.dumps(metrics)
