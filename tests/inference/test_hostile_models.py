"""Crafted model files: every one is refused with a ModelFileError (or loads and predicts), never a crash,
hang, traceback of another type or gigabytes of memory."""

import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest
import skops.io as sio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diffranet.cli import main
from diffranet._validation import threads_for_jobs
from diffranet.inference import ModelFileError, load_model, save_model
from diffranet.inference import modelfile
from inference_helpers import SMALL

META = "diffranet-model.json"


def members(path):
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def write_members(path, contents):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in contents.items():
            archive.writestr(name, data)
    return path


def with_meta(source, target, **changes):
    """``source`` with fields of its JSON description replaced."""
    contents = members(source)
    meta = json.loads(contents[META])
    meta.update(changes)
    contents[META] = json.dumps(meta)
    return write_members(target, contents)


def with_estimator(source, target, estimator):
    """``source`` holding ``estimator`` (serialised by skops, bypassing save_model's checks)."""
    contents = members(source)
    contents["estimator.skops"] = sio.dumps(estimator)
    return write_members(target, contents)


@pytest.fixture(scope="module")
def pipeline(small_model_file):
    return load_model(small_model_file).estimator


class TestDescription:
    def test_deeply_nested_json(self, small_model_file, tmp_path):
        contents = members(small_model_file)
        contents[META] = contents[META][:-1] + b', "training": ' + b"[" * 30000 + b"]" * 30000 + b"}"
        with pytest.raises(ModelFileError, match="damaged or refused"):
            load_model(write_members(tmp_path / "nested.dfm", contents))

    def test_nested_within_the_recursion_limit(self, small_model_file, tmp_path):
        deep = {}
        for _ in range(200):
            deep = {"a": deep}
        with pytest.raises(ModelFileError, match="nested deeper than 32"):
            load_model(with_meta(small_model_file, tmp_path / "deep.dfm", training=deep))

    @pytest.mark.parametrize("changes, match", [
        ({"kind": ["skops"]}, "'kind' must be one of"),
        ({"class_names": 5}, "'class_names' must be a list"),
        ({"class_names": ["a"] * 3}, "distinct"),
        ({"class_names": [1, 2, 3, 4, 5]}, "'class_names' must be 2 to"),
        ({"format_version": True}, "'format_version' must be an integer"),
        ({"preprocessing": {**SMALL.to_dict(), "shape": [100000, 100000]}}, "larger than the limit"),
        ({"preprocessing": {**SMALL.to_dict(), "adc_offset": "x"}}, "adc_offset must be a real number"),
        ({"preprocessing": {**SMALL.to_dict(), "geometry": {"pixel_size_mm": 1e400}}}, "'preprocessing'"),
        ({"preprocessing": {"1": 2}}, "unknown parameters"),
        ({"training": [1, 2]}, "'training' must be a JSON object"),
    ])
    def test_bad_fields(self, small_model_file, tmp_path, changes, match):
        with pytest.raises(ModelFileError, match=match):
            load_model(with_meta(small_model_file, tmp_path / "bad.dfm", **changes))

    def test_huge_number_in_json(self, small_model_file, tmp_path):
        contents = members(small_model_file)
        contents[META] = contents[META][:-1] + b', "id": ' + b"9" * 5000 + b"}"
        with pytest.raises(ModelFileError, match="damaged or refused"):
            load_model(write_members(tmp_path / "digits.dfm", contents))


class TestTrees:
    def forest_with(self, pipeline, change):
        """A copy of the pipeline whose first tree's node array was edited by ``change(nodes)``."""
        import copy

        crafted = copy.deepcopy(pipeline)
        tree = crafted.steps[-1][1].estimators_[0].tree_
        state = tree.__getstate__()
        nodes = state["nodes"].copy()
        change(nodes)
        state["nodes"] = nodes
        tree.__setstate__(state)
        return crafted

    @pytest.mark.parametrize("change, match", [
        (lambda nodes: nodes["left_child"].__setitem__(0, 10**6), "out of range or not after its parent"),
        (lambda nodes: nodes["right_child"].__setitem__(0, 0), "out of range or not after its parent"),
        (lambda nodes: nodes["feature"].__setitem__(0, 10**6), "split feature is out of range"),
        (lambda nodes: nodes["threshold"].__setitem__(0, np.nan), "not a finite"),
        (lambda nodes: nodes["left_child"].__setitem__(0, -1), "one child only"),
    ])
    def test_crafted_tree_refused_at_load(self, pipeline, small_model_file, tmp_path, change, match):
        crafted = self.forest_with(pipeline, change)
        with pytest.raises(ModelFileError, match=match):
            load_model(with_estimator(small_model_file, tmp_path / "tree.dfm", crafted))

    def test_shared_child_refused(self, pipeline, small_model_file, tmp_path):
        def share(nodes):  # both children of the root are the same node
            nodes["right_child"][0] = nodes["left_child"][0]

        crafted = self.forest_with(pipeline, share)
        with pytest.raises(ModelFileError, match="no parent or several"):
            load_model(with_estimator(small_model_file, tmp_path / "dag.dfm", crafted))

    def test_untouched_forest_loads_and_predicts(self, pipeline, small_model_file, tmp_path):
        model = load_model(with_estimator(small_model_file, tmp_path / "same.dfm", pipeline))
        assert model.predict_proba(np.zeros((1, 64, 64), np.uint8)).shape == (1, 5)


class TestWrongThing:
    @pytest.mark.parametrize("make, match", [
        (lambda p: p.steps[0][1], "not a fitted classifier"),
        (lambda p: np.arange(5), "not a fitted classifier"),
        (lambda p: p.steps[-1][1].estimators_[0].tree_, "not a fitted classifier"),
        (lambda p: __import__("sklearn.pipeline").pipeline.make_pipeline(p.steps[0][1], p.steps[1][1]),
         "not a fitted classifier"),
    ])
    def test_allowed_type_as_the_wrong_thing(self, pipeline, small_model_file, tmp_path, make, match):
        with pytest.raises(ModelFileError, match=match):
            load_model(with_estimator(small_model_file, tmp_path / "wrong.dfm", make(pipeline)))

    def test_input_shape_the_estimator_cannot_take(self, small_model_file, tmp_path):
        path = with_meta(small_model_file, tmp_path / "shape.dfm",
                         preprocessing={**SMALL.to_dict(), "shape": [32, 48]})
        with pytest.raises(ModelFileError, match="cannot classify a blank image"):
            load_model(path)

    def test_type_outside_the_estimator_schema(self, pipeline, small_model_file, tmp_path):
        from sklearn.neighbors import KNeighborsClassifier

        knn = KNeighborsClassifier(1).fit(np.zeros((2, 3)), [1, 4])
        with pytest.raises(ModelFileError, match="this one holds sklearn.neighbors"):
            load_model(with_estimator(small_model_file, tmp_path / "knn.dfm", knn))

    def test_parameter_outside_its_constraints(self, pipeline, small_model_file, tmp_path):
        import copy

        crafted = copy.deepcopy(pipeline)
        crafted.steps[0][1].levels = 10**6
        with pytest.raises(ModelFileError, match="levels"):
            load_model(with_estimator(small_model_file, tmp_path / "levels.dfm", crafted))


class TestThreads:
    def test_n_jobs_never_above_the_cores(self):
        assert threads_for_jobs(1024) <= os.cpu_count() and threads_for_jobs(None) == 1 and threads_for_jobs(-1) >= 1

    def test_glcm_n_jobs_1024_loads_and_runs_on_the_cores(self, pipeline, small_model_file, tmp_path):
        import copy

        crafted = copy.deepcopy(pipeline)
        crafted.steps[0][1].n_jobs = 1024
        model = load_model(with_estimator(small_model_file, tmp_path / "jobs.dfm", crafted))
        assert model.estimator.steps[0][1].n_jobs == 1024 and threads_for_jobs(1024) <= os.cpu_count()

    def test_absurd_n_jobs_refused(self, pipeline, small_model_file, tmp_path):
        import copy

        crafted = copy.deepcopy(pipeline)
        crafted.steps[-1][1].n_jobs = 10**9
        with pytest.raises(ModelFileError, match="not a thread count"):
            load_model(with_estimator(small_model_file, tmp_path / "jobs.dfm", crafted))


class TestSizes:
    def test_zip_bomb_refused_from_its_declared_size(self, small_model_file, tmp_path, monkeypatch):
        monkeypatch.setattr(modelfile, "MAX_ARCHIVE_BYTES", 2**20)
        contents = members(small_model_file)
        contents["padding.bin"] = bytes(4 * 2**20)  # 4 MiB of zeros, a few kB compressed
        path = write_members(tmp_path / "bomb.dfm", contents)
        assert path.stat().st_size < 64 * 2**10
        with pytest.raises(ModelFileError, match="more than the limit"):
            load_model(path)

    def test_bomb_inside_the_skops_archive(self, pipeline, small_model_file, tmp_path, monkeypatch):
        payload = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(sio.dumps(pipeline))) as inner, \
                zipfile.ZipFile(payload, "w", compression=zipfile.ZIP_DEFLATED) as out:
            for info in inner.infolist():
                out.writestr(info.filename, inner.read(info))
            out.writestr("bomb.bin", bytes(4 * 2**20))
        contents = members(small_model_file)
        contents["estimator.skops"] = payload.getvalue()
        path = write_members(tmp_path / "inner.dfm", contents)
        monkeypatch.setattr(modelfile, "MAX_ARCHIVE_BYTES", 3 * 2**20)
        with pytest.raises(ModelFileError, match="more than the limit"):
            load_model(path)

    def test_array_claiming_more_than_it_holds(self, pipeline, small_model_file, tmp_path):
        payload = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(sio.dumps(pipeline))) as inner, \
                zipfile.ZipFile(payload, "w", compression=zipfile.ZIP_DEFLATED) as out:
            for info in inner.infolist():
                data = inner.read(info)
                if info.filename.endswith(".npy") and b"'shape': (" in data[:200]:
                    start = data.index(b"'shape': (") + len(b"'shape': (")
                    data = data[:start] + b"999999999999," + data[data.index(b")", start):]
                out.writestr(info.filename, data)
        contents = members(small_model_file)
        contents["estimator.skops"] = payload.getvalue()
        with pytest.raises(ModelFileError, match="damaged estimator data"):
            load_model(write_members(tmp_path / "claims.dfm", contents))


@pytest.fixture(scope="module")
def deepfreak_file(tmp_path_factory):
    """A tiny DeepFreak network, fitted state set by hand (no training)."""
    pytest.importorskip("torch")
    from diffranet.inference import Preprocessing
    from diffranet.models import DeepFreakClassifier

    clf = DeepFreakClassifier(depth=18, width=4, input_size=16, head_pool_size=None, stem_pool_size=None)
    clf.classes_ = np.array([0, 1])
    clf.image_shape_ = (16, 16)
    clf.n_features_in_ = 16
    clf.pixel_range_ = (0.0, 255.0)
    clf.mean_image_ = np.zeros((16, 16), np.float32)
    clf._set_model(clf._build_network(2))
    path = tmp_path_factory.mktemp("df") / "tiny.dfm"
    with pytest.MonkeyPatch.context() as patch:  # the weights and their checks only: no ONNX graph in the file
        patch.setattr(modelfile, "_onnx_graph", lambda estimator: None)
        return save_model(clf, path, class_names=("miss", "hit"), preprocessing=Preprocessing(shape=(16, 16)))


class TestDeepFreak:
    def edited(self, source, target, params=None, fitted=None):
        contents = members(source)
        meta = json.loads(contents[META])
        meta["deepfreak"]["params"].update(params or {})
        meta["deepfreak"]["fitted"].update(fitted or {})
        contents[META] = json.dumps(meta)
        return write_members(target, contents)

    def test_round_trip(self, deepfreak_file):
        model = load_model(deepfreak_file)
        assert model.predict_proba(np.zeros((1, 16, 16), np.uint8)).shape == (1, 2)

    @pytest.mark.parametrize("params, fitted, match", [
        ({"width": 4096}, None, "above the limits"),
        ({"width": 8}, None, "do not fit the described network"),
        ({"depth": 7}, None, "depth"),
        ({"stage_strides": "abcd"}, None, "stage_strides"),
        ({"exec": "x"}, None, "unknown DeepFreak parameters"),
        (None, {"classes_": [0]}, "classes_"),
        (None, {"pixel_range_": [0, 1e400]}, "pixel_range_"),
        (None, {"image_shape_": [512, 512]}, "differs from the preprocessing shape"),
        (None, {"loss_curve_": "x"}, "loss_curve_"),
    ])
    def test_edited_description_refused_before_building(self, deepfreak_file, tmp_path, params, fitted, match):
        import tracemalloc

        tracemalloc.start()
        try:
            with pytest.raises(ModelFileError, match=match):
                load_model(self.edited(deepfreak_file, tmp_path / "df.dfm", params, fitted))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 50 * 2**20


class TestPaths:
    def test_directory(self, tmp_path, small_model_file):
        (tmp_path / "m.dfm").write_bytes(small_model_file.read_bytes())
        with pytest.raises(ModelFileError, match="is a directory, not a model file; it holds m.dfm"):
            load_model(tmp_path)

    def test_fifo(self, tmp_path):
        fifo = tmp_path / "model.dfm"
        os.mkfifo(fifo)
        with pytest.raises(ModelFileError, match="FIFO"):
            load_model(fifo)

    def test_trust_suggested_only_for_pickles(self, tmp_path, capsys):
        path = tmp_path / "pickle-model.dfm"
        path.write_bytes(b"PK\x03\x04 not really a zip")
        assert main(["classify", "--model", str(path), str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert "--trust" not in err and "not a diffranet model file" in err
        path = tmp_path / "old.joblib"
        path.write_bytes(pickle.dumps({"a": 1}, protocol=4))
        assert main(["classify", "--model", str(path), str(tmp_path)]) == 2
        assert "pass --trust to load it" in capsys.readouterr().err

    def test_trusted_pickle_of_a_non_model(self, tmp_path, capsys):
        path = tmp_path / "trials.pkl"
        path.write_bytes(pickle.dumps({"trials": [1, 2, 3]}, protocol=4))
        assert main(["classify", "--model", str(path), "--trust", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert "holds a builtins.dict, not a fitted classifier" in err and "Traceback" not in err


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12,
)
fields = st.sampled_from(["format", "format_version", "kind", "class_names", "preprocessing", "training",
                          "deepfreak", "created"])


def load_or_refuse(path):
    """A SavedModel that predicts, or a ModelFileError; nothing else."""
    try:
        model = load_model(path)
    except ModelFileError:
        return
    assert model.predict_proba(np.zeros((1, *model.preprocessing.shape), np.uint8)).shape[0] == 1


def byte_edits(small_model_file, tmp_path, data):
    raw = bytearray(small_model_file.read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    path = tmp_path / "fuzz.dfm"
    path.write_bytes(bytes(raw))
    load_or_refuse(path)


def fuzz_settings(n):
    return settings(derandomize=True, max_examples=n, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


class TestFuzz:
    """Seeded random edits of a valid model file (a few in every run, many with -m slow)."""

    @fuzz_settings(25)
    @given(data=st.data())
    def test_byte_edits(self, small_model_file, tmp_path, data):
        byte_edits(small_model_file, tmp_path, data)

    @fuzz_settings(100)
    @given(field=fields, value=json_values)
    def test_description_edits(self, small_model_file, tmp_path, field, value):
        load_or_refuse(with_meta(small_model_file, tmp_path / "fuzz.dfm", **{field: value}))

    @pytest.mark.slow
    @fuzz_settings(500)
    @given(data=st.data())
    def test_many_byte_edits(self, small_model_file, tmp_path, data):
        byte_edits(small_model_file, tmp_path, data)

    @pytest.mark.slow
    @fuzz_settings(500)
    @given(field=fields, value=json_values)
    def test_many_description_edits(self, small_model_file, tmp_path, field, value):
        load_or_refuse(with_meta(small_model_file, tmp_path / "fuzz.dfm", **{field: value}))
