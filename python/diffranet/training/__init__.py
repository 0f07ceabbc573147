"""Training and scoring of the classifiers, classic and deep side by side.

:mod:`.classic` builds the feature-extractor + RF/SVM pipelines of the paper
from a configuration, trains, scores and saves them; :mod:`.deep` trains the
DeepFreak network (needs torch); :mod:`.metrics` scores any of them the same
way (:func:`split_scores`: accuracy, hit/miss accuracy, confusion matrix);
the per-epoch record of a deep run is :mod:`diffranet.training_history`.
"""

from .classic import build_classifier, build_extractor, build_pipeline, save_model, train_classic
from .deep import train_deepfreak
from .metrics import evaluate_splits, split_scores

__all__ = [
    "build_classifier",
    "build_extractor",
    "build_pipeline",
    "evaluate_splits",
    "save_model",
    "split_scores",
    "train_classic",
    "train_deepfreak",
]
