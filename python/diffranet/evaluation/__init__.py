"""Judge classifiers: metrics, figures and a report folder.

* :mod:`.metrics`: pure functions, thin wrappers over :mod:`sklearn.metrics`
  (confusion matrix with rows = true class, accuracy, per-class precision /
  recall, hit / miss ROC and precision-recall points, accuracy against the
  label quantity);
* :mod:`.data`: labelled frames from a generated set, class folders or a
  hit / miss CSV of real frames (:func:`load_labelled_data`);
* :mod:`.evaluate`: one model's decisions and numbers
  (:func:`evaluate_model`), or several models and the report (:func:`evaluate`);
* :mod:`.report`: ``metrics.json``, a self-contained ``index.html`` and the
  PNG figures, drawn by :mod:`diffranet.plots`.
"""

from __future__ import annotations

from .data import LabelledData, load_labelled_data
from .evaluate import Evaluation, evaluate, evaluate_model, summarize
from .report import write_report

__all__ = ["Evaluation", "LabelledData", "evaluate", "evaluate_model", "load_labelled_data", "summarize",
           "write_report"]
