"""scikit-learn's common estimator checks on a tiny DeepFreak.

The network is the smallest that still has every part (stem, four stages,
pooling head): ResNet-18 of width 2 on 16 x 16 input for two epochs, so that
each of the few hundred fits of the checks is quick. Every check passes, so
none is exempt: the common checks' 2-D data is read as a stack of one-row
images and resized like any image, and two epochs are enough for the training
accuracy above 0.83 that ``check_classifiers_train`` asks of blobs.
"""

import pytest

pytest.importorskip("torch")

from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from diffranet import DeepFreakClassifier  # noqa: E402

TINY = {
    "depth": 18,
    "width": 2,
    "input_size": 16,
    "stem_kernel": 3,
    "stem_stride": 1,
    "stem_pool_size": None,
    "head_pool_size": None,
    "stage_strides": (1, 2, 2, 2),
    "epochs": 2,
    "batch_size": 16,
    "learning_rate": 0.03,
    "momentum": 0.9,
    "n_threads": 1,
    "random_state": 0,
}


@parametrize_with_checks([DeepFreakClassifier(**TINY)])
def test_sklearn_compatible(estimator, check):
    check(estimator)
