"""Summarise a generated dataset: class counts, label-quantity ranges, example gallery."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._validation import check_int
from ..classes import CLASS_NAMES
from ..plots import gallery_figure
from .loader import read_index
from .shards import read_shard

__all__ = ["dataset_info", "format_info", "write_gallery"]

_COLUMNS = ("n_detectable_spots", "n_significant_spots", "volume_scale", "crystal_size_um", "photons")


def _tables(dataset_dir, index):
    for split, entry in index["splits"].items():
        for shard in entry["shards"]:
            yield split, read_shard(Path(dataset_dir) / shard["file"], images=False)["metadata"]


def dataset_info(dataset_dir):
    """Class counts and ranges of the label quantity and the drawn parameters.

    Parameters
    ----------
    dataset_dir : path-like

    Returns
    -------
    dict
        ``{"splits": {split: {"n_images", "class_counts"}}, "classes": {name:
        {"count", column: [min, median, max], ...}}}`` over all splits, for the
        columns ``n_detectable_spots``, ``n_significant_spots``, ``volume_scale``, ``crystal_size_um``
        and ``photons``.
    """
    index = read_index(dataset_dir)
    per_class = {k: [] for k in range(len(CLASS_NAMES))}
    for _, table in _tables(dataset_dir, index):
        for k in per_class:
            per_class[k].append(table[table["label"] == k])
    classes = {}
    for k, parts in per_class.items():
        rows = np.concatenate(parts) if parts else np.zeros(0)
        entry = {"count": int(len(rows))}
        for column in _COLUMNS:
            values = rows[column] if len(rows) else np.zeros(0)
            entry[column] = ([float(values.min()), float(np.median(values)), float(values.max())]
                             if len(values) else None)
        classes[CLASS_NAMES[k]] = entry
    splits = {s: {"n_images": e["n_images"], "class_counts": e["class_counts"]} for s, e in index["splits"].items()}
    return {"splits": splits, "classes": classes}


def format_info(info):
    """The report of :func:`dataset_info` as text."""
    lines = ["split   images  " + "  ".join(f"{name:>10}" for name in CLASS_NAMES)]
    for split, entry in info["splits"].items():
        counts = "  ".join(f"{c:>10d}" for c in entry["class_counts"])
        lines.append(f"{split:<7} {entry['n_images']:>6d}  {counts}")
    lines.append("")
    lines.append("class        count   detectable spots (min/median/max)   significant spots (min/median/max)"
                 "   volume scale (min/median/max)   crystal size um (min/max)   photons (min/max)")
    for name, entry in info["classes"].items():
        def triple(col, fmt):
            values = entry[col]
            return "-" if values is None else "/".join(format(v, fmt) for v in values)

        size = entry["crystal_size_um"]
        photons = entry["photons"]
        lines.append(f"{name:<11} {entry['count']:>6d}   {triple('n_detectable_spots', '.0f'):>33}   "
                     f"{triple('n_significant_spots', '.0f'):>34}   "
                     f"{triple('volume_scale', '.3g'):>29}   "
                     f"{'-' if size is None else f'{size[0]:.3g}/{size[2]:.3g}':>25}   "
                     f"{'-' if photons is None else f'{photons[0]:.3g}/{photons[2]:.3g}':>17}")
    return "\n".join(lines)


def write_gallery(dataset_dir, path, per_class=6, split=None):
    """Save a PNG grid: ``per_class`` example images of each class, one row per class.

    Drawn by :func:`diffranet.plots.gallery_figure` with one grey scale for
    the whole figure (stated on it), so that classes can be compared by eye;
    each panel shows the central half (rows and columns) of an image, where
    the spots of weak images lie, titled with its class, image number and
    detectable spots.

    Parameters
    ----------
    dataset_dir : path-like
    path : path-like
        Output PNG.
    per_class : int, default 6
    split : str, optional
        Split to draw from; default: the first one with images.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    per_class = check_int("per_class", per_class, minimum=1)
    index = read_index(dataset_dir)
    if split is None:
        split = next((s for s, e in index["splits"].items() if e["n_images"]), None)
    if split is None or split not in index["splits"]:
        raise ValueError(f"split must name a split with images in {dataset_dir}, got {split!r}")
    examples = {k: [] for k in range(len(CLASS_NAMES))}
    for shard in index["splits"][split]["shards"]:
        data = read_shard(Path(dataset_dir) / shard["file"])
        for image, row in zip(data["images"], data["metadata"]):
            bucket = examples[int(row["label"])]
            if len(bucket) < per_class:
                bucket.append((_central_half(image), f"{CLASS_NAMES[int(row['label'])]} #{int(row['index'])}  "
                                                    f"{int(row['n_detectable_spots'])} spots"))
        if all(len(b) == per_class for b in examples.values()):
            break
    panels = [bucket[j] if j < len(bucket) else (None, "") for bucket in examples.values() for j in range(per_class)]
    return gallery_figure([image for image, _ in panels], [caption for _, caption in panels], path,
                          f"{Path(dataset_dir).name}: {split}, {per_class} per class, one row per class "
                          f"(spots: detectable spots, the label quantity; central half of each image)",
                          columns=per_class, panel_px=160, shared_scale=True)[0]


def _central_half(image):
    """The central half (rows and columns) of an image, where the spots of weak images lie."""
    rows, cols = image.shape
    return image[rows // 4:rows - rows // 4, cols // 4:cols - cols // 4]
