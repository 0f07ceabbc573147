"""Fixtures shared by all test folders: the synthetic diffraction image generator.

``tests/features/synthetic.py`` is imported here once, as ``features.synthetic``
(pytest puts this folder on ``sys.path`` to import this file, as it does for
``bragg_reference``), and handed to the tests as fixtures, so no test module
edits ``sys.path``.
"""

import pytest
from features.synthetic import synthetic_images, write_dataset


@pytest.fixture(scope="session")
def make_synthetic_images():
    """``make_synthetic_images(labels, n_per_class, size=64, seed=0) -> (X uint8, y int64)``."""
    return synthetic_images


@pytest.fixture(scope="session")
def write_synthetic_dataset():
    """``write_synthetic_dataset(out, n_per_class, size=128, seed=0)``: DiffraNet's folder layout."""
    return write_dataset
