"""The six real frames of ``../shared/real-images`` (skipped when absent): reading, masks, shapes, and
that preprocessing keeps the spots of hits and makes none in misses. Not an accuracy measurement."""

import csv
import os
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from diffranet.inference import FrameGeometry, preprocess
from diffranet.inference.preprocess import to_training_counts
from diffranet.io import read_image, read_mask


def _find_real_images():
    here = Path(__file__).resolve()
    candidates = [Path(os.environ["DIFFRANET_REAL_IMAGES"])] if "DIFFRANET_REAL_IMAGES" in os.environ else []
    candidates += [parent / "shared" / "real-images" for parent in (here.parents[2].parent, here.parents[3].parent)]
    return next((c for c in candidates if (c / "manifest.csv").is_file()), candidates[-1])


REAL_IMAGES = _find_real_images()
pytestmark = pytest.mark.skipif(not REAL_IMAGES.is_dir(), reason=f"real frames not found at {REAL_IMAGES}")


def manifest():
    with open(REAL_IMAGES / "manifest.csv", newline="") as fh:
        return {row["file"]: row for row in csv.DictReader(fh)}


def geometry(row):
    """The frame's geometry when the manifest records it (beam centre: the frame centre)."""
    if not row["distance_mm"] or not row["wavelength_A"]:
        return None
    return FrameGeometry(float(row["pixel_size_mm"]), float(row["distance_mm"]), float(row["wavelength_A"]))


def peak_like_maxima(image8):
    """Local maxima (3 x 3) at least 3 grey levels above the 9 x 9 median: a plain spot count."""
    image = image8.astype(np.float64)
    background = ndimage.median_filter(image, 9)
    return int(np.count_nonzero((image == ndimage.maximum_filter(image, 3)) & (image >= background + 3)))


@pytest.fixture(scope="module")
def frames():
    rows = manifest()
    return {name: (read_image(REAL_IMAGES / name), read_mask(REAL_IMAGES / name), row) for name, row in rows.items()}


def test_reading_masks_and_shapes(frames):
    assert len(frames) == 6
    for name, (image, mask, row) in frames.items():
        rows, cols = (int(n) for n in row["shape"].split("x"))
        assert image.shape == mask.shape == (rows, cols)
        assert mask.dtype == bool and 0 < mask.sum() < mask.size
        if row["detector"].startswith("PILATUS"):
            assert np.all(mask[image < 0])           # gaps -1 and bad pixels -2


@pytest.mark.parametrize("with_geometry", [True, False])
def test_hits_show_more_peaks_than_misses(frames, with_geometry):
    counts = {}
    for name, (image, mask, row) in frames.items():
        g = geometry(row) if with_geometry else None
        image8 = preprocess(image, mask, g)
        assert image8.shape == (512, 512) and image8.dtype == np.uint8
        counts[name] = (row["label"], peak_like_maxima(image8))
    hits = [n for label, n in counts.values() if label == "hit"]
    misses = [n for label, n in counts.values() if label == "miss"]
    assert min(hits) > max(misses), counts


def test_masked_pixels_hold_local_background(frames):
    image, mask, row = frames["dls_i24_thau_grid_0017.npz"]
    counts, masked = to_training_counts(image, mask, geometry(row))
    assert masked.any()
    # filled pixels are neither empty sky nor spots: near the unmasked background at the same radius
    # (away from the steep direct-beam halo of the centre and from the corners, beyond the inscribed circle)
    y, x = np.indices(counts.shape)
    radius = np.hypot(x + 0.5 - 256, y + 0.5 - 256).astype(int) // 10
    inner = ndimage.binary_erosion(masked, iterations=2) & (radius >= 3) & (radius < 25)
    band_median = ndimage.median(counts, np.where(masked, -1, radius), index=np.arange(radius.max() + 1))
    reference = np.asarray(band_median)[radius[inner]]
    assert np.all((counts[inner] > 0.5 * reference) & (counts[inner] < 2.0 * reference))
