import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from diffranet._atomic import TEMPORARY_GLOB
from diffranet.dataset import class_counts, generate_dataset, load_arrays, read_index
from diffranet.dataset.shards import shard_paths, verify_shard


def _bytes(out):
    files = sorted(p for p in out.rglob("*") if p.is_file() and p.suffix in (".h5", ".json"))
    return {str(p.relative_to(out)): p.read_bytes() for p in files}


class TestGenerate:
    def test_layout_and_index(self, small_dataset):
        index = read_index(small_dataset)
        assert {s: e["n_images"] for s, e in index["splits"].items()} == {"train": 30, "val": 10, "test": 20}
        assert [s["start"] for s in index["splits"]["train"]["shards"]] == [0, 8, 16, 24]
        for path in shard_paths(small_dataset):
            assert verify_shard(path) is not None
        assert not list(small_dataset.rglob(TEMPORARY_GLOB))

    def test_exact_class_counts(self, small_dataset, tiny):
        for split, n in (("train", 30), ("val", 10), ("test", 20)):
            _, y = load_arrays(small_dataset, split)
            assert np.bincount(y, minlength=5).tolist() == class_counts(n, tiny.class_fractions).tolist()

    def test_metadata_holds_label_quantity(self, small_dataset, tiny):
        _, y, table = load_arrays(small_dataset, "train", metadata=True)
        assert table["index"].tolist() == list(range(30))
        rule = tiny.label_rule()
        for label, n in zip(y, table["n_detectable_spots"]):
            assert (rule.classify(int(n)) or 0) == (label if label >= 2 else 0)
        crystal = y >= 2
        # a detectable spot (2 pixels at k sigma) is also significant summed over its footprint, nearly always
        assert (table["n_significant_spots"][crystal] >= table["n_detectable_spots"][crystal]).mean() > 0.9

    def test_byte_identical_rerun(self, small_dataset, tiny, tmp_path):
        out = tmp_path / "again"
        generate_dataset(out, preset=tiny, n_train=30, n_val=10, n_test=20, seed=5, workers=1, shard_size=8,
                         progress=False)
        assert _bytes(out) == _bytes(small_dataset)
        assert not list(out.rglob(TEMPORARY_GLOB))

    def test_image_independent_of_size_and_shards(self, small_dataset, tiny, tmp_path):
        out = tmp_path / "other"
        generate_dataset(out, preset=tiny, n_train=13, n_val=0, n_test=0, seed=5, workers=1, shard_size=5,
                         progress=False)
        X, y, table = load_arrays(out, "train", metadata=True)
        X0, y0, table0 = load_arrays(small_dataset, "train", metadata=True)
        assert np.array_equal(X, X0[:13]) and np.array_equal(y, y0[:13])
        assert table.tobytes() == table0[:13].tobytes()

    def test_other_seed_differs(self, small_dataset, tiny, tmp_path):
        out = tmp_path / "seed"
        generate_dataset(out, preset=tiny, n_train=5, n_val=0, n_test=0, seed=6, workers=1, progress=False)
        assert not np.array_equal(load_arrays(out, "train")[0], load_arrays(small_dataset, "train")[0][:5])

    def test_resume_skips_finished_and_redoes_damaged(self, small_dataset, tiny, tmp_path):
        out = tmp_path / "resume"
        generate_dataset(out, preset=tiny, n_train=30, n_val=10, n_test=20, seed=5, workers=1, shard_size=8,
                         progress=False)
        victim = out / "shards" / "train-00001.h5"
        victim.write_bytes(victim.read_bytes()[:-100])  # truncated
        (out / "shards" / "val-00001.h5").unlink()
        (out / "shards" / ".test-00000.h5.0123abcd.part.h5").write_bytes(b"partial")  # an interrupted write
        generate_dataset(out, preset=tiny, n_train=30, n_val=10, n_test=20, seed=5, workers=1, shard_size=8,
                         progress=False)
        assert _bytes(out) == _bytes(small_dataset)

    def test_growing_renders_only_the_new_images(self, small_dataset, tiny, tmp_path, monkeypatch):
        from diffranet.dataset.shots import ShotRenderer

        out = tmp_path / "grow"
        generate_dataset(out, preset=tiny, n_train=13, n_val=3, n_test=0, seed=5, workers=1, shard_size=8,
                         progress=False)
        rendered = []
        real = ShotRenderer.render
        monkeypatch.setattr(ShotRenderer, "render", lambda self, *a: rendered.append(a) or real(self, *a))
        generate_dataset(out, preset=tiny, n_train=30, n_val=10, n_test=20, seed=5, workers=1, shard_size=8,
                         progress=False)
        assert len(rendered) == 60 - 16
        assert sorted(i for _, split, i, _ in rendered if split == "train") == list(range(13, 30))
        assert _bytes(out) == _bytes(small_dataset)
        with pytest.raises(ValueError, match="grow but not shrink"):
            generate_dataset(out, preset=tiny, n_train=20, n_val=10, n_test=20, seed=5, workers=1, shard_size=8,
                             progress=False)

    def test_other_settings_refused(self, small_dataset, tiny):
        with pytest.raises(ValueError, match="other settings.*seed"):
            generate_dataset(small_dataset, preset=tiny, n_train=30, n_val=10, n_test=20, seed=6, workers=1,
                             shard_size=8, progress=False)

    @pytest.mark.parametrize("kw, name", [(dict(n_train=-1), "n_train"), (dict(seed=-3), "seed"),
                                          (dict(workers=0), "workers"), (dict(format="tif"), "format"),
                                          (dict(shard_size=0), "shard_size"), (dict(preset="nope"), "preset")])
    def test_bad_arguments(self, tmp_path, tiny, kw, name):
        args = dict(preset=tiny, n_train=1, n_val=0, n_test=0, workers=1, progress=False)
        args.update(kw)
        with pytest.raises(ValueError, match=name):
            generate_dataset(tmp_path / "x", **args)

    def test_out_is_a_file(self, tmp_path, tiny):
        (tmp_path / "file").write_text("x")
        with pytest.raises(OSError, match="not a directory"):
            generate_dataset(tmp_path / "file", preset=tiny, n_train=1, n_val=0, n_test=0, workers=1, progress=False)

    @pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes anywhere")
    def test_unwritable_directory(self, tmp_path, tiny):
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            with pytest.raises(OSError, match="cannot write"):
                generate_dataset(locked / "data", preset=tiny, n_train=1, n_val=0, n_test=0, workers=1, progress=False)
        finally:
            locked.chmod(0o700)

    def test_bad_path(self, tmp_path, tiny):
        with pytest.raises(OSError, match="cannot write"):
            generate_dataset("/proc/diffranet-data", preset=tiny, n_train=1, n_val=0, n_test=0, workers=1,
                             progress=False)

    def test_full_disk_keeps_finished_shards(self, tmp_path, tiny, monkeypatch):
        from diffranet.dataset import generate as generate_module

        real = generate_module.write_shard
        calls = []

        def write_then_fail(path, *args, **kwargs):
            calls.append(path)
            if len(calls) == 2:
                raise OSError(28, "No space left on device")
            return real(path, *args, **kwargs)

        monkeypatch.setattr(generate_module, "write_shard", write_then_fail)
        out = tmp_path / "full"
        with pytest.raises(OSError, match="No space left on device.*kept"):
            generate_dataset(out, preset=tiny, n_train=12, n_val=0, n_test=0, workers=1, shard_size=4, progress=False)
        assert [p.name for p in shard_paths(out)] == ["train-00000.h5"]


class TestDask:
    def test_two_workers_match_one(self, small_dataset, tiny, tmp_path):
        out = tmp_path / "dask"
        generate_dataset(out, preset=tiny, n_train=30, n_val=10, n_test=20, seed=5, workers=2, shard_size=8,
                         chunk_size=3, progress=False)
        assert _bytes(out) == _bytes(small_dataset)

    def test_existing_scheduler(self, small_dataset, tiny, tmp_path):
        from distributed import LocalCluster

        with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
            out = tmp_path / "remote"
            generate_dataset(out, preset=tiny, n_train=30, n_val=10, n_test=20, seed=5, shard_size=8,
                             scheduler=cluster.scheduler_address, progress=False)
        assert _bytes(out) == _bytes(small_dataset)

    def test_no_scheduler_there(self, tmp_path, tiny):
        with pytest.raises(OSError, match="scheduler tcp://127.0.0.1:9: cannot connect"):
            generate_dataset(tmp_path / "x", preset=tiny, n_train=1, n_val=0, n_test=0,
                             scheduler="tcp://127.0.0.1:9", progress=False, connect_timeout="1s")

    def test_dead_worker_is_a_clear_error(self):
        import dask

        from diffranet.dataset.generate import WorkerFailure, _OnDask

        with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
            executor = _OnDask(1, None)
            try:
                future = executor.client.submit(os._exit, 1, pure=False)
                with pytest.raises(WorkerFailure, match="a worker died"):
                    executor.result(future)
            finally:
                executor.close()

    def test_worker_failure_keeps_finished_shards(self, tmp_path, tiny, monkeypatch):
        from diffranet.dataset import generate as generate_module

        calls = []

        def fail_third(handle):
            calls.append(handle)
            if len(calls) == 3:
                raise generate_module.WorkerFailure("a worker died while rendering (test)")
            return handle

        monkeypatch.setattr(generate_module._InProcess, "result", staticmethod(fail_third))
        out = tmp_path / "died"
        with pytest.raises(generate_module.WorkerFailure, match="1 shard.*kept.*resume"):
            generate_dataset(out, preset=tiny, n_train=12, n_val=0, n_test=0, workers=1, shard_size=4,
                             chunk_size=2, progress=False)
        assert [p.name for p in shard_paths(out)] == ["train-00000.h5"]


def _cli(out, preset_file):
    return [sys.executable, "-m", "diffranet", "dataset", "--out", str(out), "--preset", str(preset_file),
            "--n-train", "200", "--n-val", "0", "--n-test", "0", "--shard-size", "10", "--workers", "1", "--quiet"]


class TestKill:
    def test_resume_after_kill_9(self, tmp_path, quick):
        # the quick preset with the paper's 300 mosaic domains: ~15 ms per image, 20 shards
        preset_file = tmp_path / "preset.json"
        preset_file.write_text(quick.with_(name="kill-test", crystal=quick.crystal.with_(mosaic_domains=300)).to_json())
        reference = tmp_path / "reference"
        subprocess.run(_cli(reference, preset_file), check=True, capture_output=True)
        out = tmp_path / "killed"
        proc = subprocess.Popen(_cli(out, preset_file), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while not list((out / "shards").glob("*.h5")) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert proc.poll() is None, "the run finished before it could be killed"
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait()
        assert proc.returncode == -signal.SIGKILL
        n_shards = len(list((out / "shards").glob("*.h5")))
        assert 1 <= n_shards < 20
        subprocess.run(_cli(out, preset_file), check=True, capture_output=True)
        assert _bytes(out) == _bytes(reference)
        assert json.loads((out / "index.json").read_text())["splits"]["train"]["n_images"] == 200

    @pytest.mark.slow
    def test_ctrl_c_with_two_workers_is_quiet(self, tmp_path):
        """SIGINT to the whole process group (what Ctrl-C does): one line, no worker tracebacks."""
        out = tmp_path / "interrupted"
        command = [sys.executable, "-m", "diffranet", "dataset", "--out", str(out), "--preset", "quick",
                   "--n-train", "3000", "--n-val", "0", "--n-test", "0", "--shard-size", "10", "--workers", "2"]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            deadline = time.monotonic() + 120
            while not list((out / "shards").glob("*.h5")) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert proc.poll() is None, "the run finished before it could be interrupted"
            os.killpg(proc.pid, signal.SIGINT)
            _, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        assert proc.returncode == 130
        assert "Traceback" not in err and "KeyboardInterrupt" not in err
        assert err.rstrip().endswith("diffranet dataset: interrupted")
