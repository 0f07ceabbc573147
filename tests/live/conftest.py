"""Fixtures for the live tests: a small saved model (helpers in ``live/harness.py``)."""

import pytest


@pytest.fixture(scope="session")
def model_path(tmp_path_factory, make_synthetic_images):
    """A GLCM + random forest five-class model file for 512 x 512 frames."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline

    from diffranet.classes import CLASS_NAMES
    from diffranet.features import GLCMExtractor
    from diffranet.inference import save_model

    X, y = make_synthetic_images([0, 1, 2, 3, 4], 6, size=512, seed=3)
    estimator = make_pipeline(GLCMExtractor(), RandomForestClassifier(n_estimators=10, random_state=0)).fit(X, y)
    return save_model(estimator, tmp_path_factory.mktemp("model") / "glcm.dfm", class_names=CLASS_NAMES)


@pytest.fixture(scope="session")
def model(model_path):
    from diffranet.inference import load_model

    return load_model(model_path)
