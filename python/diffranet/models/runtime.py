"""DeepFreak without PyTorch: the trained network as an ONNX graph run by ONNX Runtime.

Training needs PyTorch; classifying does not. :func:`inference_graph` exports a
fitted :class:`~diffranet.models.deepfreak.DeepFreakClassifier`'s tensor stage
(block maxima or resizing, rescaling, mean subtraction), network and softmax
as one ONNX graph; :class:`DeepFreakRuntime` runs it with the same numpy input
stage (the images, or their significance map) and answers ``predict_proba``
like the estimator, to float rounding (tested).
"""

from __future__ import annotations

import importlib
import io
import warnings

import numpy as np

from ._torch import require_torch

__all__ = ["inference_graph", "DeepFreakRuntime", "runtime_available", "ONNX_OPSET"]

#: ONNX operator set of the exported graphs (ONNX Runtime 1.16 and newer run it).
ONNX_OPSET = 17

_INSTALL_HINT = ("classifying with a DeepFreak model needs onnxruntime (`pip install onnxruntime`) "
                 "or PyTorch (`pip install 'diffranet[torch]'`)")


def runtime_available():
    """Whether ONNX Runtime can be imported."""
    try:
        importlib.import_module("onnxruntime")
    except ImportError:
        return False
    return True


def inference_graph(estimator):
    """ONNX bytes of a fitted DeepFreak network: input stage output -> class probabilities.

    The graph's input ``x`` is float32 of shape (batch, rows, cols) (what
    :meth:`DeepFreakRuntime.input_stage` gives); its output ``proba`` is
    float32 (batch, n_classes). Needs torch and the ``onnx`` package. The
    graph is built from the estimator's ``_to_state``, on a CPU copy of its
    network: the estimator itself is left where it is.
    """
    # imported on use: the data path loads the features package (scikit-image), which running a graph does not need
    from ._data import tensor_stage

    torch = require_torch()
    state = estimator._to_state()
    params, fitted = state["params"], state["fitted"]
    copy = type(estimator)._from_state({**state, "fitted": {**fitted, "device_": "cpu"}})

    class _Graph(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.network = copy.model_  # a submodule: its weights become the graph's initialisers
            self.register_buffer("mean", torch.from_numpy(np.ascontiguousarray(fitted["mean_image_"],
                                                                               dtype=np.float32)))

        def forward(self, x):
            x = tensor_stage(x, torch, x.device, input_size=params["input_size"], resize=params["resize"],
                             pixel_range=fitted["pixel_range_"], mean=self.mean)
            return torch.softmax(self.network(x), dim=1)

    example = torch.zeros((2, *_stage_shape(fitted["image_shape_"], params["input_transform"])), dtype=torch.float32)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's notes on tracing and on its legacy path
        torch.onnx.export(_Graph().eval(), (example,), buffer, dynamo=False, input_names=["x"],
                          output_names=["proba"], dynamic_axes={"x": {0: "batch"}, "proba": {0: "batch"}},
                          opset_version=ONNX_OPSET)
    return buffer.getvalue()


def _stage_shape(image_shape, input_transform):
    """Shape of one image of ``image_shape`` after the input stage."""
    rows, cols = image_shape
    if input_transform == "significance":
        return rows // 4, cols // 4
    if input_transform == "significance_top2":
        return 2, rows // 4, cols // 4
    return rows, cols


class DeepFreakRuntime:
    """A fitted DeepFreak network run by ONNX Runtime (no PyTorch needed).

    Parameters
    ----------
    graph : bytes
        From :func:`inference_graph`.
    classes : array_like
        ``classes_`` of the estimator.
    image_shape : tuple of int
        Shape of the images the estimator was fitted on.
    input_transform : {None, "significance", "significance_top2"}
    n_threads : int, optional
        Threads of ONNX Runtime's operators; default its own choice (all cores).
    """

    def __init__(self, graph, classes, image_shape, input_transform=None, n_threads=None):
        try:
            ort = importlib.import_module("onnxruntime")
        except ImportError as exc:
            raise ImportError(_INSTALL_HINT) from exc
        options = ort.SessionOptions()
        if n_threads is not None:
            options.intra_op_num_threads = int(n_threads)
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(graph, sess_options=options, providers=["CPUExecutionProvider"])
        self.classes_ = np.asarray(classes)
        self.image_shape_ = tuple(int(s) for s in image_shape)
        self.input_transform = input_transform

    def input_stage(self, images):
        """float32: the graph's input (the images, or their significance map; see ``_data.input_stage``)."""
        # imported on use: the features package loads scikit-image, which a plain input does not need
        from ._data import input_stage

        return np.ascontiguousarray(input_stage(images, self.input_transform), dtype=np.float32)

    def predict_proba(self, X, batch_size=64):
        """Class probabilities, float64 (n, n_classes), columns in the order of ``classes_``."""
        X = np.asarray(X)
        if X.ndim != 3 or X.shape[1:] != self.image_shape_:
            raise ValueError(f"X must hold images of shape {self.image_shape_}, got {X.shape}")
        proba = np.empty((len(X), len(self.classes_)), np.float64)
        for start in range(0, len(X), batch_size):
            x = self.input_stage(X[start:start + batch_size])
            proba[start:start + len(x)] = self._session.run(None, {"x": x})[0]
        return proba

    def predict(self, X):
        """Most probable class of each image."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
