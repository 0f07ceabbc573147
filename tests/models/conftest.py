"""Fixtures: a tiny three-class image set a small ResNet learns in a few epochs.

Classes: "noise" (Gaussian background only), "ring" (background plus a smooth
powder-like ring of random radius, like ice or solvent scattering) and "spots"
(background plus a few bright 3 x 3 spots, like Bragg peaks).
"""

import numpy as np
import pytest

CLASSES = ("noise", "ring", "spots")


def three_class_images(n_per_class, seed, size=64):
    """``n_per_class`` uint8 images of each class, interleaved, and their string labels.

    Parameters
    ----------
    n_per_class : int
        Images of each class.
    seed : int
        Seed of the generator; different seeds give disjoint-looking sets.
    size : int, default 64
        Side of the square images, in pixels.

    Returns
    -------
    X : ndarray of uint8, shape (3 * n_per_class, size, size)
    y : ndarray of str, shape (3 * n_per_class,)
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    radius = np.hypot(yy - size / 2, xx - size / 2)
    images, labels = [], []
    for _ in range(n_per_class):
        for label in CLASSES:
            image = rng.normal(40.0, 10.0, size=(size, size))
            if label == "ring":
                r0 = rng.uniform(0.2, 0.35) * size
                image += rng.uniform(40.0, 70.0) * np.exp(-((radius - r0) ** 2) / 8.0)
            elif label == "spots":
                for cy, cx in rng.integers(3, size - 3, size=(8, 2)):
                    image[cy - 1 : cy + 2, cx - 1 : cx + 2] += rng.uniform(100.0, 180.0)
            images.append(np.clip(image, 0, 255).astype(np.uint8))
            labels.append(label)
    return np.stack(images), np.asarray(labels)


@pytest.fixture(scope="session")
def ring_split():
    """(X_train, y_train, X_test, y_test): 40 + 20 images of each class, 64 x 64 pixels."""
    X_train, y_train = three_class_images(40, seed=0)
    X_test, y_test = three_class_images(20, seed=1)
    return X_train, y_train, X_test, y_test


@pytest.fixture(scope="session")
def tiny_split():
    """(X_train, y_train, X_test, y_test): 8 + 4 images of each class, 32 x 32 pixels."""
    X_train, y_train = three_class_images(8, seed=2, size=32)
    X_test, y_test = three_class_images(4, seed=3, size=32)
    return X_train, y_train, X_test, y_test
