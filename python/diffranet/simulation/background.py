"""Background scattering from amorphous matter (the beamstop shadow is in :mod:`.beamstop`).

Amorphous scatterers (a liquid layer around the crystal, the air in the beam
path, the disorder of the crystal itself) are modelled as in the program
"nonBragg" (Holton et al. 2014, supplement): every illuminated molecule
scatters independently of the crystal, with a structure factor that depends
only on ``s = sin(theta) / lambda``. The expected photons in a pixel are::

    I = r_e^2 * fluence * sum_m N_m < Omega * P * (F_m(s)^2 + S_m(s)) >

averaged over the pixel's subpixels and the beam's sources exactly as the
Bragg image is, with ``N_m`` the molecules of material ``m`` in the beam,
``F_m`` its molecular structure factor (electrons), ``S_m`` its incoherent
(Compton) scattering function (electrons; only with ``compton=True``),
``Omega`` the pixel's solid angle and ``P`` the polarisation factor. See
``docs/background.md`` for the tables and their sources.

References
----------
Holton, J. M., Classen, S., Frankel, K. A. & Tainer, J. A. (2014). The R-factor
gap in macromolecular crystallography: an untapped potential for insights on
accurate structures. FEBS J. 281, 4046-4060, supplement.
https://doi.org/10.1111/febs.12922
"""

from __future__ import annotations

import dataclasses
import functools
import io
import weakref
from importlib import resources

import numpy as np

from .. import _core
from ._core_args import beam_args, detector_args
from .._validation import check_choice, check_finite, check_int, check_nonnegative, check_positive, check_threads
from ._params import Params, frozen_array
from .beamstop import Beamstop  # noqa: F401  (imported from here by existing code)
from .geometry import Beam, Detector

__all__ = [
    "AmorphousMaterial",
    "Background",
    "LatticeDiffuse",
    "air",
    "atomic_form_factor",
    "incoherent_scattering",
    "nonbragg_table",
    "water",
]

AVOGADRO_PER_MOL = 6.02214076e23
GAS_CONSTANT_J_PER_MOL_K = 8.314462618

# Atomic scattering factors: the four-Gaussian fit of International Tables for
# Crystallography Vol. C, Table 6.1.1.4 (IT92), f(s) = sum_i a_i exp(-b_i s^2) + c
# with s = sin(theta)/lambda in 1/A; the coefficients gemmi.Element(X).it92 holds.
_IT92 = {
    "H": ((0.493002, 0.322912, 0.140191, 0.04081), (10.5109, 26.1257, 3.14236, 57.7997), 0.003038),
    "C": ((2.31, 1.02, 1.5886, 0.865), (20.8439, 10.2075, 0.5687, 51.6512), 0.2156),
    "N": ((12.2126, 3.1322, 2.0125, 1.1663), (0.0057, 9.8933, 28.9975, 0.5826), -11.529),
    "O": ((3.0485, 2.2868, 1.5463, 0.867), (13.2771, 5.7011, 0.3239, 32.9089), 0.2508),
    "S": ((6.9053, 5.2034, 1.4379, 1.5863), (1.4679, 22.2151, 0.2536, 56.172), 0.8669),
    "Ar": ((7.4845, 6.7723, 0.6539, 1.6442), (0.9072, 14.8407, 43.8983, 33.3929), 1.4445),
}

# Incoherent scattering functions S(s) of the free atoms (electrons), Hubbell et al.
# (1975) J. Phys. Chem. Ref. Data 4, 471, https://doi.org/10.1063/1.555523, read from
# xraylib 4.3 (SF_Compt) on this grid of s = sin(theta)/lambda (1/A). S(0) = 0 and
# S -> Z at large s.
_INCOHERENT_STOL = (0.0, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.175, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6,
                    0.7, 0.8, 1.0, 1.5, 2.0)
_INCOHERENT = {
    "H": (0, 0.02717, 0.1033, 0.2144, 0.3426, 0.4713, 0.5887, 0.6885, 0.7688, 0.8777, 0.9369, 0.9674, 0.983,
          0.995, 0.9984, 0.9994, 0.9998, 1, 1, 1),
    "C": (0, 0.08049, 0.3086, 0.6418, 1.039, 1.448, 1.866, 2.253, 2.604, 3.198, 3.643, 3.959, 4.184, 4.478,
          4.69, 4.878, 5.051, 5.348, 5.781, 5.93),
    "N": (0, 0.0804, 0.31, 0.6565, 1.08, 1.54, 2.003, 2.447, 2.858, 3.559, 4.097, 4.497, 4.792, 5.182, 5.437,
          5.635, 5.809, 6.113, 6.63, 6.86),
    "O": (0, 0.0698, 0.271, 0.5837, 0.977, 1.42, 1.885, 2.35, 2.799, 3.614, 4.293, 4.835, 5.257, 5.828, 6.175,
          6.411, 6.596, 6.901, 7.462, 7.764),
    "S": (0, 0.177, 0.666, 1.363, 2.151, 2.94, 3.68, 4.354, 4.96, 5.984, 6.795, 7.448, 8.002, 8.96, 9.829,
          10.63, 11.34, 12.47, 13.99, 14.64),
    "Ar": (0, 0.1491, 0.571, 1.201, 1.956, 2.76, 3.558, 4.32, 5.033, 6.303, 7.377, 8.267, 8.998, 10.11, 10.97,
           11.73, 12.42, 13.63, 15.49, 16.32),
}

# Liquid water and air: the molecular structure factors (electrons) versus
# sin(theta)/lambda (1/A) distributed with nanoBragg/nonBragg ("water.stol", "air.stol",
# MIT licence, data/LICENSE-nanoBragg), shipped unchanged in data/.
_NONBRAGG_TABLES = {"water": "water.stol", "air": "air.stol"}
WATER_DENSITY_G_CM3 = 0.9982  # 20 C
WATER_MOLECULAR_WEIGHT_G_MOL = 18.015

# Dry air by volume (mole fractions), its diatomic bond lengths (A, CRC Handbook)
# and molar masses (g/mol).
_AIR = (("N2", 0.78, "N", 1.0977, 28.0134), ("O2", 0.21, "O", 1.2075, 31.9988), ("Ar", 0.01, "Ar", None, 39.948))
# the grid (1/A) on which the computed tables (air, lattice diffuse) are stored
_FINE_STOL = tuple(np.round(np.arange(201) * 0.01, 2))

# The average amino-acid residue ("averagine", Senko et al. 1995, J. Am. Soc. Mass
# Spectrom. 6, 229, https://doi.org/10.1016/1044-0305(95)00017-8) and the density of
# protein (Fischer et al. 2004, Protein Sci. 13, 2825, https://doi.org/10.1110/ps.04688204).
_AVERAGINE = {"C": 4.9384, "H": 7.7583, "N": 1.3577, "O": 1.4773, "S": 0.0417}
_AVERAGINE_G_MOL = 111.1254
PROTEIN_DENSITY_G_CM3 = 1.35


@functools.lru_cache(maxsize=None)
def _read_table(filename):
    """Two read-only columns of a table in the package's data/ folder."""
    text = resources.files(__package__).joinpath("data").joinpath(filename).read_text()
    table = np.loadtxt(io.StringIO(text), dtype=float, ndmin=2)
    columns = table[:, 0].copy(), table[:, 1].copy()
    for column in columns:
        column.flags.writeable = False
    return columns


def nonbragg_table(material):
    """nonBragg's table of a material: ``(stol_per_A, F)``, read-only arrays.

    Parameters
    ----------
    material : {"water", "air"}

    Returns
    -------
    stol_per_A, F : ndarray
        sin(theta)/lambda (1/A) and the molecular structure factor (electrons)
        of the two-column file distributed with nanoBragg/nonBragg (MIT licence,
        the notice is shipped beside the tables).

    Examples
    --------
    >>> stol, F = nonbragg_table("water")
    >>> len(stol), round(float(F[0]), 2), round(float(stol[np.argmax(F)]), 4)
    (10000, 2.57, 0.1603)
    """
    if not isinstance(material, str):
        raise ValueError(f"material must be one of {sorted(_NONBRAGG_TABLES)!r}, got {material!r}")
    return _read_table(_NONBRAGG_TABLES[check_choice("material", material, _NONBRAGG_TABLES)])


def _stol_array(name, stol_per_A):
    s = np.asarray(stol_per_A, dtype=float)
    if not np.all(np.isfinite(s)) or np.any(s < 0):
        raise ValueError(f"{name} must be finite and >= 0 (sin(theta)/lambda in 1/A), got {stol_per_A!r}")
    return s


def _check_element(element):
    if element not in _IT92:
        raise ValueError(f"element must be one of {sorted(_IT92)!r}, got {element!r}")
    return element


def atomic_form_factor(element, stol_per_A):
    """Scattering factor f(s) of a free atom (electrons), IT92 four-Gaussian fit.

    Parameters
    ----------
    element : {"H", "C", "N", "O", "S", "Ar"}
    stol_per_A : array_like
        s = sin(theta)/lambda (1/A), >= 0.

    Returns
    -------
    ndarray
        ``f(s) = sum_i a_i exp(-b_i s^2) + c``; ``f(0)`` is close to Z.

    Examples
    --------
    >>> round(float(atomic_form_factor("O", 0.0)), 3)
    7.999
    """
    a, b, c = _IT92[_check_element(element)]
    s2 = _stol_array("stol_per_A", stol_per_A) ** 2
    return sum(ai * np.exp(-bi * s2) for ai, bi in zip(a, b)) + c


def _check_composition(composition):
    if not isinstance(composition, dict) or not composition:
        raise ValueError(f"composition must be a non-empty dict {{element: atoms}}, got {composition!r}")
    for element, count in composition.items():
        _check_element(element)
        check_nonnegative(f"composition[{element!r}]", count)
    return composition


def incoherent_scattering(composition, stol_per_A):
    """Incoherent (Compton) scattering function of a molecule, in electrons.

    The sum of the free-atom functions of Hubbell et al. (1975), interpolated
    linearly in s; chemical bonding is neglected.

    Parameters
    ----------
    composition : dict of str to float
        Atoms per molecule, e.g. ``{"H": 2, "O": 1}`` for water.
    stol_per_A : array_like
        s = sin(theta)/lambda (1/A), >= 0; beyond 2 1/A S is held at its value there.

    Returns
    -------
    ndarray
        ``S(s) = sum_atoms S_atom(s)``: 0 at s = 0, the number of electrons at large s.

    Examples
    --------
    >>> float(incoherent_scattering({"H": 2, "O": 1}, 0.0))
    0.0
    """
    s = _stol_array("stol_per_A", stol_per_A)
    return sum(n * np.interp(s, _INCOHERENT_STOL, _INCOHERENT[el]) for el, n in
               _check_composition(composition).items())


def _independent_atom_f_squared(composition, stol_per_A):
    """sum_atoms f^2: the orientation- and configuration-averaged |F|^2 of atoms
    whose positions are uncorrelated (Wilson statistics)."""
    return sum(n * atomic_form_factor(el, stol_per_A) ** 2 for el, n in composition.items())


@dataclasses.dataclass(frozen=True, eq=False)
class AmorphousMaterial(Params):
    """An amorphous scatterer: a table of its molecular structure factor and
    the number of its molecules in the beam.

    Parameters
    ----------
    name : str
    stol_per_A : array_like, shape (n,)
        s = sin(theta)/lambda (1/A): strictly increasing, finite, >= 0.
    F : array_like, shape (n,)
        Molecular structure factor (electrons; finite, >= 0) at ``stol_per_A``:
        the amplitude scattered by one molecule, including the short-range order
        of a liquid, over that of one electron. Linearly interpolated in s and held
        at its first and last values outside the table.
    thickness_mm : float
        Thickness of the layer along the beam, or the path length of the beam
        through the material (mm, > 0).
    density_g_cm3 : float
        Mass density (g/cm^3, > 0).
    molecular_weight_g_mol : float
        Mass of one "molecule", the unit that ``F`` refers to (g/mol, > 0).
    incoherent : array_like, shape (n,), optional
        Incoherent scattering function per molecule (electrons; finite, >= 0) at
        ``stol_per_A``, see :func:`incoherent_scattering`. Needed with Compton
        scattering on.
    width_mm : float, optional
        Side of a square sample narrower than the beam (mm, > 0); default: the
        material fills the beam's cross-section.

    Notes
    -----
    The number of molecules illuminated (nonBragg's "molecules") is::

        N = thickness * min(width, beam)^2 * density * N_A / molecular_weight

    Examples
    --------
    >>> m = AmorphousMaterial("flat", [0.0], [1.0], thickness_mm=1.0, density_g_cm3=1.0,
    ...                       molecular_weight_g_mol=6.02214076e23 * 1e-3)
    >>> m.molecules(beam_size_mm=1.0)   # 1 mm^3 of 1 g/cm^3 is 1e-3 g
    1.0
    """

    name: str
    stol_per_A: np.ndarray = dataclasses.field(repr=False)
    F: np.ndarray = dataclasses.field(repr=False)
    thickness_mm: float
    density_g_cm3: float
    molecular_weight_g_mol: float
    incoherent: np.ndarray | None = dataclasses.field(default=None, repr=False)
    width_mm: float | None = None
    builtin: tuple | None = dataclasses.field(default=None, repr=False)

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string, got {self.name!r}")
        stol = np.array(self.stol_per_A, dtype=float, ndmin=1)
        if stol.ndim != 1 or stol.size == 0:
            raise ValueError(f"stol_per_A must be a non-empty 1-D table, got shape {stol.shape}")
        _stol_array("stol_per_A", stol)
        if np.any(np.diff(stol) <= 0):
            raise ValueError(f"stol_per_A must be strictly increasing, got {stol.tolist()!r}")
        self._set("stol_per_A", frozen_array(stol))
        self._set("F", frozen_array(self._table("F", self.F, stol.size)))
        if self.incoherent is not None:
            self._set("incoherent", frozen_array(self._table("incoherent", self.incoherent, stol.size)))
        self._set("thickness_mm", check_positive("thickness_mm", self.thickness_mm))
        self._set("density_g_cm3", check_positive("density_g_cm3", self.density_g_cm3))
        self._set("molecular_weight_g_mol", check_positive("molecular_weight_g_mol", self.molecular_weight_g_mol))
        if self.width_mm is not None:
            self._set("width_mm", check_positive("width_mm", self.width_mm))
        if self.builtin is not None:
            builder, params = self.builtin
            check_choice("builtin", builder, _BUILDERS)
            self._set("builtin", (builder, dict(params)))

    @staticmethod
    def _table(name, values, size):
        arr = np.array(values, dtype=float, ndmin=1)
        if arr.shape != (size,):
            raise ValueError(f"{name} must have one value per stol_per_A point ({size}), got shape {arr.shape}")
        if not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise ValueError(f"{name} must be finite and >= 0, got {arr.tolist()!r}")
        return arr

    def molecules(self, beam_size_mm):
        """Molecules illuminated by a square beam of side ``beam_size_mm`` (mm)."""
        beam_size_mm = check_positive("beam_size_mm", beam_size_mm)
        side_mm = beam_size_mm if self.width_mm is None else min(self.width_mm, beam_size_mm)
        volume_cm3 = self.thickness_mm * side_mm**2 * 1e-3
        return volume_cm3 * self.density_g_cm3 * AVOGADRO_PER_MOL / self.molecular_weight_g_mol

    def structure_factor(self, stol_per_A):
        """F(s) (electrons), interpolated as the renderer does."""
        return np.interp(_stol_array("stol_per_A", stol_per_A), self.stol_per_A, self.F)

    def tables_equal(self, other):
        """Whether ``other`` has the same name, tables and amounts (``builtin`` aside)."""
        def arrays(m):
            return (m.stol_per_A, m.F, m.incoherent)

        return (self.name == other.name and self.thickness_mm == other.thickness_mm
                and self.density_g_cm3 == other.density_g_cm3
                and self.molecular_weight_g_mol == other.molecular_weight_g_mol and self.width_mm == other.width_mm
                and all((x is None and y is None) or (x is not None and y is not None and np.array_equal(x, y))
                        for x, y in zip(arrays(self), arrays(other))))

    def to_dict(self):
        """JSON-serialisable parameters that rebuild this material: the builder's
        arguments for :func:`water` and :func:`air` (while the tables are still
        theirs), the tables otherwise."""
        if self.builtin is not None:
            builder, params = self.builtin
            if _BUILDERS[builder](**params).tables_equal(self):
                return {"builtin": builder, "params": dict(params)}
        return {"name": self.name, "stol_per_A": self.stol_per_A.tolist(), "F": self.F.tolist(),
                "thickness_mm": self.thickness_mm, "density_g_cm3": self.density_g_cm3,
                "molecular_weight_g_mol": self.molecular_weight_g_mol,
                "incoherent": None if self.incoherent is None else self.incoherent.tolist(),
                "width_mm": self.width_mm}

    @classmethod
    def from_dict(cls, params):
        """Rebuild from :meth:`to_dict`."""
        if "builtin" in params:
            builder = check_choice("builtin", params["builtin"], _BUILDERS)
            return _BUILDERS[builder](**params["params"])
        return cls(**params)

    def __repr__(self):
        return (f"AmorphousMaterial({self.name!r}, thickness_mm={self.thickness_mm:g}, "
                f"density_g_cm3={self.density_g_cm3:g}, molecular_weight_g_mol={self.molecular_weight_g_mol:g}, "
                f"points={self.stol_per_A.size})")


def water(thickness_um=10.0):
    """Liquid water at 20 C, a layer ``thickness_um`` thick (the paper: 10 um).

    Parameters
    ----------
    thickness_um : float, default 10.0
        Thickness along the beam (micrometres, > 0).

    Returns
    -------
    AmorphousMaterial
        nonBragg's ``water.stol`` table (10,000 points to s = 0.5 1/A; F = 2.57
        forward, maximum 8.01 at s = 0.1603 1/A: the 3.1 A water ring),
        0.9982 g/cm^3, 18.015 g/mol, and the incoherent function of H2O.

    Examples
    --------
    >>> w = water()
    >>> round(float(w.stol_per_A[np.argmax(w.F)]), 4)
    0.1603
    """
    thickness_um = check_positive("thickness_um", thickness_um)
    stol, F = nonbragg_table("water")
    return AmorphousMaterial("water", stol, F, thickness_mm=thickness_um * 1e-3,
                             density_g_cm3=WATER_DENSITY_G_CM3, molecular_weight_g_mol=WATER_MOLECULAR_WEIGHT_G_MOL,
                             incoherent=incoherent_scattering({"H": 2, "O": 1}, stol),
                             builtin=("water", {"thickness_um": thickness_um}))


def _diatomic_f_squared(element, bond_A, stol_per_A):
    """Orientation-averaged |F|^2 of a homonuclear diatomic molecule (Debye 1915):
    2 f^2 (1 + sin(q d) / (q d)) with q = 4 pi s."""
    f2 = atomic_form_factor(element, stol_per_A) ** 2
    return 2.0 * f2 * (1.0 + np.sinc(4.0 * stol_per_A * bond_A))


_AIR_TABLES = ("nonbragg", "computed")


def air(path_mm=5.0, temperature_C=20.0, pressure_kPa=101.325, table="nonbragg"):
    """Dry air (78 % N2, 21 % O2, 1 % Ar by volume) along ``path_mm`` of the beam.

    Parameters
    ----------
    path_mm : float, default 5.0
        Length of the beam path through air seen by the detector (mm, > 0; the
        paper: 5 mm).
    temperature_C : float, default 20.0
        Temperature (degrees Celsius, > -273.15).
    pressure_kPa : float, default 101.325
        Pressure (kPa, > 0).
    table : {"nonbragg", "computed"}, default "nonbragg"
        The structure factor per average molecule. ``"nonbragg"``: nonBragg's
        ``air.stol`` (100 points to s = 0.5 1/A, F(0) = 14.10), the table the
        paper's background was computed with. ``"computed"``: an ideal gas of
        independent molecules, ``F^2 = sum_k x_k F_k^2`` over the gases k of
        mole fraction ``x_k``, each diatomic ``F_k^2 = 2 f^2 (1 + sin(4 pi s d) /
        (4 pi s d))`` with bond length d (Debye 1915) and IT92 atomic factors f
        (F(0) = 14.48, on a 0.01 1/A grid to s = 2): 5.5 % more intensity
        than the table below s = 0.1 1/A, equal at s = 0.19 and less beyond
        (28 % less at s = 0.3, where the table falls off more slowly).

    Returns
    -------
    AmorphousMaterial
        Density from the ideal-gas law, ``rho = p M / (R T)`` (1.204e-3 g/cm^3
        at 20 C, 1 atm), M = 28.96 g/mol; the incoherent function of the same
        mixture.

    Examples
    --------
    >>> round(float(air().F[0]), 2), round(float(air(table="computed").F[0]), 2)
    (14.1, 14.48)
    >>> round(air().density_g_cm3 * 1e3, 3)
    1.204
    """
    path_mm = check_positive("path_mm", path_mm)
    temperature_K = check_finite("temperature_C", temperature_C) + 273.15
    if temperature_K <= 0:
        raise ValueError(f"temperature_C must be > -273.15, got {temperature_C!r}")
    pressure_Pa = check_positive("pressure_kPa", pressure_kPa) * 1e3
    if not isinstance(table, str):
        raise ValueError(f"table must be one of {list(_AIR_TABLES)!r}, got {table!r}")
    check_choice("table", table, _AIR_TABLES)
    if table == "nonbragg":
        stol, F = nonbragg_table("air")
    else:
        stol = np.asarray(_FINE_STOL)
        F = np.sqrt(sum(fraction * (atomic_form_factor(element, stol) ** 2 if bond_A is None
                                    else _diatomic_f_squared(element, bond_A, stol))
                        for _, fraction, element, bond_A, _ in _AIR))
    incoherent = sum(fraction * incoherent_scattering({element: 1 if bond_A is None else 2}, stol)
                     for _, fraction, element, bond_A, _ in _AIR)
    molar_mass = sum(fraction * mass for _, fraction, _, _, mass in _AIR)
    density_g_cm3 = pressure_Pa * molar_mass / (GAS_CONSTANT_J_PER_MOL_K * temperature_K) * 1e-6
    return AmorphousMaterial("air", stol, F, thickness_mm=path_mm, density_g_cm3=density_g_cm3,
                             molecular_weight_g_mol=molar_mass, incoherent=incoherent,
                             builtin=("air", {"path_mm": path_mm, "temperature_C": float(temperature_C),
                                              "pressure_kPa": pressure_Pa * 1e-3, "table": table}))


# the built-in materials, by the name AmorphousMaterial.to_dict records
_BUILDERS = {"water": water, "air": air}


@dataclasses.dataclass(frozen=True, eq=False)
class LatticeDiffuse(Params):
    """Diffuse scattering from uncorrelated atomic displacements in the crystal.

    Displacements that are independent from atom to atom (an Einstein model)
    weaken every Bragg reflection by the Debye-Waller factor ``exp(-2 B s^2)``;
    the intensity they remove reappears as diffuse scattering, smooth in
    reciprocal space (Warren 1969, X-Ray Diffraction, ch. 11)::

        I_diffuse(s) = sum_atoms f_j(s)^2 (1 - exp(-2 B s^2))

    per illuminated atom set. The crystal's protein is represented by the
    average amino-acid residue ("averagine", C4.94 H7.76 N1.36 O1.48 S0.04,
    111.1 g/mol) at 1.35 g/cm^3 times its protein fraction; its solvent is left
    to the water layer.

    Parameters
    ----------
    b_factor_A2 : float, default 20.0
        Isotropic displacement parameter B = 8 pi^2 <u^2> (A^2, > 0).
    crystal_size_um : float, default 30.0
        Side of the cube-shaped crystal (micrometres, > 0; the paper: 30 um),
        clipped to the beam as the amorphous layers are.
    solvent_fraction : float, default 0.5
        Volume fraction of the crystal taken by solvent, in [0, 1).

    Examples
    --------
    >>> d = LatticeDiffuse()
    >>> float(d.material().F[0])     # nothing is diffuse at s = 0
    0.0
    """

    b_factor_A2: float = 20.0
    crystal_size_um: float = 30.0
    solvent_fraction: float = 0.5

    def __post_init__(self):
        self._set("b_factor_A2", check_positive("b_factor_A2", self.b_factor_A2))
        self._set("crystal_size_um", check_positive("crystal_size_um", self.crystal_size_um))
        solvent_fraction = check_nonnegative("solvent_fraction", self.solvent_fraction)
        if solvent_fraction >= 1.0:
            raise ValueError(f"solvent_fraction must be < 1, got {self.solvent_fraction!r}")
        self._set("solvent_fraction", solvent_fraction)

    def material(self):
        """The diffuse scatterer as an :class:`AmorphousMaterial` (one "molecule"
        is one average residue)."""
        stol = np.asarray(_FINE_STOL)
        f_squared = _independent_atom_f_squared(_AVERAGINE, stol) * -np.expm1(-2.0 * self.b_factor_A2 * stol**2)
        size_mm = self.crystal_size_um * 1e-3
        return AmorphousMaterial("lattice diffuse", stol, np.sqrt(f_squared), thickness_mm=size_mm,
                                 density_g_cm3=PROTEIN_DENSITY_G_CM3 * (1.0 - self.solvent_fraction),
                                 molecular_weight_g_mol=_AVERAGINE_G_MOL,
                                 incoherent=incoherent_scattering(_AVERAGINE, stol), width_mm=size_mm)

    def to_dict(self):
        """JSON-serialisable parameters: ``LatticeDiffuse(**d)`` rebuilds it."""
        return {"b_factor_A2": self.b_factor_A2, "crystal_size_um": self.crystal_size_um,
                "solvent_fraction": self.solvent_fraction}

    def __repr__(self):
        return (f"LatticeDiffuse(b_factor_A2={self.b_factor_A2:g}, crystal_size_um={self.crystal_size_um:g}, "
                f"solvent_fraction={self.solvent_fraction:g})")


@dataclasses.dataclass(frozen=True, eq=False)
class Background(Params):
    """Expected background photons from amorphous scatterers.

    Parameters
    ----------
    materials : sequence of AmorphousMaterial, default (water(), air())
        The layers in the beam; the paper's 10 um of water and 5 mm of air by
        default. May be empty.
    compton : bool, default False
        Add the incoherent (Compton) scattering ``S(s)`` of every material
        (each must then have an ``incoherent`` table), and of the diffuse term.
    diffuse : LatticeDiffuse, optional
        Diffuse scattering from the crystal lattice; default: none.

    Examples
    --------
    >>> from diffranet import Beam, Detector
    >>> bg = Background()
    >>> img = bg.render(Detector((16, 16), 0.172, 80.0), Beam(1.5, fluence_photons_per_m2=1e24, beam_size_mm=0.03))
    >>> img.shape, img.dtype, bool(img.min() > 0)
    ((16, 16), dtype('float32'), True)
    """

    materials: tuple = (water(), air())
    compton: bool = False
    diffuse: LatticeDiffuse | None = None

    def __post_init__(self):
        materials, compton, diffuse = self.materials, self.compton, self.diffuse
        if isinstance(materials, AmorphousMaterial) or not isinstance(materials, (tuple, list)):
            raise ValueError(f"materials must be a sequence of AmorphousMaterial, got {materials!r}")
        for i, material in enumerate(materials):
            if not isinstance(material, AmorphousMaterial):
                raise ValueError(f"materials[{i}] must be an AmorphousMaterial, got {type(material).__name__}")
        if not isinstance(compton, (bool, np.bool_)):
            raise ValueError(f"compton must be True or False, got {compton!r}")
        if diffuse is not None and not isinstance(diffuse, LatticeDiffuse):
            raise ValueError(f"diffuse must be a LatticeDiffuse or None, got {type(diffuse).__name__}")
        if compton:
            for material in materials:
                if material.incoherent is None:
                    raise ValueError(f"compton=True needs an incoherent table for every material; "
                                     f"material {material.name!r} has none")
        self._set("materials", tuple(materials))
        self._set("compton", bool(compton))

    def scatterers(self):
        """Every material rendered: the layers, then the diffuse term if any."""
        extra = () if self.diffuse is None else (self.diffuse.material(),)
        return self.materials + extra

    def render(self, detector, beam, oversample=1, n_threads=None):
        """Expected background photons per pixel, without noise or beamstop.

        Parameters
        ----------
        detector : Detector
        beam : Beam
            Needs ``beam_size_mm``: the scattering volume is the beam's
            cross-section times each material's thickness.
        oversample : int, default 1
            Subpixels per pixel side, as for the Bragg image.
        n_threads : int, optional
            OpenMP threads; default: all available. The image does not depend on it.

        Returns
        -------
        ndarray, float32, shape detector.shape
            ``r_e^2 * fluence * sum_m N_m <Omega P (F_m(s)^2 + S_m(s))>``,
            averaged over subpixels and sources (``S_m = 0`` unless ``compton``).
        """
        if not isinstance(detector, Detector):
            raise ValueError(f"detector must be a Detector, got {type(detector).__name__}")
        if not isinstance(beam, Beam):
            raise ValueError(f"beam must be a Beam, got {type(beam).__name__}")
        if beam.beam_size_mm is None:
            raise ValueError("beam.beam_size_mm is needed for the background (the illuminated volume), got None")
        oversample = check_int("oversample", oversample, minimum=1)
        n_threads = check_threads(n_threads)
        scatterers = self.scatterers()
        incoherent = [m.incoherent if self.compton else np.zeros_like(m.F) for m in scatterers]
        geometry = {**detector_args(detector, oversample), **beam_args(beam)}
        return _core.render_background(
            **geometry, material_stol_per_A=[m.stol_per_A for m in scatterers], material_F=[m.F for m in scatterers],
            material_incoherent=incoherent, material_molecules=[m.molecules(beam.beam_size_mm) for m in scatterers],
            n_threads=n_threads, samples=_samples(detector, oversample, geometry))

    def to_dict(self):
        """JSON-serialisable parameters that rebuild this background (:meth:`from_dict`)."""
        return {"materials": [m.to_dict() for m in self.materials], "compton": self.compton,
                "diffuse": None if self.diffuse is None else self.diffuse.to_dict()}

    @classmethod
    def from_dict(cls, params):
        """Rebuild from :meth:`to_dict`."""
        diffuse = params.get("diffuse")
        return cls(materials=[AmorphousMaterial.from_dict(m) for m in params["materials"]],
                   compton=params["compton"], diffuse=None if diffuse is None else LatticeDiffuse(**diffuse))

    def __repr__(self):
        return f"Background(materials={list(self.materials)!r}, compton={self.compton}, diffuse={self.diffuse!r})"


#: Largest set of background samples kept per detector (bytes): 16 per subpixel and source.
MAX_CACHED_SAMPLES_BYTES = 256 * 2**20
_SAMPLES_PER_DETECTOR = 4
# detector -> {(oversample, beam geometry): _core.BackgroundSamples}; an entry goes with its detector
_SAMPLES = weakref.WeakKeyDictionary()


def _samples(detector, oversample, geometry):
    """The core's background samples of ``detector`` and the beam geometry in ``geometry``, cached.

    Every shot of a data set shares the detector, the beam's direction and
    polarisation; only its wavelength and fluence change, and those are not part
    of the samples. None (each render computes its samples row by row) when they
    would be larger than :data:`MAX_CACHED_SAMPLES_BYTES`.
    """
    n_sources = len(geometry["source_weights"])
    rows, cols = detector.shape
    if 16.0 * rows * cols * oversample * oversample * n_sources > MAX_CACHED_SAMPLES_BYTES:
        return None
    key = (oversample, geometry["source_directions"].tobytes(), geometry["source_weights"].tobytes(),
           float(geometry["polarization_fraction"]), np.asarray(geometry["polarization_axis"], float).tobytes())
    cache = _SAMPLES.setdefault(detector, {})
    samples = cache.get(key)
    if samples is None:
        samples = _core.BackgroundSamples(**geometry)
        while len(cache) >= _SAMPLES_PER_DETECTOR:
            cache.pop(next(iter(cache)))
        # a concurrent caller may store equal samples first: either one is right
        samples = cache.setdefault(key, samples)
    return samples
