"""The simulator: parameters (detector, beam, crystal, structure factors), the
amorphous background, the detector response, and the :class:`Simulator` that
turns them into an image through the compiled core. See ``docs/physics.md``.
"""

from .background import Background, air, water
from .beamstop import Beamstop
from .budget import Budget
from .crystal import Crystal
from .geometry import Beam, Detector
from .orientation import random_orientation
from .response import CCDResponse, PixelArrayResponse
from .simulator import SimulationResult, Simulator
from .structure_factors import StructureFactors

__all__ = [
    "Background",
    "Beam",
    "Beamstop",
    "Budget",
    "CCDResponse",
    "Crystal",
    "Detector",
    "PixelArrayResponse",
    "SimulationResult",
    "Simulator",
    "StructureFactors",
    "air",
    "random_orientation",
    "water",
]
