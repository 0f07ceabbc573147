"""Property-based test: the feature extractors give finite features or a ValueError for any array.

Images of odd shapes (a single pixel, one row, one column, up to 3 x 24 x 24,
2-D stacks of one-row images, empty stacks) and dtypes (uint8, uint16, int8,
int64, bool, float32, float64 with NaN, infinities, negative and huge values)
go through ``fit_transform`` of the GLCM, LBP and BoVW extractors. Each call
must return finite float64 features of the documented width, or raise
``ValueError``; each extractor also runs a plain 8-bit stack, and a share of
its examples must give features (an extractor that refused everything would
otherwise pass). Outcome counts are reported by ``--hypothesis-show-statistics``.
"""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, seed, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from diffranet.features import BoVWExtractor, GLCMExtractor, LBPExtractor
from property_outcomes import REFUSED, Outcomes

EXAMPLES = int(os.environ.get("DIFFRANET_PROPERTY_EXAMPLES", "60"))

DTYPES = [np.uint8, np.uint16, np.int8, np.int64, np.bool_, np.float32, np.float64]

#: Least share of an extractor's examples that must give features.
MIN_FEATURE_SHARE = 0.1
#: A plain stack every extractor turns into features: two 24 x 24 8-bit images with texture.
PLAIN_STACK = (np.arange(2 * 24 * 24).reshape(2, 24, 24) * 37 % 251).astype(np.uint8)

EXTRACTORS = {
    "glcm": lambda: GLCMExtractor(distances=[1, 3], angles=[0, 45, 90], levels=16, symmetric=True, n_jobs=2),
    "glcm-256": lambda: GLCMExtractor(distances=[50], angles=[135]),
    "lbp": lambda: LBPExtractor(),
    "bovw": lambda: BoVWExtractor(n_clusters=2, keypoints="dense", random_state=0, max_descriptors=200),
}


@st.composite
def image_stacks(draw):
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    ndim = draw(st.sampled_from([2, 3, 3, 3]))
    side = st.integers(1, 24)
    shape = (draw(st.integers(0, 3)),) + tuple(draw(side) for _ in range(ndim - 1))
    if dtype.kind == "f":
        elements = st.one_of(st.floats(0, 255, width=dtype.itemsize * 8), st.sampled_from(
            [np.nan, np.inf, -np.inf, -1.0, 256.0, 1e30 if dtype.itemsize == 8 else 3e38, 0.4999, 254.5]))
    else:
        elements = None
    return draw(hnp.arrays(dtype, shape, elements=elements))


def fit_transform_or_value_error(name, images, outcomes):
    extractor = EXTRACTORS[name]()
    try:
        features = extractor.fit_transform(images)
    except ValueError:
        outcomes.record(REFUSED, name)
        return
    outcomes.record("features", name)
    assert features.dtype == np.float64
    assert features.shape == (images.shape[0], len(extractor.get_feature_names_out()))
    assert np.isfinite(features).all()


SETTINGS = dict(deadline=None, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def check_extractor(name, max_examples):
    outcomes = Outcomes()

    @seed(20261130)
    @settings(max_examples=max_examples, **SETTINGS)
    @given(images=image_stacks())
    @example(images=PLAIN_STACK)
    def extract(images):
        fit_transform_or_value_error(name, images, outcomes)

    extract()
    outcomes.require("features", MIN_FEATURE_SHARE)


@pytest.mark.parametrize("name", ["glcm", "glcm-256", "lbp"])
def test_texture_features_finite_or_value_error(name):
    check_extractor(name, max(1, EXAMPLES // 3))


# fewer examples: fitting the k-means vocabulary takes most of a second each
def test_bovw_features_finite_or_value_error():
    check_extractor("bovw", max(1, EXAMPLES // 4))
