import numpy as np
import pytest

from diffranet.dataset.loader import load_split
from diffranet.io import write_image


def _write(folder, name, value, shape=(4, 5)):
    folder.mkdir(parents=True, exist_ok=True)
    write_image(folder / name, np.full(shape, value, dtype=np.uint8))


class TestLoadSplit:
    def test_numbered_class_folders(self, tmp_path):
        _write(tmp_path / "train" / "1", "a.pgm", 10)
        _write(tmp_path / "train" / "5", "b.png", 50)
        _write(tmp_path / "train" / "3", "c.pgm", 30)
        X, y = load_split(tmp_path, "train")
        assert X.dtype == np.uint8 and X.shape == (3, 4, 5)
        assert y.dtype == np.int64 and y.tolist() == [0, 2, 4]
        assert X[:, 0, 0].tolist() == [10, 30, 50]

    def test_named_class_folders(self, tmp_path):
        _write(tmp_path / "val" / "no-crystal", "a.pgm", 1)
        _write(tmp_path / "val" / "strong", "b.pgm", 2)
        _write(tmp_path / "val" / "strong", "a.pgm", 3)
        X, y = load_split(tmp_path, "val")
        assert y.tolist() == [1, 4, 4]
        assert X[:, 0, 0].tolist() == [1, 3, 2]  # file-name order within a class

    def test_other_files_ignored(self, tmp_path):
        _write(tmp_path / "train" / "2", "a.pgm", 1)
        (tmp_path / "train" / "2" / "notes.txt").write_text("x")
        assert load_split(tmp_path, "train")[1].tolist() == [1]

    def test_missing_split(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="no such split"):
            load_split(tmp_path, "test")

    def test_unknown_class_folder(self, tmp_path):
        _write(tmp_path / "train" / "6", "a.pgm", 1)
        with pytest.raises(ValueError, match="class folders must be named"):
            load_split(tmp_path, "train")

    def test_no_images(self, tmp_path):
        (tmp_path / "train" / "1").mkdir(parents=True)
        with pytest.raises(ValueError, match="no .* images"):
            load_split(tmp_path, "train")

    def test_mixed_shapes(self, tmp_path):
        _write(tmp_path / "train" / "1", "a.pgm", 1, shape=(4, 5))
        _write(tmp_path / "train" / "2", "b.pgm", 1, shape=(5, 5))
        with pytest.raises(ValueError, match="share one shape"):
            load_split(tmp_path, "train")

    def test_sixteen_bit_images(self, tmp_path):
        (tmp_path / "train" / "1").mkdir(parents=True)
        write_image(tmp_path / "train" / "1" / "a.pgm", np.full((4, 5), 1000, dtype=np.uint16))
        with pytest.raises(ValueError, match="8-bit"):
            load_split(tmp_path, "train")
