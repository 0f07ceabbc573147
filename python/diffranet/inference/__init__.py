"""Apply trained classifiers to real detector frames.

* Model files (:func:`save_model`, :func:`load_model`, :class:`SavedModel`):
  one format for every classifier, loaded without running code from the file;
  :class:`VerdictRule` turns its probabilities into verdicts.
* Preprocessing (:func:`preprocess`, :class:`FrameGeometry`,
  :class:`Preprocessing`): a frame of any detector to the 8-bit image the
  model was trained on.
* Frame sources (:func:`iter_file_frames`): every frame of every file, with
  its mask and header geometry.
"""

from __future__ import annotations

from .geometry import PAPER_PREPROCESSING, FrameGeometry, Preprocessing
from .modelfile import ModelFileError, SavedModel, VerdictRule, load_model, save_model, verdict
from .preprocess import preprocess

__all__ = [
    "FrameGeometry",
    "ModelFileError",
    "PAPER_PREPROCESSING",
    "Preprocessing",
    "SavedModel",
    "VerdictRule",
    "load_model",
    "preprocess",
    "save_model",
    "verdict",
]
