import numpy as np
import pytest

from diffranet.dataset.loader import has_split, load_split
from diffranet.dataset import export_dataset, load_arrays, read_index
from diffranet.dataset.shards import read_shard, shard_paths


class TestLoadArrays:
    def test_arrays(self, small_dataset, tiny):
        X, y = load_arrays(small_dataset, "val")
        assert X.dtype == np.uint8 and X.shape == (10,) + tiny.shape
        assert y.dtype == np.int64 and set(y.tolist()) <= set(range(5))

    def test_matches_shards(self, small_dataset):
        X, y = load_arrays(small_dataset, "train")
        first = read_shard(shard_paths(small_dataset)[1])  # test-00001 sorts before train
        assert first["attrs"]["split"] == "test"
        train0 = read_shard(small_dataset / "shards" / "train-00000.h5")
        assert np.array_equal(X[:8], train0["images"]) and np.array_equal(y[:8], train0["labels"])

    def test_missing_split(self, small_dataset):
        with pytest.raises(FileNotFoundError, match="no split 'extra'"):
            load_arrays(small_dataset, "extra")

    def test_not_a_dataset(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="not a diffranet dataset"):
            load_arrays(tmp_path, "train")


class TestDataDispatch:
    def test_load_split_reads_shards(self, small_dataset):
        X, y = load_split(small_dataset, "test")
        X0, y0 = load_arrays(small_dataset, "test")
        assert np.array_equal(X, X0) and np.array_equal(y, y0)
        assert has_split(small_dataset, "train") and not has_split(small_dataset, "extra")


class TestExport:
    @pytest.mark.parametrize("fmt", ["pgm", "png"])
    def test_folder_layout_readable(self, small_dataset, tmp_path, fmt):
        assert export_dataset(small_dataset, tmp_path, fmt) == 60
        assert sorted(p.name for p in (tmp_path / "train").iterdir()) == ["1", "2", "3", "4", "5"]
        assert (tmp_path / "train" / "1" / f"train-000003.{fmt}").is_file()
        X, y = load_split(tmp_path, "train")
        X0, y0 = load_arrays(small_dataset, "train")
        order = np.argsort(y0, kind="stable")  # class folders, then image number
        assert np.array_equal(y, y0[order]) and np.array_equal(X, X0[order])
        assert export_dataset(small_dataset, tmp_path, fmt) == 0  # existing files kept

    def test_bad_format(self, small_dataset, tmp_path):
        with pytest.raises(ValueError, match="format"):
            export_dataset(small_dataset, tmp_path, "tiff")

    def test_no_shards(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="no dataset shards"):
            export_dataset(tmp_path, tmp_path / "out")


class TestShardDataset:
    @pytest.fixture()
    def dataset(self, small_dataset):
        pytest.importorskip("torch")
        from diffranet.dataset import ShardDataset

        ds = ShardDataset(small_dataset, "train", max_open_files=2)
        yield ds
        ds.close()

    def test_is_a_torch_dataset(self, dataset):
        import torch

        assert isinstance(dataset, torch.utils.data.Dataset)
        assert len(dataset) == 30

    def test_items(self, dataset, small_dataset):
        import torch

        X, y = load_arrays(small_dataset, "train")
        for i in (0, 7, 8, 29, -1):
            image, label = dataset[i]
            assert image.dtype == torch.float32 and tuple(image.shape) == (1,) + X.shape[1:]
            assert torch.equal(image[0], torch.from_numpy(X[i].astype(np.float32) / 255))
            assert label == y[i]
        with pytest.raises(IndexError):
            dataset[30]

    def test_lazy_and_bounded(self, dataset):
        dataset[9]  # one item: opens one shard only
        assert list(dataset._open) == [1]
        for i in range(0, 30, 8):
            dataset[i]
        assert len(dataset._open) == 2

    def test_metadata_and_labels(self, dataset, small_dataset):
        _, y, table = load_arrays(small_dataset, "train", metadata=True)
        assert dataset.metadata(12).tobytes() == table[12].tobytes()
        assert np.array_equal(dataset.labels, y)

    def test_dataloader(self, dataset):
        import torch

        batches = list(torch.utils.data.DataLoader(dataset, batch_size=16, shuffle=False))
        assert [tuple(b[0].shape) for b in batches] == [(16, 1, 64, 64), (14, 1, 64, 64)]

    def test_transform(self, small_dataset):
        pytest.importorskip("torch")
        from diffranet.dataset import ShardDataset

        ds = ShardDataset(small_dataset, "val", transform=lambda image: image.sum())
        assert ds[0][0] == load_arrays(small_dataset, "val")[0][0].sum()
        ds.close()

    def test_index_unchanged(self, small_dataset):
        assert read_index(small_dataset)["splits"]["train"]["n_images"] == 30
