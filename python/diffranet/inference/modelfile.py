"""Model files that load without running code from the file.

A diffranet model file is a zip archive holding

* ``diffranet-model.json``: format and version, the kind of estimator, the
  class names, the preprocessing the model expects (:class:`Preprocessing`),
  a summary of the training set, the diffranet version that wrote it;
* the estimator, in a format whose loader builds objects from data only:
  ``estimator.skops`` (scikit-learn pipelines, loaded by skops with an
  explicit allow-list of types) or ``weights.safetensors`` (DeepFreak: the
  network's tensors; the network is rebuilt from its configuration in the
  JSON).

Pickle and joblib files can execute arbitrary code when loaded; they are
refused unless the caller states that the file is trusted.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from .._atomic import atomic_path
from .._version import __version__
from ..classes import CLASS_NAMES, HIT_CLASS_NAMES
from ..models._torch import require_torch, torch_available
from ..models.deepfreak import DeepFreakClassifier
from ..models.runtime import DeepFreakRuntime, inference_graph
from .forest import predict_proba
from .geometry import PAPER_PREPROCESSING, Preprocessing
from .preprocess import preprocess
from .training_input import shape_preprocessing

__all__ = ["SavedModel", "save_model", "load_model", "ModelFileError", "ALLOWED_TYPES", "MODEL_SUFFIX"]

FORMAT_NAME = "diffranet-model"
FORMAT_VERSION = 1
MODEL_SUFFIX = ".dfm"
_META = "diffranet-model.json"
_SKOPS = "estimator.skops"
_SAFETENSORS = "weights.safetensors"
_ONNX = "network.onnx"
_MEAN_IMAGE = "__mean_image__"

#: Types a skops estimator may hold beyond those skops trusts by default (scikit-learn and
#: numpy types). Nothing else is ever constructed when a model file is loaded.
ALLOWED_TYPES = (
    "diffranet.features.glcm.GLCMExtractor",
    "diffranet.features.lbp.LBPExtractor",
    "diffranet.features.bovw.BoVWExtractor",
    "diffranet.peaks.hitfinder.PeakFinderHitFinder",
    "sklearn.tree._tree.Tree",
)

#: Class names that mean "diffraction from a crystal".
HIT_NAMES = frozenset(HIT_CLASS_NAMES)

# DeepFreak attributes kept in the JSON (the tensors go to safetensors)
_DEEPFREAK_FITTED = ("n_features_in_", "image_shape_", "pixel_range_", "seed_", "loss_curve_",
                     "validation_scores_", "n_epochs_")


class ModelFileError(ValueError):
    """A file is not a diffranet model file, is damaged, or holds something that is not allowed."""


# --------------------------------------------------------------------------- the loaded model


class SavedModel:
    """A classifier with what it needs to score raw detector frames.

    Attributes
    ----------
    estimator : object
        The fitted estimator (``predict`` and usually ``predict_proba`` on
        ``(n, rows, cols)`` uint8 images).
    class_names : tuple of str
        Names of the classes; ``proba`` columns follow this order.
    preprocessing : Preprocessing
        The training detector and 8-bit transform.
    metadata : dict
        Everything else the file records (kind, training-set summary,
        diffranet version, creation time).
    """

    def __init__(self, estimator, class_names, preprocessing=PAPER_PREPROCESSING, metadata=None):
        self.estimator = estimator
        self.class_names = _check_class_names(class_names)
        if not isinstance(preprocessing, Preprocessing):
            raise ValueError(f"preprocessing must be a Preprocessing, got {type(preprocessing).__name__}")
        self.preprocessing = preprocessing
        self.metadata = dict(metadata or {})
        self._columns = _class_columns(estimator, self.class_names)

    def __repr__(self):
        return (f"SavedModel({type(self.estimator).__name__}, class_names={self.class_names}, "
                f"input shape={self.preprocessing.shape})")

    def predict_proba(self, images8):
        """Class probabilities of images already in the model's input geometry.

        Parameters
        ----------
        images8 : array_like of uint8, shape (n, rows, cols)
            8-bit images of ``preprocessing.shape`` (e.g. from :func:`preprocess`).

        Returns
        -------
        ndarray of float64, shape (n, len(class_names))
            Columns in the order of ``class_names``. Estimators without
            ``predict_proba`` (an SVM) give 1 for the predicted class.
        """
        images = np.asarray(images8)
        if images.ndim == 2:
            images = images[None]
        if images.ndim != 3 or images.dtype != np.uint8 or images.shape[1:] != self.preprocessing.shape:
            raise ValueError(
                f"images8 must be uint8 of shape (n, {self.preprocessing.shape[0]}, {self.preprocessing.shape[1]}), "
                f"got {images.dtype} {images.shape}; use preprocess() or classify() for raw frames"
            )
        proba = np.zeros((len(images), len(self.class_names)))
        if len(images) == 0:
            return proba
        if hasattr(self.estimator, "predict_proba"):
            proba[:, self._columns] = np.asarray(predict_proba(self.estimator, images), dtype=np.float64)
        else:
            predicted = np.asarray(self.estimator.predict(images))
            classes = list(np.asarray(self.estimator.classes_).tolist())
            proba[np.arange(len(images)), self._columns[[classes.index(p) for p in predicted.tolist()]]] = 1.0
        return proba

    def verdicts(self, proba):
        """One :func:`verdict` dict per row of class probabilities."""
        return [verdict(row, self.class_names) for row in np.asarray(proba)]

    def classify(self, frames, masks=None, geometry=None, *, beam_center_px=None, saturation=None):
        """Preprocess raw frames of any detector and classify them.

        Parameters
        ----------
        frames : array_like, shape (n, rows, cols) or (rows, cols), or list of 2-D arrays
            Raw frames (photons).
        masks : array_like of bool, optional
            One mask for all frames (2-D) or one per frame; True = ignore.
        geometry : FrameGeometry, optional
            The frames' geometry (see :func:`preprocess`).
        beam_center_px, saturation : optional
            Passed to :func:`preprocess`.

        Returns
        -------
        list of dict
            One verdict per frame: ``{"label": str, "hit": bool, "proba": [float, ...]}``.
        """
        frames = [frames] if isinstance(frames, np.ndarray) and frames.ndim == 2 else frames
        if masks is None or (isinstance(masks, np.ndarray) and masks.ndim == 2):
            masks = [masks] * len(frames)
        if len(masks) != len(frames):
            raise ValueError(f"got {len(masks)} masks for {len(frames)} frames")
        images = np.stack([
            preprocess(frame, mask, geometry, self.preprocessing, beam_center_px=beam_center_px,
                       saturation=saturation)
            for frame, mask in zip(frames, masks)
        ]) if len(frames) else np.zeros((0, *self.preprocessing.shape), np.uint8)
        return self.verdicts(self.predict_proba(images))


def verdict(proba, class_names):
    """``{"label", "hit", "proba"}`` of one row of class probabilities.

    Examples
    --------
    >>> verdict([0.1, 0.2, 0.6, 0.1, 0.0], CLASS_NAMES)
    {'label': 'weak', 'hit': True, 'proba': [0.1, 0.2, 0.6, 0.1, 0.0]}
    """
    proba = [float(p) for p in proba]
    label = class_names[int(np.argmax(proba))]
    return {"label": label, "hit": label in HIT_NAMES, "proba": proba}


def _check_class_names(class_names):
    names = tuple(str(n) for n in class_names)
    if len(names) < 2 or len(set(names)) != len(names):
        raise ValueError(f"class_names must be at least two distinct names, got {class_names!r}")
    return names


def _class_columns(estimator, class_names):
    """Index into ``class_names`` of each of the estimator's ``classes_``."""
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        raise ValueError(f"{type(estimator).__name__} is not fitted (no classes_)")
    columns = []
    for value in np.asarray(classes).tolist():
        if isinstance(value, str):
            if value not in class_names:
                raise ValueError(f"estimator class {value!r} is not among class_names {class_names}")
            columns.append(class_names.index(value))
        elif isinstance(value, (int, np.integer)) and not isinstance(value, bool) and 0 <= value < len(class_names):
            columns.append(int(value))
        else:
            raise ValueError(f"estimator class {value!r} is neither a name in {class_names} nor an index into them")
    return np.asarray(columns, dtype=np.int64)


# --------------------------------------------------------------------------- saving


def _is_deepfreak(estimator):
    return type(estimator).__name__ == "DeepFreakClassifier" and isinstance(estimator, DeepFreakClassifier)


def _json_value(value):
    if isinstance(value, (tuple, list, np.ndarray)):
        return [_json_value(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _deepfreak_parts(estimator):
    """(JSON description, safetensors bytes) of a fitted DeepFreakClassifier."""
    from safetensors.torch import save

    params = {k: _json_value(v) for k, v in estimator.get_params(deep=False).items()}
    params["checkpoint_path"] = None
    params["init"] = None  # the starting weights are in the trained ones
    if not isinstance(params.get("random_state"), (int, type(None))):
        params["random_state"] = None
    fitted = {name: _json_value(getattr(estimator, name)) for name in _DEEPFREAK_FITTED if hasattr(estimator, name)}
    fitted["classes_"] = _json_value(estimator.classes_)
    tensors = {k: v.detach().cpu().contiguous() for k, v in estimator.model_.state_dict().items()}
    import torch

    tensors[_MEAN_IMAGE] = torch.from_numpy(np.ascontiguousarray(estimator.mean_image_, dtype=np.float32))
    return {"params": params, "fitted": fitted}, save(tensors)


def _onnx_graph(estimator):
    """The network as an ONNX graph (so the model classifies without torch), or None without ``onnx``."""
    try:
        return inference_graph(estimator)
    except ImportError:  # torch.onnx needs the onnx package; the file then needs torch to classify
        return None


def save_model(estimator, path, *, class_names, preprocessing=None, training=None):
    """Write a fitted classifier and what it expects to a model file.

    Parameters
    ----------
    estimator : fitted estimator
        A scikit-learn pipeline of :mod:`diffranet.features` extractors, a
        scaler and a random forest or SVM; a peak-finder hit finder; or a
        :class:`~diffranet.DeepFreakClassifier`.
    path : str or path-like
        Output file (``.dfm`` by convention); written atomically.
    class_names : sequence of str
        Names of the classes; the estimator's ``classes_`` are indices into
        them (labels 0..4 for the five DiffraNet classes) or the names
        themselves.
    preprocessing : Preprocessing, optional
        The input the model expects; default the paper's detector.
    training : dict, optional
        JSON-serialisable summary of the training set (sizes, class counts,
        preset, scores).

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    ValueError
        If the estimator is not fitted, its classes do not match
        ``class_names``, it holds a type outside :data:`ALLOWED_TYPES`, or
        ``training`` is not JSON-serialisable.
    """
    path = Path(os.fspath(path))
    class_names = _check_class_names(class_names)
    preprocessing = PAPER_PREPROCESSING if preprocessing is None else preprocessing
    if not isinstance(preprocessing, Preprocessing):
        raise ValueError(f"preprocessing must be a Preprocessing, got {type(preprocessing).__name__}")
    _class_columns(estimator, class_names)  # validates fitted state and classes
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "diffranet_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "estimator_type": f"{type(estimator).__module__}.{type(estimator).__qualname__}",
        "class_names": list(class_names),
        "preprocessing": preprocessing.to_dict(),
        "training": training or {},
    }
    extra = {}
    if _is_deepfreak(estimator):
        meta["kind"] = "deepfreak"
        meta["deepfreak"], payload = _deepfreak_parts(estimator)
        member = _SAFETENSORS
        graph = _onnx_graph(estimator)
        if graph is not None:
            extra[_ONNX] = graph
    else:
        import skops.io as sio

        meta["kind"] = "skops"
        payload = sio.dumps(estimator)
        _check_types(path, sio.get_untrusted_types(data=payload))
        member = _SKOPS
    try:
        meta_bytes = json.dumps(meta, indent=2, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"training summary must be JSON-serialisable: {exc}") from exc
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(_META, meta_bytes)
        archive.writestr(member, payload)
        for name, data in extra.items():
            archive.writestr(name, data)
    return path


# --------------------------------------------------------------------------- loading


def _check_types(path, untrusted):
    refused = sorted(set(untrusted) - set(ALLOWED_TYPES))
    if refused:
        raise ModelFileError(
            f"{path}: the model holds types that diffranet does not load from files: {refused} "
            f"(allowed beyond scikit-learn and numpy: {list(ALLOWED_TYPES)})"
        )


def _looks_like_pickle(head):
    # protocol 2+ pickles start with PROTO (0x80); joblib may also wrap in zlib/gzip/xz/lzma
    return head[:1] == b"\x80" or head[:2] in (b"\x78\x9c", b"\x78\x01", b"\x78\xda", b"\x1f\x8b") \
        or head[:6] == b"\xfd7zXZ\x00"


def default_model_path():
    """The model shipped with the package, or None when there is none."""
    candidate = Path(__file__).with_name("models") / f"default{MODEL_SUFFIX}"
    return candidate if candidate.is_file() else None


def load_model(path_or_name, *, trust=False):
    """Load a model file written by :func:`save_model`.

    Nothing in the file is executed: the JSON is parsed, scikit-learn
    pipelines are rebuilt by skops from an allow-list of types
    (:data:`ALLOWED_TYPES`), DeepFreak networks from their configuration and
    safetensors weights.

    Parameters
    ----------
    path_or_name : str or path-like
        A model file, or ``"default"`` for the model shipped with diffranet.
    trust : bool, default False
        Also accept a joblib / pickle file (as written by older versions).
        Such files can run arbitrary code when loaded: only for files of
        known origin.

    Returns
    -------
    SavedModel

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ModelFileError
        (a ValueError) if the file is not a model file, is damaged, holds a
        type outside the allow-list, or is a pickle and ``trust`` is False;
        or ``"default"`` is asked for and no model is shipped.
    """
    if str(path_or_name) == "default" and not Path("default").exists():
        path = default_model_path()
        if path is None:
            raise ModelFileError(
                f"no default model is shipped with diffranet {__version__}; train one and pass its file"
            )
    else:
        path = Path(os.fspath(path_or_name))
    if not path.is_file():
        raise FileNotFoundError(2, "No such model file", str(path))
    with open(path, "rb") as fh:
        head = fh.read(8)
    if zipfile.is_zipfile(path):
        return _load_archive(path)
    if _looks_like_pickle(head):
        if not trust:
            raise ModelFileError(
                f"{path}: this is a pickle / joblib file, which can run arbitrary code when loaded; "
                "it is loaded only when marked as trusted"
            )
        return _load_trusted_pickle(path)
    raise ModelFileError(f"{path}: not a diffranet model file (neither a model archive nor a joblib file)")


def _load_archive(path):
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if _META not in names:
                raise ModelFileError(f"{path}: not a diffranet model file (a zip archive without {_META})")
            meta = json.loads(archive.read(_META))
            if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
                raise ModelFileError(f"{path}: {_META} does not describe a {FORMAT_NAME} file")
            if meta.get("format_version") != FORMAT_VERSION:
                raise ModelFileError(
                    f"{path}: model format version {meta.get('format_version')!r}; this diffranet reads "
                    f"version {FORMAT_VERSION}"
                )
            kind = meta.get("kind")
            member = {"skops": _SKOPS, "deepfreak": _SAFETENSORS}.get(kind)
            if member is None or member not in names:
                raise ModelFileError(f"{path}: model kind {kind!r} without its data; expected one of "
                                     f"skops ({_SKOPS}) or deepfreak ({_SAFETENSORS})")
            payload = archive.read(member)
            graph = archive.read(_ONNX) if kind == "deepfreak" and _ONNX in names else None
    except (zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError, KeyError) as exc:
        raise ModelFileError(f"{path}: damaged model file ({type(exc).__name__}: {exc})") from exc
    try:
        class_names = meta["class_names"]
        preprocessing = Preprocessing.from_dict(meta["preprocessing"])
        estimator = _load_skops(path, payload) if kind == "skops" else _load_deepfreak(meta["deepfreak"], payload,
                                                                                           graph)
    except (ModelFileError, ImportError):
        raise
    except Exception as exc:  # noqa: BLE001 - safetensors, torch and skops raise their own types
        raise ModelFileError(f"{path}: damaged model file ({type(exc).__name__}: {exc})") from exc
    return SavedModel(estimator, class_names, preprocessing, meta)


def _load_skops(path, payload):
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(data=payload)
    except Exception as exc:  # noqa: BLE001 - skops raises many types for a damaged file
        raise ModelFileError(f"{path}: damaged estimator data ({type(exc).__name__}: {exc})") from exc
    _check_types(path, untrusted)
    try:
        return sio.loads(payload, trusted=sorted(set(untrusted)))
    except Exception as exc:  # noqa: BLE001
        raise ModelFileError(f"{path}: damaged estimator data ({type(exc).__name__}: {exc})") from exc


def _load_deepfreak(description, payload, graph=None):
    """The estimator (with torch), or its ONNX graph under ONNX Runtime (without torch)."""
    if not torch_available():
        if graph is None:
            require_torch()  # raises ImportError saying what to install
        fitted = description["fitted"]
        return DeepFreakRuntime(graph, fitted["classes_"], fitted["image_shape_"],
                                description["params"].get("input_transform"))
    from safetensors.torch import load

    torch = require_torch()
    tensors = load(payload)
    mean_image = tensors.pop(_MEAN_IMAGE).numpy()
    estimator = DeepFreakClassifier(**description["params"])
    fitted = description["fitted"]
    estimator.classes_ = np.asarray(fitted["classes_"])
    for name in _DEEPFREAK_FITTED:
        if name in fitted:
            value = fitted[name]
            setattr(estimator, name, tuple(value) if name in ("image_shape_", "pixel_range_") else value)
    estimator.mean_image_ = mean_image
    estimator.device_ = "cpu"
    with torch.random.fork_rng(devices=[]):
        network = estimator._build_network(len(estimator.classes_))
    network.load_state_dict(tensors, strict=True)
    estimator._set_model(network)
    return estimator


def _load_trusted_pickle(path):
    import joblib

    estimator = joblib.load(path)
    classes = np.asarray(getattr(estimator, "classes_", []))
    # old files hold label integers 0..4 (the five DiffraNet classes) or the class names themselves
    names = CLASS_NAMES if classes.dtype.kind in "iu" else tuple(str(c) for c in classes)
    first = estimator.steps[0][1] if hasattr(estimator, "steps") else estimator
    preprocessing = shape_preprocessing(getattr(first, "image_shape_", None))
    return SavedModel(estimator, names, preprocessing, {"kind": "joblib", "trusted": True})
