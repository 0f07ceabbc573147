"""Fixtures: tiny five-class image sets from the synthetic generator of tests/features."""

import pytest


@pytest.fixture(scope="session")
def tiny_split(make_synthetic_images):
    """(X_train, y_train, X_val, y_val): 6 + 6 images per class, 32 x 32 pixels."""
    X_train, y_train = make_synthetic_images(range(5), 6, size=32, seed=0)
    X_val, y_val = make_synthetic_images(range(5), 6, size=32, seed=1)
    return X_train, y_train, X_val, y_val
