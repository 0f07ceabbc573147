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

import dataclasses
import datetime
import io
import json
import math
import os
import zipfile
from pathlib import Path

import numpy as np

from .._atomic import atomic_path
from .._budget import NotRegularFileError, check_zip_members, regular_file, zip_member_npy
from .._version import __version__
from ..classes import CLASS_NAMES, HIT_CLASS_NAMES
from ..models._torch import require_torch, torch_available
from ..models.deepfreak import DeepFreakClassifier
from ..models.runtime import DeepFreakRuntime, inference_graph
from ._model_schema import (
    MAX_INPUT_PIXELS,
    check_deepfreak,
    check_estimator,
    check_meta,
)
from .forest import predict_proba
from .geometry import PAPER_PREPROCESSING, Preprocessing
from .preprocess import preprocess
from .training_input import shape_preprocessing

__all__ = ["SavedModel", "VerdictRule", "save_model", "load_model", "ModelFileError", "PickleModelError",
           "ALLOWED_TYPES", "MODEL_SUFFIX", "MAX_ARCHIVE_BYTES"]

FORMAT_NAME = "diffranet-model"
FORMAT_VERSION = 1
MODEL_SUFFIX = ".dfm"
_META = "diffranet-model.json"
_SKOPS = "estimator.skops"
_SAFETENSORS = "weights.safetensors"
_ONNX = "network.onnx"
_MEAN_IMAGE = "__mean_image__"
_MEMBERS = {"skops": _SKOPS, "deepfreak": _SAFETENSORS}
#: Most bytes a model archive (and the skops archive inside it) may unpack to: 256 MiB, more than
#: twice the paper's DeepFreak (25.6 M parameters, 98 MiB of float32).
MAX_ARCHIVE_BYTES = 256 * 2**20
_MAX_META_BYTES = 2**20

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

# DeepFreak attributes kept in the JSON's "fitted" (the tensors go to safetensors): fitted values of
# the estimator's state and entries of its training history
_DEEPFREAK_FITTED = ("n_features_in_", "image_shape_", "pixel_range_")
_DEEPFREAK_HISTORY = ("seed_", "loss_curve_", "validation_scores_", "n_epochs_")


class ModelFileError(ValueError):
    """A file is not a diffranet model file, is damaged, or holds something that is not allowed."""


class PickleModelError(ModelFileError):
    """A pickle / joblib model file, refused because it is not marked as trusted."""


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
    rule : VerdictRule
        How class probabilities become verdicts (default: hit when the hit
        classes are the more probable side, never ``uncertain``).
    """

    def __init__(self, estimator, class_names, preprocessing=PAPER_PREPROCESSING, metadata=None, rule=None):
        self.estimator = estimator
        self.rule = VerdictRule() if rule is None else rule
        if not isinstance(self.rule, VerdictRule):
            raise ValueError(f"rule must be a VerdictRule, got {type(rule).__name__}")
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
        """One :func:`verdict` dict per row of class probabilities, by :attr:`rule`."""
        return [verdict(row, self.class_names, self.rule) for row in np.asarray(proba)]

    def with_rule(self, rule):
        """A copy whose verdicts follow ``rule`` (a :class:`VerdictRule`; None: the default rule)."""
        return SavedModel(self.estimator, self.class_names, self.preprocessing, self.metadata, rule)

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
        images = self.preprocess(frames, masks, geometry, beam_center_px=beam_center_px, saturation=saturation)
        return self.verdicts(self.predict_proba(images))

    def preprocess(self, frames, masks=None, geometry=None, *, beam_center_px=None, saturation=None, input="auto",
                   n_threads=None):
        """The model's 8-bit input images of raw frames (the first step of :meth:`classify`).

        Parameters as for :meth:`classify`; ``n_threads``: threads of each
        frame's compiled preprocessing (:func:`preprocess`).

        Returns
        -------
        ndarray of uint8, shape (n, rows, cols)
            ``rows, cols`` is ``preprocessing.shape``.
        """
        frames = [frames] if isinstance(frames, np.ndarray) and frames.ndim == 2 else frames
        if masks is None or (isinstance(masks, np.ndarray) and masks.ndim == 2):
            masks = [masks] * len(frames)
        if len(masks) != len(frames):
            raise ValueError(f"got {len(masks)} masks for {len(frames)} frames")
        if not len(frames):
            return np.zeros((0, *self.preprocessing.shape), np.uint8)
        return np.stack([
            preprocess(frame, mask, geometry, self.preprocessing, beam_center_px=beam_center_px,
                       saturation=saturation, input=input, n_threads=n_threads)
            for frame, mask in zip(frames, masks)
        ])


#: The label of a verdict whose most probable class is below the abstention threshold.
UNCERTAIN = "uncertain"


@dataclasses.dataclass(frozen=True)
class VerdictRule:
    """How class probabilities become a verdict.

    A frame is a hit when the probabilities of its hit classes (``weak``,
    ``good``, ``strong``, ``hit``) add up to at least ``hit_threshold``; its
    label is then the most probable hit class, else the most probable miss
    class, so label and hit always agree. At 0.5 the hit side is the more
    probable one (the decision with the fewest errors when the probabilities
    are right); below 0.5 a veto keeps more hits and more misses with them.
    A model whose classes are all hits or all misses labels by the most
    probable class.

    Parameters
    ----------
    hit_threshold : float, default 0.5
        In (0, 1).
    abstain : float, optional
        With it, a frame whose most probable class is below it gets the label
        ``"uncertain"`` and ``"uncertain": True``; ``hit`` is kept (a veto
        that keeps hits and uncertain frames loses no frame the model is
        unsure of). None: never.

    Examples
    --------
    Blank is the most probable class, but the hit classes add up to 0.55:

    >>> rule = VerdictRule()
    >>> labels, hits = rule.decide([[0.45, 0.0, 0.3, 0.25, 0.0]], CLASS_NAMES)
    >>> CLASS_NAMES[labels[0]], bool(hits[0])
    ('weak', True)
    >>> labels, hits = VerdictRule(hit_threshold=0.6).decide([[0.45, 0.0, 0.3, 0.25, 0.0]], CLASS_NAMES)
    >>> CLASS_NAMES[labels[0]], bool(hits[0])
    ('blank', False)
    """

    hit_threshold: float = 0.5
    abstain: float | None = None

    def __post_init__(self):
        if not _is_real(self.hit_threshold) or not 0 < self.hit_threshold < 1:
            raise ValueError(f"hit_threshold must be a probability in (0, 1), got {self.hit_threshold!r}")
        if self.abstain is not None and (not _is_real(self.abstain) or not 0 < self.abstain <= 1):
            raise ValueError(f"abstain must be a probability in (0, 1], got {self.abstain!r}")
        object.__setattr__(self, "hit_threshold", float(self.hit_threshold))
        object.__setattr__(self, "abstain", None if self.abstain is None else float(self.abstain))

    def decide(self, proba, class_names):
        """Label column and hit of each row of class probabilities.

        Parameters
        ----------
        proba : array_like, shape (n, n_classes)
        class_names : sequence of str
            The name of each column.

        Returns
        -------
        labels : ndarray of int64, shape (n,)
            Column of each row's label.
        hits : ndarray of bool, shape (n,)
        """
        proba = np.asarray(proba, dtype=np.float64)
        hit_side = np.array([name in HIT_NAMES for name in class_names])
        if not hit_side.any() or hit_side.all():
            labels = proba.argmax(axis=1)
            return labels, hit_side[labels]
        hits = proba[:, hit_side].sum(axis=1) >= self.hit_threshold
        on_side = np.where(hit_side[np.newaxis, :] == hits[:, np.newaxis], proba, -np.inf)
        return on_side.argmax(axis=1), hits


def _is_real(value):
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def verdict(proba, class_names, rule=None):
    """``{"label", "hit", "proba"}`` of one row of class probabilities, by ``rule`` (a :class:`VerdictRule`).

    Examples
    --------
    >>> verdict([0.1, 0.2, 0.6, 0.1, 0.0], CLASS_NAMES)
    {'label': 'weak', 'hit': True, 'proba': [0.1, 0.2, 0.6, 0.1, 0.0]}
    >>> verdict([0.1, 0.2, 0.6, 0.1, 0.0], CLASS_NAMES, VerdictRule(abstain=0.8))["label"]
    'uncertain'
    """
    rule = VerdictRule() if rule is None else rule
    proba = [float(p) for p in proba]
    labels, hits = rule.decide([proba], class_names)
    result = {"label": class_names[int(labels[0])], "hit": bool(hits[0]), "proba": proba}
    if rule.abstain is not None and max(proba) < rule.abstain:
        result.update(label=UNCERTAIN, uncertain=True)
    return result


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
    """(JSON description, safetensors bytes) of a fitted DeepFreakClassifier, from its ``_to_state``."""
    from safetensors.torch import save

    torch = require_torch()
    state = estimator._to_state()
    params = {k: _json_value(v) for k, v in state["params"].items()}
    params["checkpoint_path"] = None
    params["init"] = None  # the starting weights are in the trained ones
    if not isinstance(params.get("random_state"), (int, type(None))):
        params["random_state"] = None
    fitted = {name: _json_value(value) for name, value in state["fitted"].items() if name in _DEEPFREAK_FITTED}
    fitted.update((name, _json_value(value)) for name, value in state["history"].items()
                  if name in _DEEPFREAK_HISTORY)
    fitted["classes_"] = _json_value(state["classes"])
    tensors = {k: torch.as_tensor(v).contiguous() for k, v in state["network"].items()}
    tensors[_MEAN_IMAGE] = torch.from_numpy(np.ascontiguousarray(state["fitted"]["mean_image_"], dtype=np.float32))
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
        check_estimator(estimator)  # write only what load_model accepts
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


def _model_path(path_or_name):
    """The model file ``path_or_name`` names, checked to be a regular file without opening it."""
    if str(path_or_name) == "default" and not Path("default").exists():
        path = default_model_path()
        if path is None:
            raise ModelFileError(
                f"no default model is shipped with diffranet {__version__}; train one and pass its file"
            )
        return path
    try:
        return regular_file(path_or_name, "model file")
    except IsADirectoryError:
        path = Path(os.fspath(path_or_name))
        inside = sorted(p.name for p in path.glob(f"*{MODEL_SUFFIX}"))[:5]
        raise ModelFileError(
            f"{path} is a directory, not a model file"
            + (f"; it holds {', '.join(inside)}" if inside else f" (model files end in {MODEL_SUFFIX})")
        ) from None
    except NotRegularFileError as exc:
        raise ModelFileError(f"{exc}; a model is read from a regular file") from None


def load_model(path_or_name, *, trust=False):
    """Load a model file written by :func:`save_model`.

    Nothing in the file is executed: the JSON is parsed, scikit-learn
    pipelines are rebuilt by skops from an allow-list of types
    (:data:`ALLOWED_TYPES`), DeepFreak networks from their configuration and
    safetensors weights. Every value is checked before anything is built
    (:mod:`diffranet.inference._model_schema`: field types and ranges,
    estimator types and hyper-parameters, every decision tree node by node,
    network size against the tensors in the file), the archive's unpacked
    size is capped at :data:`MAX_ARCHIVE_BYTES`, and a skops estimator must
    classify a blank image of its input shape: a file holding the wrong
    thing is refused here, not at the first frame.

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
        (a ValueError) if the path is a directory, FIFO or device; the file
        is not a model file, is damaged, holds a type outside the allow-list
        or a value outside its schema, or (:class:`PickleModelError`) is a
        pickle and ``trust`` is False; or ``"default"`` is asked for and no
        model is shipped.
    """
    path = _model_path(path_or_name)
    with open(path, "rb") as fh:
        head = fh.read(8)
    if zipfile.is_zipfile(path):
        return _load_archive(path)
    if _looks_like_pickle(head):
        if not trust:
            raise PickleModelError(
                f"{path}: this is a pickle / joblib file, which can run arbitrary code when loaded; "
                "it is loaded only when marked as trusted"
            )
        return _load_trusted_pickle(path)
    raise ModelFileError(f"{path}: not a diffranet model file (neither a model archive nor a joblib file)")


def _read_member(path, archive, names, member, max_bytes):
    if member not in names:
        return None
    info = archive.getinfo(member)
    if info.file_size > max_bytes:
        raise ModelFileError(f"{path}: {member} expands to {info.file_size:,} bytes, more than the limit of "
                             f"{max_bytes:,}")
    return archive.read(member)


def _load_archive(path):
    try:
        with zipfile.ZipFile(path) as archive:
            check_zip_members(str(path), archive, MAX_ARCHIVE_BYTES)
            names = set(archive.namelist())
            meta_bytes = _read_member(path, archive, names, _META, _MAX_META_BYTES)
            if meta_bytes is None:
                raise ModelFileError(f"{path}: not a diffranet model file (a zip archive without {_META})")
            meta = json.loads(meta_bytes)
            try:
                kind, class_names, preprocessing = check_meta(meta, FORMAT_NAME, FORMAT_VERSION, tuple(_MEMBERS))
            except ValueError as exc:
                raise ModelFileError(f"{path}: {_META}: {exc}") from exc
            payload = _read_member(path, archive, names, _MEMBERS[kind], MAX_ARCHIVE_BYTES)
            if payload is None:
                raise ModelFileError(f"{path}: model kind {kind!r} without its data ({_MEMBERS[kind]})")
            graph = _read_member(path, archive, names, _ONNX, MAX_ARCHIVE_BYTES) if kind == "deepfreak" else None
    except ModelFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - zipfile, zlib and json raise many types for a damaged file
        raise ModelFileError(f"{path}: damaged or refused model file ({_reason(exc)})") from exc
    if kind == "skops":
        estimator = _load_skops(path, payload)
        model = _saved_model(path, estimator, class_names, preprocessing, meta)
        _check_predicts(path, model)
        return model
    try:
        description = meta.get("deepfreak")
        if not isinstance(description, dict):
            raise ValueError("a deepfreak model needs its 'deepfreak' description")
        estimator = _load_deepfreak(description, payload, preprocessing, graph)
    except (ModelFileError, ImportError):
        raise
    except Exception as exc:  # noqa: BLE001 - safetensors, torch and ONNX Runtime raise their own types
        raise ModelFileError(f"{path}: damaged or refused model file ({_reason(exc)})") from exc
    model = _saved_model(path, estimator, class_names, preprocessing, meta)
    if not _is_deepfreak(estimator):  # an ONNX graph from the file, not a network rebuilt here
        _check_predicts(path, model)
    return model


def _reason(exc):
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _saved_model(path, estimator, class_names, preprocessing, meta):
    try:
        return SavedModel(estimator, class_names, preprocessing, meta)
    except ValueError as exc:
        raise ModelFileError(f"{path}: {exc}") from exc


def _check_predicts(path, model):
    """Refuse a model that cannot classify a blank image of its input shape, or gives no probabilities."""
    try:
        proba = model.predict_proba(np.zeros((1, *model.preprocessing.shape), np.uint8))
    except Exception as exc:  # noqa: BLE001 - whatever the estimator raises, the file is the problem
        raise ModelFileError(f"{path}: the model cannot classify a blank image of its input shape "
                             f"{model.preprocessing.shape} ({_reason(exc)})") from exc
    if not np.all(np.isfinite(proba)):
        raise ModelFileError(f"{path}: the model gives non-finite class probabilities")


def _load_skops(path, payload):
    import skops.io as sio

    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as inner:
            check_zip_members(f"{path}: {_SKOPS}", inner, MAX_ARCHIVE_BYTES)
            for info in inner.infolist():
                if info.filename.endswith(".npy"):
                    zip_member_npy(inner, info, MAX_ARCHIVE_BYTES, f"{path}: {_SKOPS} array {info.filename}")
        untrusted = sio.get_untrusted_types(data=payload)
    except Exception as exc:  # noqa: BLE001 - skops raises many types for a damaged file
        raise ModelFileError(f"{path}: damaged estimator data ({_reason(exc)})") from exc
    _check_types(path, untrusted)
    try:
        estimator = sio.loads(payload, trusted=sorted(set(untrusted)))
    except Exception as exc:  # noqa: BLE001
        raise ModelFileError(f"{path}: damaged estimator data ({_reason(exc)})") from exc
    try:
        check_estimator(estimator)
    except ValueError as exc:
        raise ModelFileError(f"{path}: refused estimator: {exc}") from exc
    return estimator


def _load_deepfreak(description, payload, preprocessing, graph=None):
    """The estimator (with torch), or its ONNX graph under ONNX Runtime (without torch).

    The description is checked first either way; with torch, the estimator
    is rebuilt by ``DeepFreakClassifier._from_state``, which refuses weights
    that do not fit the described network before building it.
    """
    params, fitted = check_deepfreak(description, preprocessing, DeepFreakClassifier().get_params(deep=False))

    if not torch_available():
        if graph is None:
            require_torch()  # raises ImportError saying what to install
        return DeepFreakRuntime(graph, fitted["classes_"], fitted["image_shape_"], params["input_transform"])
    from safetensors.torch import load

    mean_shape = _safetensors_shapes(payload).get(_MEAN_IMAGE)
    if mean_shape is None or len(mean_shape) not in (2, 3) or math.prod(mean_shape) > MAX_INPUT_PIXELS:
        raise ValueError(f"the mean image has shape {mean_shape}, expected a 2-D image (3-D: one per channel)")
    tensors = load(payload)
    mean_image = tensors.pop(_MEAN_IMAGE).numpy()
    state = {
        "params": params,
        "classes": fitted.pop("classes_"),
        "fitted": dict({k: v for k, v in fitted.items() if k in _DEEPFREAK_FITTED}, mean_image_=mean_image),
        "history": {k: v for k, v in fitted.items() if k in _DEEPFREAK_HISTORY},
        "network": tensors,
    }
    return DeepFreakClassifier._from_state(state)


def _safetensors_shapes(payload):
    """``{name: shape}`` from a safetensors header, read without loading any tensor."""
    if len(payload) < 8:
        raise ValueError("safetensors data shorter than its header")
    length = int.from_bytes(payload[:8], "little")
    if length > min(len(payload) - 8, _MAX_META_BYTES):
        raise ValueError(f"safetensors header of {length:,} bytes does not fit the data")
    header = json.loads(payload[8 : 8 + length])
    if not isinstance(header, dict):
        raise ValueError("safetensors header is not a JSON object")
    shapes = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        shape = entry.get("shape") if isinstance(entry, dict) else None
        if not isinstance(shape, list) or not all(isinstance(d, int) and 0 <= d < 2**40 for d in shape):
            raise ValueError(f"safetensors tensor {name!r} has no valid shape")
        shapes[name] = tuple(shape)
    return shapes


def _load_trusted_pickle(path):
    import joblib

    try:
        estimator = joblib.load(path)
    except Exception as exc:  # noqa: BLE001 - unpickling raises anything
        raise ModelFileError(f"{path}: cannot be unpickled ({_reason(exc)})") from exc
    if not (hasattr(estimator, "predict") and hasattr(estimator, "classes_")):
        raise ModelFileError(f"{path}: holds a {type(estimator).__module__}.{type(estimator).__qualname__}, "
                             "not a fitted classifier")
    classes = np.asarray(getattr(estimator, "classes_", []))
    # old files hold label integers 0..4 (the five DiffraNet classes) or the class names themselves
    names = CLASS_NAMES if classes.dtype.kind in "iu" else tuple(str(c) for c in classes)
    first = estimator.steps[0][1] if hasattr(estimator, "steps") else estimator
    try:
        preprocessing = shape_preprocessing(getattr(first, "image_shape_", None))
        model = SavedModel(estimator, names, preprocessing, {"kind": "joblib", "trusted": True})
    except ValueError as exc:
        raise ModelFileError(f"{path}: not a usable classifier ({exc})") from exc
    _check_predicts(path, model)
    return model
