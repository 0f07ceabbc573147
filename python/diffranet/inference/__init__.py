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

from .._lazy import lazy_exports
from .geometry import PAPER_PREPROCESSING, FrameGeometry, Preprocessing
from .preprocess import preprocess  # the function (bound here: the submodule has the same name)

# the model files' names -> their module, imported on first use: reading a geometry or ``INPUT_KINDS`` (the
# command-line parsers do) must not load torch and scikit-learn
_PUBLIC = {
    "ModelFileError": "modelfile",
    "SavedModel": "modelfile",
    "VerdictRule": "modelfile",
    "load_model": "modelfile",
    "save_model": "modelfile",
    "verdict": "modelfile",
}

__all__ = sorted([*_PUBLIC, "FrameGeometry", "PAPER_PREPROCESSING", "Preprocessing", "preprocess"])

__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC, __all__)
