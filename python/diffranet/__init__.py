"""diffranet: simulate and classify serial-crystallography diffraction images.

Public names are imported lazily, so that ``import diffranet.io`` does not load
the compiled core, scikit-learn or torch.
"""

from __future__ import annotations

import importlib

from ._version import __version__

# public name -> module that defines it
_PUBLIC = {
    "Simulator": "simulation.simulator",
    "SimulationResult": "simulation.simulator",
    "Background": "simulation.background",
    "Beamstop": "simulation.beamstop",
    "water": "simulation.background",
    "air": "simulation.background",
    "CCDResponse": "simulation.response",
    "PixelArrayResponse": "simulation.response",
    "paper_ccd": "dataset.detector_presets",
    "Detector": "simulation.geometry",
    "Beam": "simulation.geometry",
    "Crystal": "simulation.crystal",
    "StructureFactors": "simulation.structure_factors",
    "random_orientation": "simulation.orientation",
    "GLCMExtractor": "features",
    "LBPExtractor": "features",
    "BoVWExtractor": "features",
    "DeepFreakClassifier": "models",
    "load_model": "inference",
    "save_model": "inference",
    "preprocess": "inference",
    "FrameGeometry": "inference",
    "PeakFinderHitFinder": "peaks",
}

__all__ = sorted(_PUBLIC) + ["__version__"]


def __getattr__(name):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'diffranet' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
