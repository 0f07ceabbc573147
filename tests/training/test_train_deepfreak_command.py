"""``diffranet train --model deepfreak`` on a dataset made by ``diffranet dataset``: the model file it writes
is read by classify, evaluate and stream; checkpoints resume exactly; recipes and configs."""

import json

import numpy as np
import pytest

pytest.importorskip("torch")

from diffranet.cli import main  # noqa: E402
from diffranet.dataset.loader import ShardDataset, load_split  # noqa: E402
from diffranet.inference import load_model  # noqa: E402
from diffranet.models import DeepFreakClassifier  # noqa: E402
from diffranet.models.recipes import RECIPES, read_recipe  # noqa: E402

# A narrow network on the 64 px quick images: a few seconds per run.
TINY = {"depth": 18, "width": 4, "input_size": 32, "resize": "max", "head_pool_size": None, "batch_size": 8,
        "learning_rate": 0.02, "momentum": 0.9, "augment": "dihedral", "early_stopping": True,
        "n_iter_no_change": 5}


@pytest.fixture(scope="module")
def quick_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("quick") / "data"
    assert main(["dataset", "--preset", "quick", "--out", str(out), "--n-train", "40", "--n-val", "16",
                 "--n-test", "16", "--workers", "1", "--seed", "3", "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "tiny.json"
    path.write_text(json.dumps(TINY))
    return path


def _train(data, out, config, epochs, *extra):
    return main(["train", "--model", "deepfreak", "--data", str(data), "--out", str(out), "--config", str(config),
                 "--epochs", str(epochs), "--device", "cpu", "--threads", "1", "--quiet", *map(str, extra)])


@pytest.fixture(scope="module")
def trained(quick_data, tiny_config, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "deepfreak.dfm"
    assert _train(quick_data, out, tiny_config, 2, "--workers", "1") == 0
    return out


def _weights(path):
    model = load_model(path).estimator
    return {k: v.numpy().copy() for k, v in model.model_.state_dict().items()}


def test_model_file_records_network_history_and_scores(trained, quick_data):
    saved = load_model(trained)
    clf = saved.estimator
    assert isinstance(clf, DeepFreakClassifier)
    assert clf.width == 4 and clf.augment == "dihedral" and clf.image_shape_ == (64, 64)
    assert saved.preprocessing.shape == (64, 64) and saved.class_names[0] == "blank"
    training = saved.metadata["training"]
    assert training["n_images"] == 40 and training["preset"]["name"] == "quick"
    history = training["history"]
    assert len(history["loss"]) == len(history["val_accuracy"]) == len(history["epoch_seconds"]) == 2
    assert set(training["metrics"]) >= {"val", "test", "train_seconds", "train_images_per_s"}
    # the recorded test score is the one the loaded model gives
    X_test, y_test = load_split(quick_data, "test")
    assert training["metrics"]["test"]["accuracy"] == pytest.approx(np.mean(clf.predict(X_test) == y_test))


def _last_epoch_weights(model_path):
    import torch

    state = torch.load(f"{model_path}.checkpoint", weights_only=True)
    return {k: v.numpy().copy() for k, v in state["model"].items()}


def test_two_epochs_equal_one_plus_resumed_one(quick_data, tiny_config, trained, tmp_path):
    out = tmp_path / "resumed.dfm"
    assert _train(quick_data, out, tiny_config, 1, "--workers", "0") == 0
    one = _last_epoch_weights(out)
    assert _train(quick_data, out, tiny_config, 2, "--workers", "0") == 0  # resumes from out.checkpoint
    two = _last_epoch_weights(out)
    assert any(not np.array_equal(one[k], two[k]) for k in one)
    # two epochs in one run, with a DataLoader worker: the same last weights, the same kept (best) weights
    for resumed, reference in ((two, _last_epoch_weights(trained)), (_weights(out), _weights(trained))):
        assert resumed.keys() == reference.keys()
        for name, value in reference.items():
            np.testing.assert_array_equal(resumed[name], value, err_msg=name)
    history = load_model(out).metadata["training"]["history"]
    assert history["loss"] == load_model(trained).metadata["training"]["history"]["loss"]


def test_evaluate_reads_the_model(trained, quick_data, tmp_path):
    report = tmp_path / "report"
    assert main(["evaluate", "--model", str(trained), "--data", str(quick_data), "--out", str(report),
                 "--quiet"]) == 0
    metrics = json.loads((report / "metrics.json").read_text())
    assert (report / "index.html").is_file()
    X_test, y_test = load_split(quick_data, "test")
    model = load_model(trained)
    predicted, _ = model.rule.decide(model.predict_proba(X_test), model.class_names)  # the verdicts of classify
    assert metrics["n_images"] == 16
    assert metrics["accuracy"] == pytest.approx(np.mean(predicted == y_test))
    assert np.asarray(metrics["confusion_matrix"]).sum() == 16


def test_classify_reads_the_model(trained, quick_data, tmp_path, capsys):
    from diffranet.io import write_image

    X_test, _ = load_split(quick_data, "test")
    files = []
    for i in range(3):
        files.append(tmp_path / f"frame{i}.npz")
        write_image(files[-1], X_test[i].astype(np.float32))
    capsys.readouterr()
    assert main(["classify", "--model", str(trained), *map(str, files)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 3
    saved = load_model(trained)
    expected = saved.classify([X_test[i].astype(np.float32) for i in range(3)])
    assert [line["label"] for line in lines] == [v["label"] for v in expected]


def test_stream_reads_the_model(trained, tmp_path):
    from live.harness import free_address, start_process, stream_until_sigterm

    from diffranet.live.sender import send_simple

    rng = np.random.default_rng(0)
    frames = rng.poisson(3.0, (12, 64, 64)).astype("<u2")
    input_address, publish_address = free_address(), free_address()
    log = tmp_path / "verdicts.jsonl"
    sender = start_process(send_simple, input_address, frames, rate_hz=100, linger_s=5)
    returncode, stderr = stream_until_sigterm(
        ["--model", trained, "--input", input_address, "--publish", publish_address, "--quiet"], log, sender,
        n_lines=len(frames))
    assert returncode == 0, stderr
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(records) == len(frames)
    names = set(load_model(trained).class_names)
    assert all(r["label"] in names and "error" not in r for r in records)


def test_training_streams_the_shards(quick_data, tiny_config, tmp_path, monkeypatch):
    """The train split is read through the lazy ShardDataset, never loaded whole."""
    import diffranet.dataset.loader as loader

    def refuse(*args, **kwargs):
        raise AssertionError("the whole split was loaded into memory")

    monkeypatch.setattr(loader, "load_arrays", refuse)
    seen = []
    original = DeepFreakClassifier.fit

    def spy(self, X, y=None, **kwargs):
        seen.append((type(X).__name__, type(kwargs.get("validation")).__name__))
        return original(self, X, y, **kwargs)

    monkeypatch.setattr(DeepFreakClassifier, "fit", spy)
    from diffranet.training.deep import train_deepfreak

    model, metrics = train_deepfreak(quick_data, None, **TINY, epochs=1, n_threads=1,
                                     workers=1, device="cpu", random_state=0)
    assert seen == [("ShardDataset", "ShardDataset")]
    assert metrics["test"]["n_images"] == 16 and model.n_epochs_ == 1


def test_early_stopping_on_the_validation_split(quick_data):
    """With a learning rate too small to change a prediction, validation accuracy never improves:
    training stops after the patience."""
    train, val = ShardDataset(quick_data, "train", transform=np.asarray), ShardDataset(quick_data, "val",
                                                                                     transform=np.asarray)
    clf = DeepFreakClassifier(**{**TINY, "learning_rate": 1e-12, "n_iter_no_change": 2, "epochs": 10},
                              n_threads=1, random_state=0, device="cpu")
    clf.fit(train, validation=val)
    assert clf.n_epochs_ == 3 and len(clf.validation_scores_) == 3
    assert len(set(clf.validation_scores_)) == 1


def test_progress_bar_shows_loss_validation_and_rate(quick_data, tiny_config, tmp_path, capsys):
    assert main(["train", "--model", "deepfreak", "--data", str(quick_data), "--out", str(tmp_path / "m.dfm"),
                 "--config", str(tiny_config), "--epochs", "1", "--threads", "1", "--workers", "0"]) == 0
    err = capsys.readouterr().err
    assert "loss=" in err and "val_acc=" in err and "img/s" in err


class TestRecipes:
    def test_paper_recipe_is_tables_1_and_2(self):
        params = DeepFreakClassifier(**read_recipe("paper")).get_params()
        assert params["depth"] == 50 and params["stage_strides"] == (1, 2, 3, 3) and params["input_size"] == 512
        assert params["batch_size"] == 1 and params["epochs"] == 180 and params["learning_rate"] == 8.4474e-4

    def test_cpu_recipe_keeps_single_pixel_spots(self):
        params = read_recipe("cpu")
        assert params == RECIPES["cpu"] and params is not RECIPES["cpu"]
        clf = DeepFreakClassifier(**params)
        clf.pixel_range_ = (0.0, 255.0)
        image = np.zeros((1, 512, 512), np.uint8)
        image[0, 301, 77] = 200
        import torch

        x = clf._preprocess(image, torch, torch.device("cpu"))
        assert x.shape == (1, 1, 128, 128) and float(x.max()) == pytest.approx(200 / 255)

    def test_search_best_config_is_refitted(self, tmp_path):
        best = {"config": {"topology": 9, "learning_rate": 0.01, "momentum": 0.9, "weight_decay": 2e-5,
                           "batch_size": 16},
                "val_accuracy": 0.9, "base_params": {"depth": 18},
                "params": {"depth": 18, "width": 8, "stage_strides": [1, 2, 2, 2], "learning_rate": 0.01,
                           "batch_size": 16, "head_pool_size": 7}}
        path = tmp_path / "best_config.json"
        path.write_text(json.dumps(best))
        params = read_recipe(path)
        assert params == {**best["params"], "stage_strides": (1, 2, 2, 2)}

    def test_toml(self, tmp_path):
        path = tmp_path / "r.toml"
        path.write_text('depth = 34\nwidth = 8\nstage_strides = [1, 2, 3, 3]\nresize = "max"\n')
        assert read_recipe(path) == {"depth": 34, "width": 8, "stage_strides": (1, 2, 3, 3), "resize": "max"}

    @pytest.mark.parametrize("text, message", [('{"depht": 18}', "unknown"), ("[1, 2]", "table"),
                                               ("{not json", "cannot parse")])
    def test_bad_files(self, tmp_path, text, message):
        path = tmp_path / "bad.json"
        path.write_text(text)
        with pytest.raises(ValueError, match=message):
            read_recipe(path)

    def test_missing(self, tmp_path):
        with pytest.raises(FileNotFoundError):
            read_recipe(tmp_path / "nothing.json")

    def test_command_reports_a_bad_config(self, quick_data, tmp_path, capsys):
        assert main(["train", "--model", "deepfreak", "--data", str(quick_data), "--out", str(tmp_path / "m"),
                     "--config", str(tmp_path / "missing.json")]) == 2
        assert "diffranet train: error" in capsys.readouterr().err

    def test_classic_needs_features(self, quick_data, tmp_path, capsys):
        assert main(["train", "--model", "rf", "--data", str(quick_data), "--out", str(tmp_path / "m")]) == 2
        assert "--features" in capsys.readouterr().err


def test_init_fine_tunes_a_model_file(trained, quick_data, tmp_path):
    out = tmp_path / "tuned.dfm"
    assert main(["train", "--model", "deepfreak", "--data", str(quick_data), "--out", str(out), "--init",
                 str(trained), "--epochs", "1", "--device", "cpu", "--threads", "1", "--quiet"]) == 0
    start, tuned = load_model(trained).estimator, load_model(out).estimator
    assert tuned.width == start.width and tuned.learning_rate == pytest.approx(start.learning_rate / 10)
    assert tuned.get_params()["init"] is None  # the file keeps the weights, not the starting model
    before, after = _weights(trained), _weights(out)
    moved = [k for k in before if "weight" in k and not np.array_equal(before[k], after[k])]
    assert moved and all(np.abs(after[k] - before[k]).max() < 0.5 for k in moved)


def test_init_refuses_a_classic_model(quick_data, tmp_path, capsys):
    from diffranet.inference import save_model
    from diffranet.peaks import PeakFinderHitFinder

    X = np.zeros((2, 512, 512), np.uint8)
    path = save_model(PeakFinderHitFinder().fit(X, [0, 1]), tmp_path / "p.dfm", class_names=("miss", "hit"))
    assert main(["train", "--model", "deepfreak", "--data", str(quick_data), "--out", str(tmp_path / "x.dfm"),
                 "--init", str(path), "--device", "cpu", "--quiet"]) == 2
    assert "needs a DeepFreak model file" in capsys.readouterr().err
