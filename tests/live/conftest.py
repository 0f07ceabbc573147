"""Fixtures for the live tests: a small saved model (helpers in ``live/harness.py``)."""

import pytest
from live.harness import SIZE


@pytest.fixture(scope="session")
def model_path(tmp_path_factory, make_synthetic_images):
    """A GLCM + random forest five-class model file for 128 x 128 frames (172 um pixels at 80 mm / 4)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline

    from diffranet.classes import CLASS_NAMES
    from diffranet.features import GLCMExtractor
    from diffranet.inference import FrameGeometry, Preprocessing, save_model

    X, y = make_synthetic_images([0, 1, 2, 3, 4], 4, size=SIZE, seed=3)
    estimator = make_pipeline(GLCMExtractor(), RandomForestClassifier(n_estimators=10, random_state=0)).fit(X, y)
    preprocessing = Preprocessing(shape=(SIZE, SIZE), geometry=FrameGeometry(0.688, 80.0, 1.5))
    return save_model(estimator, tmp_path_factory.mktemp("model") / "glcm.dfm", class_names=CLASS_NAMES,
                      preprocessing=preprocessing)


@pytest.fixture(scope="session")
def model(model_path):
    from diffranet.inference import load_model

    return load_model(model_path)
