import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from diffranet.classes import CLASS_NAMES
from diffranet.features import LBPExtractor
from diffranet.inference import FrameGeometry, Preprocessing, save_model

#: A small training detector: 64 x 64 pixels of 0.5 mm at 60 mm, 1.0 A, no offset.
SMALL = Preprocessing(shape=(64, 64), geometry=FrameGeometry(0.5, 60.0, 1.0), adc_offset=0.0)


def spotty_images(n, rng, n_spots):
    """8-bit 64 x 64 images: flat background with ``n_spots`` bright pixels."""
    images = rng.poisson(4.0, (n, 64, 64)).astype(np.uint8)
    for image in images:
        image[rng.integers(0, 64, n_spots), rng.integers(0, 64, n_spots)] = 200
    return images


@pytest.fixture(scope="session")
def small_model_file(tmp_path_factory):
    """A fitted LBP + random-forest pipeline on SMALL's geometry: misses (label 1) and strong hits (label 4)."""
    rng = np.random.default_rng(0)
    X = np.concatenate([spotty_images(20, rng, 0), spotty_images(20, rng, 60)])
    y = np.repeat([1, 4], 20)
    model = make_pipeline(LBPExtractor(n_points=8, radius=1), StandardScaler(),
                          RandomForestClassifier(n_estimators=10, random_state=0)).fit(X, y)
    path = tmp_path_factory.mktemp("model") / "small.dfm"
    save_model(model, path, class_names=CLASS_NAMES, preprocessing=SMALL, training={"n_images": 40})
    return path
