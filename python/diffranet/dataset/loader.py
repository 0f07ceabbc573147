"""Load labelled image sets: the one place that reads training and test data.

Two layouts are read, chosen by what the data folder holds:

* **shards**: a directory made by ``diffranet dataset`` (``index.json`` and
  HDF5 shards);
* **folders**: one sub-folder per split (``train``, ``val``, ``test``), each
  with one sub-folder per class: ``1`` to ``5`` as in the published DiffraNet
  archive, or the class names (``blank``, ``no-crystal``, ``weak``, ``good``,
  ``strong``).

:func:`load_split` and :func:`has_split` read either layout (labels 0 blank to
4 strong, :data:`diffranet.classes.CLASS_NAMES`). For a generated dataset,
:func:`load_arrays` also returns the per-image metadata, and
:class:`ShardDataset` is a ``torch.utils.data.Dataset`` that reads one image
per item from the HDF5 shards (each image is its own compressed chunk),
keeping at most ``max_open_files`` files open per process: memory stays
bounded whatever the dataset size, and it works with ``DataLoader`` worker
processes (files are reopened in each).
"""

from __future__ import annotations

import bisect
import json
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np

from .._validation import check_int
from ..classes import CLASS_NAMES
from ..io import read_image, supported_extensions
from .shards import CONFIG_FILE, INDEX_FILE, build_index, read_shard

__all__ = [  # noqa: F822 (ShardDataset is built by __getattr__)
    "IMAGE_EXTENSIONS",
    "ShardDataset",
    "has_split",
    "is_dataset_dir",
    "load_arrays",
    "load_split",
    "read_index",
]

#: Image extensions read from class folders.
IMAGE_EXTENSIONS = (".pgm", ".png")


def is_dataset_dir(path):
    """Whether ``path`` is a directory made by :func:`diffranet.dataset.generate_dataset`."""
    path = Path(path)
    return (path / INDEX_FILE).is_file() or (path / CONFIG_FILE).is_file()


def read_index(dataset_dir):
    """The dataset's index (rebuilt from the shards if ``index.json`` is missing).

    Raises
    ------
    FileNotFoundError
        If ``dataset_dir`` is not a dataset directory.
    """
    dataset_dir = Path(dataset_dir)
    if not is_dataset_dir(dataset_dir):
        raise FileNotFoundError(f"{dataset_dir}: not a diffranet dataset directory (no index.json)")
    path = dataset_dir / INDEX_FILE
    if path.is_file():
        return json.loads(path.read_text())
    return build_index(dataset_dir)


def _split_entry(dataset_dir, split):
    index = read_index(dataset_dir)
    if split not in index["splits"]:
        raise FileNotFoundError(f"{dataset_dir}: no split {split!r} (has {sorted(index['splits'])})")
    return index["splits"][split]


def load_arrays(dataset_dir, split, metadata=False):
    """Read one split into memory.

    Parameters
    ----------
    dataset_dir : path-like
    split : str
        ``"train"``, ``"val"`` or ``"test"``.
    metadata : bool, default False
        Also return the per-image metadata table.

    Returns
    -------
    X : ndarray of uint8, shape (n, rows, cols)
        Images in index order.
    y : ndarray of int64, shape (n,)
        Labels 0 (blank) to 4 (strong).
    table : ndarray of :data:`TABLE_DTYPE`, shape (n,)
        Only with ``metadata=True``.
    """
    entry = _split_entry(dataset_dir, split)
    parts = [read_shard(Path(dataset_dir) / s["file"]) for s in entry["shards"]]
    X = np.concatenate([p["images"] for p in parts])
    y = np.concatenate([p["labels"] for p in parts]).astype(np.int64)
    if metadata:
        return X, y, np.concatenate([p["metadata"] for p in parts])
    return X, y


# --------------------------------------------------------------------------- folder layout

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


def _load_folders(data_dir, split):
    split_dir = Path(data_dir) / split
    if not split_dir.is_dir():
        raise FileNotFoundError(f"{split_dir}: no such split folder")
    return _load_image_folders(split_dir)


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
    if is_dataset_dir(data_dir):
        return load_arrays(data_dir, split)
    return _load_folders(data_dir, split)


def has_split(data_dir, split):
    """Whether ``data_dir`` (either layout) holds the split ``split``."""
    if is_dataset_dir(data_dir):
        return split in read_index(data_dir)["splits"]
    return (Path(data_dir) / split).is_dir()


# --------------------------------------------------------------------------- torch Dataset

def _default_transform(image):
    import torch

    return torch.from_numpy(image.astype(np.float32) / np.float32(255.0))[None]


class _ShardDataset:
    """Lazy ``torch.utils.data.Dataset`` over one split of a generated dataset.

    ``ShardDataset`` subclasses ``torch.utils.data.Dataset``; torch is imported
    when the name is first used.

    Parameters
    ----------
    dataset_dir : path-like
    split : str
    transform : callable, optional
        Applied to each uint8 image (rows, cols); default: a float32 tensor of
        shape (1, rows, cols) scaled to [0, 1].
    max_open_files : int, default 4
        Shard files kept open per process.

    Examples
    --------
    >>> ds = ShardDataset("data", "train")                   # doctest: +SKIP
    >>> loader = torch.utils.data.DataLoader(ds, batch_size=32, shuffle=True)  # doctest: +SKIP
    """

    def __init__(self, dataset_dir, split, transform=None, max_open_files=4):
        self.dataset_dir = Path(dataset_dir)
        entry = _split_entry(self.dataset_dir, split)
        self.split = split
        self.files = [self.dataset_dir / s["file"] for s in entry["shards"]]
        self.starts = [0]
        for s in entry["shards"]:
            self.starts.append(self.starts[-1] + int(s["count"]))
        self.transform = _default_transform if transform is None else transform
        self.max_open_files = check_int("max_open_files", max_open_files, minimum=1)
        self._open = OrderedDict()
        self._pid = None
        self._labels = None

    def __len__(self):
        return self.starts[-1]

    def _file(self, k):
        import h5py

        if self._pid != os.getpid():  # a DataLoader worker: do not share HDF5 handles across fork
            self._open = OrderedDict()
            self._pid = os.getpid()
        handle = self._open.pop(k, None)
        if handle is None:
            handle = h5py.File(self.files[k], "r")
            while len(self._open) >= self.max_open_files:
                self._open.popitem(last=False)[1].close()
        self._open[k] = handle
        return handle

    @property
    def labels(self):
        """All labels (int64), read once from the small ``labels`` datasets."""
        if self._labels is None:
            self._labels = np.concatenate([self._file(k)["labels"][()] for k in range(len(self.files))])
        return self._labels

    def locate(self, i):
        """(shard number, row in shard) of item ``i``."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for {n} images")
        i = i % n
        k = bisect.bisect_right(self.starts, i) - 1
        return k, i - self.starts[k]

    def metadata(self, i):
        """Metadata row of item ``i``."""
        k, row = self.locate(i)
        return self._file(k)["metadata"][row]

    def __getitem__(self, i):
        k, row = self.locate(int(i))
        f = self._file(k)
        return self.transform(f["images"][row]), int(f["labels"][row])

    def close(self):
        """Close the open shard files."""
        for handle in self._open.values():
            handle.close()
        self._open.clear()

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_open"], state["_pid"] = OrderedDict(), None
        return state


def __getattr__(name):
    """Build ``ShardDataset`` on first use, so that importing this module needs no torch."""
    if name == "ShardDataset":
        import torch.utils.data

        cls = type("ShardDataset", (_ShardDataset, torch.utils.data.Dataset),
                   {"__module__": __name__, "__doc__": _ShardDataset.__doc__})
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
