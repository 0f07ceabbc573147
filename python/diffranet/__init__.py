"""diffranet: simulate and classify serial-crystallography diffraction images.

Public names are imported lazily, so that ``import diffranet.io`` does not load
the compiled core, scikit-learn or torch.
"""

from __future__ import annotations

from ._lazy import lazy_exports
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

__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC, __all__)
