"""scikit-learn's common estimator checks on a tiny DeepFreak.

The network is the smallest that still has every part (stem, four stages,
pooling head): ResNet-18 of width 2 on 16 x 16 input for two epochs, so that
each of the few hundred fits of the checks is quick. Every check passes, so
none is exempt: the common checks' 2-D data is read as a stack of one-row
images and resized like any image, and two epochs are enough for the training
accuracy above 0.83 that ``check_classifiers_train`` asks of blobs.

``check_methods_subset_invariance`` compares the float32 probabilities of
each row alone with those of the whole batch at 1e-7. With batch-norm
statistics recomputed after each epoch (the default), this width-2 network
has channels of very small variance that magnify the batch-size-dependent
rounding of the CPU convolution kernels to about 3e-7; the checks keep the
running averages (``batch_norm_images=0``), and ``test_deepfreak.py`` tests
the recomputation.
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
    "batch_norm_images": 0,
    "random_state": 0,
}


@parametrize_with_checks([DeepFreakClassifier(**TINY)])
def test_sklearn_compatible(estimator, check):
    check(estimator)
