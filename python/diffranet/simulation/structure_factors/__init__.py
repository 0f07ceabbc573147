"""Structure-factor amplitudes |F(hkl)| for the diffraction simulator.

A :class:`StructureFactors` holds amplitudes for Miller indices expanded to P1
(every symmetry mate and Friedel mate listed) and exposes them as a dense
float32 table, so that the compiled core looks up ``|F(h, k, l)|`` in O(1).
Reflections that are not listed are NaN in the table; the simulator then uses
``Crystal.default_F`` for them, as nanoBragg does with ``-default_F``.

Sources:

* an explicit P1 list (``StructureFactors(hkl, amplitudes)``);
* nanoBragg-style text, one ``h k l F`` per line (:meth:`StructureFactors.from_hkl_file`);
* an MTZ file read with gemmi (:meth:`StructureFactors.from_mtz`);
* Fcalc from an atomic model with a flat bulk-solvent correction, computed by
  gemmi (:meth:`StructureFactors.from_model`);
* a seeded, protein-like model in the photosystem II cell used for DiffraNet,
  built once and cached on disk (:meth:`StructureFactors.default_protein`).

Units: lengths in Angstrom (suffix ``_A``), B-factors in A^2 (suffix ``_A2``),
amplitudes in electrons (the scattering of one free electron is 1).

Modules, one idea each: :mod:`.reflections` (index keys, symmetry, P1
expansion, the dense table), :mod:`.readers` (text, MTZ and model files),
:mod:`.fcalc` (Fcalc by FFT), :mod:`.protein` (the seeded default model),
:mod:`.cache` (its disk cache) and :mod:`.amplitudes` (the class).
"""

from __future__ import annotations

from .amplitudes import StructureFactors
from .cache import DEFAULT_PROTEIN_VERSION
from .fcalc import fcalc_p1
from .protein import PSII_CELL, PSII_SPACE_GROUP, random_protein_model
from .readers import load_structure, read_hkl_text, read_mtz_amplitudes
from .reflections import (
    MAX_TABLE_CELLS,
    SYMMETRY_RTOL,
    dense_table,
    expand_to_p1,
    symmetry_mates,
)

__all__ = [
    "DEFAULT_PROTEIN_VERSION",
    "MAX_TABLE_CELLS",
    "PSII_CELL",
    "PSII_SPACE_GROUP",
    "SYMMETRY_RTOL",
    "StructureFactors",
    "dense_table",
    "expand_to_p1",
    "fcalc_p1",
    "load_structure",
    "random_protein_model",
    "read_hkl_text",
    "read_mtz_amplitudes",
    "symmetry_mates",
]
