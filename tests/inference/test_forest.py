"""The forest shortcut gives exactly scikit-learn's probabilities."""

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.linear_model import LogisticRegression

from diffranet.inference.forest import forest_predict_proba, predict_proba


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=300, n_features=8, n_informative=5, n_classes=4, random_state=0)
    return X[:200], y[:200], X[200:]


@pytest.mark.parametrize("forest", [RandomForestClassifier(n_estimators=30, random_state=0),
                                    ExtraTreesClassifier(n_estimators=30, min_samples_leaf=3, random_state=0)],
                         ids=["random-forest", "extra-trees"])
def test_forest_equals_sklearn(data, forest):
    X, y, X_new = data
    forest.fit(X, y)
    for rows in (X_new, X_new[:1]):
        np.testing.assert_array_equal(forest_predict_proba(forest, rows), forest.predict_proba(rows))


def test_pipeline_ending_in_a_forest(data):
    X, y, X_new = data
    pipeline = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=20, random_state=1)).fit(X, y)
    np.testing.assert_array_equal(predict_proba(pipeline, X_new), pipeline.predict_proba(X_new))


def test_other_estimators_use_their_own(data):
    X, y, X_new = data
    linear = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    np.testing.assert_array_equal(predict_proba(linear, X_new), linear.predict_proba(X_new))


def test_wrong_feature_count_refused(data):
    X, y, X_new = data
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        forest_predict_proba(forest, X_new[:, :5])
