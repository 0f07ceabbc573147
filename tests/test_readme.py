"""The README's Python example runs as written (docs match the code)."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README.md has no python example"
    namespace = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    shot = namespace["shot"]
    assert shot.image8.shape == (512, 512) and shot.image8.dtype.name == "uint8"
    assert shot.bragg.max() > 0 and shot.background.min() > 0
