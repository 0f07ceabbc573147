"""The veto's output: hit frames in NXmx / CXI files, CrystFEL geometry and event list, through the stream."""

import json
import time

import numpy as np
import pytest

from diffranet.inference import FrameGeometry
from diffranet.live.frames import Frame
from diffranet.live.hits import HitWriter, crystfel_geometry
from live.harness import SIZE, TIMEOUT_S, free_address, running_service, start_process, stream_until_sigterm

h5py = pytest.importorskip("h5py")

GEOMETRY = FrameGeometry(0.075, 150.0, 1.0, (30.0, 20.0))


def _frame(value, mask=None, geometry=GEOMETRY, shape=(40, 50), dtype=np.uint16):
    data = (np.arange(shape[0] * shape[1]).reshape(shape) % 97 + value).astype(dtype)
    return Frame({"id": value}, data, mask=mask, geometry=geometry, saturation=65535)


def _event_lines(writer):
    return writer.event_list.read_text().splitlines()


class TestHitWriter:
    def test_frames_files_geometry_and_event_list(self, tmp_path):
        from diffranet import io as dio

        mask = np.zeros((40, 50), bool)
        mask[:, 10] = True
        other_mask = mask.copy()
        other_mask[0, 0] = True
        writer = HitWriter(tmp_path / "hits", frames_per_file=3, compression="gzip").start()
        frames = [_frame(i, mask) for i in range(4)] + [_frame(4, other_mask)]  # a new mask: a new file
        places = [writer.add({"id": f.tags["id"], "hit": True}, f) for f in frames]
        writer.close()
        files = [writer.path(n) for n in range(3)]
        assert [p["hit_file"] for p in places] == [str(files[n]) for n in (0, 0, 0, 1, 2)]
        assert [p["hit_event"] for p in places] == [0, 1, 2, 0, 0]
        assert _event_lines(writer) == [f"{files[n]} //{e}" for n, e in ((0, 0), (0, 1), (0, 2), (1, 0), (2, 0))]
        assert (writer.files_written, writer.frames_written, writer.failures) == (3, 5, 0)
        # diffranet's own reader finds frames, mask and geometry
        assert dio.count_frames(files[0]) == 3
        assert np.array_equal(dio.read_image(files[0], frame=2), frames[2].data)
        assert np.array_equal(dio.read_mask(files[2]), other_mask)
        assert dio.read_geometry(files[0]) == {"pixel_size_mm": 0.075, "distance_mm": 150.0, "wavelength_A": 1.0,
                                               "beam_center_px": (30.0, 20.0), "saturation": 65534.0}
        with h5py.File(files[0]) as f:
            assert f["entry_1/data_1/data"].id == f["entry/data/data"].id  # the CXI name is the same dataset
            assert f["entry_1/data_1/mask"].id == f["entry/instrument/detector/pixel_mask"].id
            assert f["entry/definition"][()] == b"NXmx"
            assert [json.loads(v)["id"] for v in f["entry/diffranet/verdict"][()]] == [0, 1, 2]
            assert f["entry/instrument/detector/pixel_mask"][0, 10] == 1 and f["entry/sample/depends_on"][()] == b"."
            det_z = f["entry/instrument/detector/transformations/det_z"]
            assert det_z[()] == 150.0 and list(det_z.attrs["vector"]) == [0, 0, 1]
            offset = f["entry/instrument/detector/module/module_offset"]
            # the beam (30, 20) pixels from the corner of pixel (0, 0), pixels running along -x and -y
            assert np.allclose(offset.attrs["offset"], [30 * 0.075, 20 * 0.075, 0])
            assert list(f["entry/instrument/detector/module/fast_pixel_direction"].attrs["vector"]) == [-1, 0, 0]
            assert f["entry_1/instrument_1/source_1/energy"][()] == pytest.approx(1.98644586e-15)  # 1 A in J
            assert f["entry/instrument/detector/saturation_value"][()] == 65534
        geom = files[0].with_suffix(".geom").read_text()
        assert "data = /entry_1/data_1/data" in geom and "dim0 = %" in geom and "p0/max_fs = 49" in geom
        assert "mask0_data = /entry_1/data_1/mask" in geom
        assert sorted(p.name for p in (tmp_path / "hits").iterdir()) == sorted(
            [p.name for p in files] + [p.with_suffix(".geom").name for p in files] + [writer.event_list.name])

    def test_a_file_appears_only_complete_and_bslz4_frames_are_stored_as_received(self, tmp_path):
        from diffranet.live.compression import CompressedArray, compress

        writer = HitWriter(tmp_path, file_seconds=0.2, compression="bitshuffle").start()
        frame = _frame(7, geometry=None)
        algorithm, modifier, payload = compress(frame.data, "bslz4")
        packed = Frame({"id": 7}, CompressedArray(algorithm, modifier, payload, frame.data.dtype, frame.data.shape))
        writer.add({"id": 7}, packed)
        time.sleep(0.3)
        assert not writer.path(0).exists() and not writer.event_list.exists()  # still open: no final name
        writer.tick()  # 0.2 s old: completed
        writer.add({"id": 8}, _frame(8, geometry=None))  # goes to the next file
        deadline = time.monotonic() + TIMEOUT_S
        while not writer.event_list.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _event_lines(writer) == [f"{writer.path(0)} //0"]
        with h5py.File(writer.path(0)) as f:
            assert np.array_equal(f["entry/data/data"][0], frame.data)
            assert "beam" not in f["entry/instrument"]  # no geometry known: none written
        assert not writer.path(0).with_suffix(".geom").exists()
        writer.close()
        assert _event_lines(writer)[-1] == f"{writer.path(1)} //0"
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left

    def test_a_frame_that_cannot_be_written_keeps_its_slot_and_the_others_their_events(self, tmp_path):
        from diffranet.live.compression import CompressedArray, compress

        writer = HitWriter(tmp_path, compression="none").start()
        good = [_frame(i) for i in range(3)]
        algorithm, modifier, payload = compress(good[1].data, "lz4")
        corrupt = Frame({"id": 1}, CompressedArray(algorithm, modifier, payload[:-30], good[1].data.dtype,
                                                   good[1].data.shape), geometry=GEOMETRY, saturation=65535)
        for frame in (good[0], corrupt, good[2]):
            writer.add({"id": frame.tags["id"]}, frame)
        writer.close()
        assert writer.failures == 1 and len(_event_lines(writer)) == 3
        with h5py.File(writer.path(0)) as f:
            data = f["entry/data/data"][()]
            verdicts = [json.loads(v) for v in f["entry/diffranet/verdict"][()]]
        assert np.array_equal(data[0], good[0].data) and np.array_equal(data[2], good[2].data)
        assert not data[1].any() and "write_error" in verdicts[1] and [v["id"] for v in verdicts] == [0, 1, 2]

    def test_the_queue_is_bounded_in_bytes(self, tmp_path):
        import threading

        frame = _frame(1)  # 4,000 bytes of pixels
        writer = HitWriter(tmp_path, max_queued_bytes=3 * frame.data.nbytes)  # not started: nothing is written
        for _ in range(3):
            writer.add({}, frame)
        fourth = threading.Thread(target=writer.add, args=({}, frame), daemon=True)
        fourth.start()
        fourth.join(0.3)
        assert fourth.is_alive()  # waits for room
        writer.start()
        fourth.join(TIMEOUT_S)
        assert not fourth.is_alive()
        writer.close()
        assert writer.frames_written == 4

    def test_closing_an_unstarted_writer_writes_nothing(self, tmp_path):
        writer = HitWriter(tmp_path)
        writer.close()
        assert list(tmp_path.iterdir()) == []

    @pytest.mark.parametrize("kwargs, message", [
        ({"frames_per_file": 0}, "frames_per_file"),
        ({"file_seconds": 0}, "file_seconds"),
        ({"compression": "zip"}, "compression"),
        ({"prefix": "../up"}, "prefix"),
        ({"prefix": ".hidden"}, "prefix"),
        ({"max_queued": 0}, "max_queued"),
        ({"max_queued_bytes": 0}, "max_queued_bytes"),
    ])
    def test_bad_settings_are_refused(self, tmp_path, kwargs, message):
        with pytest.raises(ValueError, match=message):
            HitWriter(tmp_path, **kwargs)


def test_crystfel_geometry_places_the_beam_at_the_panel_origin():
    text = crystfel_geometry((100, 200), FrameGeometry(0.172, 80.0, 1.5), mask=True)
    lines = dict(line.split(" = ", 1) for line in text.splitlines() if " = " in line)
    assert lines["p0/corner_x"] == "100.0" and lines["p0/corner_y"] == "50.0"  # the frame centre by default
    assert lines["clen"] == "0.08 m" and lines["wavelength"] == "1.5 A"
    assert float(lines["res"].split()[0]) == pytest.approx(1 / 172e-6)
    assert lines["mask0_badbits"] == "0x1" and lines["p0/max_ss"] == "99"


def _spot_frames(n, seed):
    """uint16 frames with a weak background; every other one crowded with 2 x 2-pixel spots (the test model's hits)."""
    rng = np.random.default_rng(seed)
    frames = rng.poisson(2.0, (n, SIZE, SIZE)).astype("<u2")
    for i in range(0, n, 2):
        for row, col in rng.integers(10, SIZE - 12, (300, 2)):
            frames[i, row:row + 2, col:col + 2] += 300
    return frames


def test_stream_writes_every_hit_frame_and_only_hits(tmp_path, model_path):
    from diffranet.live import StreamService
    from diffranet.live.sender import send_stream2

    n = 12
    frames = _spot_frames(n, seed=21)
    mask = np.zeros((SIZE, SIZE), np.uint32)
    mask[:, 60:62] = 1
    start = {"pixel_size_m": 688e-6, "distance_m": 0.08, "wavelength_A": 1.5, "beam_center_px": (64.0, 64.0),
             "pixel_mask": mask}
    input_address, publish_address = free_address(), free_address()
    hits = HitWriter(tmp_path / "hits")  # bitshuffle: the bslz4 payloads stored as received
    service = StreamService(model_path, input_address, publish_address, source_format="dectris",
                            log_path=tmp_path / "log.jsonl", hits=hits)
    with running_service(service) as (subscriber, _):
        sender = start_process(send_stream2, input_address, frames, series_id=3, start=start)
        assert subscriber.wait_for(lambda r: any(x.get("end") for x in r)), "no end-of-series record"
        sender.join(TIMEOUT_S)
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    verdicts = [r for r in records if "label" in r]
    assert len(verdicts) == n and all(isinstance(r["n_peaks"], int) for r in verdicts)
    hit_records = [r for r in verdicts if r["hit"]]
    assert hit_records and len(hit_records) < n  # the test needs both kinds
    assert all("hit_file" not in r for r in verdicts if not r["hit"])
    assert all(r["d_min_A"] is not None for r in hit_records if r["n_peaks"])  # the start message's geometry
    lines = _event_lines(hits)
    assert lines == [f"{r['hit_file']} //{r['hit_event']}" for r in hit_records]
    with h5py.File(hit_records[0]["hit_file"]) as f:
        stored = f["entry/data/data"][()]
        assert np.array_equal(f["entry/instrument/detector/pixel_mask"][()] != 0, mask != 0)
        assert [json.loads(v)["id"] for v in f["entry/diffranet/verdict"][()]] == [r["id"] for r in hit_records]
    assert np.array_equal(stored, frames[[r["id"] for r in hit_records]])  # the raw pixels, as sent


@pytest.mark.slow
def test_stream_cli_sigterm_completes_the_open_hit_file(tmp_path, model_path):
    from diffranet.live.sender import send_simple

    n = 400
    input_address, publish_address = free_address(), free_address()
    log, out = tmp_path / "verdicts.jsonl", tmp_path / "hits"
    sender = start_process(send_simple, input_address, _spot_frames(n, seed=22), rate_hz=40, linger_s=0)
    returncode, stderr = stream_until_sigterm(
        ["--model", model_path, "--input", input_address, "--publish", publish_address, "--quiet",
         "--write-hits", out, "--hits-per-file", "100000", "--hits-file-seconds", "3600",
         "--hits-compression", "gzip"], log, sender, n_lines=20)
    assert returncode == 0, stderr
    hit_records = [r for r in map(json.loads, log.read_text().splitlines()) if r.get("hit")]
    assert hit_records
    (event_list,) = out.glob("*.lst")
    assert event_list.read_text().splitlines() == [f"{r['hit_file']} //{r['hit_event']}" for r in hit_records]
    assert f"{len(hit_records)} hit frames in 1 files" in stderr
