"""Tiny stand-in diffraction images for the classifier tests and the small-scale docs runs.

Three ingredients on an 8-bit detector (value = sqrt of the counts, as DiffraNet
stores images): detector noise only (blank); noise plus a smooth radial water
ring from amorphous material (no-crystal); and the same plus sharp Poisson
Bragg-like spots whose number and brightness grow from weak to good to strong.

Run as a script to write a dataset in DiffraNet's folder layout::

    python tests/features/synthetic.py --out DIR --per-class 40 --size 128
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

CLASS_NAMES = ("blank", "no-crystal", "weak", "good", "strong")

# (min, max) number of spots and integrated photons per spot, per crystal class
_SPOTS = {2: ((6, 12), (200, 400)), 3: ((15, 30), (400, 800)), 4: ((40, 80), (800, 2000))}
_OFFSET = 10.0  # detector offset, counts
_READ_NOISE = 3.0  # RMS read-out noise, counts


def _water_ring(size, rng):
    """Expected photons per pixel of a radial ring centred on the beam."""
    yy, xx = np.mgrid[0:size, 0:size] - (size - 1) / 2.0
    r = np.hypot(yy, xx)
    radius = rng.uniform(0.45, 0.65) * size / 2.0
    width = rng.uniform(0.08, 0.14) * size
    return rng.uniform(40.0, 120.0) * np.exp(-0.5 * ((r - radius) / width) ** 2) + rng.uniform(5.0, 15.0)


def _spots(size, label, rng):
    """Expected photons per pixel of Gaussian spots (sigma 0.6 px) at random positions."""
    (n_lo, n_hi), (i_lo, i_hi) = _SPOTS[label]
    image = np.zeros((size, size))
    yy, xx = np.mgrid[0:size, 0:size]
    for _ in range(rng.integers(n_lo, n_hi + 1)):
        y, x = rng.uniform(2, size - 2, 2)
        image += rng.uniform(i_lo, i_hi) / (2 * np.pi * 0.36) * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / 0.72)
    return image


def synthetic_image(label, size, rng):
    """One uint8 image of class ``label`` (0 blank ... 4 strong), ``size`` x ``size`` pixels."""
    photons = np.full((size, size), rng.uniform(0.5, 2.0))
    if label >= 1:
        photons = photons + _water_ring(size, rng)
    if label >= 2:
        photons = photons + _spots(size, label, rng)
    counts = rng.poisson(photons) + _OFFSET + rng.normal(0.0, _READ_NOISE, photons.shape)
    return np.sqrt(np.clip(counts, 0, 65025)).round().astype(np.uint8)


def synthetic_images(labels, n_per_class, size=64, seed=0):
    """Stack of ``n_per_class`` images per label in ``labels``; returns (X uint8, y int64)."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.asarray(labels, dtype=np.int64), n_per_class)
    X = np.stack([synthetic_image(label, size, rng) for label in y])
    return X, y


def write_dataset(out, n_per_class, size=128, seed=0, splits=("train", "val", "test")):
    """Write DIR/<split>/<class folder 1..5>/<k>.pgm for the five classes."""
    from diffranet.io import write_image

    for s, split in enumerate(splits):
        X, y = synthetic_images(range(5), n_per_class, size, seed=seed + s)
        for k, (image, label) in enumerate(zip(X, y)):
            folder = Path(out) / split / str(label + 1)
            folder.mkdir(parents=True, exist_ok=True)
            write_image(folder / f"{k:06d}.pgm", image)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--per-class", type=int, default=40)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    write_dataset(args.out, args.per_class, args.size, args.seed)
