"""Compatibility name: classic training lives in :mod:`diffranet.training.classic`."""

from .training.classic import build_classifier, build_extractor, build_pipeline, evaluate, save_model, train_classic

__all__ = ["build_classifier", "build_extractor", "build_pipeline", "evaluate", "save_model", "train_classic"]
