"""The :class:`StructureFactors` container: amplitudes expanded to P1 in a dense float32 table."""

from __future__ import annotations

import os

import numpy as np
from tqdm.auto import tqdm

from ... import _core
from ..._atomic import atomic_write
from ..._validation import check_finite, check_nonnegative, check_positive, check_seed
from ._checks import (
    as_amplitudes,
    as_cell,
    as_indices,
    as_miller_indices,
    as_space_group,
    existing_file,
)
from ._gemmi import gemmi, p1
from .cache import cache_key, cache_path, load_cache, write_cache
from .fcalc import check_grid_size, fcalc_p1
from .protein import PSII_CELL, PSII_SPACE_GROUP, random_protein_model
from .readers import load_structure, read_hkl_text, read_mtz_amplitudes
from .reflections import (
    dense_table,
    expand_to_p1,
    find_conflict,
    first_of_each,
    index_keys,
)

__all__ = ["StructureFactors"]

# default_protein() tables read in this process, by (class, cache file, key): reading and
# checking the 38 MB table again costs a quarter of a second, more than rendering a shot.
_LOADED_DEFAULT_PROTEINS = {}


class StructureFactors:
    """Amplitudes |F| for Miller indices, expanded to P1 (all symmetry mates and
    Friedel mates) and stored as a dense float32 table for O(1) lookup by the
    compiled core.

    Parameters
    ----------
    hkl : array_like of int, shape (n, 3)
        Miller indices, an explicit P1 list (no symmetry expansion is done).
    amplitudes : array_like of float, shape (n,)
        |F| in electrons, finite and >= 0. A reflection listed twice must have
        the same amplitude both times.
    cell : tuple of 6 float or gemmi.UnitCell, optional
        a, b, c (A), alpha, beta, gamma (degrees); informative, gives :attr:`d_min`.
    space_group_name : str, optional
        Space group the amplitudes came from (informative: the data are P1).

    Attributes
    ----------
    table : ndarray of float32, shape (nh, nk, nl), C-contiguous, read-only
        ``table[i, j, k] = |F(hmin + i, kmin + j, lmin + k)|``; NaN where no
        reflection is listed (the simulator then uses ``Crystal.default_F``).
    hkl_min : tuple of int
        (hmin, kmin, lmin).
    cell : tuple of float or None
    space_group_name : str or None
    n_reflections : int
    d_min : float or None
        Highest resolution listed, A (None without a cell).

    References
    ----------
    .. [1] J. M. Holton, S. Classen, K. A. Frankel and J. A. Tainer, "The R-factor
       gap in macromolecular crystallography", FEBS J. 281, 4046-4060 (2014),
       doi:10.1111/febs.12922 (nanoBragg, https://github.com/bl831/nanoBragg).
    .. [2] M. Wojdyr, "GEMMI: A library for structural biology", J. Open Source
       Softw. 7, 4200 (2022), doi:10.21105/joss.04200.

    Examples
    --------
    >>> sf = StructureFactors([[1, 0, 0], [-1, 0, 0], [0, 0, 2]], [10.0, 10.0, 3.5])
    >>> sf.hkl_min, sf.table.shape
    ((-1, 0, 0), (3, 1, 3))
    >>> sf.amplitude([1, 0, 5], 0, [0, 2, 0], default=0.0).tolist()
    [10.0, 3.5, 0.0]
    """

    def __init__(self, hkl, amplitudes, *, cell=None, space_group_name=None):
        hkl = as_miller_indices("hkl", hkl)
        amplitudes = as_amplitudes("amplitudes", amplitudes, len(hkl))
        if len(hkl) == 0:
            raise ValueError("hkl must list at least one reflection, got 0")
        keys = index_keys(hkl)
        conflict = find_conflict(keys, amplitudes, 0.0)
        if conflict is not None:
            i, j = conflict
            raise ValueError(
                f"hkl {hkl[i].tolist()!r} is listed twice with different amplitudes "
                f"({amplitudes[i].item()!r} at row {i}, {amplitudes[j].item()!r} at row {j})"
            )
        keep = first_of_each(keys)
        if space_group_name is not None and not isinstance(space_group_name, str):
            raise ValueError(f"space_group_name must be a string or None, got {space_group_name!r}")
        self._set(*dense_table(hkl[keep], amplitudes[keep]), as_cell("cell", cell), space_group_name)

    def _set(self, table, hkl_min, cell, space_group_name):
        table = np.ascontiguousarray(table, dtype=np.float32)
        table.flags.writeable = False
        self._table, self._hkl_min = table, hkl_min
        self._cell, self._space_group_name = cell, space_group_name
        self._d_min = None
        self._max_amplitude = None
        self._source = {"kind": "arrays"}

    def _with_source(self, **source):
        self._source = source
        return self

    @classmethod
    def _from_p1(cls, hkl, amplitudes, cell, space_group_name):
        """Build from a validated list of distinct P1 reflections."""
        sf = cls.__new__(cls)
        sf._set(*dense_table(hkl, amplitudes), cell, space_group_name)
        return sf

    # -- readers -----------------------------------------------------------

    @classmethod
    def from_hkl_file(cls, path, space_group=None, *, cell=None):
        """Read a nanoBragg-style text file of ``h k l F`` lines.

        Fields are whitespace separated; blank lines and ``#`` comments are
        allowed. A reflection listed twice must have the same F.

        Parameters
        ----------
        path : str or os.PathLike
        space_group : str or gemmi.SpaceGroup, optional
            Space group of the listed (e.g. asymmetric-unit) reflections, such
            as ``"P 21 21 21"``. Given: every symmetry mate and Friedel mate is
            generated. None: the list is taken as P1 and only missing Friedel
            mates are added (|F(-h)| = |F(h)|).
        cell : tuple of 6 float, optional
            a, b, c (A), alpha, beta, gamma (degrees), kept for :attr:`d_min`.

        Returns
        -------
        StructureFactors

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        ValueError
            ``"{path}:{lineno}: ..."`` for a malformed line or a negative,
            NaN or infinite F, or for amplitudes that contradict the symmetry.
        """
        sg = as_space_group("space_group", space_group)
        cell = as_cell("cell", cell)
        path = existing_file("path", path)
        hkl, amplitudes, lines = read_hkl_text(path)
        hkl, amplitudes = expand_to_p1(hkl, amplitudes, sg or p1(), lambda i: f"{path}:{lines[i]}")
        return cls._from_p1(hkl, amplitudes, cell, sg.xhm() if sg else None)._with_source(
            kind="hkl", path=str(path), space_group=sg.xhm() if sg else None,
            cell=list(cell) if cell is not None else None)

    @classmethod
    def from_mtz(cls, path, column=None):
        """Read amplitudes from an MTZ file (gemmi) and expand them to P1.

        Parameters
        ----------
        path : str or os.PathLike
        column : str, optional
            Label of an amplitude column (MTZ type F). Needed only if the file
            has more than one.

        Returns
        -------
        StructureFactors
            Expanded with the MTZ's space group, plus Friedel mates where the
            -h reflection is absent; the cell is the MTZ cell.

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        ValueError
            If the file is not MTZ, has no (or an ambiguous) amplitude column,
            holds a negative or infinite amplitude, or has no space group.
        """
        path = existing_file("path", path)
        hkl, amplitudes, mtz, label = read_mtz_amplitudes(path, column)
        if mtz.spacegroup is None:
            raise ValueError(f"{path}: MTZ has no space group")
        where = lambda i: f"{path}: column {label!r}, reflection {tuple(hkl[i].tolist())}"  # noqa: E731
        hkl, amplitudes = expand_to_p1(hkl, amplitudes, mtz.spacegroup, where)
        sf = cls._from_p1(hkl, amplitudes, as_cell(f"{path}: cell", mtz.cell), mtz.spacegroup.xhm())
        return sf._with_source(kind="mtz", path=str(path), column=column)

    @classmethod
    def from_model(cls, path_or_structure, d_min_A, bulk_solvent=True, k_sol=0.35, b_sol_A2=46.0):
        """Fcalc from an atomic model with gemmi, with a flat bulk-solvent model.

        The model's electron density (IT92 form factors, isotropic or
        anisotropic B) is put on a grid with ``gemmi.DensityCalculatorX`` and
        Fourier transformed (``gemmi.transform_map_to_f_phi``). With
        ``bulk_solvent`` the solvent region from ``gemmi.SolventMasker`` (cctbx
        radii, as in phenix.fmodel) is added as a flat scatterer:

            F = F_atoms + k_sol exp(-B_sol s^2 / 4) F_mask,   s = 1/d.

        Parameters
        ----------
        path_or_structure : str, os.PathLike or gemmi.Structure
            PDB or mmCIF file with a unit cell and space group; the first model is used.
        d_min_A : float
            Resolution limit, A: every P1 reflection with d >= d_min_A except 000.
        bulk_solvent : bool
        k_sol : float
            Bulk-solvent electron density, e/A^3 (0.35: typical refined value).
        b_sol_A2 : float
            Bulk-solvent B-factor, A^2 (46: typical refined value).

        Returns
        -------
        StructureFactors

        References
        ----------
        .. [1] J.-S. Jiang and A. T. Brunger, "Protein hydration observed by X-ray
           diffraction", J. Mol. Biol. 243, 100-115 (1994).
        .. [2] A. Fokine and A. Urzhumtsev, "Flat bulk-solvent model: obtaining
           optimal parameters", Acta Cryst. D58, 1387-1392 (2002).
        .. [3] gemmi documentation, "Scattering": density for FFT, solvent mask,
           https://gemmi.readthedocs.io/en/latest/scattering.html
        """
        d_min_A = check_positive("d_min_A", d_min_A)
        if not isinstance(bulk_solvent, (bool, np.bool_)):
            raise ValueError(f"bulk_solvent must be True or False, got {bulk_solvent!r}")
        k_sol = check_nonnegative("k_sol", k_sol)
        b_sol_A2 = check_nonnegative("b_sol_A2", b_sol_A2)
        st = load_structure(path_or_structure)
        check_grid_size(st.cell, d_min_A)
        hkl, amplitudes = fcalc_p1(st, d_min_A, bool(bulk_solvent), k_sol, b_sol_A2)
        sf = cls._from_p1(hkl, amplitudes, as_cell("cell", st.cell), st.find_spacegroup().xhm())
        path = str(path_or_structure) if isinstance(path_or_structure, (str, os.PathLike)) else None
        return sf._with_source(kind="model", path=path, d_min_A=d_min_A, bulk_solvent=bool(bulk_solvent),
                               k_sol=k_sol, b_sol_A2=b_sol_A2)

    @classmethod
    def default_protein(cls, d_min_A=1.9, seed=0, cache_dir=None):
        """Protein-like structure factors in the photosystem II cell, cached on disk.

        DiffraNet used Fcalc of photosystem II (PDB 4rvy; P 21 21 21,
        117 x 223 x 310 A) with bulk solvent. Nothing is downloaded: a random
        protein-like model in that cell (:func:`random_protein_model`: ~50%
        solvent, C/N/O/S atoms in molecular blobs, B 30-60 A^2) is Fcalc'd with
        :meth:`from_model` (k_sol 0.35 e/A^3, B_sol 46 A^2). The result is
        reproducible bit-for-bit from ``seed`` and written once, atomically, as
        a compressed ``.npz`` keyed by (d_min_A, seed, version, gemmi version),
        and read once per process: later calls return the same (immutable)
        object. Use :meth:`from_model` or :meth:`from_mtz` for a real structure.

        Parameters
        ----------
        d_min_A : float
            Resolution limit, A.
        seed : int
            Seed of the random model.
        cache_dir : str or os.PathLike, optional
            Default: ``$DIFFRANET_CACHE`` or ``~/.cache/diffranet``.

        Returns
        -------
        StructureFactors
        """
        d_min_A = check_positive("d_min_A", d_min_A)
        seed = check_seed("seed", seed)
        path = cache_path(cache_dir, d_min_A, seed)
        check_grid_size(gemmi.UnitCell(*PSII_CELL), d_min_A)
        key = cache_key(d_min_A, seed)
        loaded = _LOADED_DEFAULT_PROTEINS.get((cls, str(path), repr(key)))
        if loaded is not None:
            return loaded
        cached = load_cache(path, key) if path.is_file() else None
        if cached is not None:
            sf = cls.__new__(cls)
            sf._set(cached[0], cached[1], cached[2], PSII_SPACE_GROUP)
            sf = sf._with_source(kind="default_protein", d_min_A=d_min_A, seed=seed)
            # a concurrent caller may store an identical object first: either one is right
            return _LOADED_DEFAULT_PROTEINS.setdefault((cls, str(path), repr(key)), sf)
        with tqdm(total=5, desc="diffranet: building default structure factors", disable=None, leave=False) as bar:

            def step(label):
                bar.set_postfix_str(label)
                bar.update(1)

            step("random protein model")
            st = random_protein_model(PSII_CELL, PSII_SPACE_GROUP, seed)
            hkl, amplitudes = fcalc_p1(st, d_min_A, step=step)
        sf = cls._from_p1(hkl, amplitudes, PSII_CELL, PSII_SPACE_GROUP)
        write_cache(path, key, sf)
        return sf._with_source(kind="default_protein", d_min_A=d_min_A, seed=seed)

    @classmethod
    def from_source(cls, source):
        """Rebuild structure factors from their :attr:`source` description.

        Parameters
        ----------
        source : dict
            As returned by :attr:`source` (JSON-serialisable): how the
            amplitudes were made (``kind`` plus that constructor's arguments).

        Raises
        ------
        ValueError
            For amplitudes given as arrays (nothing on disk describes them), a
            model given as an in-memory structure, or an unknown ``kind``.
        """
        if not isinstance(source, dict) or "kind" not in source:
            raise ValueError(f"source must be a dict with a 'kind', got {source!r}")
        kind = source["kind"]
        args = {k: v for k, v in source.items() if k != "kind"}
        if kind == "default_protein":
            return cls.default_protein(**args)
        if kind == "hkl":
            return cls.from_hkl_file(args.pop("path"), args.pop("space_group"), **args)
        if kind == "mtz":
            return cls.from_mtz(**args)
        if kind == "model" and args.get("path") is not None:
            return cls.from_model(args.pop("path"), **args)
        raise ValueError(f"structure factors of kind {kind!r} cannot be rebuilt from their description "
                         f"{source!r}: keep them in a file (to_hkl_file) and use from_hkl_file")

    @property
    def source(self):
        """JSON-serialisable description of how these amplitudes were made."""
        return dict(self._source)

    # -- views -------------------------------------------------------------

    @property
    def table(self):
        """Dense float32 (nh, nk, nl) table of |F|, NaN where not listed."""
        return self._table

    @property
    def max_amplitude(self):
        """Largest listed |F| (electrons), computed once."""
        if self._max_amplitude is None:
            self._max_amplitude = float(np.nanmax(self._table)) if np.any(np.isfinite(self._table)) else 0.0
        return self._max_amplitude

    def __getstate__(self):
        # the core's tables are compiled objects: a copy rebuilds them when it needs them
        return {name: value for name, value in self.__dict__.items() if name != "_core_tables"}

    def _core_table(self, default_F):
        """The table for the compiled renderers, unlisted reflections at ``default_F``.

        Checked and copied by the core once per value (the renderers use it
        for every image).
        """
        default_F = check_nonnegative("default_F", default_F)
        cache = self.__dict__.setdefault("_core_tables", {})
        if default_F not in cache:
            if len(cache) >= 4:
                cache.clear()
            filled = np.where(np.isnan(self._table), np.float32(default_F), self._table).astype(np.float32)
            cache[default_F] = _core.StructureFactorTable(filled, [int(i) for i in self._hkl_min], default_F)
        return cache[default_F]

    @property
    def hkl_min(self):
        """(hmin, kmin, lmin): ``table[i, j, k]`` is F(hmin + i, kmin + j, lmin + k)."""
        return self._hkl_min

    @property
    def cell(self):
        """Unit cell (a, b, c in A; alpha, beta, gamma in degrees) or None."""
        return self._cell

    @property
    def space_group_name(self):
        """Space group the amplitudes were expanded from, or None."""
        return self._space_group_name

    @property
    def n_reflections(self):
        """Number of listed (non-NaN) reflections."""
        return int(np.count_nonzero(~np.isnan(self._table)))

    @property
    def hkl(self):
        """Listed Miller indices, int64 (n, 3), in table (h, k, l) order."""
        return np.argwhere(~np.isnan(self._table)) + np.array(self._hkl_min)

    @property
    def amplitudes(self):
        """Listed |F|, float32 (n,), matching :attr:`hkl`."""
        return self._table[~np.isnan(self._table)]

    @property
    def d_min(self):
        """Smallest d-spacing listed, A (1/d^2 from the cell metric); None without a cell."""
        if self._cell is None:
            return None
        if self._d_min is None:
            inv_d2 = gemmi.UnitCell(*self._cell).calculate_1_d2_array(self.hkl)
            self._d_min = float(1 / np.sqrt(inv_d2.max())) if inv_d2.max() > 0 else float("inf")
        return self._d_min

    def amplitude(self, h, k, l, default=np.nan):
        """|F(h, k, l)| by table lookup (vectorised; the reference for the core).

        Parameters
        ----------
        h, k, l : int or array_like of int
            Broadcast together.
        default : float
            Returned for reflections not listed.

        Returns
        -------
        float or ndarray of float64
        """
        if not (isinstance(default, float) and np.isnan(default)):
            default = check_finite("default", default)
        idx = np.broadcast_arrays(as_indices("h", h), as_indices("k", k), as_indices("l", l))
        out = np.full(idx[0].shape, default, dtype=np.float64)
        rel = [i - lo for i, lo in zip(idx, self._hkl_min)]
        inside = np.ones(out.shape, dtype=bool)
        for r, n in zip(rel, self._table.shape):
            inside &= (r >= 0) & (r < n)
        values = self._table[tuple(r[inside] for r in rel)].astype(np.float64)
        out[inside] = np.where(np.isnan(values), default, values)
        return out[()] if out.ndim == 0 else out

    def to_hkl_file(self, path):
        """Write every listed reflection as a nanoBragg ``h k l F`` line.

        F is written with 9 significant digits, so :meth:`from_hkl_file` reads
        back the same float32 table.
        """
        if not isinstance(path, (str, os.PathLike)):
            raise ValueError(f"path must be a file path, got {path!r}")
        rows = np.column_stack([self.hkl, self.amplitudes.astype(np.float64)])
        with atomic_write(path) as fh:
            np.savetxt(fh, rows, fmt=["%4d", "%4d", "%4d", "%.9g"])

    def __repr__(self):
        return (
            f"StructureFactors(n_reflections={self.n_reflections}, hkl_min={self._hkl_min}, "
            f"table_shape={self._table.shape}, cell={self._cell}, space_group_name={self._space_group_name!r})"
        )
