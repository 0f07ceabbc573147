"""The package's figures, as PNG files (matplotlib, no display needed).

Each function draws one figure from plain numbers or images and saves it;
none reads data or models. The evaluation report, ``diffranet dataset --info``
and the training scripts all draw here. Figures are built on
:class:`matplotlib.figure.Figure` directly (no pyplot state, no backend
switch), so they are safe in scripts, notebooks, servers and threads, and
saved through the Agg renderer.

Detector images are shown on one grey-scale rule (:func:`grey_window`): a
linear map of the 8-bit values from ``vmin`` (black, the 0.5th percentile) to
``vmax`` (white, the 99.9th percentile), brighter values clipped, computed per
panel or over all the panels of a figure; a large image is reduced for display
by taking the maximum of each ``f x f`` block, so that one-pixel Bragg spots
stay visible.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np

from ._atomic import atomic_path

__all__ = [
    "grey_window",
    "display_image",
    "confusion_matrix_figure",
    "roc_figure",
    "pr_figure",
    "quantity_figure",
    "gallery_figure",
    "learning_curve_figure",
]

_DPI = 100


def _figure(width, height):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=_DPI, layout="constrained")


def _save(fig, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def grey_window(images, low_percentile=0.5, high_percentile=99.9):
    """The grey scale of a set of 8-bit images: ``(vmin, vmax)``.

    ``vmin`` is the ``low_percentile`` of all their pixels, ``vmax`` the
    ``high_percentile`` (at least ``vmin + 1``), so a faint spot on a dim
    background is visible and a saturated one does not set the scale.

    Examples
    --------
    >>> grey_window([np.arange(256, dtype=np.uint8).reshape(16, 16)], 0, 100)
    (0, 255)
    """
    pixels = np.concatenate([np.asarray(image).ravel() for image in images]) if len(images) else np.zeros(1)
    vmin = int(np.floor(np.percentile(pixels, low_percentile)))
    vmax = int(np.ceil(np.percentile(pixels, high_percentile)))
    return vmin, max(vmax, vmin + 1)


def display_image(image, max_pixels):
    """``image`` reduced to at most ``max_pixels`` per side by f x f block maxima, and f.

    Examples
    --------
    >>> small, f = display_image(np.eye(4, dtype=np.uint8) * 9, 2)
    >>> small.tolist(), f
    ([[9, 0], [0, 9]], 2)
    """
    image = np.asarray(image)
    factor = max(1, math.ceil(max(image.shape) / max_pixels))
    if factor == 1:
        return image, 1
    rows, cols = (-(-s // factor) * factor for s in image.shape)
    padded = np.zeros((rows, cols), dtype=image.dtype)
    padded[:image.shape[0], :image.shape[1]] = image
    return padded.reshape(rows // factor, factor, cols // factor, factor).max(axis=(1, 3)), factor


def confusion_matrix_figure(matrix, labels, path, precision, recall, title="Confusion matrix"):
    """Counts of true (rows) against predicted (columns) classes, shaded by row share.

    Each cell shows its count and its share of the row (the recall on the
    diagonal); the last column gives each class's recall and the last row
    each class's precision, as in the paper's Table 6.

    Parameters
    ----------
    matrix : array_like of int, shape (k, k)
    labels : sequence of str, length k
    path : path-like
    precision, recall : sequence of float, length k
        Per class (``nan`` where undefined), from
        :func:`diffranet.evaluation.metrics.precision_recall`.
    title : str
    """
    matrix = np.asarray(matrix)
    precision, recall = np.asarray(precision, dtype=float), np.asarray(recall, dtype=float)
    k = len(labels)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = matrix / matrix.sum(axis=1, keepdims=True)
    fig = _figure(1.8 + 0.95 * (k + 1), 1.2 + 0.6 * (k + 1))
    ax = fig.add_subplot()
    ax.imshow(np.nan_to_num(share), cmap="Blues", vmin=0, vmax=1, extent=(-0.5, k - 0.5, k - 0.5, -0.5),
              aspect="auto")
    for i in range(k):
        for j in range(k):
            dark = share[i, j] > 0.6
            text = f"{matrix[i, j]:d}" + ("" if math.isnan(share[i, j]) else f"\n{100 * share[i, j]:.1f}%")
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else "black")
        ax.text(k, i, "-" if math.isnan(recall[i]) else f"{100 * recall[i]:.2f}", ha="center", va="center",
                fontsize=8)
    for j in range(k):
        ax.text(j, k, "-" if math.isnan(precision[j]) else f"{100 * precision[j]:.2f}", ha="center",
                va="center", fontsize=8)
    ax.set_xlim(-0.5, k + 0.5)
    ax.set_ylim(k + 0.5, -0.5)
    ax.set_xticks(range(k + 1), list(labels) + ["recall %"], rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(k + 1), list(labels) + ["precision %"], fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


def _curve_figure(curves, path, x_key, y_key, op_x, op_y, xlabel, ylabel, title, diagonal):
    fig = _figure(4.6, 4.2)
    ax = fig.add_subplot()
    if diagonal:
        ax.plot([0, 1], [0, 1], color="0.8", lw=0.8, ls="--")
    for k, (name, curve, point, score) in enumerate(curves):
        color = f"C{k % 10}"
        ax.plot(curve[x_key], curve[y_key], color=color, lw=1.4, label=f"{name} ({score})",
                drawstyle="steps-post" if not diagonal else "default")
        if not (math.isnan(point[op_x]) or math.isnan(point[op_y])):
            ax.plot([point[op_x]], [point[op_y]], "o", color=color, ms=7, mec="black",
                    label=f"{name}: its decisions ({point[op_x]:.3f}, {point[op_y]:.3f})")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right" if diagonal else "lower left")
    return _save(fig, path)


def roc_figure(curves, path):
    """Hit / miss ROC curves, one per model, each with its operating point.

    Parameters
    ----------
    curves : list of (name, roc, operating_point)
        ``roc`` from :func:`~diffranet.evaluation.metrics.roc_points`,
        ``operating_point`` from :func:`~diffranet.evaluation.metrics.operating_point`.
    path : path-like
    """
    curves = [(name, roc, point, f"AUC {roc['auc']:.4f}") for name, roc, point in curves]
    return _curve_figure(curves, path, "fpr", "tpr", "fpr", "tpr", "misses called hits (false-positive rate)",
                         "hits found (true-positive rate)", "Hit / miss ROC (hit score: summed hit-class "
                         "probability)", diagonal=True)


def pr_figure(curves, path):
    """Hit precision against recall, one curve per model, each with its operating point.

    Parameters
    ----------
    curves : list of (name, pr, operating_point)
        ``pr`` from :func:`~diffranet.evaluation.metrics.pr_points`.
    path : path-like
    """
    curves = [(name, pr, point, f"AP {pr['average_precision']:.4f}") for name, pr, point in curves]
    return _curve_figure(curves, path, "recall", "precision", "recall", "precision", "recall (hits found)",
                         "precision (true hits among frames called hits)", "Hit / miss precision-recall",
                         diagonal=False)


def quantity_figure(bins, series, path, thresholds=None, quantity="significant spots"):
    """Accuracy in ranges of the label quantity, one line per (model, measure).

    Parameters
    ----------
    bins : list of (int, int)
        Inclusive ranges of the quantity.
    series : list of (label, counts, accuracies)
        Accuracies in [0, 1] (``nan`` for an empty bin).
    path : path-like
    thresholds : dict, optional
        Class boundaries to mark, name -> quantity (e.g. ``{"weak_min": 10}``).
    quantity : str
        Axis label.
    """
    fig = _figure(6.4, 3.8)
    ax = fig.add_subplot()
    x = np.arange(len(bins))
    for k, (label, counts, acc) in enumerate(series):
        ax.plot(x, 100 * np.asarray(acc, dtype=float), "o-", color=f"C{k % 10}", label=label, ms=4)
    if series:
        for xi, n in zip(x, series[0][1]):
            ax.annotate(f"n={n}", (xi, 0), xycoords=("data", "axes fraction"), xytext=(0, 3),
                        textcoords="offset points", ha="center", fontsize=6, color="0.4")
    names = [f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in bins]
    for name, value in (thresholds or {}).items():
        inside = [k for k, (lo, hi) in enumerate(bins) if lo <= value <= hi]
        if inside:  # a dotted line where the class boundary falls, inside its bin in proportion
            k = inside[0]
            lo, hi = bins[k]
            ax.axvline(k - 0.5 + (value - lo) / (hi - lo + 1), color="0.6", ls=":", lw=1)
            ax.annotate(f"{name} = {value}", (k, 1), xycoords=("data", "axes fraction"), xytext=(0, -10),
                        textcoords="offset points", fontsize=6, color="0.4", ha="center")
    ax.set_xticks(x, names, rotation=30, ha="right", fontsize=7)
    ax.set_ylim(-5, 105)
    ax.set_xlabel(f"{quantity} (label quantity, per bin)")
    ax.set_ylabel("correct decisions (%)")
    ax.set_title(f"Accuracy against the number of {quantity}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def gallery_figure(images, titles, path, title, columns=6, panel_px=256, shared_scale=False):
    """A grid of 8-bit images, each with its grey scale stated.

    By default each panel has its own :func:`grey_window`, printed under it:
    shots differ in pulse energy, so one scale for all would hide the spots of
    the dim ones. With ``shared_scale`` one window over all the panels is used
    for every panel, so that panels can be compared by eye.

    Parameters
    ----------
    images : sequence of (2-D uint8 array or None)
        Panels in reading order (row by row); None leaves a panel empty.
    titles : sequence of str
        One caption per image.
    path : path-like
    title : str
        Figure title; the grey scale and display reduction are appended.
    columns : int, default 6
    panel_px : int, default 256
        Displayed pixels per panel side; larger images are reduced by block maxima.
    shared_scale : bool, default False

    Returns
    -------
    path : pathlib.Path
    scaling : str
        The grey-scale statement printed on the figure.
    """
    n = len(images)
    shown_images = [np.asarray(image) for image in images if image is not None]
    if not shown_images:
        raise ValueError("a gallery needs at least one image")
    if len(titles) != n:
        raise ValueError(f"got {len(titles)} titles for {n} images")
    columns = max(1, min(columns, n))
    rows = -(-n // columns)
    shared = grey_window(shown_images)
    windows = [None if image is None else shared if shared_scale else grey_window([image]) for image in images]
    shown = [None if image is None else display_image(image, panel_px) for image in images]
    factor = max(f for _, f in filter(None, shown))
    if shared_scale:
        scaling = f"grey scale: 8-bit values {shared[0]} (black) to {shared[1]} (white), linear"
    else:
        scaling = ("grey scale per panel, linear from its 0.5th percentile (black) to its 99.9th percentile "
                   "(white), 8-bit values given as [black-white]")
    scaling += ", values beyond clipped" + (
        "" if factor == 1 else f"; each displayed pixel is the maximum of {factor} x {factor} detector pixels")
    size = panel_px / _DPI
    fig = _figure(columns * size * 1.02, rows * (size + 0.55) + 0.9)
    for k, (panel, caption, window) in enumerate(zip(shown, titles, windows)):
        if panel is None:
            continue
        vmin, vmax = window
        ax = fig.add_subplot(rows, columns, k + 1)
        ax.imshow(panel[0], cmap="gray", vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_title(caption if shared_scale else f"{caption}\n[{vmin}-{vmax}]", fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    width_chars = int(columns * size * 15)  # about 15 characters of 8 pt per inch
    fig.suptitle("\n".join(textwrap.wrap(title, width_chars) + textwrap.wrap(scaling, width_chars)), fontsize=8)
    return _save(fig, path), scaling


def learning_curve_figure(history, path, title="Training history"):
    """Training loss (left axis, log scale) and validation accuracy (right axis) per epoch.

    Parameters
    ----------
    history : dict
        A training history (:func:`diffranet.training_history.training_history`):
        ``{"loss": [...], "val_accuracy": [...], ...}``, the second possibly
        empty. The epoch of the best validation accuracy is marked.
    path : path-like
    title : str

    Returns
    -------
    pathlib.Path
    """
    loss = np.asarray(history.get("loss") or [], dtype=float)
    if not len(loss):
        raise ValueError("the training history holds no training loss")
    fig = _figure(5.6, 3.6)
    ax = fig.add_subplot()
    epochs = np.arange(1, len(loss) + 1)
    ax.plot(epochs, loss, "o-", color="C0", ms=3, label="training loss")
    ax.xaxis.get_major_locator().set_params(integer=True)  # whole epochs only
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean training loss (cross-entropy)", color="C0")
    ax.set_yscale("log")
    handles, names = ax.get_legend_handles_labels()
    validation = np.asarray(history.get("val_accuracy") or [], dtype=float)
    if len(validation):
        twin = ax.twinx()
        twin.plot(np.arange(1, len(validation) + 1), 100 * validation, "s--", color="C1", ms=3,
                  label="validation accuracy")
        twin.set_ylabel("validation accuracy (%)", color="C1")
        twin.axvline(int(np.argmax(validation)) + 1, color="0.5", ls=":", lw=1)
        more = twin.get_legend_handles_labels()
        handles, names = handles + more[0], names + more[1]
    ax.legend(handles, names, loc="center right", fontsize=7)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    return _save(fig, path)
