"""Named DeepFreak training recipes, and reading a recipe from a file.

A recipe is a dict of :class:`~diffranet.models.DeepFreakClassifier`
parameters. Three are named:

* ``"paper"``: the published network and schedule (Tables 1 and 2,
  configuration B of Table 11): ResNet-50 at 512 px, batch size 1, 180
  epochs. These are the classifier's defaults; GPU-days of work.
* ``"cpu"``: the network of the shipped default model, which trains on one or
  two CPU cores: the 512 px image shrunk to 128 px by 4 x 4 max-pooling (a
  one-pixel Bragg spot keeps its full height), ResNet-18 of width 16 with
  global average pooling, the eight symmetries of the square as
  augmentation, SGD in batches of 32, early stopping on the validation split.
* ``"regimes"``: the network of the shipped default model: the ``"cpu"``
  network on the local-significance map of the image
  (:func:`~diffranet.features.significance.significance_map`: each 4 x 4
  block's maximum in noise units above its local background), for training
  sets that span many beams, samples and detectors (``--preset regimes``).

:func:`read_recipe` also reads a JSON or TOML file of parameters, including
the ``best_config.json`` written by :func:`diffranet.search.deepfreak.search_deepfreak`
(whose ``"params"`` entry holds the full settings), so the best configuration
of a search can be refitted.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from .deepfreak import DeepFreakClassifier

__all__ = ["RECIPES", "read_recipe"]

#: Named recipes: keyword arguments of DeepFreakClassifier.
RECIPES = {
    "paper": {},
    "cpu": {
        "depth": 18,
        "width": 16,
        "stage_strides": (1, 2, 3, 3),
        "head_pool_size": None,
        "input_size": 128,
        "resize": "max",
        "augment": "dihedral",
        "epochs": 24,
        "batch_size": 32,
        "learning_rate": 0.05,
        "momentum": 0.9,
        "weight_decay": 5e-5,
        "lr_step_epochs": 8,
        "lr_gamma": 0.2,
        "early_stopping": True,
        "n_iter_no_change": 6,
    },
    "regimes": {
        "depth": 18,
        "width": 16,
        "stage_strides": (1, 2, 3, 3),
        "head_pool_size": None,
        "input_size": 128,
        "input_transform": "significance",
        "augment": "dihedral",
        "epochs": 16,
        "batch_size": 32,
        "learning_rate": 0.05,
        "momentum": 0.9,
        "weight_decay": 5e-5,
        "lr_step_epochs": 6,
        "lr_gamma": 0.2,
        "early_stopping": True,
        "n_iter_no_change": 5,
    },
}


def _load_toml(text):
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.9 and 3.10
        import tomli as tomllib
    return tomllib.loads(text)


def read_recipe(spec):
    """DeepFreakClassifier parameters from a recipe name or a JSON / TOML file.

    Parameters
    ----------
    spec : str or path-like
        A name of :data:`RECIPES` (``"paper"``, ``"cpu"``), or a ``.json`` /
        ``.toml`` file holding a table of parameters. A file with a
        ``"params"`` table (the best configuration of ``diffranet search
        deepfreak``) gives that table.

    Returns
    -------
    dict
        A new dict of parameters (lists become tuples where the classifier
        takes a tuple).

    Raises
    ------
    FileNotFoundError
        If ``spec`` is neither a recipe name nor an existing file.
    ValueError
        If the file cannot be parsed, is not a table of parameters, or names
        a parameter DeepFreakClassifier does not take.
    """
    if str(spec) in RECIPES:
        params = dict(RECIPES[str(spec)])
    else:
        path = Path(spec)
        if not path.is_file():
            raise FileNotFoundError(2, f"not a recipe name ({', '.join(RECIPES)}) nor a file", str(path))
        text = path.read_text(encoding="utf-8")
        try:
            params = _load_toml(text) if path.suffix.lower() == ".toml" else json.loads(text)
        except ValueError as exc:  # json.JSONDecodeError and tomllib.TOMLDecodeError are ValueErrors
            raise ValueError(f"{path}: cannot parse the recipe: {exc}") from exc
        if isinstance(params, dict) and isinstance(params.get("params"), dict):
            params = params["params"]
        if not isinstance(params, dict):
            raise ValueError(f"{path}: a recipe is a table of DeepFreakClassifier parameters")
        params = dict(params)
    unknown = sorted(set(params) - set(DeepFreakClassifier().get_params()))
    if unknown:
        raise ValueError(f"{spec}: unknown DeepFreakClassifier parameters {unknown}")
    for name in ("stage_strides", "pixel_range"):
        if isinstance(params.get(name), list):
            params[name] = tuple(params[name])
    return params
