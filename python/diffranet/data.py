"""Load labelled image sets: DiffraNet's folder layout or a generated dataset.

Two layouts are read, chosen by what the data folder holds:

* **folders**: one sub-folder per split (``train``, ``val``, ``test``), each
  with one sub-folder per class: ``1`` to ``5`` as in the published DiffraNet
  archive, or the class names (``blank``, ``no-crystal``, ``weak``, ``good``,
  ``strong``);
* **shards**: a directory made by ``diffranet dataset`` (``index.json`` and
  HDF5 shards), read by :func:`diffranet.dataset.load_arrays`.

Labels are 0 (blank) to 4 (strong).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .classes import CLASS_NAMES, MISS_LABELS  # noqa: F401  (re-exported)
from .io import read_image, supported_extensions

#: Image extensions read from class folders.
IMAGE_EXTENSIONS = (".pgm", ".png")


def _class_label(folder):
    """Label of a class folder named ``1``..``5`` or by class name, else None."""
    name = folder.name.lower()
    if name in CLASS_NAMES:
        return CLASS_NAMES.index(name)
    if name.isdigit() and 1 <= int(name) <= len(CLASS_NAMES):
        return int(name) - 1
    return None


def _load_image_folders(split_dir):
    """Read every PGM/PNG image of the class folders of ``split_dir``."""
    extensions = [ext for ext in IMAGE_EXTENSIONS if ext in supported_extensions()]
    paths, labels = [], []
    for folder in sorted(p for p in split_dir.iterdir() if p.is_dir()):
        label = _class_label(folder)
        if label is None:
            raise ValueError(f"{folder}: class folders must be named 1..5 or {', '.join(CLASS_NAMES)}")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in extensions)
        paths += files
        labels += [label] * len(files)
    if not paths:
        raise ValueError(f"{split_dir}: no {'/'.join(extensions)} images in class folders")
    images = [read_image(path) for path in paths]
    shapes = {image.shape for image in images}
    if len(shapes) != 1:
        raise ValueError(f"{split_dir}: images must share one shape, got {sorted(shapes)}")
    X = np.stack(images)
    if X.dtype != np.uint8:
        raise ValueError(f"{split_dir}: images must be 8-bit, got {X.dtype}")
    return X, np.asarray(labels, dtype=np.int64)


def _is_shard_dataset(data_dir):
    from .dataset.loader import is_dataset_dir

    return is_dataset_dir(data_dir)


def _load_shards(data_dir, split):
    from .dataset.loader import load_arrays

    return load_arrays(data_dir, split)


def _has_shard_split(data_dir, split):
    from .dataset.loader import read_index

    return split in read_index(data_dir)["splits"]


def _load_folders(data_dir, split):
    split_dir = Path(data_dir) / split
    if not split_dir.is_dir():
        raise FileNotFoundError(f"{split_dir}: no such split folder")
    return _load_image_folders(split_dir)


def _has_folder_split(data_dir, split):
    return (Path(data_dir) / split).is_dir()


#: Data layouts, tried in order: (name, detect(data_dir), load(data_dir, split), has(data_dir, split)).
LAYOUTS = (
    ("shards", _is_shard_dataset, _load_shards, _has_shard_split),
    ("folders", lambda data_dir: True, _load_folders, _has_folder_split),
)


def _layout(data_dir):
    return next(layout for layout in LAYOUTS if layout[1](data_dir))


def load_split(data_dir, split):
    """Read one split of a labelled data folder.

    Parameters
    ----------
    data_dir : str or path-like
        Data folder holding ``<split>/<class>/*.pgm|png``, or a dataset
        directory made by ``diffranet dataset``.
    split : str
        Split name, e.g. ``"train"``, ``"val"`` or ``"test"``.

    Returns
    -------
    X : ndarray of uint8, shape (n_images, height, width)
        Folders: images in class order, then file-name order; shards: in
        image-number order.
    y : ndarray of int64, shape (n_images,)
        Labels 0 (blank) to 4 (strong).

    Raises
    ------
    FileNotFoundError
        If the split does not exist.
    ValueError
        If a class folder has another name, there are no images, or the images
        differ in shape or are not 8-bit.
    """
    return _layout(data_dir)[2](data_dir, split)


def has_split(data_dir, split):
    """Whether ``data_dir`` holds the split ``split``."""
    return _layout(data_dir)[3](data_dir, split)
