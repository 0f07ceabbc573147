import pytest

from diffranet.cli import main
from diffranet.classes import CLASS_NAMES
from diffranet.dataset import dataset_info, format_info, write_gallery


class TestInfo:
    def test_counts_and_ranges(self, small_dataset, tiny):
        info = dataset_info(small_dataset)
        assert sum(info["splits"]["train"]["class_counts"]) == 30
        assert info["classes"]["blank"]["n_detectable_spots"] == [0, 0, 0]
        low, _, high = info["classes"]["good"]["n_detectable_spots"]
        assert tiny.labels.good_min <= low <= high < tiny.labels.strong_min
        assert info["classes"]["weak"]["volume_scale"][0] > 0
        text = format_info(info)
        assert "no-crystal" in text and "train" in text

    def test_gallery(self, small_dataset, tmp_path):
        path = write_gallery(small_dataset, tmp_path / "g.png", per_class=2)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    def test_gallery_bad_split(self, small_dataset, tmp_path):
        with pytest.raises(ValueError, match="split"):
            write_gallery(small_dataset, tmp_path / "g.png", split="extra")


class TestCommand:
    def test_info_command(self, small_dataset, capsys):
        assert main(["dataset", "--info", str(small_dataset)]) == 0
        out = capsys.readouterr().out
        assert "strong" in out and "gallery" in out
        assert (small_dataset / "gallery.png").is_file()

    def test_generate_command_pgm(self, tmp_path, capsys):
        out = tmp_path / "d"
        assert main(["dataset", "--out", str(out), "--preset", "quick", "--n-train", "6", "--n-val", "2",
                     "--n-test", "2", "--workers", "1", "--format", "pgm", "--quiet"]) == 0
        assert "10 images" in capsys.readouterr().out
        assert len(list(out.glob("*/[1-5]/*.pgm"))) == 10

    def test_needs_out_or_info(self, capsys):
        assert main(["dataset"]) == 2
        assert "--out" in capsys.readouterr().err

    def test_bad_path_message(self, capsys):
        assert main(["dataset", "--out", "/proc/x/y", "--preset", "quick", "--n-train", "1", "--workers", "1",
                     "--quiet"]) == 2
        assert "cannot write" in capsys.readouterr().err


class TestGallery:
    def test_one_grey_scale_stated_on_the_figure(self, small_dataset, tmp_path, monkeypatch):
        """--info draws through plots.gallery_figure: central halves, one window for every panel."""
        import numpy as np

        from diffranet import plots
        from diffranet.dataset import info

        seen = {}
        real = plots.gallery_figure

        def spy(images, titles, path, title, **options):
            seen.update(images=images, titles=titles, options=options)
            return real(images, titles, path, title, **options)

        monkeypatch.setattr(info, "gallery_figure", spy)
        path = write_gallery(small_dataset, tmp_path / "g.png", per_class=2)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert seen["options"]["shared_scale"] and seen["options"]["columns"] == 2
        assert len(seen["images"]) == 2 * 5  # one row of two per class, empty panels where a class has fewer
        shown = [(image, title) for image, title in zip(seen["images"], seen["titles"]) if image is not None]
        assert shown and all(title.split()[0] in CLASS_NAMES for _, title in shown)
        shapes = {image.shape for image, _ in shown}
        assert len(shapes) == 1
        rows, cols = shapes.pop()
        full = np.asarray(info.read_shard(next((small_dataset / "shards").glob("*.h5")))["images"]).shape[1:]
        assert (rows, cols) == (full[0] - 2 * (full[0] // 4), full[1] - 2 * (full[1] // 4))  # the central half

    def test_info_out_picture(self, small_dataset, tmp_path, capsys):
        picture = tmp_path / "pic.png"
        assert main(["dataset", "--info", str(small_dataset), "--out", str(picture)]) == 0
        assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert str(picture) in capsys.readouterr().out


class TestSplitSizes:
    def test_partial_sizes_follow_the_given_one(self, tmp_path, capsys):
        out = tmp_path / "d"
        assert main(["dataset", "--out", str(out), "--preset", "quick", "--n-val", "10", "--workers", "1",
                     "--quiet"]) == 0
        from diffranet.dataset import read_index

        sizes = {s: e["n_images"] for s, e in read_index(out)["splits"].items()}
        assert sizes == {"train": 42, "val": 10, "test": 52}  # 10 x 10000 / 2400, 10 x 12600 / 2400
