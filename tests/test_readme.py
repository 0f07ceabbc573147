"""The README's Python example runs as written (docs match the code) and shows what it promises."""

import pathlib
import re

import numpy as np
from scipy import ndimage

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def bright_local_maxima(image8, n_sigma=6.0):
    """Pixels that are the maximum of their 3 x 3 neighbourhood and ``n_sigma`` above the local background.

    Background: the 9 x 9 median; noise: 1.4826 x the median absolute deviation of image - background.
    """
    image = image8.astype(np.float64)
    background = ndimage.median_filter(image, size=9)
    residual = image - background
    noise = max(1.4826 * np.median(np.abs(residual - np.median(residual))), 1.0)
    peaks = (image == ndimage.maximum_filter(image, size=3)) & (residual > n_sigma * noise)
    return int(peaks.sum())


def test_readme_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README.md has no python example"
    namespace = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    shot = namespace["shot"]
    assert shot.image8.shape == (512, 512) and shot.image8.dtype.name == "uint8"
    assert shot.bragg.max() > 0 and shot.background.min() > 0
    # the whole shot shows its spots: hundreds of sharp maxima stand out of the 8-bit image ...
    assert bright_local_maxima(shot.image8) > 500
    assert int(np.ptp(shot.image8)) > 100  # a visible 8-bit range (not 15-35)
    # ... where the same shot without the crystal shows (almost) none
    ns = namespace
    blank = ns["Simulator"](ns["det"], ns["beam"], None, background=ns["Background"]((ns["water"](thickness_um=10),
                            ns["air"](path_mm=5))), response=ns["paper_ccd"]()).simulate(seed=0)
    assert bright_local_maxima(blank.image8) < 20
