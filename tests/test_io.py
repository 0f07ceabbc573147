"""Tests for diffranet.io: round trips, exact PGM bytes, errors naming the file."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import diffranet.io as dio

from diffranet.io import (
    ImageFormatError,
    count_frames,
    iter_frames,
    read_image,
    read_mask,
    write_frames,
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


class TestTIFF:
    @pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.float32])
    def test_round_trip(self, tmp_path, dtype):
        image = ramp((13, 21), dtype)
        if dtype == np.float32:
            image = image / 7 - 3.5
            image[0, 0] = np.nan
        path = tmp_path / "a.tif"
        write_image(path, image, exposure_s=0.1)
        back = read_image(path)
        assert back.dtype == dtype
        np.testing.assert_array_equal(back, image)

    def test_multi_page(self, tmp_path):
        import tifffile

        stack = ramp((3, 4, 5), np.uint16)
        path = tmp_path / "stack.tiff"
        with tifffile.TiffWriter(path) as tif:
            for page in stack:
                tif.write(page)
        assert count_frames(path) == 3
        np.testing.assert_array_equal(read_image(path, frame=2), stack[2])
        np.testing.assert_array_equal(np.stack(list(iter_frames(path))), stack)
        with pytest.raises(ValueError, match="holds 3 frames; pass frame="):
            read_image(path)

    def test_corrupt(self, tmp_path):
        path = tmp_path / "bad.tif"
        path.write_bytes(b"II*\x00" + bytes(4) + b"not really a tiff")
        with pytest.raises(ImageFormatError, match="not a readable TIFF file") as info:
            read_image(path)
        assert str(path) in str(info.value)


class TestCBF:
    def pilatus_like(self):
        image = ramp((40, 30), np.int32) * 50
        image[:, 10] = -1  # module gap
        image[5, 5] = -2  # bad pixel
        return image

    def test_round_trip_and_mask(self, tmp_path):
        image = self.pilatus_like()
        path = tmp_path / "a.cbf"
        write_image(path, image, Exposure_time="0.019 s")
        back = read_image(path)
        assert back.dtype == np.int32
        np.testing.assert_array_equal(back, image)
        np.testing.assert_array_equal(read_mask(path), image < 0)
        assert read_mask(path).sum() == 41

    @pytest.mark.parametrize("compress", ["gz", "bz2"])
    def test_compressed_read_only(self, tmp_path, compress):
        import bz2
        import gzip

        image = self.pilatus_like()
        plain = tmp_path / "a.cbf"
        write_image(plain, image)
        packed = tmp_path / f"a.cbf.{compress}"
        packed.write_bytes({"gz": gzip.compress, "bz2": bz2.compress}[compress](plain.read_bytes()))
        np.testing.assert_array_equal(read_image(packed), image)
        with pytest.raises(ValueError, match="can be read but not written"):
            write_image(packed, image)

    def test_integer_types_converted(self, tmp_path):
        path = tmp_path / "a.cbf"
        write_image(path, ramp((4, 5), np.uint16))
        np.testing.assert_array_equal(read_image(path), ramp((4, 5), np.uint16).astype(np.int32))

    def test_float_and_overflow_refused(self, tmp_path):
        with pytest.raises(ValueError, match=r"cannot store dtype float32, shape \(4, 5\).*np\.rint"):
            write_image(tmp_path / "a.cbf", np.zeros((4, 5), np.float32))
        with pytest.raises(ValueError, match="outside"):
            write_image(tmp_path / "a.cbf", np.full((4, 5), 2**31, np.int64))
        assert listdir(tmp_path) == []

    @pytest.mark.parametrize(
        "damage, message",
        [
            (lambda raw: raw[: len(raw) - 2000], "truncated CBF file"),
            (lambda raw: raw[: raw.index(b"\x0c\x1a\x04\xd5") + 10], "truncated CBF file"),
            (lambda raw: raw[:-3000] + b"\x80" * 50 + raw[-2950:], "does not match its Content-MD5"),
            (lambda raw: raw[:200], "no binary data section"),
            (lambda raw: b"garbage", "no binary data section"),
        ],
    )
    def test_malformed(self, tmp_path, damage, message):
        path = tmp_path / "bad.cbf"
        write_image(path, ramp((60, 70), np.int32))
        path.write_bytes(damage(path.read_bytes()))
        with pytest.raises(ImageFormatError, match=message) as info:
            read_image(path)
        assert str(path) in str(info.value)


class TestHDF5:
    @pytest.mark.parametrize("compression", [None, "lz4", "none"])
    @pytest.mark.parametrize("dtype", [np.uint16, np.int32, np.float32])
    def test_single_round_trip(self, tmp_path, dtype, compression):
        import h5py

        image = ramp((12, 9), dtype)
        path = tmp_path / "a.h5"
        write_image(path, image, compression=compression, detector="JUNGFRAU", exposure_s=0.001)
        back = read_image(path)
        assert back.dtype == dtype
        np.testing.assert_array_equal(back, image)
        assert count_frames(path) == 1 and read_mask(path) is None
        with h5py.File(path, "r") as f:
            dset = f["/entry/data/data"]
            assert dset.shape == (12, 9) and dset.chunks == (12, 9)
            assert dset.attrs["detector"] == "JUNGFRAU"
            assert f["/entry"].attrs["NX_class"] == "NXentry"
            assert f["/entry/data"].attrs["NX_class"] == "NXdata"
            assert f["/entry/data"].attrs["signal"] == "data"
            plist = dset.id.get_create_plist()
            filters = {plist.get_filter(i)[0] for i in range(plist.get_nfilters())}
        expected = {None: h5py.h5z.FILTER_DEFLATE, "lz4": 32004, "none": None}[compression]  # 32004: HDF5 LZ4 filter id
        assert expected in filters if expected else not filters

    @pytest.mark.parametrize("as_iterator", [False, True])
    def test_multi_frame_round_trip(self, tmp_path, as_iterator):
        import h5py

        stack = ramp((5, 6, 7), np.uint16)
        mask = np.zeros((6, 7), bool)
        mask[2, 3] = True
        path = tmp_path / "run.nxs"
        frames = (frame for frame in stack) if as_iterator else stack
        write_frames(path, frames, compression="bitshuffle", mask=mask)
        assert count_frames(path) == 5
        np.testing.assert_array_equal(read_image(path, frame=4), stack[4])
        np.testing.assert_array_equal(np.stack(list(iter_frames(path))), stack)
        np.testing.assert_array_equal(read_mask(path), mask)
        with h5py.File(path, "r") as f:
            dset = f["/entry/data/data"]
            assert dset.chunks == (1, 6, 7) and dset.maxshape == (None, 6, 7)

    def test_iter_frames_is_lazy(self, tmp_path):
        path = tmp_path / "run.h5"
        write_frames(path, ramp((3, 4, 4), np.uint8))
        frames = iter_frames(path)
        path.unlink()  # POSIX: the file is opened on the first frame, so this must now fail
        with pytest.raises((FileNotFoundError, ImageFormatError)):
            next(frames)

    def test_auto_detect_layouts(self, tmp_path):
        import h5py

        image = ramp((4, 5), np.int32)
        layouts = {
            "cxi.cxi": "/entry_1/data_1/data",
            "plain.h5": "/some/where/images",
        }
        for name, dataset in layouts.items():
            with h5py.File(tmp_path / name, "w") as f:
                f[dataset] = image
                f["/entry_1/instrument_1/detector_1/distance" if name.endswith("cxi") else "/x"] = 0.1
            np.testing.assert_array_equal(read_image(tmp_path / name), image)
        # an NXdata group whose signal is not called "data"
        with h5py.File(tmp_path / "signal.nxs", "w") as f:
            f["/scan/frames/img"] = image
            f["/scan/frames"].attrs["NX_class"] = b"NXdata"
            f["/scan/frames"].attrs["signal"] = "img"
            f["/scan/other"] = image
        np.testing.assert_array_equal(read_image(tmp_path / "signal.nxs"), image)

    def test_explicit_dataset(self, tmp_path):
        path = tmp_path / "run.h5"
        write_frames(path, ramp((2, 3, 4), np.uint16), dataset="/raw/frames")
        np.testing.assert_array_equal(read_image(path, frame=1, dataset="/raw/frames"), ramp((2, 3, 4), np.uint16)[1])
        with pytest.raises(ImageFormatError, match=r"no dataset '/nope'.*\['/raw/frames'\]"):
            read_image(path, dataset="/nope")

    def test_eiger_style_mask(self, tmp_path):
        import h5py

        path = tmp_path / "master.h5"
        bits = np.zeros((4, 5), np.uint32)
        bits[1, 2] = 1 << 3
        write_image(path, ramp((4, 5), np.uint16))
        with h5py.File(path, "a") as f:
            f["/entry/instrument/detector/detectorSpecific/pixel_mask"] = bits
        np.testing.assert_array_equal(read_mask(path), bits != 0)

    def test_corrupt(self, tmp_path):
        path = tmp_path / "bad.h5"
        write_frames(path, ramp((2, 8, 8), np.uint16))
        path.write_bytes(path.read_bytes()[:100])
        with pytest.raises(ImageFormatError, match="not a readable HDF5 file") as info:
            read_image(path, frame=0)
        assert str(path) in str(info.value) and info.value.__cause__ is not None

    def test_no_image_dataset(self, tmp_path):
        import h5py

        path = tmp_path / "empty.h5"
        with h5py.File(path, "w") as f:
            f["/entry/instrument/detector/distance"] = 0.1
            f["/entry/labels"] = np.array([1, 2, 3])
        with pytest.raises(ImageFormatError, match="empty.h5: no 2-D or 3-D numeric image dataset"):
            read_image(path)

    def test_ambiguous_and_wrong_datasets(self, tmp_path):
        import h5py

        path = tmp_path / "two.h5"
        with h5py.File(path, "w") as f:
            f["/a"] = np.zeros((2, 2))
            f["/b"] = np.zeros((2, 2))
            f["/c"] = np.zeros(4)
        with pytest.raises(ImageFormatError, match=r"several image datasets \['/a', '/b'\]; pass dataset="):
            read_image(path)
        with pytest.raises(ImageFormatError, match=r"dataset '/c' has dtype float64, shape \(4,\)"):
            read_image(path, dataset="/c")

    def test_frame_selection_errors(self, tmp_path):
        path = tmp_path / "run.h5"
        write_frames(path, ramp((3, 4, 4), np.uint8))
        with pytest.raises(ValueError, match="run.h5: the file holds 3 frames; pass frame="):
            read_image(path)
        with pytest.raises(ValueError, match=r"run.h5: frame index 3 is out of range; the file holds 3 frames \(0 to 2\)"):
            read_image(path, frame=3)

    def test_write_errors(self, tmp_path):
        path = tmp_path / "run.h5"
        with pytest.raises(ValueError, match="no frames to write"):
            write_frames(path, iter(()))
        with pytest.raises(ValueError, match=r"frame 1 has dtype uint8, shape \(4, 4\)"):
            write_frames(path, [np.zeros((4, 4), np.uint16), np.zeros((4, 4), np.uint8)])
        with pytest.raises(ValueError, match=r"frame 1 has dtype uint16, shape \(4, 5\)"):
            write_frames(path, [np.zeros((4, 4), np.uint16), np.zeros((4, 5), np.uint16)])
        with pytest.raises(ValueError, match=r"needs a 3-D .* shape \(4, 4\)"):
            write_frames(path, np.zeros((4, 4), np.uint16))
        with pytest.raises(ValueError, match="cannot store dtype complex128"):
            write_frames(path, np.zeros((2, 4, 4), complex))
        with pytest.raises(ValueError, match="cannot store dtype bool"):
            write_image(path, np.zeros((4, 4), bool))
        with pytest.raises(ValueError, match="compression must be one of"):
            write_frames(path, np.zeros((2, 4, 4), np.uint8), compression="zstd")
        with pytest.raises(ValueError, match="mask must be a bool array"):
            write_image(path, np.zeros((4, 4), np.uint8), mask=np.zeros((4, 4), np.uint8))
        with pytest.raises(ValueError, match="cannot be stored as an HDF5 attribute"):
            write_image(path, np.zeros((4, 4), np.uint8), settings={"a": 1})
        with pytest.raises(ValueError, match="write_frames writes HDF5"):
            write_frames(tmp_path / "run.tif", np.zeros((2, 4, 4), np.uint8))
        assert listdir(tmp_path) == []


class TestNumpy:
    def test_npy_round_trip_and_stack(self, tmp_path):
        image = ramp((6, 5), np.float32)
        write_image(tmp_path / "a.npy", image)
        np.testing.assert_array_equal(read_image(tmp_path / "a.npy"), image)
        stack = ramp((3, 6, 5), np.uint16)
        np.save(tmp_path / "stack.npy", stack)
        assert count_frames(tmp_path / "stack.npy") == 3
        np.testing.assert_array_equal(read_image(tmp_path / "stack.npy", frame=1), stack[1])
        assert read_mask(tmp_path / "stack.npy") is None
        with pytest.raises(ValueError, match="cannot store metadata"):
            write_image(tmp_path / "b.npy", image, note="x")

    def test_npz_with_mask(self, tmp_path):
        image = ramp((6, 5), np.float32)
        mask = image > 100
        path = tmp_path / "a.npz"
        write_image(path, image, mask=mask, wavelength_A=0.9686)
        np.testing.assert_array_equal(read_image(path), image)
        np.testing.assert_array_equal(read_mask(path), mask)
        np.testing.assert_array_equal(read_image(path, dataset="mask"), mask)
        with pytest.raises(ImageFormatError, match=r"no array 'nope' in the npz file; it holds \['data', 'mask', 'wavelength_A'\]"):
            read_image(path, dataset="nope")

    def test_corrupt_and_pickled(self, tmp_path):
        (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 broken zip")
        with pytest.raises(ImageFormatError, match="bad.npz: not a readable npz file"):
            read_image(tmp_path / "bad.npz")
        np.save(tmp_path / "obj.npy", np.array([[None, 1]], dtype=object))
        with pytest.raises(ImageFormatError, match="obj.npy: not a readable npy file"):
            read_image(tmp_path / "obj.npy")


REAL_IMAGES = Path(__file__).resolve().parents[1].parent / "shared" / "real-images"
REAL_SHAPES = {
    "dls_i24_thau_grid_0002.npz": (2527, 2463),
    "dls_i24_thau_grid_0019.npz": (2527, 2463),
    "jungfrau_mod5_conv00.npz": (512, 1024),
}


@pytest.mark.skipif(not REAL_IMAGES.is_dir(), reason=f"real detector frames not found at {REAL_IMAGES}")
class TestRealImages:
    @pytest.mark.parametrize("name", sorted(REAL_SHAPES))
    def test_read_npz(self, name):
        path = REAL_IMAGES / name
        image, mask = read_image(path), read_mask(path)
        assert image.shape == mask.shape == REAL_SHAPES[name]
        assert image.dtype == np.float32 and mask.dtype == bool
        assert 0 < mask.sum() < mask.size
        if name.startswith("dls"):
            # Pilatus: module gaps (-1) and bad pixels (-2) are masked
            assert np.all(mask[image < 0])

    def test_pilatus_through_cbf_and_hdf5(self, tmp_path):
        """A full Pilatus 6M frame survives CBF (negative pixels = mask) and HDF5 with its mask."""
        path = REAL_IMAGES / "dls_i24_thau_grid_0002.npz"
        image, mask = read_image(path), read_mask(path)
        counts = image.astype(np.int32)
        np.testing.assert_array_equal(counts, image)  # Pilatus counts are whole numbers
        write_image(tmp_path / "frame.cbf", counts)
        np.testing.assert_array_equal(read_image(tmp_path / "frame.cbf"), counts)
        np.testing.assert_array_equal(read_mask(tmp_path / "frame.cbf"), counts < 0)
        write_image(tmp_path / "frame.h5", image, mask=mask, compression="lz4")
        np.testing.assert_array_equal(read_image(tmp_path / "frame.h5"), image)
        np.testing.assert_array_equal(read_mask(tmp_path / "frame.h5"), mask)


class TestReadGeometry:
    def test_formats_without_geometry(self, tmp_path):
        from diffranet.io import read_geometry

        path = tmp_path / "frame.pgm"
        write_image(path, np.zeros((2, 3), np.uint8))
        assert read_geometry(path) == {}

    def test_cxi_units_and_energy(self, tmp_path):
        import h5py

        from diffranet.io import read_geometry

        path = tmp_path / "run.cxi"
        with h5py.File(path, "w") as f:
            f["/entry_1/data_1/data"] = np.zeros((2, 4, 4), np.float32)
            f["/entry_1/instrument_1/detector_1/distance"] = 120.0
            f["/entry_1/instrument_1/detector_1/distance"].attrs["units"] = "mm"
            f["/entry_1/instrument_1/detector_1/x_pixel_size"] = 110e-6
            f["/entry_1/instrument_1/source_1/energy"] = 1.6021766e-15    # 10 keV in joules
        found = read_geometry(path)
        assert found == pytest.approx({"distance_mm": 120.0, "pixel_size_mm": 0.11, "wavelength_A": 1.23984},
                                      rel=1e-5)

    def test_cbf_header_lines(self, tmp_path):
        import fabio.cbfimage

        from diffranet.io import read_geometry

        path = tmp_path / "frame.cbf"
        header = "# Pixel_size 75e-6 m x 75e-6 m\r\n# Detector_distance 0.20000 m\r\n# Wavelength 0.97950 A"
        fabio.cbfimage.CbfImage(data=np.zeros((4, 4), np.int32),
                                header={"_array_data.header_contents": header}).write(str(path))
        assert read_geometry(path) == pytest.approx({"pixel_size_mm": 0.075, "distance_mm": 200.0,
                                                     "wavelength_A": 0.9795})


class TestReadOnce:
    def test_cbf_read_once_for_mask_geometry_and_image(self, tmp_path, monkeypatch):
        from diffranet.io import _cbf, read_geometry, read_once

        image = ramp((40, 30), np.int32) * 50
        image[:, 10] = -1
        path = tmp_path / "a.cbf"
        write_image(path, image)
        reads, decodes = [], []
        checked, decode = _cbf._checked_bytes, _cbf._decode
        monkeypatch.setattr(_cbf, "_checked_bytes", lambda *a: reads.append(1) or checked(*a))
        monkeypatch.setattr(_cbf, "_decode", lambda *a: decodes.append(1) or decode(*a))
        with read_once(path):
            mask = read_mask(path)
            read_geometry(path)
            first = read_image(path)
            second = read_image(path)  # the kept image went to the first read: a fresh one
        assert (len(reads), len(decodes)) == (1, 2)
        np.testing.assert_array_equal(mask, image < 0)
        np.testing.assert_array_equal(first, image)
        np.testing.assert_array_equal(second, image)
        assert first is not second
        # outside, every call reads the file again, and sees it as it is now
        write_image(path, image + 1)
        np.testing.assert_array_equal(read_image(path), image + 1)
        assert len(reads) == 2
        with read_once(path):
            np.testing.assert_array_equal(read_image(path), image + 1)
            other = tmp_path / "b.cbf"
            write_image(other, image * 2)
            np.testing.assert_array_equal(read_image(other), image * 2)  # another file: not the kept one
        with read_once(tmp_path / "missing.cbf"), pytest.raises(FileNotFoundError):
            read_image(tmp_path / "missing.cbf")


class TestOtherDetectorFormats:
    """MAR345, MarCCD, SMV, Bruker and EDF files, read through fabio (read-only)."""

    def frame(self):
        return np.random.default_rng(7).poisson(5, (48, 64)).astype(np.uint16)

    def test_smv_frame_and_header_geometry(self, tmp_path):
        from fabio.adscimage import AdscImage

        frame = self.frame()
        path = tmp_path / "lab_0001.img"
        AdscImage(data=frame, header={"PIXEL_SIZE": "0.1", "DISTANCE": "150.5", "WAVELENGTH": "1.5418",
                                      "SATURATED_VALUE": "65000"}).write(str(path))
        np.testing.assert_array_equal(dio.read_image(path), frame)
        assert dio.read_geometry(path) == {"pixel_size_mm": 0.1, "distance_mm": 150.5, "wavelength_A": 1.5418,
                                           "saturation": 65000.0}
        assert dio.read_mask(path) is None and dio.count_frames(path) == 1

    def test_edf_frame_and_default_saturation(self, tmp_path):
        from fabio.edfimage import EdfImage

        frame = self.frame()
        path = tmp_path / "frame.edf"
        EdfImage(data=frame).write(str(path))
        np.testing.assert_array_equal(dio.read_image(path), frame)
        assert dio.read_geometry(path) == {"saturation": 65535.0}  # a 16-bit counter's overflow

    @pytest.mark.parametrize("name", ["broken.img", "broken.mar3450", "broken.mccd", "broken.edf"])
    def test_damaged_file_is_an_image_format_error(self, tmp_path, name):
        path = tmp_path / name
        path.write_bytes(b"{\nHEADER_BYTES=512;\nDIM=2;\nSIZE1=64;\nSIZE2=64;\n}" + b"\x00" * 10)
        with pytest.raises(dio.ImageFormatError, match=name):
            dio.read_image(path)

    def test_too_large_for_the_budget_is_refused_unread(self, tmp_path):
        from fabio.adscimage import AdscImage

        path = tmp_path / "big.img"
        AdscImage(data=self.frame()).write(str(path))
        with pytest.raises(ValueError, match="pixels"):
            dio.read_image(path, max_frame_pixels=100)


class TestDectrisMasterFile:
    """A DECTRIS master file: frames in data files linked as /entry/data/data_000001, ...; flat field,
    pixel mask and geometry in the master."""

    def make(self, tmp_path, n_files=2, per_file=3, missing=None):
        import h5py

        rng = np.random.default_rng(5)
        stacks = [rng.poisson(3, (per_file, 20, 24)).astype(np.uint32) for _ in range(n_files)]
        master = tmp_path / "run_master.h5"
        with h5py.File(master, "w") as f:
            for i, stack in enumerate(stacks, start=1):
                data_name = f"run_data_{i:06d}.h5"
                if i != missing:
                    with h5py.File(tmp_path / data_name, "w") as d:
                        d.create_dataset("/entry/data/data", data=stack, chunks=(1, 20, 24))
                f[f"/entry/data/data_{i:06d}"] = h5py.ExternalLink(data_name, "/entry/data/data")
            det = f.create_group("/entry/instrument/detector")
            det["x_pixel_size"] = 75e-6
            det["detector_distance"] = 0.12
            det["beam_center_x"], det["beam_center_y"] = 11.0, 9.5
            f["/entry/instrument/beam/incident_wavelength"] = 1.0
            f["/entry/instrument/beam/incident_wavelength"].attrs["units"] = "angstrom"
            specific = det.create_group("detectorSpecific")
            specific["flatfield"] = np.ones((20, 24), np.float32)       # another 2-D float: not the frames
            mask = np.zeros((20, 24), np.uint32)
            mask[:, 10:12] = 1
            specific["pixel_mask"] = mask
            specific["countrate_correction_count_cutoff"] = 123456
        return master, np.concatenate(stacks), mask != 0

    def test_frames_of_every_data_file_in_order(self, tmp_path):
        master, frames, mask = self.make(tmp_path)
        assert dio.count_frames(master) == 6
        np.testing.assert_array_equal(np.stack(list(dio.iter_frames(master))), frames)
        np.testing.assert_array_equal(dio.read_image(master, frame=4), frames[4])
        np.testing.assert_array_equal(dio.read_mask(master), mask)
        assert dio.read_geometry(master) == {"pixel_size_mm": 0.075, "distance_mm": 120.0, "wavelength_A": 1.0,
                                             "beam_center_px": (11.0, 9.5), "saturation": 123456.0}

    def test_a_missing_data_file_is_named(self, tmp_path):
        master, _, _ = self.make(tmp_path, missing=2)
        with pytest.raises(dio.ImageFormatError, match="data_000002 links to a data file that is missing"):
            dio.count_frames(master)

    @pytest.mark.parametrize("target", ["../elsewhere.h5", "/etc/hostname", ".hidden.h5"])
    def test_links_out_of_the_directory_are_refused(self, tmp_path, target):
        import h5py

        master = tmp_path / "run_master.h5"
        with h5py.File(master, "w") as f:
            f["/entry/data/data_000001"] = h5py.ExternalLink(target, "/entry/data/data")
        with pytest.raises(dio.ImageFormatError, match="outside the file"):
            dio.count_frames(master)

    def test_a_link_to_other_data_is_refused(self, tmp_path):
        import h5py

        master = tmp_path / "run_master.h5"
        with h5py.File(tmp_path / "run_data_000001.h5", "w") as d:
            d["/secret"] = np.zeros((2, 4, 4))
        with h5py.File(master, "w") as f:
            f["/entry/data/data_000001"] = h5py.ExternalLink("run_data_000001.h5", "/secret")
        with pytest.raises(dio.ImageFormatError, match="outside the file"):
            dio.count_frames(master)

    def test_classify_reads_a_run_directory_through_its_master_file(self, tmp_path):
        from diffranet.inference.files import frame_files

        master, _, _ = self.make(tmp_path)
        (tmp_path / "other_data_000001.h5").write_bytes(b"")  # no master beside it: kept
        assert [os.path.basename(p) for p in frame_files([tmp_path])] == ["other_data_000001.h5", master.name]
