"""Crafted image files: each gets one error record (or a refusal) within a small memory budget, the run goes
on, and the good files' verdicts are kept. Every input is generated here and small."""

import bz2
import gzip
import json
import os
import struct
import tempfile
import threading
import tracemalloc
import zipfile

import fabio.cbfimage
import h5py
import numpy as np
import pytest

from diffranet import io as dio
from diffranet.cli import main
from diffranet.inference import load_model, preprocess
from diffranet.inference.files import FileError
from diffranet.live.files import FrameRecord, classify_files
from diffranet.live import DirectoryWatcher, watch_directory
from diffranet.live.stats import LiveStats

SHAPE = (64, 64)


@pytest.fixture(scope="module")
def model(small_model_file):
    return load_model(small_model_file)


@pytest.fixture
def good(tmp_path):
    """A readable frame, classified before and after each hostile file."""
    path = tmp_path / "good.npy"
    dio.write_image(path, np.random.default_rng(0).poisson(4.0, SHAPE).astype(np.uint16))
    return path


def bounded(fn, limit_bytes=32 * 2**20, timeout_s=20.0):
    """``fn()`` run in a thread: it must end within ``timeout_s`` and allocate under ``limit_bytes``."""
    result = {}

    def target():
        tracemalloc.start()
        try:
            result["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            result["error"] = exc
        finally:
            result["peak"] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout_s)
    assert not thread.is_alive(), f"still running after {timeout_s} s"
    if "error" in result:
        raise result["error"]
    assert result["peak"] < limit_bytes, f"allocated {result['peak']:,} bytes"
    return result["value"]


def classify(model, paths, **kwargs):
    return bounded(lambda: list(classify_files(model, paths, **kwargs)))


def assert_one_error_between_verdicts(records, hostile, match):
    """good, hostile, good: two verdicts around exactly one error record naming the file and ``match``."""
    assert [type(r) for r in records] == [FrameRecord, FileError, FrameRecord], records
    error = records[1]
    assert error.file == str(hostile) and error.message.startswith(str(hostile)), error
    assert match in error.message, error.message


# --------------------------------------------------------------------------- hand-made headers


def tiff_header_only(path, width, height):
    """A little-endian TIFF whose one page claims ``width`` x ``height`` 16-bit pixels, with 8 bytes of data."""
    entries = [(256, 3, 1, width), (257, 3, 1, height), (258, 3, 1, 16), (259, 3, 1, 1), (262, 3, 1, 1),
               (273, 4, 1, 8), (277, 3, 1, 1), (278, 3, 1, height), (279, 4, 1, 8)]
    ifd_offset = 16
    out = struct.pack("<2sHI", b"II", 42, ifd_offset) + bytes(8)
    out += struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        out += struct.pack("<HHI", tag, kind, count) + (struct.pack("<HH", value, 0) if kind == 3
                                                         else struct.pack("<I", value))
    path.write_bytes(out + struct.pack("<I", 0))
    return path


def npz_claiming(path, shape, name="data"):
    """An npz whose member's .npy header claims ``shape`` float64 values but holds 16 bytes."""
    header = ("{'descr': '<f8', 'fortran_order': False, 'shape': %r, }" % (tuple(shape),)).encode("latin1")
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    member = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + bytes(16)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{name}.npy", member)
    return path


def cbf_bytes(frame, header=""):
    """The bytes of a miniCBF file of ``frame`` with ``header`` lines."""
    image = fabio.cbfimage.CbfImage(data=frame.astype(np.int32), header={"_array_data.header_contents": header})
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "frame.cbf")
        image.write(path)
        with open(path, "rb") as fh:
            return fh.read()


# --------------------------------------------------------------------------- declared sizes


class TestDeclaredSizes:
    def test_hdf5_dataset_with_huge_dimensions(self, model, good, tmp_path):
        path = tmp_path / "huge.h5"
        with h5py.File(path, "w") as f:
            f.create_dataset("/entry/data/data", shape=(2, 100_000, 100_000), dtype=np.uint32, chunks=(1, 64, 64))
        assert path.stat().st_size < 100_000
        records = classify(model, [good, path, good])
        assert_one_error_between_verdicts(records, path, "more than the limit")

    def test_hdf5_declaring_a_billion_frames(self, model, good, tmp_path):
        path = tmp_path / "billion.h5"
        with h5py.File(path, "w") as f:
            dset = f.create_dataset("/entry/data/data", shape=(10**9, *SHAPE), dtype=np.uint16, chunks=(1, *SHAPE))
            dset[0] = 1
        records = classify(model, [good, path, good])
        assert_one_error_between_verdicts(records, path, "stores 1 of its 1,000,000,000 chunks")

    def test_hdf5_mask_with_huge_dimensions(self, model, good, tmp_path):
        path = tmp_path / "mask.h5"
        dio.write_frames(path, [np.ones(SHAPE, np.uint16)])
        with h5py.File(path, "a") as f:
            f.create_dataset("/entry/instrument/detector/pixel_mask", shape=(100_000, 100_000), dtype=np.uint32,
                             chunks=(64, 64))
        records = classify(model, [good, path, good])
        assert_one_error_between_verdicts(records, path, "pixel mask")

    def test_npz_member_claiming_1e12_elements(self, model, good, tmp_path):
        path = npz_claiming(tmp_path / "claims.npz", (1_000_000, 1_000_000))
        records = classify(model, [good, path, good])
        assert_one_error_between_verdicts(records, path, "more than the limit")

    def test_npz_member_claiming_more_than_it_holds(self, model, good, tmp_path):
        path = npz_claiming(tmp_path / "short.npz", (64, 64))
        records = classify(model, [good, path, good])
        assert_one_error_between_verdicts(records, path, "holds")

    def test_npz_mask_checked_before_the_data_is_loaded(self, tmp_path):
        path = npz_claiming(tmp_path / "mask.npz", (1_000_000, 1_000_000), name="mask")
        with pytest.raises(dio.BudgetError, match="array 'mask'"):
            bounded(lambda: dio.read_mask(path))

    def test_tiff_65535_squared(self, model, good, tmp_path):
        path = tiff_header_only(tmp_path / "huge.tif", 65535, 65535)
        records = classify(model, [good, path, good])
        assert_one_error_between_verdicts(records, path, "TIFF page 0")

    def test_pgm_header_claiming_huge_frame(self, model, good, tmp_path):
        path = tmp_path / "huge.pgm"
        path.write_bytes(b"P5\n65535 65535\n65535\n" + bytes(64))
        records = classify(model, [good, path, good])
        assert_one_error_between_verdicts(records, path, "65535 x 65535")

    def test_png_header_claiming_huge_frame(self, model, good, tmp_path):
        import zlib

        def chunk(kind, data):
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

        path = tmp_path / "huge.png"
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 16, 0, 0, 0, 0))
                         + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
        records = classify(model, [good, path, good])
        assert [type(r) for r in records] == [FrameRecord, FileError, FrameRecord]

    def test_limit_is_a_parameter(self, tmp_path):
        path = tmp_path / "frame.pgm"
        dio.write_image(path, np.zeros((100, 100), np.uint8))
        assert dio.read_image(path, max_frame_pixels=10_000).shape == (100, 100)
        with pytest.raises(dio.BudgetError, match="100 x 100 = 10,000 pixels, more than the limit of 9,999"):
            dio.read_image(path, max_frame_pixels=9_999)

    def test_default_admits_the_largest_detectors(self):
        assert dio.DEFAULT_MAX_FRAME_PIXELS >= 7680 * 7680 > 4148 * 4362


class TestCompressedCBF:
    @pytest.mark.parametrize("suffix, compress", [(".cbf.gz", gzip.compress), (".cbf.bz2", bz2.compress)])
    def test_expansion_stops_at_the_declared_size(self, tmp_path, suffix, compress):
        frame = np.arange(64 * 64, dtype=np.int32).reshape(SHAPE) % 50
        raw = cbf_bytes(frame) + bytes(64 * 2**20)  # 64 MiB of trailing zeros, a few kB compressed
        path = tmp_path / f"bomb{suffix}"
        path.write_bytes(compress(raw))
        assert path.stat().st_size < 2**20
        np.testing.assert_array_equal(bounded(lambda: dio.read_image(path), limit_bytes=8 * 2**20), frame)

    def test_header_claiming_a_huge_frame(self, tmp_path):
        raw = cbf_bytes(np.zeros(SHAPE, np.int32)).replace(b"X-Binary-Size-Fastest-Dimension: 64",
                                                           b"X-Binary-Size-Fastest-Dimension: 9999999")
        path = tmp_path / "claims.cbf.gz"
        path.write_bytes(gzip.compress(raw))
        with pytest.raises(dio.BudgetError, match="CBF header"):
            bounded(lambda: dio.read_image(path))

    def test_binary_size_beyond_any_encoding_of_its_frame(self, tmp_path):
        raw = cbf_bytes(np.zeros(SHAPE, np.int32))
        size = int(raw.split(b"X-Binary-Size: ")[1].split(b"\r")[0])
        path = tmp_path / "size.cbf"
        path.write_bytes(raw.replace(b"X-Binary-Size: %d" % size, b"X-Binary-Size: 999999999"))
        with pytest.raises(dio.ImageFormatError, match="more than 15 bytes per pixel"):
            dio.read_image(path)


class TestCountCutoff:
    def test_count_cutoff_becomes_the_saturation_mask(self, model, tmp_path):
        cutoff = 1_048_575
        frame = np.full(SHAPE, 3, np.int32)
        frame[32, 32] = 1_046_527 + 2048  # a hot pixel at the cutoff, at the direct beam
        frame[10, 10] = cutoff + 5
        frame[5, 5] = cutoff - 1
        path = tmp_path / "hot.cbf"
        path.write_bytes(cbf_bytes(frame, f"# Count_cutoff {cutoff} counts\r\n# Pixel_size 172e-6 m x 172e-6 m"))
        mask = dio.read_mask(path)
        assert np.flatnonzero(mask).tolist() == [10 * 64 + 10, 32 * 64 + 32]
        assert dio.read_geometry(path)["saturation"] == cutoff
        # the verdict is that of the frame with those pixels masked, which the model sees differently
        record = next(iter(classify_files(model, [path])))
        assert record.proba == pytest.approx(model.classify(frame, mask)[0]["proba"])
        assert not np.array_equal(preprocess(frame, mask, None, model.preprocessing),
                                  preprocess(frame, None, None, model.preprocessing))

    def test_without_count_cutoff_only_negative_pixels(self, tmp_path):
        frame = np.full(SHAPE, 3, np.int32)
        frame[0, :3] = [-1, -2, 2_000_000]
        path = tmp_path / "plain.cbf"
        path.write_bytes(cbf_bytes(frame))
        assert np.flatnonzero(dio.read_mask(path)).tolist() == [0, 1]
        assert "saturation" not in dio.read_geometry(path)

    def test_nexus_saturation_value(self, tmp_path):
        path = tmp_path / "sat.h5"
        dio.write_frames(path, [np.ones(SHAPE, np.uint32)])
        with h5py.File(path, "a") as f:
            f["/entry/instrument/detector/saturation_value"] = 65000
        assert dio.read_geometry(path)["saturation"] == 65000


# --------------------------------------------------------------------------- what a path names


class TestNotRegularFiles:
    @pytest.mark.parametrize("name", ["fifo.pgm", "fifo.h5", "fifo.tif", "fifo.npz", "fifo.cbf.gz"])
    def test_fifo_refused_without_blocking(self, model, good, tmp_path, name):
        path = tmp_path / name
        os.mkfifo(path)
        records = classify(model, [good, path, good], )
        assert_one_error_between_verdicts(records, path, "FIFO")

    def test_symlink_to_the_zero_device(self, model, good, tmp_path):
        path = tmp_path / "zero.pgm"
        path.symlink_to("/dev/zero")
        records = classify(model, [good, path, good])
        assert_one_error_between_verdicts(records, path, "character device")

    def test_symlink_loop(self, model, good, tmp_path):
        (tmp_path / "a.h5").symlink_to(tmp_path / "b.h5")
        (tmp_path / "b.h5").symlink_to(tmp_path / "a.h5")
        records = classify(model, [good, tmp_path / "a.h5", good])
        assert_one_error_between_verdicts(records, tmp_path / "a.h5", "cannot be opened")

    def test_symlink_to_a_regular_file_is_read(self, model, good, tmp_path):
        link = tmp_path / "link.npy"
        link.symlink_to(good)
        records = classify(model, [link])
        assert isinstance(records[0], FrameRecord)


class TestHDF5OutsideTheFile:
    @pytest.mark.parametrize("target, message", [("file", "external file"), ("fifo", "outside the file")])
    def test_external_storage_pointing_elsewhere(self, model, good, tmp_path, target, message):
        outside = tmp_path / "outside"
        if target == "fifo":
            os.mkfifo(outside)
        else:
            outside.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n" * 200)
        path = tmp_path / "external.h5"
        with h5py.File(path, "w") as f:
            f.create_dataset("/entry/data/data", shape=SHAPE, dtype=np.uint8, external=[(str(outside), 0, 4096)])
        records = classify(model, [good, path, good])
        assert_one_error_between_verdicts(records, path, message)

    def test_external_link(self, model, good, tmp_path):
        target = tmp_path / "data_000001.h5"
        dio.write_frames(target, [np.ones(SHAPE, np.uint16)])
        path = tmp_path / "master.h5"
        with h5py.File(path, "w") as f:
            f["/entry/data/data"] = h5py.ExternalLink(str(target), "/entry/data/data")
        records = classify(model, [good, path, good])
        assert_one_error_between_verdicts(records, path, "external link")

    def test_virtual_dataset(self, model, good, tmp_path):
        target = tmp_path / "data.h5"
        dio.write_frames(target, [np.ones(SHAPE, np.uint16)])
        layout = h5py.VirtualLayout(shape=(1, *SHAPE), dtype=np.uint16)
        layout[0] = h5py.VirtualSource(str(target), "/entry/data/data", shape=(1, *SHAPE))[0]
        path = tmp_path / "virtual.h5"
        with h5py.File(path, "w") as f:
            f.create_virtual_dataset("/entry/data/data", layout)
        records = classify(model, [good, path, good])
        assert_one_error_between_verdicts(records, path, "virtual dataset")


# --------------------------------------------------------------------------- failures of one file or frame


class TestRunGoesOn:
    def test_memory_error_in_a_reader_is_one_record(self, model, good, tmp_path, monkeypatch):
        bad = tmp_path / "bad.npy"
        bad.write_bytes(good.read_bytes())
        real = dio.iter_frames

        def iter_frames(path, *args, **kwargs):
            if str(path) == str(bad):
                raise MemoryError()
            return real(path, *args, **kwargs)

        monkeypatch.setattr(dio, "iter_frames", iter_frames)
        records = classify(model, [good, bad, good])
        assert_one_error_between_verdicts(records, bad, "not enough memory")

    @pytest.mark.parametrize("value, match", [(np.nan, "no finite value"), (np.inf, "infinite"),
                                              (-np.inf, "infinite")])
    def test_non_finite_frames_get_an_error_record(self, model, good, tmp_path, value, match):
        path = tmp_path / "nonfinite.npy"
        dio.write_image(path, np.full(SHAPE, value, np.float32))
        records = classify(model, [good, path, good])
        assert_one_error_between_verdicts(records, path, match)

    def test_nan_pixels_are_ignored_like_masked_ones(self, model, tmp_path):
        frame = np.full(SHAPE, 4.0, np.float32)
        frame[:4] = np.nan
        path = tmp_path / "some_nan.npy"
        dio.write_image(path, frame)
        assert isinstance(classify(model, [path])[0], FrameRecord)

    def test_model_failing_once_costs_no_verdict(self, model, good, monkeypatch):
        calls = []

        def predict_proba(images):
            if np.asarray(images).max() > 0:  # a frame (the pipeline's warm-up scores a blank input first)
                calls.append(len(images))
                if len(calls) == 1:
                    raise MemoryError()
            return np.tile([0.0, 1.0, 0.0, 0.0, 0.0], (len(images), 1))

        monkeypatch.setattr(model, "predict_proba", predict_proba)
        records = classify(model, [good, good, good], batch_size=2)
        # a failed call of several frames is tried again frame by frame; a failed call of one frame is its error
        errors = [r for r in records if isinstance(r, FileError)]
        assert len(records) == 3 and len(errors) == (1 if calls[0] == 1 else 0)
        assert all(isinstance(r, FrameRecord) for r in records[len(errors):])

    def test_model_failing_on_every_frame_fails_those_frames_only(self, model, good, monkeypatch):
        def predict_proba(images):
            if len(images) and images[0].mean() > 0:  # any real frame
                raise MemoryError()
            return np.tile([0.0, 1.0, 0.0, 0.0, 0.0], (len(images), 1))

        monkeypatch.setattr(model, "predict_proba", predict_proba)
        records = classify(model, [good, good, tmp_missing := good.with_name("missing.npy")], batch_size=2)
        assert [type(r) for r in records] == [FileError, FileError, FileError]
        assert records[0].message == f"{good}: frame 0: classification failed: out of memory (MemoryError)"
        assert str(tmp_missing) in records[2].message

    def test_detector_of_another_shape(self, model, good, tmp_path):
        from diffranet.inference.detector_files import load_detector

        path = tmp_path / "wide.npy"
        dio.write_image(path, np.ones((512, 1024), np.uint16))
        records = classify(model, [path], detector=load_detector("pilatus6m"))
        assert isinstance(records[0], FileError)
        assert "512 x 1024 pixels, but the detector pilatus6m has 2527 x 2463" in records[0].message


# --------------------------------------------------------------------------- the commands


def run(capsys, *argv):
    status = main([*map(str, argv)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


class TestClassifyCommand:
    def test_directory_in_name_order(self, small_model_file, tmp_path, capsys):
        frame = np.ones(SHAPE, np.uint16)
        for name in ("b.npy", "a.pgm", "c.tif", "notes.txt", ".hidden.npy"):
            if name.endswith(".txt"):
                (tmp_path / name).write_text("x")
            else:
                dio.write_image(tmp_path / name, frame)
        (tmp_path / "sub").mkdir()
        dio.write_image(tmp_path / "sub" / "d.npy", frame)
        status, out, err = run(capsys, "classify", "--model", small_model_file, tmp_path)
        assert status == 0, err
        assert [os.path.basename(json.loads(line)["file"]) for line in out.splitlines()] == ["a.pgm", "b.npy", "c.tif"]

    def test_unreadable_directory_is_one_error(self, small_model_file, good, tmp_path, capsys, monkeypatch):
        locked = tmp_path / "locked"
        locked.mkdir()
        real = os.listdir

        def listdir(path):
            if os.fspath(path) == str(locked):
                raise PermissionError(13, "Permission denied", str(path))
            return real(path)

        monkeypatch.setattr(os, "listdir", listdir)
        status, out, err = run(capsys, "classify", "--model", small_model_file, locked, good)
        assert status == 1 and len(out.splitlines()) == 1
        assert "locked: cannot list the directory (Permission denied)" in err

    def test_quiet(self, small_model_file, good, capsys):
        status, out, err = run(capsys, "classify", "--quiet", "--model", small_model_file, good)
        assert status == 0 and len(out.splitlines()) == 1 and err == ""

    @pytest.mark.parametrize("option", [["--batch-size", "0"], ["--max-frame-pixels", "0"]])
    def test_bad_options_stop_before_any_frame_and_summary(self, small_model_file, good, capsys, option):
        status, out, err = run(capsys, "classify", *option, "--model", small_model_file, good)
        assert status == 2 and out == ""
        assert err.startswith("diffranet classify: error:") and "frames" not in err

    def test_max_frame_pixels_option(self, small_model_file, good, capsys):
        status, out, err = run(capsys, "classify", "--max-frame-pixels", "100", "--model", small_model_file, good)
        assert status == 1 and out == "" and "more than the limit of 100" in err

    def test_huge_file_among_good_ones(self, small_model_file, good, tmp_path, capsys):
        huge = tiff_header_only(tmp_path / "huge.tif", 65535, 65535)
        status, out, err = run(capsys, "classify", "--model", small_model_file, good, huge, good)
        assert status == 1 and len(out.splitlines()) == 2
        assert len([line for line in err.splitlines() if "huge.tif" in line and "more than the limit" in line]) == 1
        assert "2 frames" in err and "1 unreadable" in err


class TestWatch:
    def write(self, path, value=1):
        dio.write_image(path, np.full(SHAPE, value, np.uint16))
        return str(path)

    def test_recursive_subfolders(self, tmp_path):
        (tmp_path / "run1" / "deep").mkdir(parents=True)
        (tmp_path / ".hidden").mkdir()
        files = [self.write(tmp_path / "top.npy"), self.write(tmp_path / "run1" / "a.npy"),
                 self.write(tmp_path / "run1" / "deep" / "b.npy")]
        self.write(tmp_path / ".hidden" / "c.npy")
        flat = DirectoryWatcher(tmp_path, settle_s=0, include_existing=True)
        assert [str(p) for p in flat.poll(0.0) + flat.poll(1.0)] == [files[0]]
        deep = DirectoryWatcher(tmp_path, settle_s=0, include_existing=True, recursive=True)
        assert sorted(str(p) for p in deep.poll(0.0) + deep.poll(1.0)) == sorted(files)

    def test_symlinks_confined_unless_followed(self, tmp_path):
        inside, outside = tmp_path / "watched", tmp_path / "elsewhere"
        inside.mkdir()
        outside.mkdir()
        target = self.write(outside / "secret.npy")
        own = self.write(inside / "own.npy")
        (inside / "out.npy").symlink_to(target)
        (inside / "in.npy").symlink_to(own)
        (inside / "dir").symlink_to(outside, target_is_directory=True)
        (inside / "loop1.npy").symlink_to(inside / "loop2.npy")
        (inside / "loop2.npy").symlink_to(inside / "loop1.npy")
        (inside / "self").symlink_to(inside, target_is_directory=True)
        os.mkfifo(inside / "pipe.npy")
        confined = DirectoryWatcher(inside, settle_s=0, include_existing=True, recursive=True)
        names = sorted(p.name for p in confined.poll(0.0) + confined.poll(1.0))
        assert names == ["in.npy", "own.npy"]
        followed = DirectoryWatcher(inside, settle_s=0, include_existing=True, recursive=True,
                                    follow_symlinks=True)
        paths = sorted(str(p.relative_to(inside)) for p in followed.poll(0.0) + followed.poll(1.0))
        assert paths == ["dir/secret.npy", "in.npy", "out.npy", "own.npy"]

    def test_huge_file_dropped_in_does_not_stop_watch(self, model, tmp_path):
        tiff_header_only(tmp_path / "huge.tif", 65535, 65535)
        self.write(tmp_path / "good.npy")
        (tmp_path / "a.h5").symlink_to(tmp_path / "b.h5")
        (tmp_path / "b.h5").symlink_to(tmp_path / "a.h5")
        stop = threading.Event()
        records = []

        class Writer:
            def put(self, record):
                records.append(json.loads(json.dumps(record)))
                if len(records) == 2:
                    stop.set()

        watcher = DirectoryWatcher(tmp_path, settle_s=0, include_existing=True)
        bounded(lambda: watch_directory(model, watcher, Writer(), stop, poll_s=0.01))
        assert sorted((os.path.basename(r["file"]), "error" in r) for r in records) == [
            ("good.npy", False), ("huge.tif", True)]


def test_status_line_when_idle_has_no_nan():
    snapshot = LiveStats(queue_size=8).snapshot()
    assert "nan" not in snapshot.status_line().lower() and "no latency yet" in snapshot.status_line()
    stats = LiveStats(queue_size=8)
    stats.count({"label": "strong", "hit": True, "latency_ms": 2.0})
    assert "latency p50 2.0 ms p99 2.0 ms" in stats.snapshot().status_line()
