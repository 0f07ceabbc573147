import csv
import io
import json

import fabio.cbfimage
import h5py
import joblib
import numpy as np
import pytest

from diffranet.classes import CLASS_NAMES, HIT_CLASS_NAMES
from diffranet.cli import main
from diffranet.inference import load_model
from diffranet.inference.files import frame_geometry
from diffranet.live.files import classify_files
from diffranet.io import write_frames, write_image

# frames whose 4 x 4 pixel blocks are one training pixel of the small model (0.5 mm at 60 mm, 1.0 A)
PIXEL_MM, DISTANCE_MM, WAVELENGTH_A = 0.125, 60.0, 1.0


def raw_frame(rng, hit, shape=(256, 256)):
    frame = rng.poisson(1.0, shape).astype(np.float32)
    if hit:
        frame[rng.integers(0, shape[0], 300), rng.integers(0, shape[1], 300)] += 5000.0
    return frame


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A 3-frame NeXus file (miss, hit, miss) with mask and geometry, a CBF hit, an npz miss with a mask,
    an unreadable file."""
    rng = np.random.default_rng(0)
    out = tmp_path_factory.mktemp("frames")
    mask = np.zeros((256, 256), bool)
    mask[100:117, :] = True                                    # a module gap, hot
    stack = np.stack([raw_frame(rng, hit) for hit in (False, True, False)])
    stack[:, mask] = 1e6
    nexus = out / "run.nxs"
    write_frames(nexus, stack.astype(np.uint32), mask=mask)
    with h5py.File(nexus, "a") as f:
        f["/entry/instrument/detector/x_pixel_size"] = PIXEL_MM * 1e-3
        f["/entry/instrument/detector/detector_distance"] = DISTANCE_MM * 1e-3
        f["/entry/instrument/detector/beam_center_x"] = 128.0
        f["/entry/instrument/detector/beam_center_y"] = 128.0
        f["/entry/instrument/beam/incident_wavelength"] = WAVELENGTH_A
        f["/entry/instrument/beam/incident_wavelength"].attrs["units"] = "angstrom"
    cbf = out / "hit.cbf"
    frame = raw_frame(rng, True).astype(np.int32)
    frame[:, 60:67] = -1                                       # Pilatus gap flags
    header = (f"# Pixel_size {PIXEL_MM * 1e-3:g} m x {PIXEL_MM * 1e-3:g} m\r\n# Detector_distance "
              f"{DISTANCE_MM * 1e-3:g} m\r\n# Wavelength {WAVELENGTH_A:g} A\r\n# Beam_xy (128.0, 128.0) pixels")
    fabio.cbfimage.CbfImage(data=frame, header={"_array_data.header_contents": header}).write(str(cbf))
    npz = out / "miss.npz"
    frame = raw_frame(rng, False)
    npz_mask = np.zeros(frame.shape, bool)
    npz_mask[rng.integers(0, 256, 50), rng.integers(0, 256, 50)] = True
    frame[npz_mask] = 65535.0                                  # hot pixels, masked
    write_image(npz, frame, mask=npz_mask)
    bad = out / "broken.h5"
    bad.write_bytes(b"not an HDF5 file")
    return {"nexus": nexus, "cbf": cbf, "npz": npz, "bad": bad}


def run(capsys, *argv):
    status = main(["classify", *map(str, argv)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


class TestClassifyCommand:
    def test_every_frame_json_lines(self, small_model_file, files, capsys):
        status, out, err = run(capsys, "--model", small_model_file, files["nexus"], files["bad"], files["cbf"],
                               files["npz"])
        records = [json.loads(line) for line in out.splitlines()]
        assert [(r["file"].rsplit("/", 1)[-1], r["frame"]) for r in records] == [
            ("run.nxs", 0), ("run.nxs", 1), ("run.nxs", 2), ("hit.cbf", 0), ("miss.npz", 0)]
        assert [r["hit"] for r in records] == [False, True, False, True, False]
        assert [r["label"] for r in records] == ["no-crystal", "strong", "no-crystal", "strong", "no-crystal"]
        for r in records:
            # the fields of a stream verdict: the spot figures too
            assert set(r) == {"file", "frame", "label", "hit", "proba", "n_peaks", "d_min_A", "latency_ms"}
            assert isinstance(r["n_peaks"], int) and r["n_peaks"] >= 0
            assert len(r["proba"]) == 5 and sum(r["proba"]) == pytest.approx(1.0) and r["latency_ms"] >= 0
        # the unreadable file is reported, the others classified, and the exit status says so
        assert status == 1
        assert "cannot read" in err and "broken.h5" in err
        assert "5 frames, 2 hits, hit rate 0.400" in err and "frames/s" in err and "1 unreadable" in err

    def test_worker_processes_give_the_same_records_in_order(self, small_model_file, files, capsys):
        argv = ("--model", small_model_file, files["nexus"], files["bad"], files["cbf"], files["npz"])
        _, one, _ = run(capsys, *argv)
        status, two, err = run(capsys, *argv, "--workers", "2", "--batch-size", "1")
        strip = [{k: v for k, v in json.loads(line).items() if k != "latency_ms"} for line in one.splitlines()]
        assert status == 1 and "broken.h5" in err
        assert [{k: v for k, v in json.loads(line).items() if k != "latency_ms"} for line in two.splitlines()] == strip

    def test_abstain_reaches_the_verdicts(self, small_model_file, files, capsys):
        status, out, _ = run(capsys, "--model", small_model_file, "--abstain", "1.0", files["npz"])
        record = json.loads(out)
        assert status == 0 and record["label"] == "uncertain" and record["uncertain"] is True

    @pytest.mark.parametrize("workers", ["1", "2"])
    def test_hit_threshold_reaches_the_verdicts(self, small_model_file, files, capsys, workers):
        argv = ("--model", small_model_file, "--workers", workers, files["cbf"], files["npz"])
        status, out, _ = run(capsys, *argv)
        records = [json.loads(line) for line in out.splitlines()]
        p_hit = [sum(p for p, name in zip(r["proba"], CLASS_NAMES) if name in HIT_CLASS_NAMES) for r in records]
        assert status == 0 and [r["hit"] for r in records] == [p >= 0.5 for p in p_hit]
        assert min(p_hit) < 0.5 <= max(p_hit)  # one frame either side of the default
        for threshold in (min(p_hit) - 1e-9, (min(p_hit) + 0.5) / 2, max(p_hit) - 1e-9):
            status, out, _ = run(capsys, *argv, "--hit-threshold", str(threshold))
            got = [json.loads(line) for line in out.splitlines()]
            assert status == 0 and [r["hit"] for r in got] == [p >= threshold for p in p_hit]
            assert all((r["label"] in HIT_CLASS_NAMES) is r["hit"] for r in got)

    @pytest.mark.parametrize("value", ["0", "1", "1.5", "nan"])
    def test_bad_hit_threshold(self, small_model_file, files, capsys, value):
        status, out, err = run(capsys, "--model", small_model_file, "--hit-threshold", value, files["npz"])
        assert status == 2 and out == "" and "--hit-threshold" in err

    def test_nan_pixels_of_a_file_are_masked(self, small_model_file, tmp_path, capsys):
        frame = raw_frame(np.random.default_rng(3), True)
        path = tmp_path / "gaps.npy"
        holed = frame.copy()
        holed[:, 60:67] = np.nan                                  # a converted detector's gaps
        np.save(path, holed)
        masked = tmp_path / "masked.npz"
        mask = np.zeros(frame.shape, bool)
        mask[:, 60:67] = True
        write_image(masked, frame, mask=mask)
        _, out, _ = run(capsys, "--model", small_model_file, path, masked)
        a, b = (json.loads(line) for line in out.splitlines())
        assert a["proba"] == b["proba"] and a["n_peaks"] == b["n_peaks"]

    def test_csv(self, small_model_file, files, capsys):
        status, out, err = run(capsys, "--model", small_model_file, "--csv", "--batch-size", "2", files["nexus"])
        rows = list(csv.DictReader(io.StringIO(out)))
        assert status == 0 and [r["hit"] for r in rows] == ["0", "1", "0"]
        assert list(rows[0]) == ["file", "frame", "label", "hit", "latency_ms",
                                 "p_blank", "p_no-crystal", "p_weak", "p_good", "p_strong", "n_peaks", "d_min_A"]

    def test_header_geometry_and_overrides(self, files):
        from diffranet.io import read_geometry

        header = read_geometry(files["nexus"])
        assert header.pop("beam_center_px") == (128.0, 128.0)
        assert header == pytest.approx({"pixel_size_mm": PIXEL_MM, "distance_mm": DISTANCE_MM,
                                        "wavelength_A": WAVELENGTH_A})
        from_cbf = read_geometry(files["cbf"])
        assert from_cbf.pop("beam_center_px") == (128.0, 128.0) and from_cbf == pytest.approx(header)
        header["beam_center_px"] = (128.0, 128.0)
        geometry, beam = frame_geometry(header, overrides={"distance_mm": 100.0, "wavelength_A": None})
        assert geometry.distance_mm == 100.0 and geometry.wavelength_A == WAVELENGTH_A and beam == (128.0, 128.0)
        assert frame_geometry({"pixel_size_mm": 0.1}, overrides={"beam_center_px": (3, 4)}) == (None, (3, 4))

    def test_geometry_options_change_the_input(self, small_model_file, files):
        model = load_model(small_model_file)
        near = [r.proba for r in classify_files(model, [files["nexus"]])]
        far = [r.proba for r in classify_files(model, [files["nexus"]], overrides={"distance_mm": 400.0})]
        assert near != far

    def test_detector_file(self, small_model_file, files, tmp_path, capsys):
        toml = tmp_path / "det.toml"
        toml.write_text(f'kind = "pixel_array"\nshape = [256, 256]\npixel_size_mm = {PIXEL_MM}\n'
                        f'distance_mm = {DISTANCE_MM}\nwavelength_A = {WAVELENGTH_A}\nsaturation = 60000\n')
        status, out, _ = run(capsys, "--model", small_model_file, "--detector", toml, files["npz"])
        assert status == 0 and json.loads(out)["hit"] is False

    def test_default_model_missing(self, files, capsys, tmp_path, monkeypatch):
        # an installation without the shipped model file
        from diffranet.inference import modelfile

        monkeypatch.chdir(tmp_path)
        monkeypatch.setattr(modelfile, "default_model_path", lambda: None)
        status, out, err = run(capsys, "--model", "default", files["npz"])
        assert status == 2 and out == "" and "no default model is shipped" in err

    def test_pickle_needs_trust(self, small_model_file, files, tmp_path, capsys):
        old = tmp_path / "old.joblib"
        joblib.dump(load_model(small_model_file).estimator, old)
        status, _, err = run(capsys, "--model", old, files["npz"])
        assert status == 2 and "--trust" in err
        status, out, _ = run(capsys, "--model", old, "--trust", files["npz"])
        assert status == 0 and json.loads(out)["frame"] == 0

    def test_only_unreadable(self, small_model_file, tmp_path, capsys):
        status, out, err = run(capsys, "--model", small_model_file, tmp_path / "missing.cbf")
        assert status == 1 and out == "" and "missing.cbf" in err and "0 frames" in err


@pytest.mark.parametrize("suffix", [".png", ".pgm"])
def test_own_8bit_images_classify_as_the_arrays(small_model_file, tmp_path, capsys, suffix):
    """The package's own 8-bit output (model inputs written as PNG / PGM) is not square-rooted again."""
    from inference_helpers import spotty_images

    rng = np.random.default_rng(11)
    images = np.concatenate([spotty_images(3, rng, 0), spotty_images(3, rng, 60)])
    paths = []
    for i, image in enumerate(images):
        paths.append(tmp_path / f"shot{i}{suffix}")
        write_image(paths[-1], image)
    expected = load_model(small_model_file).predict_proba(images)
    assert main(["classify", "--model", str(small_model_file), "--quiet", *map(str, paths)]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    np.testing.assert_allclose([r["proba"] for r in records], expected, atol=1e-12)
    assert [r["hit"] for r in records] == [False] * 3 + [True] * 3


def test_input_option_says_what_frames_hold(small_model_file, tmp_path, capsys):
    from diffranet.inference import preprocess
    from inference_helpers import spotty_images

    images = spotty_images(2, np.random.default_rng(12), 60)
    paths = []
    for i, image in enumerate(images):
        paths.append(tmp_path / f"shot{i}.png")
        write_image(paths[-1], image)
    model = load_model(small_model_file)

    def proba(*flags):
        assert main(["classify", "--model", str(small_model_file), "--quiet", *flags, *map(str, paths)]) == 0
        return np.array([json.loads(line)["proba"] for line in capsys.readouterr().out.splitlines()])

    np.testing.assert_allclose(proba("--input", "8bit"), model.predict_proba(images), atol=1e-12)
    # as raw counts: the square root applied again
    again = np.stack([preprocess(image, preprocessing=model.preprocessing, input="counts") for image in images])
    assert not np.array_equal(again, images)
    np.testing.assert_allclose(proba("--input", "counts"), model.predict_proba(again), atol=1e-12)


def test_write_hits_keeps_the_raw_hit_frames_of_files(small_model_file, files, tmp_path, capsys):
    out = tmp_path / "hits"
    status, stdout, err = run(capsys, "--model", small_model_file, "--write-hits", out, files["nexus"], files["cbf"])
    records = [json.loads(line) for line in stdout.splitlines()]
    hit_records = [r for r in records if r["hit"]]
    assert status == 0 and len(hit_records) == 2 and "2 hit frames in" in err
    assert all("hit_file" not in r for r in records if not r["hit"])
    (event_list,) = out.glob("*.lst")
    assert event_list.read_text().splitlines() == [f"{r['hit_file']} //{r['hit_event']}" for r in hit_records]
    stored = []
    for r in hit_records:
        with h5py.File(r["hit_file"]) as f:
            stored.append(f["entry/data/data"][r["hit_event"]])
    with h5py.File(files["nexus"]) as f:
        raw = f["entry/data/data"][1]
    assert np.array_equal(stored[0], raw)  # the raw pixels of the hit frame, not the model input
