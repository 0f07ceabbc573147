"""BOHB search of DeepFreak (Table 10) on tiny images: runs with two workers, logs, resumes."""

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("hpbandster")

from diffranet.models.resnet import TOPOLOGIES  # noqa: E402
from diffranet.search.deepfreak import (  # noqa: E402
    TABLE10,
    DeepFreakSpace,
    config_space,
    deepfreak_params,
    search_deepfreak,
)

# A CPU-sized network every Table 9 topology can run at 32 px: global pooling
# instead of the fixed 7-15 px head pools of the 512 px paper network.
TINY = {"depth": 18, "width": 4, "input_size": 32, "head_pool_size": None, "n_threads": 1}
SPACE = DeepFreakSpace(topologies=(3, 9), learning_rate=(1e-3, 0.1), batch_sizes=(8, 16))


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


class TestSpace:
    def test_table10_ranges(self):
        cs = config_space(TABLE10, seed=0)
        names = set(cs.keys())
        assert names == {"topology", "learning_rate", "momentum", "weight_decay", "batch_size"}
        assert list(cs["topology"].choices) == list(range(1, 14))
        assert (cs["learning_rate"].lower, cs["learning_rate"].upper) == (1e-4, 10.0)
        assert cs["learning_rate"].log
        assert list(cs["batch_size"].choices) == [4, 8, 16, 32, 64]
        for config in cs.sample_configuration(50):
            assert 0.5 <= config["momentum"] < 1.0
            assert 1e-5 <= config["weight_decay"] <= 5e-5

    def test_same_seed_same_samples(self):
        a = [dict(c) for c in config_space(TABLE10, seed=3).sample_configuration(5)]
        b = [dict(c) for c in config_space(TABLE10, seed=3).sample_configuration(5)]
        assert a == b

    @pytest.mark.parametrize("kwargs", [{"topologies": (0,)}, {"topologies": ()}, {"learning_rate": (1.0, 0.1)},
                                        {"momentum": (0.5, 1.5)}, {"batch_sizes": (0,)}])
    def test_bad_space(self, kwargs):
        with pytest.raises(ValueError):
            DeepFreakSpace(**kwargs)

    def test_params_topology_then_sgd_then_base(self):
        config = {"topology": 6, "learning_rate": 0.01, "momentum": 0.9, "weight_decay": 2e-5, "batch_size": 8}
        params = deepfreak_params(config, {"head_pool_size": None})
        assert params["head_pool_stride"] == TOPOLOGIES[6]["head_pool_stride"]
        assert params["head_pool_size"] is None
        assert (params["learning_rate"], params["batch_size"]) == (0.01, 8)


class TestSearch:
    def test_two_workers_complete_and_resume(self, tiny_split, tmp_path):
        out = tmp_path / "bohb"
        first = search_deepfreak(tiny_split, out, min_budget=1, max_budget=3, eta=3, n_iterations=1, workers=2,
                                 space=SPACE, base_params=TINY, seed=0)
        results = _lines(out / "results.json")
        # Bracket 0 of eta 3 over budgets (1, 3): three configurations at 1 epoch, the best at 3.
        assert sorted(r[1] for r in results) == [1.0, 1.0, 1.0, 3.0]
        assert all(r[3] is not None and 0.0 <= r[3]["loss"] <= 1.0 for r in results)
        assert first.n_evaluations == 4
        best = json.loads((out / "best_config.json").read_text())
        assert best["config"]["topology"] in SPACE.topologies
        assert best["params"]["input_size"] == 32
        assert 0.0 <= first.best_val_accuracy <= 1.0

        with pytest.raises(ValueError, match="resume"):
            search_deepfreak(tiny_split, out, min_budget=1, max_budget=3, n_iterations=2, space=SPACE,
                             base_params=TINY)

        second = search_deepfreak(tiny_split, out, min_budget=1, max_budget=3, eta=3, n_iterations=2, workers=2,
                                  space=SPACE, base_params=TINY, seed=0, resume=True)
        results = _lines(out / "results.json")
        ids = [tuple(r[0]) + (r[1],) for r in results]
        assert len(ids) == len(set(ids)), "an evaluation was logged twice"
        # Only the missing iteration ran: bracket 1 trains two configurations at 3 epochs.
        assert len(results) == 6 and {r[0][0] for r in results} == {0, 1}
        assert second.n_evaluations == 6

        # Nothing left to do: the log is read, nothing is trained.
        third = search_deepfreak(tiny_split, out, min_budget=1, max_budget=3, n_iterations=2, space=SPACE,
                                 base_params=TINY, resume=True)
        assert third.n_evaluations == 6

    @pytest.mark.parametrize("kwargs", [{"min_budget": 0}, {"min_budget": 5, "max_budget": 3}, {"eta": 1},
                                        {"workers": 0}, {"n_iterations": 0}])
    def test_bad_arguments(self, tiny_split, tmp_path, kwargs):
        with pytest.raises(ValueError):
            search_deepfreak(tiny_split, tmp_path / "x", **{"min_budget": 1, "max_budget": 3, **kwargs})


def test_command_line(write_synthetic_dataset, tmp_path, capsys):
    from diffranet.cli import main

    data = tmp_path / "data"
    write_synthetic_dataset(data, 2, size=32)
    config = tmp_path / "cpu.json"
    config.write_text(json.dumps({**TINY, "batch_size": 4}))
    out = tmp_path / "search"
    argv = ["search", "deepfreak", "--data", str(data), "--min-budget", "1", "--max-budget", "1", "--iterations", "2",
            "--config", str(config), "--device", "cpu", "--out", str(out)]
    assert main(argv) == 0
    assert "best validation accuracy" in capsys.readouterr().out
    best = json.loads((out / "best_config.json").read_text())
    assert best["params"]["batch_size"] == 4 and best["params"]["device"] == "cpu"
    assert len(_lines(out / "results.json")) == 2
    assert main(argv) == 2  # the log exists: --resume is needed
    assert "resume" in capsys.readouterr().err


def test_unknown_base_param_refused_before_training(tiny_split, tmp_path):
    with pytest.raises(ValueError, match="num_threads"):
        search_deepfreak(tiny_split, tmp_path / "x", min_budget=1, max_budget=1, space=SPACE,
                         base_params={"num_threads": 1})
    assert not (tmp_path / "x" / "results.json").exists()
