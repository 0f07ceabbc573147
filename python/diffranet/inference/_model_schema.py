"""What a model file may hold: the checks run on its contents before anything is built or predicted.

A model file is data from anywhere. The loader in :mod:`.modelfile` refuses
code (skops allow-list, safetensors); this module refuses *values* that would
make building or predicting crash, hang or take all memory:

* the JSON description: every field has a type, a range and a size
  (:func:`check_meta`), and the whole document a nesting depth;
* the estimator: only the types diffranet's own training writes
  (:data:`ESTIMATOR_TYPES`), each with its hyper-parameters checked against
  its scikit-learn constraints, and every decision tree checked node by node
  (:func:`check_tree`: child indices in range and after their parent, so the
  walk from the root ends; one parent per node; features in range; finite
  thresholds and leaf values);
* a DeepFreak network: bounded width and input size; its shape (computed
  without allocating anything) must equal the tensors in the file, which
  ``DeepFreakClassifier._from_state`` checks before building it.
"""

from __future__ import annotations

import json
import math
from numbers import Integral

import numpy as np

from ..models import INPUT_CHANNELS
from .geometry import Preprocessing

__all__ = [
    "ESTIMATOR_TYPES",
    "MAX_INPUT_PIXELS",
    "MAX_NETWORK_WIDTH",
    "MAX_NETWORK_INPUT_SIZE",
    "check_meta",
    "check_estimator",
    "check_tree",
    "check_deepfreak",
]

#: Largest model input (rows x columns): 4096 x 4096, eight times the paper's 512 x 512 in each direction.
MAX_INPUT_PIXELS = 4096 * 4096
#: Widest DeepFreak network (filters of the first stage); the paper's is 64.
MAX_NETWORK_WIDTH = 1024
#: Largest DeepFreak input side (pixels); the paper's is 512.
MAX_NETWORK_INPUT_SIZE = 4096
#: Most classes a model may name.
MAX_CLASSES = 256
#: Deepest nesting of the JSON description (the writer's is 4).
MAX_JSON_DEPTH = 32

#: Estimator types a skops model file may hold: what diffranet's training writes (feature extractors,
#: scaler, forest or SVM, the BoVW codebook's k-means, the peak-finder hit finder).
ESTIMATOR_TYPES = (
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.ensemble._forest.ExtraTreesClassifier",
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._classes.ExtraTreeClassifier",
    "sklearn.svm._classes.SVC",
    "sklearn.cluster._kmeans.MiniBatchKMeans",
    "sklearn.cluster._kmeans.KMeans",
    "diffranet.features.glcm.GLCMExtractor",
    "diffranet.features.lbp.LBPExtractor",
    "diffranet.features.bovw.BoVWExtractor",
    "diffranet.peaks.hitfinder.PeakFinderHitFinder",
)


def _type_name(obj):
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _json_depth(value):
    """Nesting depth of parsed JSON, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        value, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_JSON_DEPTH:
            break
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
    return deepest


def _field(meta, key, types, what, required=True):
    if key not in meta:
        if required:
            raise ValueError(f"no {key!r} ({what})")
        return None
    value = meta[key]
    if isinstance(value, bool) and bool not in types or not isinstance(value, types):
        raise ValueError(f"{key!r} must be {what}, got {type(value).__name__} {_short(value)}")
    return value


def _short(value):
    text = json.dumps(value) if isinstance(value, (dict, list, str, int, float, type(None))) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_meta(meta, format_name, format_version, kinds):
    """Check the JSON description of a model file.

    Parameters
    ----------
    meta : object
        The parsed JSON.
    format_name, format_version : str, int
        What the file must say it is.
    kinds : sequence of str
        The estimator kinds this version reads.

    Returns
    -------
    kind : str
    class_names : tuple of str
    preprocessing : Preprocessing

    Raises
    ------
    ValueError
        Naming the first field that is missing, of the wrong type or out of range.
    """
    if not isinstance(meta, dict):
        raise ValueError(f"the description must be a JSON object, got {type(meta).__name__}")
    if _json_depth(meta) > MAX_JSON_DEPTH:
        raise ValueError(f"the description is nested deeper than {MAX_JSON_DEPTH} levels")
    if meta.get("format") != format_name:
        raise ValueError(f"does not describe a {format_name} file ('format' is {_short(meta.get('format'))})")
    version = _field(meta, "format_version", (int,), "an integer")
    if version != format_version:
        raise ValueError(f"model format version {version}; this diffranet reads version {format_version}")
    kind = _field(meta, "kind", (str,), f"one of {list(kinds)}")
    if kind not in kinds:
        raise ValueError(f"'kind' must be one of {list(kinds)}, got {_short(kind)}")
    names = _field(meta, "class_names", (list,), f"a list of 2 to {MAX_CLASSES} distinct names")
    if not 2 <= len(names) <= MAX_CLASSES or not all(isinstance(n, str) and 0 < len(n) <= 100 for n in names) \
            or len(set(names)) != len(names):
        raise ValueError(f"'class_names' must be 2 to {MAX_CLASSES} distinct non-empty names, got {_short(names)}")
    for key in ("training", "deepfreak"):
        _field(meta, key, (dict,), "a JSON object", required=False)
    for key in ("estimator_type", "diffranet_version", "created"):
        _field(meta, key, (str,), "a string", required=False)
    data = _field(meta, "preprocessing", (dict,), "a JSON object")
    shape = data.get("shape")
    if isinstance(shape, list) and len(shape) == 2 and all(isinstance(s, int) and not isinstance(s, bool)
                                                           for s in shape):
        if shape[0] * shape[1] > MAX_INPUT_PIXELS:
            raise ValueError(f"preprocessing shape {shape[0]} x {shape[1]} is larger than the limit of "
                             f"{MAX_INPUT_PIXELS:,} pixels")
    try:
        preprocessing = Preprocessing.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"'preprocessing': {exc}") from None
    if preprocessing.bin_factor is not None and preprocessing.bin_factor > 256:
        raise ValueError(f"preprocessing bin_factor {preprocessing.bin_factor} is larger than 256")
    return kind, tuple(names), preprocessing


# --------------------------------------------------------------------------- trees


def check_tree(tree, n_features, n_classes, what="tree"):
    """Check a fitted ``sklearn.tree._tree.Tree`` so that predicting with it can neither crash nor loop.

    Parameters
    ----------
    tree : sklearn.tree._tree.Tree
    n_features : int
        Columns of the input the tree will see.
    n_classes : int or None
        Classes its leaves must hold values for (None: not checked).
    what : str
        Names the tree in the message.

    Raises
    ------
    ValueError
        If a child index is out of range, not after its parent (a cycle or a
        back edge), shared by two parents, or half of a leaf; a split feature
        is out of range; a threshold or leaf value is not finite; or the
        tree's sizes differ from ``n_features`` / ``n_classes``.
    """
    n_nodes = int(tree.node_count)
    if n_nodes < 1:
        raise ValueError(f"{what} has no nodes")
    if int(tree.n_features) != n_features or int(tree.n_outputs) != 1:
        raise ValueError(f"{what} has {tree.n_features} features and {tree.n_outputs} outputs, "
                         f"expected {n_features} and 1")
    left, right = np.asarray(tree.children_left), np.asarray(tree.children_right)
    feature, threshold = np.asarray(tree.feature), np.asarray(tree.threshold)
    value = np.asarray(tree.value)
    if not (len(left) == len(right) == len(feature) == len(threshold) == len(value) == n_nodes):
        raise ValueError(f"{what}: node arrays of different lengths")
    leaf = left == -1
    if not np.array_equal(leaf, right == -1):
        raise ValueError(f"{what}: a node has one child only")
    nodes = np.arange(n_nodes)
    internal = ~leaf
    for side in (left, right):
        child = side[internal]
        if np.any(child <= nodes[internal]) or np.any(child >= n_nodes):
            raise ValueError(f"{what}: a child index is out of range or not after its parent node")
    parents = np.bincount(np.concatenate([left[internal], right[internal]]), minlength=n_nodes)
    if parents[0] != 0 or np.any(parents[1:] != 1):
        raise ValueError(f"{what}: a node has no parent or several")
    if np.any(feature[internal] < 0) or np.any(feature[internal] >= n_features):
        raise ValueError(f"{what}: a split feature is out of range [0, {n_features})")
    if not np.all(np.isfinite(threshold[internal])) or not np.all(np.isfinite(value)) or np.any(value < 0):
        raise ValueError(f"{what}: a threshold or leaf value is not a finite (non-negative) number")
    if n_classes is not None and value.shape[-1] != n_classes:
        raise ValueError(f"{what} holds values for {value.shape[-1]} classes, expected {n_classes}")


def _check_decision_tree(estimator, n_features, what):
    classes = np.asarray(getattr(estimator, "classes_", []))
    check_tree(estimator.tree_, n_features, len(classes), what)


# --------------------------------------------------------------------------- estimators


def _children(obj):
    """The objects an estimator's state holds, for the walk in :func:`check_estimator`."""
    if isinstance(obj, dict):
        return list(obj.values())
    if isinstance(obj, (list, tuple)):
        return list(obj)
    if isinstance(obj, np.ndarray) and obj.dtype == object:
        return list(obj.ravel())
    if hasattr(obj, "__dict__") and not isinstance(obj, type):
        return list(vars(obj).values())
    return []


def check_estimator(estimator):
    """Check a loaded skops estimator: its types, hyper-parameters and trees.

    Every scikit-learn estimator it holds must be one of
    :data:`ESTIMATOR_TYPES` and pass its own parameter constraints; every
    decision tree is checked by :func:`check_tree` against the number of
    features its forest (or tree) was fitted with.

    Raises
    ------
    ValueError
        Naming the type or value refused.
    """
    from sklearn.base import BaseEstimator

    if not (hasattr(estimator, "predict") and hasattr(estimator, "classes_")):
        raise ValueError(f"the estimator is a {_type_name(estimator)}, not a fitted classifier")
    seen, stack = set(), [estimator]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, (str, bytes, int, float, bool, type(None), np.generic)):
            continue
        seen.add(id(obj))
        if isinstance(obj, np.ndarray) and obj.dtype != object:
            continue
        if _type_name(obj) == "sklearn.tree._tree.Tree":
            raise ValueError("a decision tree outside a tree estimator")
        if isinstance(obj, BaseEstimator):
            name = _type_name(obj)
            if name not in ESTIMATOR_TYPES:
                raise ValueError(f"a model file may hold {', '.join(n.rsplit('.', 1)[1] for n in ESTIMATOR_TYPES)}; "
                                 f"this one holds {name}")
            try:
                obj._validate_params()
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{type(obj).__name__}: {exc}") from None
            n_jobs = getattr(obj, "n_jobs", None)
            if n_jobs is not None and (not isinstance(n_jobs, Integral) or abs(int(n_jobs)) > 4096):
                raise ValueError(f"{type(obj).__name__}: n_jobs {n_jobs!r} is not a thread count")
            if hasattr(obj, "tree_"):
                _check_decision_tree(obj, _n_features(obj), f"{type(obj).__name__} tree")
                stack.extend(v for k, v in vars(obj).items() if k != "tree_")
                continue
            for index, tree in enumerate(getattr(obj, "estimators_", None) or ()):
                if hasattr(tree, "tree_") and _n_features(tree) != _n_features(obj):
                    raise ValueError(f"{type(obj).__name__} tree {index} has {_n_features(tree)} features, "
                                     f"the forest {_n_features(obj)}")
        stack.extend(_children(obj))


def _n_features(estimator):
    value = getattr(estimator, "n_features_in_", None)
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{type(estimator).__name__}: n_features_in_ {value!r} is not a positive integer")
    return int(value)


# --------------------------------------------------------------------------- DeepFreak

_FITTED_PAIRS = ("image_shape_", "pixel_range_")


def check_deepfreak(description, preprocessing, defaults):
    """Check a DeepFreak description (hyper-parameters and fitted values) before any network is built.

    The parameters are checked here for what the loader relies on before
    building (known names, network width and input size within the limits,
    the input transform); ``DeepFreakClassifier._from_state`` checks the rest
    against the estimator's constraints.

    Parameters
    ----------
    description : dict
        ``{"params": {...}, "fitted": {...}}`` from the model file.
    preprocessing : Preprocessing
        The input the file says the model takes.
    defaults : dict
        ``get_params(deep=False)`` of an unfitted
        :class:`~diffranet.models.DeepFreakClassifier`: the parameters it
        knows, with the values a file written before a parameter existed
        takes.

    Returns
    -------
    params : dict
        Every parameter: the file's over the defaults, with no checkpoint and
        the CPU as device.
    fitted : dict
        The checked fitted attributes (pairs as tuples).

    Raises
    ------
    ValueError
        Naming the first value refused.
    """
    params = description.get("params")
    fitted = description.get("fitted")
    if not isinstance(params, dict) or not isinstance(fitted, dict):
        raise ValueError("'deepfreak' must hold the objects 'params' and 'fitted'")
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ValueError(f"unknown DeepFreak parameters {unknown}")
    params = {**defaults, **params, "checkpoint_path": None, "device": "cpu"}
    width, input_size = params["width"], params["input_size"]
    if (isinstance(width, Integral) and width > MAX_NETWORK_WIDTH) \
            or (isinstance(input_size, Integral) and input_size > MAX_NETWORK_INPUT_SIZE):
        raise ValueError(f"DeepFreak width {width} / input_size {input_size} above the limits "
                         f"{MAX_NETWORK_WIDTH} / {MAX_NETWORK_INPUT_SIZE}")
    if params["input_transform"] not in INPUT_CHANNELS:
        raise ValueError(f"DeepFreak input_transform must be one of {sorted(INPUT_CHANNELS, key=str)}, "
                         f"got {_short(params['input_transform'])}")
    classes = fitted.get("classes_")
    if not isinstance(classes, list) or not 2 <= len(classes) <= MAX_CLASSES \
            or not all(isinstance(c, (int, str)) and not isinstance(c, bool) for c in classes):
        raise ValueError(f"DeepFreak classes_ must be 2 to {MAX_CLASSES} labels, got {_short(classes)}")
    checked = {"classes_": classes}
    for name, value in fitted.items():
        if name == "classes_":
            continue
        if name in _FITTED_PAIRS:
            if not isinstance(value, list) or len(value) != 2 or not all(_finite_number(v) for v in value):
                raise ValueError(f"DeepFreak {name} must be a pair of numbers, got {_short(value)}")
            value = tuple(value)
        elif name in ("loss_curve_", "validation_scores_"):
            if not isinstance(value, list) or len(value) > 100_000 or not all(_finite_number(v) for v in value):
                raise ValueError(f"DeepFreak {name} must be a list of numbers, got {_short(value)}")
        elif name in ("n_features_in_", "n_epochs_", "seed_"):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0 or value > 2**63:
                raise ValueError(f"DeepFreak {name} must be a non-negative integer, got {_short(value)}")
        else:
            raise ValueError(f"unknown DeepFreak fitted attribute {name!r}")
        checked[name] = value
    if "image_shape_" in checked and tuple(int(s) for s in checked["image_shape_"]) != preprocessing.shape:
        raise ValueError(f"DeepFreak image_shape_ {checked['image_shape_']} differs from the preprocessing shape "
                         f"{preprocessing.shape}")
    return params, checked


def _finite_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
