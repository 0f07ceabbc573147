"""Fixtures: tiny five-class image sets from the synthetic generator of tests/features."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "features"))
from synthetic import synthetic_images  # noqa: E402


@pytest.fixture(scope="session")
def tiny_split():
    """(X_train, y_train, X_val, y_val): 6 + 6 images per class, 32 x 32 pixels."""
    X_train, y_train = synthetic_images(range(5), 6, size=32, seed=0)
    X_val, y_val = synthetic_images(range(5), 6, size=32, seed=1)
    return X_train, y_train, X_val, y_val
