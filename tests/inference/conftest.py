import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from diffranet.classes import CLASS_NAMES
from diffranet.features import GLCMExtractor
from diffranet.inference import save_model
from inference.model_helpers import SMALL, spotty_images


@pytest.fixture(scope="session")
def small_model_file(tmp_path_factory):
    """A fitted GLCM + random-forest pipeline on SMALL's geometry: misses (label 1) and strong hits (label 4)."""
    rng = np.random.default_rng(0)
    X = np.concatenate([spotty_images(20, rng, 0), spotty_images(20, rng, 60)])
    y = np.repeat([1, 4], 20)
    model = make_pipeline(GLCMExtractor(distances=[1], angles=[0]), StandardScaler(),
                          RandomForestClassifier(n_estimators=10, random_state=0)).fit(X, y)
    path = tmp_path_factory.mktemp("model") / "small.dfm"
    save_model(model, path, class_names=CLASS_NAMES, preprocessing=SMALL, training={"n_images": 40})
    return path
