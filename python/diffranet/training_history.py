"""The per-epoch record of a deep training run: one schema for the model file, the report and the plot.

``{"loss": [...], "val_accuracy": [...], "epoch_seconds": [...]}``: the mean
training loss (cross-entropy) of each epoch, the validation accuracy after it
(empty without a validation set) and the seconds of its training pass. A
DeepFreak model file keeps it as ``metadata["training"]["history"]``;
:func:`diffranet.plots.learning_curve_figure` draws it.
"""

from __future__ import annotations

__all__ = ["HISTORY_KEYS", "training_history"]

#: Keys of a training history, each a list with one value per epoch.
HISTORY_KEYS = ("loss", "val_accuracy", "epoch_seconds")

# the fitted estimator's attribute behind each key
_ATTRIBUTES = {"loss": "loss_curve_", "val_accuracy": "validation_scores_", "epoch_seconds": "epoch_seconds_"}


def training_history(model):
    """The training history of a fitted DeepFreak estimator or a saved model, or None.

    Parameters
    ----------
    model : estimator or SavedModel
        A saved model's recorded history (``metadata["training"]["history"]``)
        is used when it has one, else its estimator's ``loss_curve_``,
        ``validation_scores_`` and ``epoch_seconds_``.

    Returns
    -------
    dict or None
        The :data:`HISTORY_KEYS` as lists of floats (a key the record lacks is
        an empty list); None for a model without a training loss (a classic
        pipeline).

    Examples
    --------
    >>> class Fitted:
    ...     loss_curve_, validation_scores_ = [1.2, 0.7], [0.5, 0.75]
    >>> training_history(Fitted())
    {'loss': [1.2, 0.7], 'val_accuracy': [0.5, 0.75], 'epoch_seconds': []}
    """
    recorded = ((getattr(model, "metadata", None) or {}).get("training") or {}).get("history")
    if recorded and recorded.get("loss"):
        values = {key: recorded.get(key) for key in HISTORY_KEYS}
    else:
        estimator = getattr(model, "estimator", model)
        values = {key: getattr(estimator, attribute, None) for key, attribute in _ATTRIBUTES.items()}
    if not values["loss"]:
        return None
    return {key: [float(v) for v in values[key] or []] for key in HISTORY_KEYS}
