"""Tests for diffranet.io: round trips, exact PGM bytes, errors naming the file."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from diffranet.io import (
    ImageFormatError,
    count_frames,
    iter_frames,
    read_image,
    read_mask,
    write_image,
)


def ramp(shape, dtype):
    """A deterministic image that uses high bits, so byte-order mistakes show."""
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    values = np.arange(np.prod(shape), dtype=np.float64).reshape(shape) * 977.0
    if info is not None:
        values = values % (info.max - max(info.min, 0) + 1) + max(info.min, 0)
    return values.astype(dtype)


def listdir(folder):
    return sorted(p.name for p in Path(folder).iterdir())


class TestPGM:
    def test_uint8_bytes_by_hand(self, tmp_path):
        path = tmp_path / "a.pgm"
        write_image(path, np.array([[0, 1, 2], [3, 4, 255]], dtype=np.uint8))
        assert path.read_bytes() == b"P5\n3 2\n255\n" + bytes([0, 1, 2, 3, 4, 255])

    def test_uint16_bytes_by_hand(self, tmp_path):
        path = tmp_path / "a.pgm"
        write_image(path, np.array([[0, 1, 256], [513, 4660, 65535]], dtype=np.uint16))
        payload = bytes([0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0x02, 0x01, 0x12, 0x34, 0xFF, 0xFF])
        assert path.read_bytes() == b"P5\n3 2\n65535\n" + payload

    @pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
    def test_round_trip(self, tmp_path, dtype):
        image = ramp((17, 23), dtype)
        path = tmp_path / "a.pgm"
        write_image(path, image)
        back = read_image(path)
        assert back.dtype == dtype and back.dtype.isnative
        np.testing.assert_array_equal(back, image)
        assert count_frames(path) == 1
        assert read_mask(path) is None
        assert [f.shape for f in iter_frames(path)] == [(17, 23)]

    def test_big_endian_input_written_the_same(self, tmp_path):
        image = ramp((4, 5), np.uint16)
        write_image(tmp_path / "a.pgm", image)
        write_image(tmp_path / "b.pgm", image.astype(">u2"))
        assert (tmp_path / "a.pgm").read_bytes() == (tmp_path / "b.pgm").read_bytes()

    def test_metadata_comments_and_foreign_header(self, tmp_path):
        path = tmp_path / "a.pgm"
        write_image(path, np.zeros((2, 3), np.uint8), label="hit")
        assert path.read_bytes().startswith(b"P5\n# label: hit\n3 2\n255\n")
        # comments and odd whitespace anywhere in the header, maxval below 255
        other = tmp_path / "b.pgm"
        other.write_bytes(b"P5 # made elsewhere\n3\t# w\n2\r\n100\n" + bytes([0, 1, 2, 3, 4, 100]))
        np.testing.assert_array_equal(read_image(other), [[0, 1, 2], [3, 4, 100]])

    def test_plain_p2(self, tmp_path):
        path = tmp_path / "a.pgm"
        path.write_bytes(b"P2\n3 2\n1000\n0 1 2\n3 4 1000\n")
        back = read_image(path)
        assert back.dtype == np.uint16
        np.testing.assert_array_equal(back, [[0, 1, 2], [3, 4, 1000]])

    @pytest.mark.parametrize(
        "content, message",
        [
            (b"P5\n3 2\n255\n" + bytes(5), "truncated PGM file"),
            (b"P5\n3 2\n65535\n" + bytes(11), "need 12 bytes"),
            (b"P6\n3 2\n255\n" + bytes(18), "not a PGM file"),
            (b"", "not a PGM file"),
            (b"P5\n3 2\n", "no maxval"),
            (b"P5\n3 x\n255\n" + bytes(6), "height is b'x'"),
            (b"P5\n3 2\n0\n" + bytes(6), "bad PGM maxval 0"),
            (b"P5\n3 2\n70000\n" + bytes(12), "bad PGM maxval 70000"),
            (b"P5\n0 2\n255\n", "at least 1x1"),
            (b"P5\n3 2\n100\n" + bytes([0, 1, 2, 3, 4, 101]), "exceeds maxval 100"),
            (b"P2\n3 2\n255\n1 2 3\n", "expected 6 decimal pixel values"),
        ],
    )
    def test_malformed(self, tmp_path, content, message):
        path = tmp_path / "bad.pgm"
        path.write_bytes(content)
        with pytest.raises(ImageFormatError, match=message) as info:
            read_image(path)
        assert str(path) in str(info.value)


class TestPNG:
    @pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
    def test_round_trip(self, tmp_path, dtype):
        image = ramp((19, 7), dtype)
        path = tmp_path / "a.png"
        write_image(path, image, source="test")
        back = read_image(path)
        assert back.dtype == dtype
        np.testing.assert_array_equal(back, image)

    def test_corrupt(self, tmp_path):
        path = tmp_path / "bad.png"
        write_image(path, ramp((32, 32), np.uint8))
        path.write_bytes(path.read_bytes()[:60])
        with pytest.raises(ImageFormatError, match="not a readable PNG file") as info:
            read_image(path)
        assert str(path) in str(info.value)
        assert info.value.__cause__ is not None

    def test_garbage(self, tmp_path):
        path = tmp_path / "bad.png"
        path.write_bytes(b"this is not an image at all")
        with pytest.raises(ImageFormatError, match=str(path)):
            read_image(path)

    def test_colour_refused(self, tmp_path):
        from PIL import Image

        path = tmp_path / "rgb.png"
        Image.new("RGB", (4, 3)).save(path)
        with pytest.raises(ImageFormatError, match="not a greyscale image"):
            read_image(path)


class TestErrors:
    def test_missing_file(self, tmp_path):
        path = tmp_path / "nowhere.pgm"
        with pytest.raises(FileNotFoundError, match="nowhere.pgm"):
            read_image(path)

    def test_directory(self, tmp_path):
        folder = tmp_path / "dir.png"
        folder.mkdir()
        with pytest.raises(IsADirectoryError):
            read_image(folder)

    def test_unknown_extension(self, tmp_path):
        path = tmp_path / "a.jpg"
        path.write_bytes(b"x")
        with pytest.raises(ValueError, match=r"unknown image file extension '\.jpg'.*\.pgm"):
            read_image(path)
        with pytest.raises(ValueError, match="supported"):
            write_image(path, np.zeros((2, 2), np.uint8))

    def test_extension_case_insensitive(self, tmp_path):
        path = tmp_path / "A.PGM"
        write_image(path, np.ones((2, 2), np.uint8))
        assert read_image(str(path)).sum() == 4

    def test_frame_out_of_range_single_frame(self, tmp_path):
        path = tmp_path / "a.pgm"
        write_image(path, np.ones((2, 2), np.uint8))
        assert read_image(path, frame=0).shape == (2, 2)
        with pytest.raises(ValueError, match=r"a\.pgm: frame index 1 is out of range; the file holds 1 frame"):
            read_image(path, frame=1)
        with pytest.raises(ValueError, match="frame must be >= 0"):
            read_image(path, frame=-1)
        with pytest.raises(ValueError, match="frame must be an integer"):
            read_image(path, frame=0.5)

    def test_dataset_refused_for_plain_formats(self, tmp_path):
        path = tmp_path / "a.png"
        write_image(path, np.ones((2, 2), np.uint8))
        with pytest.raises(ValueError, match="dataset= applies to HDF5 and npz"):
            read_image(path, dataset="/entry/data/data")

    @pytest.mark.parametrize(
        "name, image, message",
        [
            ("a.pgm", np.zeros((2, 3, 4), np.uint8), r"needs a non-empty 2-D image, got dtype uint8, shape \(2, 3, 4\)"),
            ("a.pgm", np.zeros((2, 3), np.float32), r"cannot store dtype float32, shape \(2, 3\)"),
            ("a.pgm", np.zeros((2, 3), bool), "cannot store dtype bool"),
            ("a.pgm", np.zeros((2, 3), np.int32), "Convert explicitly"),
            ("a.pgm", np.zeros((0, 3), np.uint8), "non-empty"),
            ("a.png", np.zeros((2, 3), np.complex64), "cannot store dtype complex64"),
            ("a.png", np.zeros(5, np.uint8), r"shape \(5,\)"),
        ],
    )
    def test_unsupported_write(self, tmp_path, name, image, message):
        path = tmp_path / name
        with pytest.raises(ValueError, match=message) as info:
            write_image(path, image)
        assert str(path) in str(info.value)
        assert listdir(tmp_path) == []

    def test_bad_write_options(self, tmp_path):
        image = np.zeros((2, 3), np.uint8)
        with pytest.raises(ValueError, match="no compression option"):
            write_image(tmp_path / "a.pgm", image, compression="gzip")
        with pytest.raises(ValueError, match="cannot store a mask"):
            write_image(tmp_path / "a.png", image, mask=np.zeros((2, 3), bool))
        with pytest.raises(ValueError, match="single-line"):
            write_image(tmp_path / "a.pgm", image, note="two\nlines")
        with pytest.raises(FileNotFoundError, match="no-such-dir"):
            write_image(tmp_path / "no-such-dir" / "a.pgm", image)
        assert listdir(tmp_path) == []

    def test_atomic_write_leaves_old_file(self, tmp_path, monkeypatch):
        path = tmp_path / "a.pgm"
        write_image(path, np.full((2, 3), 7, np.uint8))
        before = path.read_bytes()

        def fail(*args, **kwargs):
            raise OSError("disk full")

        monkeypatch.setattr(os, "replace", fail)
        with pytest.raises(OSError, match="disk full"):
            write_image(path, np.full((2, 3), 9, np.uint8))
        assert path.read_bytes() == before
        assert listdir(tmp_path) == ["a.pgm"]
