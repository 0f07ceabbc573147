"""The user guide's simulation example runs as written and gives a frame with spots."""

import pathlib
import re

from test_readme import bright_local_maxima

GUIDE = pathlib.Path(__file__).resolve().parents[1] / "docs" / "guide.md"


def test_guide_simulation_example_runs(tmp_path, monkeypatch):
    blocks = [b for b in re.findall(r"```python\n(.*?)```", GUIDE.read_text(), flags=re.S) if ".simulate(" in b]
    assert len(blocks) == 1
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(blocks[0], str(GUIDE), "exec"), namespace)
    from diffranet.io import read_image

    image = read_image(tmp_path / "shot.png")
    assert image.shape == (512, 512) and (image == namespace["shot"].image8).all()
    assert bright_local_maxima(image) > 500

