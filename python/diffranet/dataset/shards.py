"""HDF5 shards of a generated dataset: atomic writes, verification and the index.

A dataset directory holds::

    dataset.json              the settings (preset, seed, split sizes, shard size)
    shards/<split>-<n>.h5     images <n * shard_size> ... of one split
    index.json                one entry per shard, rebuilt from the shards

A shard holds ``images`` (uint8, (n, rows, cols), one gzip chunk per image),
``labels`` (int64, (n,)) and ``metadata`` (one row of :data:`TABLE_DTYPE`
per image), and attributes naming its split, first image, count, the preset
and the SHA-256 of its three datasets. It is written atomically
(:func:`diffranet._atomic.atomic_path`: a temporary file, flushed to disk and
renamed), so a shard under its final name is complete; the checksum catches a
file damaged later. No timestamps are stored, so the
same images give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from .._atomic import atomic_path, atomic_write

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "TABLE_DTYPE",
    "shard_name",
    "write_shard",
    "read_shard",
    "verify_shard",
    "shard_paths",
    "build_index",
    "write_json_atomic",
]

#: Split names in generation order.
SPLITS = ("train", "val", "test")
FORMAT = "diffranet-dataset"
FORMAT_VERSION = 3
SHARD_DIR = "shards"
INDEX_FILE = "index.json"
CONFIG_FILE = "dataset.json"
_GZIP_LEVEL = 4

#: Per-image metadata: every drawn parameter, the seed and the label quantity.
TABLE_DTYPE = np.dtype([
    ("index", "<i8"),                  # image number within its split
    ("label", "<i8"),                  # 0 blank .. 4 strong
    ("seed", "<u8"),                   # shot seed: mosaic domains and detector noise
    ("attempt", "<i4"),                # redraws before the class was reached
    ("photons_drawn", "<f8"),          # Gaussian pulse energy draw (photons; <= 0 for blank)
    ("photons", "<f8"),                # photons in the pulse (0 for blank)
    ("fluence_per_m2", "<f8"),         # photons per square metre at the sample
    ("wavelength_A", "<f8"),
    ("orientation", "<f8", (3, 3)),    # crystal rotation U (lab = U B)
    ("volume_scale", "<f8"),           # crystalline volume / rendered block volume (0: no crystal)
    ("crystal_size_um", "<f8"),        # side of a cube of that volume (um)
    ("target_spots", "<i8"),           # drawn value of the label quantity
    ("n_detectable_spots", "<i8"),     # the label quantity, measured: spots a peak finder would detect
    ("n_significant_spots", "<i8"),    # spots significant summed over their footprint (the earlier rule)
    ("n_spots", "<i8"),                # spots on the detector (any strength)
    ("bragg_photons", "<f8"),          # expected Bragg photons on the detector
    ("background_photons", "<f8"),     # expected background photons on the detector
    ("max_bragg_photons", "<f8"),      # brightest pixel of the Bragg image (photons)
    ("setup", "S2048"),                # JSON of the shot's drawn set-up (regimes); empty for a fixed preset
])


def shard_name(split, number):
    """File name of shard ``number`` of ``split``."""
    return f"{split}-{number:05d}.h5"


def _checksum(images, labels, table):
    digest = hashlib.sha256()
    for array in (images, labels, table):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def write_shard(path, images, labels, table, attrs):
    """Write a shard atomically.

    Parameters
    ----------
    path : path-like
        Final file name; a temporary file beside it is written first, then renamed.
    images : ndarray of uint8, shape (n, rows, cols)
    labels : ndarray of int64, shape (n,)
    table : ndarray of :data:`TABLE_DTYPE`, shape (n,)
    attrs : dict
        JSON-serialisable attributes (split, start, ...); ``sha256`` is added.

    Raises
    ------
    OSError
        If the file cannot be written (full disk, permissions); the temporary
        file is removed and no file appears under ``path``.
    """
    import h5py

    path = Path(path)
    images = np.ascontiguousarray(images, dtype=np.uint8)
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    table = np.ascontiguousarray(table, dtype=TABLE_DTYPE)
    if images.ndim != 3 or len(labels) != len(images) or len(table) != len(images):
        raise ValueError(f"write_shard: images (n, rows, cols), labels (n,) and table (n,) must agree, got "
                         f"{images.shape}, {labels.shape}, {table.shape}")
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w", libver=("earliest", "v110")) as f:
            f.create_dataset("images", data=images, chunks=(1,) + images.shape[1:], compression="gzip",
                             compression_opts=_GZIP_LEVEL, track_times=False)
            f.create_dataset("labels", data=labels, track_times=False)
            f.create_dataset("metadata", data=table, track_times=False)
            for key, value in sorted(attrs.items()):
                f.attrs[key] = json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value
            f.attrs["sha256"] = _checksum(images, labels, table)


def _attrs(f):
    out = {}
    for key, value in f.attrs.items():
        if isinstance(value, bytes):
            value = value.decode()
        if isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    for key in ("preset", "label_rule"):
        if isinstance(out.get(key), str):
            out[key] = json.loads(out[key])
    return out


def read_shard(path, images=True):
    """Read a shard.

    Returns
    -------
    dict
        ``attrs`` (dict), ``labels``, ``metadata`` and, with ``images=True``, ``images``.
    """
    import h5py

    with h5py.File(path, "r") as f:
        out = {"attrs": _attrs(f), "labels": f["labels"][()], "metadata": f["metadata"][()]}
        if images:
            out["images"] = f["images"][()]
    return out


def verify_shard(path):
    """The shard's attributes if it is complete and its checksum matches, else None."""
    try:
        shard = read_shard(path)
    except (OSError, KeyError, ValueError):
        return None
    attrs = shard["attrs"]
    if attrs.get("format") != FORMAT or attrs.get("count") != len(shard["labels"]):
        return None
    if attrs.get("sha256") != _checksum(shard["images"], shard["labels"], shard["metadata"]):
        return None
    return attrs


def shard_paths(out_dir):
    """Shard files of a dataset directory, sorted by name."""
    return sorted((Path(out_dir) / SHARD_DIR).glob("*.h5"))


def write_json_atomic(path, data):
    """Write ``data`` as indented JSON, atomically (keys in the dict's order)."""
    with atomic_write(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1)
        fh.write("\n")


def build_index(out_dir):
    """Rebuild ``index.json`` from the shards of ``out_dir`` and return it.

    Returns
    -------
    dict
        ``{"format", "version", "splits": {split: {"n_images", "class_counts",
        "shards": [{"file", "start", "count", "sha256"}, ...]}}}``; shards
        sorted by first image.
    """
    import h5py

    splits = {}
    for path in shard_paths(out_dir):
        with h5py.File(path, "r") as f:
            attrs = _attrs(f)
            labels = f["labels"][()]
        entry = splits.setdefault(attrs["split"], {"n_images": 0, "class_counts": [0] * 5, "shards": []})
        entry["n_images"] += int(attrs["count"])
        for label, n in zip(*np.unique(labels, return_counts=True)):
            entry["class_counts"][int(label)] += int(n)
        entry["shards"].append({"file": f"{SHARD_DIR}/{path.name}", "start": int(attrs["start"]),
                                "count": int(attrs["count"]), "sha256": attrs["sha256"]})
    for entry in splits.values():
        entry["shards"].sort(key=lambda s: s["start"])
    order = sorted(splits, key=lambda name: (SPLITS.index(name) if name in SPLITS else len(SPLITS), name))
    index = {"format": FORMAT, "version": FORMAT_VERSION, "splits": {name: splits[name] for name in order}}
    write_json_atomic(Path(out_dir) / INDEX_FILE, index)
    return index
