"""Neural-network classifiers. They need PyTorch, which is optional: importing
this package always works, and using a model without torch raises an
ImportError that says what to install."""

from ._data import INPUT_CHANNELS
from ._torch import require_torch, torch_available
from .deepfreak import DeepFreakClassifier

__all__ = ["INPUT_CHANNELS", "DeepFreakClassifier", "require_torch", "torch_available"]
