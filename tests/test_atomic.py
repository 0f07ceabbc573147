"""diffranet._atomic: a file is replaced whole or not at all, even with concurrent writers."""

import os
import subprocess
import sys
import time

import pytest

from diffranet._atomic import TEMPORARY_GLOB, atomic_path, atomic_write, remove_temporaries

# Each writer process rewrites the same file many times with a payload of its own, large enough that a
# plain open/write could be observed half-written.
WRITER = """
import sys
from diffranet._atomic import atomic_write
path, marker, rounds = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3])
for i in range(rounds):
    with atomic_write(path, fsync=False) as fh:
        fh.write(marker * 200_000)
        fh.flush()
        fh.write(marker * 200_000)
"""


def test_two_writer_processes_never_corrupt_the_file(tmp_path):
    path = tmp_path / "shared.bin"
    path.write_bytes(b"0" * 400_000)
    valid = {marker * 400_000 for marker in (b"0", b"A", b"B")}
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), marker, "60"])
               for marker in ("A", "B")]
    seen = set()
    while any(w.poll() is None for w in writers):
        content = path.read_bytes()
        assert content in valid, f"torn file: {len(content)} bytes, starts {content[:10]!r}"
        seen.add(content[:1])
        time.sleep(0.001)
    assert [w.returncode for w in writers] == [0, 0]
    assert path.read_bytes() in valid - {b"0" * 400_000}
    assert not list(tmp_path.glob(TEMPORARY_GLOB)), "temporary files left behind"


def test_failed_write_keeps_the_old_content_and_no_temporary(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_write(path, "w") as fh:
            fh.write("half of the new")
            raise RuntimeError("disk full")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["settings.json"]


def test_temporary_names_are_unique_and_keep_the_extension(tmp_path):
    target = tmp_path / "image.h5"
    with atomic_path(target) as first, atomic_path(target) as second:
        assert first != second and first.parent == second.parent == tmp_path
        assert first.suffix == ".h5" and first.name.startswith(".")
        first.write_bytes(b"1")
        second.write_bytes(b"2")
    assert target.read_bytes() == b"1"  # the outer write finished last


def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        with atomic_write(tmp_path / "nowhere" / "file.bin"):
            pass


def test_bad_mode(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        with atomic_write(tmp_path / "file.bin", "a"):
            pass


def test_remove_temporaries(tmp_path):
    (tmp_path / ".shard.h5.0011aabb.part.h5").write_bytes(b"partial")
    (tmp_path / "shard.h5").write_bytes(b"kept")
    assert remove_temporaries(tmp_path) == 1
    assert os.listdir(tmp_path) == ["shard.h5"]
