"""The crystal: unit cell, orientation, size in unit cells, mosaicity, spot shape."""

from __future__ import annotations

import dataclasses

import numpy as np

from .._validation import check_choice, check_int, check_nonnegative, check_positive, check_rotation
from ._params import Params, frozen_array
from .orientation import check_cell, real_space_basis
from .structure_factors import StructureFactors

__all__ = ["Crystal", "SPOT_SHAPES", "MOSAIC_DISTRIBUTIONS", "TOPHAT_VOLUMES"]

# Names accepted for Crystal.spot_shape and the core's enum values.
SPOT_SHAPES = {"sinc": 0, "tophat": 1, "gauss": 2, "round": 3}
# Spot shapes that vanish outside a bounded region around each reflection.
COMPACT_SHAPES = frozenset({"tophat", "gauss"})
MOSAIC_DISTRIBUTIONS = {"tophat": 0, "gauss": 1}
# Integrated intensity of a tophat spot relative to the sinc's, by Crystal.tophat_volume.
# The core's tophat is a sphere of radius 0.63 (in units of the spot size) normalised to
# the sinc's volume; nanoBragg's has the sinc's peak height N^2 instead, hence the sphere's
# volume 4/3 pi 0.63^3 = 1.0474 times more intensity (the lattice transform is constant
# inside the sphere, so this multiplies the whole image).
TOPHAT_VOLUMES = {"sinc": 1.0, "nanobragg": 4.0 / 3.0 * np.pi * 0.63**3}


@dataclasses.dataclass(frozen=True, eq=False)
class Crystal(Params):
    """A mosaic crystal (an immutable value: see :meth:`with_`).

    Parameters
    ----------
    cell : sequence of 6 float
        ``(a, b, c, alpha, beta, gamma)`` in Angstrom and degrees; any
        triclinic cell whose angles can form a cell.
    ncells : sequence of 3 int or float, default (1, 1, 1)
        Unit cells ``(Na, Nb, Nc)`` along a, b, c in each mosaic domain: they
        set the spot size, which scales as 1/N in reciprocal space.
    mosaic_domains : int, default 1
        Number of mosaic domains averaged in each image.
    mosaic_spread_deg : float, default 0.0
        Diameter of the distribution of domain misorientations (degrees).
    mosaic_distribution : {"tophat", "gauss"}, default "tophat"
        ``"tophat"``: rotation vectors uniform within a ball of diameter
        ``mosaic_spread_deg`` (the paper's top-hat). ``"gauss"``: rotation
        vectors isotropic normal with RMS ``mosaic_spread_deg / 2`` per axis.
    spot_shape : {"tophat", "sinc", "gauss", "round"}, default "tophat"
        Lattice transform. ``"sinc"`` is the exact Fraunhofer grating
        (nanoBragg's "square"); ``"tophat"`` is 1 inside the ellipsoid
        ``sum(((h - h0) N)^2) < 0.3969`` and normalised so that its integrated
        spot equals the sinc's; ``"gauss"`` and ``"round"`` are nanoBragg's.
        ``"tophat"`` and ``"gauss"`` render reflection by reflection (fast).
    default_F : float, default 100.0
        Structure-factor amplitude of every reflection not listed in
        ``structure_factors`` (of all reflections when it is None).
    orientation : array_like, shape (3, 3), optional
        Proper rotation ``U``: the lab-frame reciprocal basis is ``U @ B``
        (see :func:`diffranet.orientation.reciprocal_basis`). Default: the
        reference setting. :func:`diffranet.random_orientation` draws one.
    structure_factors : StructureFactors, optional
        Amplitudes |F(hkl)| for the reflections they list.
    volume_scale : float, default 1.0
        Multiplies the Bragg image: the volume of crystalline matter in the
        beam over the volume of one simulated domain block. The paper rendered
        a 0.1 um crystal (spots about a pixel wide) and scaled it by 2.7e7 to a
        30 um crystal.
    tophat_volume : {"sinc", "nanobragg"}, default "sinc"
        Height of the ``"tophat"`` spots (their radius is 0.63 either way).
        ``"sinc"``: every spot integrates to the sinc's intensity, as the
        paper describes nanoBragg's ``-tophat_spots``. ``"nanobragg"``: the
        sinc's peak height ``N^2``, as the nanoBragg program computes it, so
        spots carry ``4/3 pi 0.63^3 = 1.0474`` times the sinc's intensity.
        Ignored for the other shapes.

    Examples
    --------
    >>> xtal = Crystal((50, 60, 70, 90, 90, 90), ncells=(5, 5, 5))
    >>> round(xtal.volume_A3)
    210000
    >>> Crystal((50, 60, 70, 90, 90, 90), spot_shape="bogus")
    Traceback (most recent call last):
    ...
    ValueError: spot_shape must be one of ['gauss', 'round', 'sinc', 'tophat'], got 'bogus'
    """

    cell: tuple
    ncells: tuple = (1, 1, 1)
    mosaic_domains: int = 1
    mosaic_spread_deg: float = 0.0
    mosaic_distribution: str = "tophat"
    spot_shape: str = "tophat"
    default_F: float = 100.0
    orientation: np.ndarray | None = dataclasses.field(default=None, repr=False)
    structure_factors: object = dataclasses.field(default=None, repr=False)
    volume_scale: float = 1.0
    tophat_volume: str = "sinc"

    def __post_init__(self):
        self._set("cell", check_cell(self.cell))
        ncells = self.ncells
        if not isinstance(ncells, (tuple, list, np.ndarray)) or len(ncells) != 3:
            raise ValueError(f"ncells must be 3 numbers (Na, Nb, Nc), got {ncells!r}")
        self._set("ncells", tuple(check_positive(f"ncells[{i}]", n) for i, n in enumerate(ncells)))
        self._set("mosaic_domains", check_int("mosaic_domains", self.mosaic_domains, minimum=1))
        self._set("mosaic_spread_deg", check_nonnegative("mosaic_spread_deg", self.mosaic_spread_deg))
        check_choice("mosaic_distribution", self.mosaic_distribution, MOSAIC_DISTRIBUTIONS)
        check_choice("spot_shape", self.spot_shape, SPOT_SHAPES)
        self._set("default_F", check_nonnegative("default_F", self.default_F))
        orientation = np.eye(3) if self.orientation is None else check_rotation("orientation", self.orientation)
        self._set("orientation", frozen_array(orientation))
        sf = self.structure_factors
        if sf is not None and not all(hasattr(sf, name) for name in ("table", "hkl_min")):
            raise ValueError(f"structure_factors must be a StructureFactors, got {type(sf).__name__}")
        self._set("volume_scale", check_nonnegative("volume_scale", self.volume_scale))
        if not isinstance(self.tophat_volume, str):
            raise ValueError(f"tophat_volume must be one of {sorted(TOPHAT_VOLUMES)!r}, got {self.tophat_volume!r}")
        check_choice("tophat_volume", self.tophat_volume, TOPHAT_VOLUMES)

    @property
    def intensity_scale(self):
        """Factor applied to the rendered Bragg image: ``volume_scale``, times the
        tophat volume ratio of ``tophat_volume`` for tophat spots."""
        if self.spot_shape != "tophat":
            return self.volume_scale
        return self.volume_scale * TOPHAT_VOLUMES[self.tophat_volume]

    @property
    def real_basis_A(self):
        """Rows a, b, c of the reference domain in the lab frame (Angstrom)."""
        return real_space_basis(self.cell, self.orientation)

    @property
    def volume_A3(self):
        """Unit-cell volume (cubic Angstrom)."""
        return float(abs(np.linalg.det(self.real_basis_A)))

    @property
    def block_volume_um3(self):
        """Volume of one rendered domain block, Na x Nb x Nc cells (cubic micrometres)."""
        return self.volume_A3 * float(np.prod(self.ncells)) * 1e-12

    def to_dict(self):
        """JSON-serialisable parameters (structure factors by description only)."""
        return {"cell": list(self.cell), "ncells": list(self.ncells), "mosaic_domains": self.mosaic_domains,
                "mosaic_spread_deg": self.mosaic_spread_deg, "mosaic_distribution": self.mosaic_distribution,
                "spot_shape": self.spot_shape, "default_F": self.default_F,
                "orientation": self.orientation.tolist(), "volume_scale": self.volume_scale,
                "tophat_volume": self.tophat_volume,
                "structure_factors": None if self.structure_factors is None else self.structure_factors.source}

    @classmethod
    def from_dict(cls, params, structure_factors=None):
        """Rebuild from :meth:`to_dict`; structure factors are rebuilt from their
        description unless given."""
        params = dict(params)
        source = params.pop("structure_factors", None)
        if structure_factors is None and source is not None:
            structure_factors = StructureFactors.from_source(source)
        return cls(structure_factors=structure_factors, **params)

    def __repr__(self):
        return (f"Crystal(cell={self.cell}, ncells={self.ncells}, mosaic_domains={self.mosaic_domains}, "
                f"mosaic_spread_deg={self.mosaic_spread_deg}, spot_shape={self.spot_shape!r})")
