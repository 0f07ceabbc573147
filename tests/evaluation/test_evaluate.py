"""diffranet.evaluation.evaluate and the report: numbers checked by hand, files checked by reading them."""

import json

import numpy as np
import pytest
from PIL import Image

from diffranet.classes import CLASS_NAMES
from diffranet.evaluation import LabelledData, evaluate, evaluate_model, load_labelled_data
from diffranet.inference import Preprocessing, SavedModel, VerdictRule

# 10 frames: true classes and the classes the model will predict (see FirstPixelClassifier)
Y_TRUE = np.array([0, 0, 1, 1, 2, 2, 2, 3, 4, 4])
Y_PRED = np.array([0, 1, 1, 2, 2, 2, 3, 3, 3, 4])
SPOTS = np.array([0, 0, 0, 0, 12, 40, 60, 150, 1200, 2500])


def hand_data():
    images = np.full((10, 8, 8), 20, dtype=np.uint8)
    images[:, 0, 0] = Y_PRED
    return LabelledData("classes", Y_TRUE, images=images, quantity=SPOTS, names=tuple(f"f{i}" for i in range(10)),
                        source="hand-made", settings={"weak_min": 10, "good_min": 100, "strong_min": 1000})


def read_png(path):
    with Image.open(path) as image:
        image.load()
        return np.asarray(image)


class TestEvaluateModel:
    def test_hand_computed_numbers(self, first_pixel_model):
        e = evaluate_model(first_pixel_model, hand_data(), name="m")
        x = e.metrics
        assert e.task == "classes" and x["labels"] == list(CLASS_NAMES)
        assert x["accuracy"] == 0.6 and x["hitmiss_accuracy"] == 0.9
        assert x["confusion_matrix"] == [[1, 1, 0, 0, 0], [0, 1, 1, 0, 0], [0, 0, 2, 1, 0], [0, 0, 0, 1, 0],
                                         [0, 0, 0, 1, 1]]
        assert x["hitmiss_confusion_matrix"] == [[3, 1], [0, 6]]
        assert x["per_class"]["good"] == {"precision": pytest.approx(1 / 3), "recall": 1.0, "support": 1}
        assert x["per_class"]["weak"]["precision"] == pytest.approx(2 / 3)
        assert x["operating_point"]["precision"] == pytest.approx(6 / 7) and x["operating_point"]["fpr"] == 0.25
        assert x["misclassified"] == ["f1", "f3", "f6", "f8"]
        # hit score = summed weak/good/strong probability: 3/4 for predicted hits, 3/8 for predicted misses
        assert e.hit_score.tolist() == np.where(Y_PRED >= 2, 0.75, 0.375).tolist()
        # 24 (hit, miss) pairs: 18 won, the miss scored 3/4 ties with the 6 hits: (18 + 6 / 2) / 24
        assert x["roc"]["auc"] == 0.875
        q = x["accuracy_by_quantity"]
        # bins with frames only: 0 | ... 12 | 40, 60 | 150 | 1200, 2500 fall into log-spaced bins
        assert sum(q["count"]) == 10 and q["bins"][0] == [0, 0] and q["count"][0] == 4
        assert q["accuracy"][0] == 0.5 and q["hitmiss_accuracy"][0] == 0.75

    def test_the_models_verdict_rule_decides(self, first_pixel_model):
        # predicted misses have hit score 3/8: a hit from a threshold of 0.3, labelled by their best hit class
        # (weak: the first of three at 1/8); predicted hits (3/4) are misses from a threshold of 0.8
        lenient = evaluate_model(first_pixel_model.with_rule(VerdictRule(hit_threshold=0.3)), hand_data())
        assert lenient.hit_pred.all() and lenient.y_pred.tolist() == np.where(Y_PRED >= 2, Y_PRED, 2).tolist()
        assert lenient.metrics["hitmiss_confusion_matrix"] == [[0, 4], [0, 6]]
        strict = evaluate_model(first_pixel_model.with_rule(VerdictRule(hit_threshold=0.8)), hand_data())
        assert not strict.hit_pred.any() and strict.y_pred.tolist() == np.where(Y_PRED < 2, Y_PRED, 0).tolist()
        # the scores of the curves do not depend on the rule
        assert lenient.hit_score.tolist() == strict.hit_score.tolist()

    def test_evaluate_scores_every_model_by_the_rule_given(self, tmp_path, first_pixel_model):
        result = evaluate([first_pixel_model], hand_data(), tmp_path / "r", progress=False,
                          rule=VerdictRule(hit_threshold=0.3))
        assert result["evaluations"][0].hit_pred.all()

    def test_hitmiss_model_on_five_classes(self):
        class Predicted:  # hit/miss model that says hit for pixel (0, 0) >= 2
            classes_ = np.arange(2)

            def predict_proba(self, X):
                hit = X[:, 0, 0] >= 2
                return np.stack([1.0 - hit, hit * 1.0], axis=1)

        model = SavedModel(Predicted(), ("miss", "hit"), Preprocessing(shape=(8, 8)))
        x = evaluate_model(model, hand_data()).metrics
        assert x["task"] == "hitmiss" and x["labels"] == ["miss", "hit"]
        assert x["confusion_matrix"] == [[3, 1], [0, 6]] and x["accuracy"] == x["hitmiss_accuracy"] == 0.9

    def test_shape_mismatch(self, first_pixel_model):
        data = LabelledData("classes", Y_TRUE, images=np.zeros((10, 9, 9), np.uint8), names=("x",) * 10)
        with pytest.raises(ValueError, match="expects 8 x 8"):
            evaluate_model(first_pixel_model, data)

    def test_unknown_classes(self, first_pixel_model):
        model = SavedModel(first_pixel_model.estimator, ("a", "b", "c", "d", "e"), Preprocessing(shape=(8, 8)))
        with pytest.raises(ValueError, match="hit / miss cannot be scored"):
            evaluate_model(model, hand_data())


class TestReport:
    def test_files_agree_with_the_numbers(self, tmp_path, first_pixel_model):
        second = SavedModel(first_pixel_model.estimator, CLASS_NAMES, Preprocessing(shape=(8, 8)))
        result = evaluate([first_pixel_model, second], hand_data(), tmp_path / "report", names=["a", "a"],
                          progress=False)
        document = json.loads((tmp_path / "report" / "metrics.json").read_text())
        matrix = np.array(document["confusion_matrix"])
        assert document["accuracy"] == 0.6 == np.trace(matrix) / matrix.sum()
        assert matrix.sum(axis=1).tolist() == np.bincount(Y_TRUE).tolist()  # rows = true class
        assert document["hitmiss_accuracy"] == 0.9
        assert [m["name"] for m in document["models"]] == ["a", "a (2)"]
        assert document["data"]["class_counts"] == dict(zip(CLASS_NAMES, [2, 2, 3, 1, 2]))
        assert document["models"][0]["per_class"]["blank"]["recall"] == 0.5
        html = result["report"].read_text()
        assert html.count("data:image/png;base64,") == len(result["figures"])
        assert "a (2)" in html and "60.00 %" in html
        for path in result["figures"]:
            pixels = read_png(path)
            assert pixels.ndim == 3 and min(pixels.shape[:2]) > 100 and pixels.std() > 0
        names = {p.name for p in result["figures"]}
        assert {"roc.png", "precision-recall.png", "accuracy-by-spots.png", "confusion-a.png",
                "misclassified-a.png"} <= names

    def test_undefined_numbers_are_null(self, tmp_path, first_pixel_model):
        data = hand_data()
        only_hits = LabelledData("classes", Y_TRUE[4:], images=data.images[4:], names=data.names[4:])
        evaluate([first_pixel_model], only_hits, tmp_path, progress=False)
        document = json.loads((tmp_path / "metrics.json").read_text())
        assert document["roc"]["auc"] is None and document["per_class"]["blank"]["recall"] is None
        assert not (tmp_path / "roc.png").exists()

    def test_needs_models(self, tmp_path):
        with pytest.raises(ValueError, match="non-empty"):
            evaluate([], hand_data(), tmp_path)


def write_frames(folder):
    """Four raw 64 x 64 frames: two with a bright spot, two flat; one flat frame has a masked hot pixel."""
    rng = np.random.default_rng(0)
    rows = []
    for k, (spot, hot, label) in enumerate([(True, False, "hit"), (True, False, "miss"), (False, True, "miss"),
                                            (False, False, "weak")]):
        frame = rng.poisson(1.0, (64, 64)).astype(np.float32)
        mask = np.zeros((64, 64), bool)
        if spot:
            frame[30:32, 30:32] += 5000
        if hot:
            frame[10, 10], mask[10, 10] = 60000, True
        np.savez_compressed(folder / f"frame{k}.npz", data=frame, mask=mask)
        rows.append(f"frame{k}.npz,{label}")
    (folder / "labels.csv").write_text("file,label\n" + "\n".join(rows) + "\n")
    return folder / "labels.csv"


class TestRealFrames:
    def test_csv_frames_through_preprocessing(self, tmp_path, hit_finder_model):
        data = load_labelled_data(write_frames(tmp_path))
        assert data.kind == "hitmiss" and data.labels.tolist() == [1, 0, 0, 1]
        e = evaluate_model(hit_finder_model, data)
        # frames 0 and 1 have a spot (hits), 2 has only a masked hot pixel, 3 is flat: predicted hit, hit, miss, miss
        assert e.hit_pred.tolist() == [True, True, False, False]
        assert e.images.shape == (4, 16, 16) and e.metrics["task"] == "hitmiss"
        assert e.metrics["confusion_matrix"] == [[1, 1], [1, 1]] and e.metrics["hitmiss_accuracy"] == 0.5
        assert e.metrics["misclassified"] == ["frame1.npz", "frame3.npz"]

    def test_geometry_columns(self, tmp_path):
        csv = write_frames(tmp_path)
        lines = csv.read_text().splitlines()
        csv.write_text("\n".join([lines[0] + ",pixel_size_mm,distance_mm,wavelength_A"]
                                 + [lines[1] + ",0.172,200,1.0"] + [line + ",,," for line in lines[2:]]) + "\n")
        data = load_labelled_data(csv)
        assert data.frames[0].geometry.distance_mm == 200 and data.frames[1].geometry is None

    @pytest.mark.parametrize("text, match", [("name,label\na.npz,hit\n", "columns file and label"),
                                             ("file,label\na.npz,maybe\n", "line 2: label must be hit or miss"),
                                             ("file,label\n", "no frames"),
                                             ("file,label,distance_mm,pixel_size_mm,wavelength_A\na.npz,hit,x,1,1\n",
                                              "distance_mm must be a number")])
    def test_bad_csv(self, tmp_path, text, match):
        (tmp_path / "l.csv").write_text(text)
        with pytest.raises(ValueError, match=match):
            load_labelled_data(tmp_path / "l.csv")

    def test_missing_data(self, tmp_path):
        with pytest.raises(FileNotFoundError):
            load_labelled_data(tmp_path / "nothing")
        (tmp_path / "x.txt").write_text("")
        with pytest.raises(ValueError, match=".csv"):
            load_labelled_data(tmp_path / "x.txt")


class TestTrainingLog:
    def test_deepfreak_style_log_is_reported_and_drawn(self, tmp_path, first_pixel_model):
        class Logged(type(first_pixel_model.estimator)):
            loss_curve_ = [1.2, 0.7, 0.4]
            validation_scores_ = [0.5, 0.7, 0.8]

        model = SavedModel(Logged(), CLASS_NAMES, Preprocessing(shape=(8, 8)))
        result = evaluate([model], hand_data(), tmp_path, names=["cnn"], progress=False)
        document = json.loads((tmp_path / "metrics.json").read_text())
        # the training-history schema, plus validation_accuracy (the same list) as earlier reports had it
        assert document["training_log"] == {"loss": [1.2, 0.7, 0.4], "val_accuracy": [0.5, 0.7, 0.8],
                                            "epoch_seconds": [], "validation_accuracy": [0.5, 0.7, 0.8]}
        assert read_png(tmp_path / "training-cnn.png").std() > 0
        assert tmp_path / "training-cnn.png" in result["figures"]
