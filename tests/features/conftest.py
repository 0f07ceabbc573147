"""Fixtures: fixed test images and the synthetic blank / no-crystal / crystal set."""

import numpy as np
import pytest


@pytest.fixture(scope="session")
def noise_images():
    """Six 40 x 48 uint8 images of uniform random grey values (fixed seed)."""
    return np.random.default_rng(12345).integers(0, 256, size=(6, 40, 48), dtype=np.uint8)


@pytest.fixture(scope="session")
def spot_images():
    """Six 96 x 96 uint8 images of 12 bright Gaussian blobs (sigma 2 px) on noise.

    SIFT finds a few dozen keypoints in each (it finds none in the one-pixel
    spots of the synthetic diffraction images).
    """
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:96, 0:96]
    images = rng.normal(20.0, 3.0, size=(6, 96, 96))
    for image in images:
        for y, x in rng.uniform(8, 88, size=(12, 2)):
            image += rng.uniform(80, 200) * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / 8.0)
    return np.clip(images, 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def three_classes(make_synthetic_images):
    """(train, test) sets of blank (0), no-crystal (1) and crystal (3) 64 x 64 images."""
    labels = [0, 1, 3]
    return make_synthetic_images(labels, 30, size=64, seed=0), make_synthetic_images(labels, 30, size=64, seed=1)
