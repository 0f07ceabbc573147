"""The DiffraNet dataset generator: labelled synthetic diffraction images.

``generate_dataset`` renders a preset (:mod:`.presets`) into HDF5 shards
(:mod:`.shards`), labelling crystal images by the number of significant spots
(:mod:`.labels`); :mod:`.loader` reads them back, and the published folder
layout too (:func:`load_split`, numpy arrays, or a lazy
``torch.utils.data.Dataset``), :mod:`.export` writes the original folder
layout, :mod:`.info` summarises a set, :mod:`.detector_presets` puts a
preset on a beamline's detector (:func:`training_preset`) and gives the
paper's CCD (:func:`paper_ccd`). See ``docs/dataset.md``.
"""

from .detector_presets import paper_ccd, training_preset
from .export import export_dataset
from .generate import PAPER_SIZES, SPLITS, WorkerFailure, generate_dataset
from .info import dataset_info, format_info, write_gallery
from .labels import LabelRule
from . import loader
from .loader import has_split, is_dataset_dir, load_arrays, load_split, read_index
from .presets import PRESETS, Preset, get_preset
from .shots import class_counts, class_sequence, shot_simulator

__all__ = [
    "LabelRule",
    "PAPER_SIZES",
    "PRESETS",
    "Preset",
    "SPLITS",
    "ShardDataset",
    "WorkerFailure",
    "class_counts",
    "class_sequence",
    "dataset_info",
    "export_dataset",
    "format_info",
    "generate_dataset",
    "get_preset",
    "has_split",
    "is_dataset_dir",
    "load_arrays",
    "load_split",
    "read_index",
    "paper_ccd",
    "shot_simulator",
    "training_preset",
    "write_gallery",
]


def __getattr__(name):
    """``ShardDataset`` imports torch, so it is built on first use."""
    if name == "ShardDataset":
        return loader.ShardDataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
