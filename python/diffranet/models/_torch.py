"""Optional PyTorch import."""

import importlib
import importlib.util

INSTALL_HINT = (
    "DeepFreakClassifier needs PyTorch: `pip install 'diffranet[torch]'`. On a CPU-only machine "
    "install the CPU build of torch first (for example `pip install 'torch==2.13.0+cpu' --extra-index-url "
    "https://download.pytorch.org/whl/cpu`) so that pip does not pull a multi-GB CUDA build."
)


def torch_available():
    """Whether PyTorch can be imported."""
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


def require_torch():
    """Import and return torch, or raise an ImportError saying what to install."""
    try:
        return importlib.import_module("torch")
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
