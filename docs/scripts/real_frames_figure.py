"""docs/images/real-frames.png: the shared real frames as the shipped model sees them.

For each frame of ``shared/real-images/manifest.csv``: the model input (the frame resampled onto
the training detector, 8-bit) and its local-significance map, titled with the truth and the
verdict of ``load_model("default")``.

Usage: python docs/scripts/real_frames_figure.py SHARED_REAL_IMAGES_DIR [OUT.png]
"""

import csv
import sys
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

import diffranet
from diffranet import io as dio
from diffranet.features.significance import significance_map
from diffranet.inference.files import frame_geometry


def main(root, out):
    root = Path(root)
    model = diffranet.load_model("default")
    with open(root / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    figure = Figure(figsize=(2.2 * len(rows), 4.6), layout="constrained")
    axes = figure.subplots(2, len(rows))
    for k, row in enumerate(rows):
        path = root / row["file"]
        overrides = {key: float(row[key]) for key in ("pixel_size_mm", "distance_mm", "wavelength_A") if row[key]}
        geometry, beam = frame_geometry(dio.read_geometry(path), None, overrides)
        image8 = model.preprocess([dio.read_image(path)], [dio.read_mask(path)], geometry, beam_center_px=beam)
        verdict = model.verdicts(model.predict_proba(image8))[0]
        low, high = np.percentile(image8, (0.5, 99.7))
        axes[0, k].imshow(image8[0], cmap="gray", vmin=low, vmax=max(high, low + 1))
        axes[0, k].set_title(f"{row['file'][:-4]}\ntruth {row['label']}, model: {verdict['label']}", fontsize=7)
        axes[1, k].imshow(significance_map(image8)[0], cmap="magma", vmin=-4, vmax=16)
        axes[1, k].set_title("significance (noise units)", fontsize=7)
        for ax in axes[:, k]:
            ax.set_xticks([])
            ax.set_yticks([])
    figure.savefig(out, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "docs/images/real-frames.png")
