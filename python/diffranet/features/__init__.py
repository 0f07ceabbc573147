"""Hand-crafted image features for the classic classifiers (scikit-learn transformers).

Each extractor maps a stack of 8-bit images, shape (n_images, height, width),
to one feature row per image and can open a scikit-learn Pipeline::

    make_pipeline(GLCMExtractor(distances=[1, 2], angles=[0, 90]),
                  StandardScaler(), RandomForestClassifier())
"""

from .bovw import BoVWExtractor
from .glcm import GLCM_PROPERTIES, GLCMExtractor
from .lbp import LBPExtractor
from .significance import significance_map

__all__ = ["BoVWExtractor", "GLCMExtractor", "GLCM_PROPERTIES", "LBPExtractor", "significance_map"]
