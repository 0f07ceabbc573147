"""Learning curves of a DeepFreak training run, as a figure."""

from __future__ import annotations

from pathlib import Path

from .._atomic import atomic_path

__all__ = ["plot_learning_curve"]


def plot_learning_curve(history, path, title=None):
    """Save the training loss and validation accuracy per epoch as a PNG.

    Parameters
    ----------
    history : dict
        ``{"loss": [...], "val_accuracy": [...]}`` as recorded in a DeepFreak
        model file (``SavedModel.metadata["training"]["history"]``).
    path : str or path-like
        Output PNG (written atomically).
    title : str, optional

    Returns
    -------
    pathlib.Path
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loss = list(history.get("loss", []))
    val = list(history.get("val_accuracy", []))
    if not loss:
        raise ValueError("history holds no training loss")
    epochs = range(1, len(loss) + 1)
    fig, ax_loss = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    ax_loss.plot(epochs, loss, color="tab:blue", marker="o", markersize=3, label="training loss")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("mean cross-entropy (training)", color="tab:blue")
    ax_loss.set_yscale("log")
    handles = ax_loss.get_legend_handles_labels()
    if val:
        ax_val = ax_loss.twinx()
        ax_val.plot(range(1, len(val) + 1), [100 * v for v in val], color="tab:orange", marker="s", markersize=3,
                    label="validation accuracy")
        ax_val.set_ylabel("validation accuracy (%)", color="tab:orange")
        best = max(range(len(val)), key=val.__getitem__)
        ax_val.axvline(best + 1, color="grey", linestyle=":", linewidth=1)
        more = ax_val.get_legend_handles_labels()
        handles = (handles[0] + more[0], handles[1] + more[1])
    ax_loss.legend(*handles, loc="center right", fontsize="small")
    if title:
        ax_loss.set_title(title, fontsize="medium")
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path
