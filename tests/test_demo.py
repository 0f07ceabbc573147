"""`diffranet demo` renders one labelled shot of every class."""

import json

from diffranet.cli import main
from diffranet.classes import CLASS_NAMES
from diffranet.io import read_image


def test_demo_writes_one_shot_per_class(tmp_path):
    assert main(["demo", "--out", str(tmp_path), "--preset", "quick"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [record["class"] for record in summary] == list(CLASS_NAMES)
    for record in summary:
        image = read_image(tmp_path / f"{record['class']}.pgm")
        assert image.shape == (64, 64) and image.dtype.name == "uint8"
    blank, no_crystal = summary[0], summary[1]
    assert blank["photons"] == 0 and no_crystal["photons"] > 0
    spots = [record["n_detectable_spots"] for record in summary]
    assert spots[0] == spots[1] == 0 and 0 < spots[2] < spots[3] < spots[4]
    assert (tmp_path / "gallery.png").stat().st_size > 0
