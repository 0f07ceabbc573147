"""DeepFreak: the paper's ResNet-based classifier, as a scikit-learn estimator."""

from sklearn.base import BaseEstimator, ClassifierMixin

from ._torch import require_torch


class DeepFreakClassifier(ClassifierMixin, BaseEstimator):
    """ResNet classifier of diffraction images (needs PyTorch)."""

    def __init__(self, epochs=10, random_state=None):
        self.epochs = epochs
        self.random_state = random_state

    def fit(self, X, y):
        require_torch()
        raise ImportError("DeepFreakClassifier is not available in this build")
