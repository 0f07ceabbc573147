"""DeepFreak's training checkpoints: what a fit saves after every epoch, and when it may resume from it.

A checkpoint is a ``torch.save`` file (read back with ``weights_only=True``)
holding the identity of the fit (configuration, classes, number of images,
per-pixel mean) and its progress (epoch, network, optimiser, learning-rate
schedule, history, early-stopping state). A fit resumes from a checkpoint of
the same identity only.
"""

from __future__ import annotations

import os
from numbers import Integral

import numpy as np

from .._atomic import atomic_write

__all__ = ["EXECUTION_PARAMS", "Checkpoint", "checkpoint_config"]

# Parameters that change how fast or where training runs, not what it computes:
# a checkpoint written under other values of these can be resumed.
EXECUTION_PARAMS = frozenset(
    {"epochs", "verbose", "checkpoint_path", "device", "n_threads", "workers", "predict_batch_size"}
)


def checkpoint_config(params):
    """The configuration a checkpoint is written for: ``repr`` of each parameter that shapes the result.

    Parameters
    ----------
    params : dict
        ``get_params(deep=False)`` of the estimator.

    Returns
    -------
    dict of str
        Without :data:`EXECUTION_PARAMS`, and without ``random_state`` unless
        it is an int (a generator's draw is not a configuration).
    """
    params = dict(params)
    if not isinstance(params["random_state"], Integral):
        params.pop("random_state")
    config = {name: repr(value) for name, value in params.items() if name not in EXECUTION_PARAMS}
    config["stage_strides"] = repr(tuple(params["stage_strides"]))
    return config


class Checkpoint:
    """The checkpoint file of one fit.

    Parameters
    ----------
    path : str or path-like
        The file.
    config : dict
        :func:`checkpoint_config` of the estimator.
    classes : list
        The estimator's ``classes_``.
    n_samples : int
        Training images.
    mean_image : ndarray
        Per-pixel mean of the training images.
    """

    def __init__(self, path, config, classes, n_samples, mean_image):
        self.path = os.fspath(path)
        self.identity = {"config": config, "classes": list(classes), "n_samples": n_samples}
        self.mean_image = mean_image

    def load(self, torch, device):
        """The saved state on ``device``, or None when there is no file yet.

        Raises
        ------
        ValueError
            If the file was written for another configuration or data set.
        """
        if not os.path.exists(self.path):
            return None
        state = torch.load(self.path, map_location=device, weights_only=True)
        found = {key: state.get(key) for key in self.identity}
        same_mean = np.array_equal(state["mean_image"].cpu().numpy(), self.mean_image)
        if found != self.identity or not same_mean:
            raise ValueError(
                f"checkpoint {self.path!r} was written for another configuration or data set; "
                "delete it or choose another checkpoint_path"
            )
        return state

    def save(self, torch, *, seed, epoch, model, optimizer, scheduler, history, best_model, best_score, stale):
        """Write the state after ``epoch`` epochs (atomically: a checkpoint is whole or absent).

        ``history`` holds the lists ``loss_curve``, ``validation_scores`` and
        ``epoch_seconds``; ``best_model``, ``best_score`` and ``stale`` are
        early stopping's best weights, best score and epochs without progress.
        """
        state = {
            **self.identity,
            "mean_image": torch.from_numpy(self.mean_image),
            "seed": seed,
            "epoch": epoch,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "loss_curve": list(history["loss_curve"]),
            "validation_scores": list(history["validation_scores"]),
            "epoch_seconds": list(history["epoch_seconds"]),
            "best_model": best_model,
            "best_score": best_score,
            "stale": stale,
        }
        with atomic_write(os.path.abspath(self.path)) as handle:
            torch.save(state, handle)
