"""What a model saw in training: its input geometry and a summary of the training set."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..classes import CLASS_NAMES
from ..dataset.presets import get_preset
from .geometry import PAPER_PREPROCESSING, Preprocessing

__all__ = ["training_input", "preset_preprocessing", "shape_preprocessing"]


def preset_preprocessing(preset):
    """The :class:`Preprocessing` of images rendered with a dataset preset.

    Parameters
    ----------
    preset : Preset, Regimes, dict or name
        Anything :func:`~diffranet.dataset.presets.get_preset` reads (a
        dataset's stored ``to_dict()`` included): its image shape, the
        geometry the images are in, and the offset of their detector.
    """
    preset = get_preset(preset)
    return Preprocessing(shape=tuple(preset.shape), geometry=preset.frame_geometry(),
                         adc_offset=preset.input_offset_adu)


def training_input(data_dir, image_shape, labels):
    """(:class:`Preprocessing`, training summary dict) of a model trained on ``data_dir``.

    A dataset made by ``diffranet dataset`` records its preset, hence the
    detector geometry; image folders do not, and the paper's detector
    geometry is assumed at the images' shape.
    """
    data_dir = Path(data_dir)
    labels = np.asarray(labels)
    summary = {
        "data": str(data_dir),
        "n_images": int(len(labels)),
        "class_counts": {name: int(np.count_nonzero(labels == k)) for k, name in enumerate(CLASS_NAMES)},
        "image_shape": [int(s) for s in image_shape],
    }
    config_file = data_dir / "dataset.json"
    if config_file.is_file():
        config = json.loads(config_file.read_text())
        preset = config.get("preset")
        if isinstance(preset, dict):
            summary["preset"] = preset
            summary["seed"] = config.get("seed")
            return preset_preprocessing(preset), summary
    return shape_preprocessing(image_shape), summary


def shape_preprocessing(image_shape):
    """The paper's detector geometry at ``image_shape`` (the paper's own for None or 512 x 512)."""
    if image_shape is None or tuple(image_shape) == PAPER_PREPROCESSING.shape:
        return PAPER_PREPROCESSING
    return Preprocessing(shape=tuple(int(s) for s in image_shape))
