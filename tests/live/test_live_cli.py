"""``diffranet stream`` and ``diffranet watch`` as a beamline runs them: separate processes, signals."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from diffranet.live.sender import send_simple
from live.harness import SIZE, TIMEOUT_S, Subscriber, frames_with_spots, free_address, start_process


def _diffranet(*args, **kwargs):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "diffranet", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **kwargs)


def _stop(process):
    """Kill a process still running after a failed test, and close its pipes."""
    if process.poll() is None:
        process.kill()
    process.communicate(timeout=TIMEOUT_S)


def _wait_for_file_lines(path, n, process, timeout=TIMEOUT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        if path.exists() and path.read_text().count("\n") >= n:
            return True
        time.sleep(0.05)
    return False


def test_stream_sigterm_mid_stream_flushes_every_accepted_frame(tmp_path, model_path):
    n = 2000
    input_address, publish_address = free_address(), free_address()
    log = tmp_path / "verdicts.jsonl"
    service = _diffranet("stream", "--model", model_path, "--input", input_address, "--publish", publish_address,
                         "--log", log, "--status-interval", "0.2", "--queue-size", "2000")
    sender = None
    try:
        subscriber = Subscriber(publish_address)
        subscriber.wait_connected()  # verdicts published before the subscription arrives would be lost
        sender = start_process(send_simple, input_address, frames_with_spots(n, seed=6), rate_hz=50, linger_s=0)
        assert _wait_for_file_lines(log, 30, service), "no verdicts logged"
        service.send_signal(signal.SIGTERM)
        _, stderr = service.communicate(timeout=TIMEOUT_S)
    finally:
        _stop(service)
        if sender is not None:
            sender.kill()
    assert service.returncode == 0, stderr
    records = [json.loads(line) for line in log.read_text().splitlines()]  # every line complete JSON
    ids = [r["id"] for r in records]
    assert 30 <= len(ids) < n
    assert ids == list(range(len(ids)))  # in order, none lost among those received, none twice
    assert not any(r.get("dropped") or "error" in r for r in records)
    assert "frames/s" in stderr and "queue" in stderr and "dropped" in stderr  # the status line
    assert f"done: {len(ids)} frames" in stderr
    assert subscriber.wait_for(lambda r: len(r) >= len(ids), timeout=5)
    subscriber.close()
    assert subscriber.records == records  # what was published is what was logged


def test_stream_reports_a_bad_model_file(tmp_path):
    bad = tmp_path / "model.dfm"
    bad.write_bytes(b"not a model")
    result = subprocess.run([sys.executable, "-m", "diffranet", "stream", "--model", str(bad), "--input",
                             free_address(), "--publish", free_address(), "--log", str(tmp_path / "log")],
                            capture_output=True, text=True, timeout=TIMEOUT_S)
    assert result.returncode == 2 and "diffranet stream: error:" in result.stderr


def _write_slowly(path, data, pause_s):
    """Write half the bytes, keep the file open for ``pause_s``, then the rest."""
    half = len(data) // 2
    with open(path, "wb") as f:
        f.write(data[:half])
        f.flush()
        time.sleep(pause_s)
        f.write(data[half:])


def test_watch_classifies_new_files_once_complete(tmp_path, model_path, model):
    from diffranet.io import write_image

    watched = tmp_path / "images"
    watched.mkdir()
    frames = frames_with_spots(3, seed=7).astype(np.float32)
    write_image(watched / "before.tif", frames[0])  # present at start: not classified
    log = tmp_path / "watch.jsonl"
    process = _diffranet("watch", "--model", model_path, watched, "--settle", "0.3", "--poll", "0.05",
                         "--log", log, "--quiet")
    try:
        assert "watching" in process.stderr.readline()  # model loaded, first look at the directory taken
        staging = tmp_path / "staging.tif"
        write_image(staging, frames[1])
        _write_slowly(watched / "slow.tif", staging.read_bytes(), pause_s=2.0)  # half-written for 2 s
        (watched / "corrupt.tif").write_bytes(b"II*\x00" + b"\x00" * 50)
        (watched / "vanishing.tif").write_bytes(staging.read_bytes())
        (watched / "vanishing.tif").unlink()
        write_image(watched / "after.tif", frames[2])
        assert _wait_for_file_lines(log, 3, process), "watch did not classify the new files"
        # a file written after those is classified after anything still due for them (a second verdict)
        write_image(watched / "last.tif", frames[2])
        assert _wait_for_file_lines(log, 4, process), "watch did not classify the last file"
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=TIMEOUT_S)
    finally:
        _stop(process)
    assert process.returncode == 0, stderr
    records = [json.loads(line) for line in stdout.splitlines()]
    assert records == [json.loads(line) for line in log.read_text().splitlines()]
    by_file = {os.path.basename(r["file"]): r for r in records}
    assert sorted(by_file) == ["after.tif", "corrupt.tif", "last.tif", "slow.tif"]
    assert len(records) == 4 and os.path.basename(records[-1]["file"]) == "last.tif"  # each file once, in order
    assert "error" in by_file["corrupt.tif"]
    expected = model.classify([frames[1], frames[2]])
    for name, verdict in zip(["slow.tif", "after.tif"], expected):
        assert {k: by_file[name][k] for k in ("label", "hit", "proba")} == verdict
    assert "done: 3 frames" in stderr and "1 errors" in stderr


def test_watcher_waits_for_the_writer_to_close(tmp_path):
    from diffranet.live import DirectoryWatcher

    watcher = DirectoryWatcher(tmp_path, settle_s=0.0)
    path = tmp_path / "frame.cbf"
    with open(path, "wb") as f:
        f.write(b"partial")
        f.flush()
        assert watcher.poll(now=0.0) == []
        assert watcher.poll(now=10.0) == []  # settled, but still open for writing
    assert watcher.poll(now=20.0) == [path]
    assert watcher.poll(now=30.0) == []  # once per version
    path.write_bytes(b"rewritten, longer")
    assert watcher.poll(now=40.0) == []
    assert watcher.poll(now=50.0) == [path]


def test_watcher_settle_time_and_names(tmp_path):
    from diffranet.live import DirectoryWatcher

    watcher = DirectoryWatcher(tmp_path, settle_s=5.0)
    for name in ("a.cbf", ".hidden.cbf", "b.cbf.part", "notes.txt", "empty.h5"):
        (tmp_path / name).write_bytes(b"" if name == "empty.h5" else b"data")
    assert watcher.poll(now=0.0) == []
    assert watcher.poll(now=4.0) == []
    assert watcher.poll(now=5.5) == [tmp_path / "a.cbf"]


def test_watcher_bad_directory(tmp_path):
    from diffranet.live import DirectoryWatcher

    with pytest.raises(ValueError, match="not a directory"):
        DirectoryWatcher(tmp_path / "missing")
