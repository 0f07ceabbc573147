"""One picture of example images, the same for ``diffranet demo`` and ``diffranet dataset --info``.

Every panel shows the central half (rows and columns) of an 8-bit image, where
the spots of weak images lie, with one grey scale for the whole figure: black
is 8-bit value 0 and white is the 99.9th percentile of all the panels' pixels
(at least 1), so panels and classes can be compared by eye. The scaling is
written on the figure.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._atomic import atomic_path

__all__ = ["save_gallery", "white_level"]


def white_level(images):
    """The 8-bit value shown white: the 99.9th percentile of every panel's pixels (>= 1)."""
    pixels = np.concatenate([np.asarray(im).ravel() for im in images]) if len(images) else np.zeros(1)
    return max(float(np.percentile(pixels, 99.9)), 1.0)


def _central_half(image):
    rows, cols = image.shape
    return image[rows // 4:rows - rows // 4, cols // 4:cols - cols // 4]


def save_gallery(path, rows, title):
    """Save a PNG grid of images, one row per group.

    Parameters
    ----------
    path : path-like
        Output PNG.
    rows : sequence of (str, sequence of (ndarray, str))
        Each row: its label and its panels, each an 8-bit image (rows, cols)
        and the panel's title.
    title : str
        First line of the figure's title; the second states the scaling.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_cols = max((len(panels) for _, panels in rows), default=1) or 1
    crops = [[_central_half(np.asarray(image)) for image, _ in panels] for _, panels in rows]
    white = white_level([c for row in crops for c in row])
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(2.2 * n_cols, 2.3 * len(rows) + 0.5), squeeze=False)
    for k, (label, panels) in enumerate(rows):
        for j in range(n_cols):
            ax = axes[k, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j < len(panels):
                ax.imshow(crops[k][j], cmap="gray", vmin=0, vmax=white, interpolation="nearest")
                ax.set_title(panels[j][1], fontsize=7)
            else:
                ax.set_axis_off()
            if j == 0:
                ax.set_ylabel(label, fontsize=9)
    fig.suptitle(f"{title}\ncentral half of each image; grey scale for all panels: 8-bit value 0 black, "
                 f"{white:.0f} (99.9th percentile of the panels) and above white", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path
