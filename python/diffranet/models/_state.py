"""The plain-data state of a fitted DeepFreak estimator: its keys and their checks.

``DeepFreakClassifier._to_state`` gives, and ``_from_state`` takes, a dict of

* ``params``: every constructor parameter (``get_params(deep=False)``);
* ``classes``: ``classes_``;
* ``fitted``: the fitted attributes prediction needs, :data:`FITTED_REQUIRED`,
  and those a fit may also set, :data:`FITTED_OPTIONAL`;
* ``history``: what the training run recorded, :data:`HISTORY` (each optional:
  an estimator whose state was set by hand has none);
* ``network``: the network's ``state_dict``, tensors (or numpy arrays) on the CPU.

Pickling and the model files of :mod:`diffranet.inference` both go through
this state, so that only :mod:`diffranet.models` knows how a fitted estimator
is built from data.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["FITTED_OPTIONAL", "FITTED_REQUIRED", "HISTORY", "STATE_KEYS", "check_keys", "check_shapes",
           "from_attributes"]

#: Keys of a state.
STATE_KEYS = ("params", "classes", "fitted", "history", "network")
#: Fitted attributes every state holds.
FITTED_REQUIRED = ("n_features_in_", "image_shape_", "pixel_range_", "mean_image_")
#: Fitted attributes a state may hold: the device (default the CPU) and the column names of a DataFrame.
FITTED_OPTIONAL = ("device_", "feature_names_in_")
#: The training run's record.
HISTORY = ("seed_", "loss_curve_", "validation_scores_", "epoch_seconds_", "n_epochs_")


def _check_names(what, names, required=(), optional=(), *, list_expected=True):
    """Raise a ValueError naming the missing and the unknown keys of the mapping ``names``."""
    if not isinstance(names, Mapping):
        raise ValueError(f"DeepFreak state {what}: must be a dict, got {type(names).__name__}")
    missing = [name for name in required if name not in names]
    unknown = sorted(str(name) for name in names if name not in required and name not in optional)
    problems = ([f"missing {missing}"] if missing else []) + ([f"unknown {unknown}"] if unknown else [])
    if problems:
        expected = f" (expected {list(required)}" + (f" and optionally {list(optional)})" if optional else ")")
        raise ValueError(f"DeepFreak state {what}: {', '.join(problems)}" + (expected if list_expected else ""))


def check_keys(state, param_names):
    """Check that ``state`` has every key it needs and no other.

    Parameters
    ----------
    state : object
        What ``_from_state`` was given.
    param_names : iterable of str
        The estimator's parameters.

    Raises
    ------
    ValueError
        Naming the missing and the unknown keys of the state, its parameters,
        fitted attributes or history.
    """
    _check_names("keys", state, required=STATE_KEYS)
    _check_names("parameters", state["params"], required=tuple(param_names), list_expected=False)
    _check_names("fitted attributes", state["fitted"], required=FITTED_REQUIRED, optional=FITTED_OPTIONAL)
    _check_names("history entries", state["history"], optional=HISTORY)
    if not isinstance(state["network"], Mapping):
        raise ValueError(f"DeepFreak state network: must be a dict of tensors, got {type(state['network']).__name__}")


def check_shapes(expected, stored):
    """Raise a ValueError unless the tensors ``stored`` have the names and shapes ``expected``.

    Both are ``{name: shape}``; the message names the first differences.
    """
    if stored != expected:
        differ = sorted(set(stored) ^ set(expected)) or sorted(k for k in stored if stored[k] != expected[k])
        raise ValueError(f"the weights do not fit the described network (first differences: {differ[:3]})")


def from_attributes(attributes, params):
    """The state, without ``network``, of an estimator's attributes (``vars``).

    Parameters
    ----------
    attributes : dict
        The attributes of a fitted estimator (or the pickle of one).
    params : dict
        Its parameters.
    """
    missing = [name for name in ("classes_", *FITTED_REQUIRED) if name not in attributes]
    if missing:
        raise ValueError(f"a fitted DeepFreakClassifier has the attributes {missing}; this one has not")
    return {
        "params": dict(params),
        "classes": attributes["classes_"],
        "fitted": {name: attributes[name] for name in FITTED_REQUIRED + FITTED_OPTIONAL if name in attributes},
        "history": {name: attributes[name] for name in HISTORY if name in attributes},
    }
