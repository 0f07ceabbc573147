"""Draw the before / after pictures of docs/preprocessing.md from real detector frames.

Usage: python docs/scripts/preprocessing_figures.py REAL_IMAGES_DIR [OUT_DIR]

REAL_IMAGES_DIR holds the npz frames (``data`` + ``mask``) and ``manifest.csv``
(pixel size, distance, wavelength per frame); OUT_DIR defaults to docs/images.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from diffranet.inference import FrameGeometry, preprocess  # noqa: E402
from diffranet.io import read_image, read_mask  # noqa: E402

FRAMES = (
    ("dls_i24_thau_grid_0002.npz", "PILATUS3 6M, hit: resampled by resolution"),
    ("dls_i24_thau_grid_0017.npz", "PILATUS3 6M, miss: resampled by resolution"),
    ("jungfrau_mod5_conv00.npz", "JUNGFRAU module, hit: no geometry, cropped"),
)


def _geometry(row):
    if not row["distance_mm"] or not row["wavelength_A"]:
        return None
    return FrameGeometry(float(row["pixel_size_mm"]), float(row["distance_mm"]), float(row["wavelength_A"]))


def _raw_display(image, mask, max_side=600):
    """sqrt of the counts, masked pixels at NaN, shrunk by a stride for the page."""
    shown = np.sqrt(np.clip(image, 0, None)).astype(np.float32)
    shown[mask] = np.nan
    step = max(1, int(np.ceil(max(image.shape) / max_side)))
    return shown[::step, ::step], step


def main(real_dir, out_dir):
    real_dir, out_dir = Path(real_dir), Path(out_dir)
    with open(real_dir / "manifest.csv", newline="") as fh:
        rows = {row["file"]: row for row in csv.DictReader(fh)}
    fig, axes = plt.subplots(len(FRAMES), 2, figsize=(7.0, 3.3 * len(FRAMES)))
    cmap = plt.get_cmap("gray_r").with_extremes(bad="tab:red")
    for (name, title), (left, right) in zip(FRAMES, axes):
        image, mask = read_image(real_dir / name), read_mask(real_dir / name)
        shown, step = _raw_display(image, mask)
        finite = shown[np.isfinite(shown)]
        left.imshow(shown, cmap=cmap, vmin=0, vmax=np.percentile(finite, 99.5), interpolation="nearest")
        left.set_title(f"{title}\nraw {image.shape[0]} x {image.shape[1]} (sqrt; 1 pixel in {step} shown; red: masked)",
                       fontsize=7)
        right.imshow(preprocess(image, mask, _geometry(rows[name])), cmap="gray_r", vmin=0, vmax=40,
                     interpolation="nearest")
        right.set_title("model input: 512 x 512, 8-bit (grey levels 0-40)", fontsize=7)
        for ax in (left, right):
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    out = out_dir / "preprocessing-real-frames.png"
    fig.savefig(out, dpi=72)
    print(out)


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else Path(__file__).resolve().parents[1] / "images")
