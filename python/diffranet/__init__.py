"""diffranet: simulate and classify serial-crystallography diffraction images.

Public names are imported lazily, so that ``import diffranet.io`` does not load
the compiled core, scikit-learn or torch.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it
_PUBLIC = {
    "Simulator": "simulator",
    "SimulationResult": "simulator",
    "Background": "background",
    "Beamstop": "background",
    "water": "background",
    "air": "background",
    "CCDResponse": "response",
    "PixelArrayResponse": "response",
    "paper_ccd": "response",
    "Detector": "geometry",
    "Beam": "geometry",
    "Crystal": "crystal",
    "StructureFactors": "structure_factors",
    "random_orientation": "orientation",
    "GLCMExtractor": "features",
    "LBPExtractor": "features",
    "BoVWExtractor": "features",
    "DeepFreakClassifier": "models",
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
