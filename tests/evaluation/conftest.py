"""Small estimators whose decisions are known, for hand-computed evaluation tests."""

import numpy as np
import pytest

from diffranet.classes import CLASS_NAMES, HITMISS_NAMES
from diffranet.inference import Preprocessing, SavedModel


class FirstPixelClassifier:
    """Five-class 'classifier' that predicts the label written in pixel (0, 0): 1/2 for it, 1/8 for each other."""

    classes_ = np.arange(5)

    def predict_proba(self, X):
        proba = np.full((len(X), 5), 0.125)
        proba[np.arange(len(X)), np.clip(X[:, 0, 0], 0, 4)] = 0.5
        return proba


class BrightestPixelHitFinder:
    """Hit / miss 'classifier': a hit when the brightest 8-bit pixel exceeds ``threshold``."""

    classes_ = np.arange(2)

    def __init__(self, threshold=50):
        self.threshold = threshold

    def predict_proba(self, X):
        hit = X.reshape(len(X), -1).max(axis=1) > self.threshold
        return np.stack([np.where(hit, 0.2, 0.8), np.where(hit, 0.8, 0.2)], axis=1)


@pytest.fixture
def first_pixel_model():
    return SavedModel(FirstPixelClassifier(), CLASS_NAMES, Preprocessing(shape=(8, 8)))


@pytest.fixture
def hit_finder_model():
    return SavedModel(BrightestPixelHitFinder(), HITMISS_NAMES, Preprocessing(shape=(16, 16)))
