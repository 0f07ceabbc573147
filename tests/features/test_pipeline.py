import pickle

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from diffranet.features import GLCMExtractor, LBPExtractor


def test_glcm_random_forest_separates_blank_no_crystal_crystal(three_classes):
    (X_train, y_train), (X_test, y_test) = three_classes
    model = make_pipeline(
        GLCMExtractor(distances=[1, 2], angles=[0, 90]), StandardScaler(), RandomForestClassifier(100, random_state=0)
    )
    model.fit(X_train, y_train)
    assert model.score(X_test, y_test) > 0.95
    # the fitted pipeline survives a pickle round trip with identical predictions
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict(X_test), model.predict(X_test))


def test_lbp_pipeline_feature_names(three_classes):
    (X_train, y_train), _ = three_classes
    model = make_pipeline(LBPExtractor(n_points=8, radius=1), StandardScaler()).fit(X_train, y_train)
    assert model.get_feature_names_out().tolist() == [f"lbp_{k}" for k in range(10)]
