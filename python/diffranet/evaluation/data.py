"""Labelled frames to evaluate a model on: generated sets, class folders, real frames.

Three sources, chosen by what ``path`` is:

* a dataset directory made by ``diffranet dataset`` (``index.json`` and HDF5
  shards): 8-bit images, five-class labels, and the per-image table, whose
  ``n_detectable_spots`` column (the label quantity) is kept;
* a folder with ``<split>/<class>/`` image folders (DiffraNet's layout):
  8-bit images and five-class labels;
* a CSV file with the columns ``file`` and ``label`` (``hit`` or ``miss``;
  a DiffraNet class name is read as its hit / miss verdict): real detector
  frames of any format :mod:`diffranet.io` reads, with their masks. File
  names are relative to the CSV's folder. Optional columns ``frame`` (index
  in a multi-frame file) and ``pixel_size_mm``, ``distance_mm``,
  ``wavelength_A``, ``beam_center_x_px``, ``beam_center_y_px`` (the frame's
  geometry; rows where any of the first three is empty are taken without
  geometry). These frames carry hit / miss labels only and are read one at a
  time when a model scores them, through the model's own preprocessing.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np

from ..classes import CLASS_NAMES, HITMISS_NAMES, is_hit
from ..dataset.loader import is_dataset_dir, load_arrays, load_split
from ..dataset.presets import get_preset
from ..inference import FrameGeometry
from ..io import read_image, read_mask

__all__ = ["LabelledData", "RawFrame", "load_labelled_data"]

#: Columns of a hit / miss CSV that give a frame's geometry.
GEOMETRY_COLUMNS = ("pixel_size_mm", "distance_mm", "wavelength_A")


@dataclasses.dataclass(frozen=True)
class RawFrame:
    """A real detector frame named in a CSV: where it is and how it was recorded."""

    path: Path
    frame: int = None
    geometry: object = None  # FrameGeometry or None

    def read(self):
        """The frame (2-D array) and its mask (bool array or None)."""
        return read_image(self.path, frame=self.frame), read_mask(self.path)


@dataclasses.dataclass(frozen=True)
class LabelledData:
    """Frames with their true classes.

    Attributes
    ----------
    kind : {"classes", "hitmiss"}
        Five DiffraNet classes, or hit / miss only.
    labels : ndarray of int64, shape (n,)
        Labels 0..4 (``kind="classes"``) or 0 miss / 1 hit.
    images : ndarray of uint8, shape (n, rows, cols), or None
        8-bit images in the training geometry (generated and folder sets).
    frames : tuple of RawFrame, or None
        Real frames, read and preprocessed per model (CSV sets).
    quantity : ndarray of int64, shape (n,), or None
        The label quantity of generated sets: detectable spots (or, for
        sets made before that column existed, significant spots).
    quantity_name : str
        The column ``quantity`` was read from.
    names : tuple of str
        One name per frame (file name, or ``<split>#<index>``).
    source : str
        What was read (path and split).
    settings : dict
        For generated sets, the preset's label thresholds (``weak_min``,
        ``good_min``, ``strong_min``); else empty.
    """

    kind: str
    labels: np.ndarray
    images: np.ndarray = None
    frames: tuple = None
    quantity: np.ndarray = None
    quantity_name: str = "n_detectable_spots"
    names: tuple = ()
    source: str = ""
    settings: dict = dataclasses.field(default_factory=dict)

    def __len__(self):
        return len(self.labels)

    @property
    def class_names(self):
        """Names of the label values."""
        return CLASS_NAMES if self.kind == "classes" else HITMISS_NAMES

    @property
    def hit(self):
        """Whether each frame is a hit (bool array)."""
        return is_hit(self.labels) if self.kind == "classes" else self.labels == 1


def load_labelled_data(path, split="test"):
    """Read labelled frames from a generated set, class folders or a hit / miss CSV.

    Parameters
    ----------
    path : str or path-like
        Dataset directory, data folder with split sub-folders, or a ``.csv`` file.
    split : str, default "test"
        Split to read (ignored for a CSV).

    Returns
    -------
    LabelledData

    Raises
    ------
    FileNotFoundError
        If ``path`` or the split does not exist.
    ValueError
        For a CSV without ``file`` and ``label`` columns, a label that is not
        hit / miss or a class name, or an empty data set.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(2, "No such data file or folder", str(path))
    if path.is_file():
        if path.suffix.lower() != ".csv":
            raise ValueError(f"{path}: data must be a data folder or a .csv file of file,label rows")
        return _load_csv(path)
    if is_dataset_dir(path):
        return _load_generated(path, split)
    images, labels = load_split(path, split)
    names = tuple(f"{split}#{i}" for i in range(len(labels)))
    return LabelledData("classes", labels, images=images, names=names, source=f"{path} ({split})")


def _load_generated(path, split):
    images, labels, table = load_arrays(path, split, metadata=True)
    if not len(labels):
        raise ValueError(f"{path}: split {split!r} has no images")
    settings = {}
    config = path / "dataset.json"
    if config.is_file():
        stored = json.loads(config.read_text()).get("preset")
        if isinstance(stored, dict):
            preset = get_preset(stored)
            thresholds = preset.label_rule()
            settings = {"name": preset.name, "weak_min": thresholds.weak_min, "good_min": thresholds.good_min,
                        "strong_min": thresholds.strong_min}
    names = tuple(f"{split}#{int(i)}" for i in table["index"])
    column = "n_detectable_spots" if "n_detectable_spots" in table.dtype.names else "n_significant_spots"
    return LabelledData("classes", labels, images=images, quantity=table[column].astype(np.int64),
                        quantity_name=column, names=names, source=f"{path} ({split})", settings=settings)


def _hitmiss_label(value, where):
    text = value.strip().lower()
    if text in HITMISS_NAMES:
        return HITMISS_NAMES.index(text)
    if text in CLASS_NAMES:
        return int(is_hit(CLASS_NAMES.index(text)))
    raise ValueError(f"{where}: label must be hit or miss (or a class name {', '.join(CLASS_NAMES)}), got {value!r}")


def _optional_float(row, column, where):
    text = (row.get(column) or "").strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{where}: {column} must be a number, got {text!r}") from None


def _row_geometry(row, where):
    values = [_optional_float(row, c, where) for c in GEOMETRY_COLUMNS]
    if any(v is None for v in values):
        return None
    center = [_optional_float(row, c, where) for c in ("beam_center_x_px", "beam_center_y_px")]
    return FrameGeometry(*values, beam_center_px=None if None in center else tuple(center))


def _load_csv(path):
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        columns = set(reader.fieldnames or ())
        if not {"file", "label"} <= columns:
            raise ValueError(f"{path}: a hit / miss CSV needs the columns file and label, got {sorted(columns)}")
        frames, labels, names = [], [], []
        for number, row in enumerate(reader, start=2):
            where = f"{path}, line {number}"
            name = (row["file"] or "").strip()
            if not name:
                raise ValueError(f"{where}: empty file name")
            frame_text = (row.get("frame") or "").strip()
            frame = None
            if frame_text:
                if not frame_text.isdigit():
                    raise ValueError(f"{where}: frame must be an index >= 0, got {frame_text!r}")
                frame = int(frame_text)
            labels.append(_hitmiss_label(row["label"] or "", where))
            frames.append(RawFrame(path.parent / name, frame, _row_geometry(row, where)))
            names.append(name if frame is None else f"{name}#{frame}")
    if not frames:
        raise ValueError(f"{path}: no frames listed")
    return LabelledData("hitmiss", np.asarray(labels, dtype=np.int64), frames=tuple(frames), names=tuple(names),
                        source=str(path))
