"""Tests of diffranet.simulation.structure_factors: tables, symmetry, readers, Fcalc, default protein."""

from __future__ import annotations

import math

import gemmi
import numpy as np
import pytest

from diffranet.simulation import structure_factors as sfmod
from diffranet.simulation.structure_factors import StructureFactors, amplitudes, protein

P212121 = "P 21 21 21"


def one_residue_structure(cell, space_group, atoms):
    """A gemmi.Structure with atoms given as (element, fractional xyz, B)."""
    st = gemmi.Structure()
    st.cell = gemmi.UnitCell(*cell)
    st.spacegroup_hm = space_group
    residue = gemmi.Residue()
    residue.name = "UNK"
    residue.seqid = gemmi.SeqId(1, " ")
    for element, frac, b_iso in atoms:
        atom = gemmi.Atom()
        atom.element = gemmi.Element(element)
        atom.name = element
        atom.pos = st.cell.orthogonalize(gemmi.Fractional(*frac))
        atom.b_iso = b_iso
        atom.occ = 1.0
        residue.add_atom(atom)
    chain = gemmi.Chain("A")
    chain.add_residue(residue)
    model = gemmi.Model(1)
    model.add_chain(chain)
    st.add_model(model)
    st.setup_cell_images()
    return st


def write_text(path, text):
    path.write_text(text)
    return path


def stol2(cell, hkl):
    """(sin(theta)/lambda)^2 = 1/(4 d^2) for each reflection."""
    return gemmi.UnitCell(*cell).calculate_1_d2_array(np.asarray(hkl, dtype=np.int32)) / 4


def wilson_b(sf, counts, d_max_A, d_min_A):
    """Wilson B (A^2) and fit residual of ln(<F^2> / sum f^2) = ln k - 2 B s^2 in shells."""
    s2 = stol2(sf.cell, sf.hkl)
    f2 = sf.amplitudes.astype(float) ** 2
    edges = np.linspace(1 / (4 * d_max_A**2), 1 / (4 * d_min_A**2), 8)
    x, y = [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (s2 >= lo) & (s2 < hi)
        mean_s2 = s2[sel].mean()
        sum_f2 = sum(n * gemmi.Element(e).it92.calculate_sf(mean_s2) ** 2 for e, n in counts.items())
        x.append(mean_s2)
        y.append(np.log(f2[sel].mean() / sum_f2))
    slope, intercept = np.polyfit(x, y, 1)
    residual = np.max(np.abs(np.polyval([slope, intercept], x) - y))
    return -slope / 2, residual


def element_counts(st):
    """Heavy atoms per element in the whole unit cell (all symmetry copies)."""
    counts = {}
    n_ops = len(st.find_spacegroup().operations())
    for cra in st[0].all():
        counts[cra.atom.element.name] = counts.get(cra.atom.element.name, 0) + n_ops
    return counts


class TestStructureFactors:
    def test_dense_table_lookup_equals_input_list(self):
        rng = np.random.default_rng(3)
        hkl = np.unique(rng.integers(-6, 7, size=(300, 3)), axis=0)
        amplitudes = rng.random(len(hkl)) * 100
        sf = StructureFactors(hkl, amplitudes)
        np.testing.assert_array_equal(sf.amplitude(*hkl.T), amplitudes.astype(np.float32))
        i, j, k = (hkl - np.array(sf.hkl_min)).T
        np.testing.assert_array_equal(sf.table[i, j, k], amplitudes.astype(np.float32))
        assert sf.n_reflections == len(hkl)
        assert np.isnan(sf.table).sum() == sf.table.size - len(hkl)

    def test_table_is_readonly_c_contiguous_float32(self):
        sf = StructureFactors([[0, 0, 1], [2, -1, 0]], [1.0, 2.0])
        assert sf.table.dtype == np.float32 and sf.table.flags.c_contiguous
        assert sf.hkl_min == (0, -1, 0) and sf.table.shape == (3, 2, 2)
        with pytest.raises(ValueError):
            sf.table[0, 0, 0] = 5.0

    def test_unlisted_and_out_of_range_give_default(self):
        sf = StructureFactors([[1, 1, 1], [-1, -1, -1]], [4.0, 4.0])
        assert math.isnan(sf.amplitude(0, 0, 0))
        assert sf.amplitude(0, 0, 0, default=7.0) == 7.0
        assert sf.amplitude(50, -50, 3, default=0.0) == 0.0
        assert sf.amplitude([1, -1], [1, -1], [1, -1]).tolist() == [4.0, 4.0]

    def test_duplicate_with_same_amplitude_is_merged(self):
        sf = StructureFactors([[1, 2, 3], [1, 2, 3]], [5.0, 5.0])
        assert sf.n_reflections == 1

    def test_duplicate_with_different_amplitude_raises(self):
        with pytest.raises(ValueError, match=r"hkl \[1, 2, 3\] is listed twice"):
            StructureFactors([[1, 2, 3], [0, 0, 1], [1, 2, 3]], [5.0, 1.0, 6.0])

    @pytest.mark.parametrize(
        ("hkl", "amplitudes", "message"),
        [
            ([[1, 2]], [1.0], "hkl must have shape"),
            ([[1.5, 0, 0]], [1.0], "hkl must hold integers"),
            ([["a", "b", "c"]], [1.0], "hkl must hold integers"),
            ([[2**21, 0, 0]], [1.0], "hkl must hold integers below"),
            ([[1, 0, 0]], [float("nan")], r"amplitudes must be finite and >= 0, got nan"),
            ([[1, 0, 0]], [float("inf")], r"amplitudes must be finite and >= 0, got inf"),
            ([[1, 0, 0]], [-2.0], r"amplitudes must be finite and >= 0, got -2.0"),
            ([[1, 0, 0]], [1.0, 2.0], r"amplitudes must have shape \(1,\)"),
            (np.zeros((0, 3), int), [], "at least one reflection"),
            ([[-4000, 0, 0], [4000, 4000, 4000]], [1.0, 1.0], "dense table"),
        ],
    )
    def test_bad_input_raises(self, hkl, amplitudes, message):
        with pytest.raises(ValueError, match=message):
            StructureFactors(hkl, amplitudes)

    def test_integral_float_indices_accepted(self):
        sf = StructureFactors(np.array([[1.0, -2.0, 3.0]]), [2.5])
        assert sf.amplitude(1, -2, 3) == 2.5

    def test_amplitude_rejects_non_integer_index_and_bad_default(self):
        sf = StructureFactors([[1, 0, 0]], [1.0])
        with pytest.raises(ValueError, match="h must hold integers"):
            sf.amplitude(0.5, 0, 0)
        with pytest.raises(ValueError, match="default must be finite"):
            sf.amplitude(1, 0, 0, default=float("inf"))

    def test_cell_gives_d_min(self):
        sf = StructureFactors([[0, 0, 1], [2, 0, 0], [0, 0, 4]], [1.0, 1.0, 1.0], cell=(10, 20, 30, 90, 90, 90))
        assert sf.d_min == pytest.approx(10 / 2)
        assert StructureFactors([[0, 0, 1]], [1.0]).d_min is None

    @pytest.mark.parametrize(
        "cell", [(10, 20), (10, 20, 30, 90, 90, 200), (0, 20, 30, 90, 90, 90), (10, 20, float("nan"), 90, 90, 90)]
    )
    def test_bad_cell_raises(self, cell):
        with pytest.raises(ValueError, match="cell"):
            StructureFactors([[0, 0, 1]], [1.0], cell=cell)


class TestSymmetryExpansion:
    @pytest.mark.parametrize("space_group", [P212121, "P 31 2 1", "C 1 2 1", "P 41 21 2"])
    def test_all_mates_match_gemmi_symmetry_ops(self, tmp_path, space_group):
        sg = gemmi.SpaceGroup(space_group)
        asu = gemmi.ReciprocalAsu(sg)
        rng = np.random.default_rng(5)
        listed = {}
        for h in rng.integers(-5, 6, size=(200, 3)).tolist():
            if asu.is_in(h) and any(h) and not sg.operations().is_systematically_absent(h):
                listed[tuple(h)] = round(float(rng.random() * 50 + 1), 3)
        path = write_text(tmp_path / "asu.hkl", "".join(f"{h} {k} {l} {f}\n" for (h, k, l), f in listed.items()))
        sf = StructureFactors.from_hkl_file(path, space_group=space_group)
        expected = {}
        for h, f in listed.items():
            for op in sg.operations().sym_ops:
                mate = op.apply_to_hkl(list(h))
                expected[tuple(mate)] = f
                expected[tuple(-v for v in mate)] = f
        hkl = np.array(list(expected))
        np.testing.assert_allclose(sf.amplitude(*hkl.T), list(expected.values()), rtol=1e-6)
        assert sf.n_reflections == len(expected)
        assert sf.space_group_name == sg.xhm()

    def test_p212121_sign_flips_explicitly(self, tmp_path):
        path = write_text(tmp_path / "one.hkl", "3 5 7 12.5\n")
        sf = StructureFactors.from_hkl_file(path, space_group=P212121)
        for sh in (1, -1):
            for sk in (1, -1):
                for sl in (1, -1):
                    assert sf.amplitude(3 * sh, 5 * sk, 7 * sl) == 12.5
        assert sf.n_reflections == 8

    def test_without_space_group_only_friedel_mates_are_added(self, tmp_path):
        path = write_text(tmp_path / "p1.hkl", "1 2 3 10\n0 0 4 2\n")
        sf = StructureFactors.from_hkl_file(path)
        assert sf.amplitude(-1, -2, -3) == 10 and sf.amplitude(0, 0, -4) == 2
        assert math.isnan(sf.amplitude(-1, 2, 3))
        assert sf.n_reflections == 4

    def test_listed_anomalous_pair_is_kept(self, tmp_path):
        path = write_text(tmp_path / "anom.hkl", "1 2 3 10\n-1 -2 -3 11\n")
        sf = StructureFactors.from_hkl_file(path, space_group=P212121)
        assert sf.amplitude(1, 2, 3) == 10 and sf.amplitude(-1, -2, -3) == 11
        assert sf.amplitude(-1, 2, -3) == 10 and sf.amplitude(1, -2, 3) == 11

    def test_amplitudes_contradicting_symmetry_raise_with_lines(self, tmp_path):
        path = write_text(tmp_path / "bad.hkl", "# asu\n1 2 3 10\n\n-1 -2 3 12\n")
        with pytest.raises(ValueError, match=r"bad\.hkl:(2|4): .*equivalent in space group 'P 21 21 21'"):
            StructureFactors.from_hkl_file(path, space_group=P212121)

    @pytest.mark.parametrize("space_group", ["P 99", 19, ""])
    def test_unknown_space_group_raises(self, tmp_path, space_group):
        path = write_text(tmp_path / "a.hkl", "1 2 3 4\n")
        with pytest.raises(ValueError, match="space_group"):
            StructureFactors.from_hkl_file(path, space_group=space_group)


class TestHklFile:
    def test_round_trip(self, tmp_path):
        rng = np.random.default_rng(9)
        hkl = np.unique(rng.integers(-8, 9, size=(500, 3)), axis=0)
        hkl = hkl[hkl[:, 2] > 0]  # no Friedel pairs listed
        sf = StructureFactors(hkl, rng.random(len(hkl)) * 1e3)
        sf.to_hkl_file(tmp_path / "out.hkl")
        back = StructureFactors.from_hkl_file(tmp_path / "out.hkl")
        friedel = StructureFactors(np.vstack([hkl, -hkl]), np.r_[sf.amplitude(*hkl.T), sf.amplitude(*hkl.T)])
        # reading adds the missing Friedel mates; everything written comes back exactly
        np.testing.assert_array_equal(back.amplitude(*hkl.T), sf.amplitude(*hkl.T))
        np.testing.assert_array_equal(back.table, friedel.table)
        assert back.hkl_min == friedel.hkl_min

    def test_round_trip_of_p1_expanded_data_is_exact(self, tmp_path):
        sf = StructureFactors.from_hkl_file(write_text(tmp_path / "a.hkl", "1 2 3 1.2345678\n0 4 1 0\n"), P212121)
        sf.to_hkl_file(tmp_path / "b.hkl")
        back = StructureFactors.from_hkl_file(tmp_path / "b.hkl")
        np.testing.assert_array_equal(back.table, sf.table)
        assert back.hkl_min == sf.hkl_min

    def test_comments_and_blank_lines(self, tmp_path):
        text = "# nanoBragg hkl\n\n   1   0   0  10.5  # strong\n\t-2 3 4 7e-1\n#0 0 1 5\n"
        sf = StructureFactors.from_hkl_file(write_text(tmp_path / "c.hkl", text), cell=(50, 60, 70, 90, 90, 90))
        assert sf.amplitude(1, 0, 0) == 10.5 and sf.amplitude(-2, 3, 4) == pytest.approx(0.7)
        assert math.isnan(sf.amplitude(0, 0, 1))
        assert sf.cell == (50, 60, 70, 90, 90, 90)

    @pytest.mark.parametrize(
        ("line", "message"),
        [
            ("1 2 3", "expected 4 fields"),
            ("1 2 3 4 5", "expected 4 fields"),
            ("1 2 x 4.0", "Miller indices must be integers"),
            ("1.5 2 3 4.0", "Miller indices must be integers"),
            ("1 2 3 abc", "F must be a number"),
            ("1 2 3 nan", "F must be finite and >= 0"),
            ("1 2 3 inf", "F must be finite and >= 0"),
            ("1 2 3 -1.0", "F must be finite and >= 0"),
            ("9999999 0 0 1", "Miller index out of range"),
        ],
    )
    def test_malformed_line_names_file_and_line(self, tmp_path, line, message):
        path = write_text(tmp_path / "m.hkl", f"# header\n1 0 0 1.0\n{line}\n2 0 0 1.0\n")
        with pytest.raises(ValueError, match=rf"m\.hkl:3: {message}"):
            StructureFactors.from_hkl_file(path)

    def test_binary_garbage_names_line(self, tmp_path):
        path = tmp_path / "bin.hkl"
        path.write_bytes(b"1 0 0 1.0\n\xff\xfe\x00\x01\n")
        with pytest.raises(ValueError, match=r"bin\.hkl:2: not text"):
            StructureFactors.from_hkl_file(path)

    def test_duplicate_line_with_other_value_names_lines(self, tmp_path):
        path = write_text(tmp_path / "d.hkl", "1 2 3 4.0\n1 2 3 5.0\n")
        with pytest.raises(ValueError, match=r"d\.hkl:\d: .*d\.hkl:\d"):
            StructureFactors.from_hkl_file(path)

    def test_empty_file_raises(self, tmp_path):
        with pytest.raises(ValueError, match="no reflections"):
            StructureFactors.from_hkl_file(write_text(tmp_path / "e.hkl", "# nothing\n\n"))

    def test_missing_file_raises_file_not_found(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="nope.hkl"):
            StructureFactors.from_hkl_file(tmp_path / "nope.hkl")

    def test_bad_path_type_raises(self):
        with pytest.raises(ValueError, match="path must be a file path"):
            StructureFactors.from_hkl_file(42)


def write_mtz(path, hkl, columns, space_group=P212121, cell=(40, 50, 60, 90, 90, 90)):
    """Write an MTZ with H, K, L and float columns given as {label: (type, values)}."""
    mtz = gemmi.Mtz(with_base=True)
    mtz.spacegroup = gemmi.SpaceGroup(space_group)
    mtz.set_cell_for_all(gemmi.UnitCell(*cell))
    mtz.add_dataset("test")
    for label, (kind, _) in columns.items():
        mtz.add_column(label, kind)
    data = np.column_stack([np.asarray(hkl, float)] + [np.asarray(v, float) for _, v in columns.values()])
    mtz.set_data(data.astype(np.float32))
    mtz.write_to_file(str(path))
    return path


class TestMtz:
    def test_round_trip_with_symmetry_expansion(self, tmp_path):
        hkl = [[1, 2, 3], [0, 4, 5], [2, 0, 1]]
        path = write_mtz(tmp_path / "a.mtz", hkl, {"FP": ("F", [10, 20, 30]), "SIGFP": ("Q", [1, 1, 1])})
        sf = StructureFactors.from_mtz(path)
        ops = gemmi.SpaceGroup(P212121).operations().sym_ops
        for h, f in zip(hkl, [10, 20, 30]):
            for op in ops:
                mate = op.apply_to_hkl(h)
                assert sf.amplitude(*mate) == f and sf.amplitude(*(-v for v in mate)) == f
        assert sf.cell == (40, 50, 60, 90, 90, 90) and sf.space_group_name == P212121
        assert sf.n_reflections == 8 + 4 + 4  # (0 k l) and (h 0 l) have 4 distinct mates

    def test_missing_values_are_not_listed(self, tmp_path):
        path = write_mtz(tmp_path / "n.mtz", [[1, 2, 3], [2, 3, 4]], {"FP": ("F", [5.0, np.nan])})
        sf = StructureFactors.from_mtz(path)
        assert sf.amplitude(1, 2, 3) == 5.0 and math.isnan(sf.amplitude(2, 3, 4))

    def test_column_choice(self, tmp_path):
        cols = {"FP": ("F", [1.0]), "FC": ("F", [2.0])}
        path = write_mtz(tmp_path / "two.mtz", [[1, 2, 3]], cols)
        with pytest.raises(ValueError, match=r"amplitude columns \['FP', 'FC'\]; pass column="):
            StructureFactors.from_mtz(path)
        assert StructureFactors.from_mtz(path, column="FC").amplitude(1, 2, 3) == 2.0
        with pytest.raises(ValueError, match="column must be an amplitude column.*'FQ'"):
            StructureFactors.from_mtz(path, column="FQ")

    def test_no_amplitude_column_raises(self, tmp_path):
        path = write_mtz(tmp_path / "i.mtz", [[1, 2, 3]], {"IMEAN": ("J", [1.0])})
        with pytest.raises(ValueError, match=r"i\.mtz: has no amplitude column"):
            StructureFactors.from_mtz(path)
        with pytest.raises(ValueError, match="column must be an amplitude column"):
            StructureFactors.from_mtz(path, column="IMEAN")

    @pytest.mark.parametrize("bad", [-1.0, np.inf])
    def test_bad_amplitude_raises(self, tmp_path, bad):
        path = write_mtz(tmp_path / "b.mtz", [[1, 2, 3], [1, 1, 1]], {"FP": ("F", [1.0, bad])})
        with pytest.raises(ValueError, match=r"b\.mtz: column 'FP' has \|F\(1, 1, 1\)\|"):
            StructureFactors.from_mtz(path)

    def test_not_an_mtz_raises(self, tmp_path):
        path = write_text(tmp_path / "x.mtz", "1 2 3 4\n")
        with pytest.raises(ValueError, match=r"x\.mtz: not a readable MTZ"):
            StructureFactors.from_mtz(path)

    def test_missing_file_raises_file_not_found(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="gone.mtz"):
            StructureFactors.from_mtz(tmp_path / "gone.mtz")


MONOCLINIC = (10.0, 11.0, 12.0, 90.0, 100.0, 90.0)


class TestFromModel:
    def test_single_atom_equals_form_factor_times_debye_waller(self):
        st = one_residue_structure(MONOCLINIC, "P 1", [("C", (0.1, 0.2, 0.3), 20.0)])
        sf = StructureFactors.from_model(st, 2.0, bulk_solvent=False)
        s2 = stol2(MONOCLINIC, sf.hkl)
        coef = gemmi.Element("C").it92
        expected = np.array([coef.calculate_sf(v) for v in s2]) * np.exp(-20.0 * s2)
        np.testing.assert_allclose(sf.amplitudes, expected, rtol=0.01)
        assert sf.d_min >= 2.0 and sf.n_reflections > 500
        assert math.isnan(sf.amplitude(0, 0, 0))

    def test_two_atoms_interference(self):
        x1, x2 = np.array([0.1, 0.2, 0.3]), np.array([0.35, 0.6, 0.05])
        st = one_residue_structure(MONOCLINIC, "P 1", [("C", x1, 15.0), ("O", x2, 15.0)])
        sf = StructureFactors.from_model(st, 2.5, bulk_solvent=False)
        s2 = stol2(MONOCLINIC, sf.hkl)
        f1 = np.array([gemmi.Element("C").it92.calculate_sf(v) for v in s2])
        f2 = np.array([gemmi.Element("O").it92.calculate_sf(v) for v in s2])
        phase = 2 * np.pi * sf.hkl @ (x2 - x1)
        expected = np.sqrt(f1**2 + f2**2 + 2 * f1 * f2 * np.cos(phase)) * np.exp(-15.0 * s2)
        np.testing.assert_allclose(sf.amplitudes, expected, rtol=0.01, atol=0.01 * expected.max())

    def test_symmetry_copies_in_p212121_agree_with_gemmi_direct_summation(self):
        cell = (20.0, 24.0, 28.0, 90, 90, 90)
        st = one_residue_structure(cell, P212121, [("S", (0.1, 0.2, 0.3), 25.0), ("N", (0.3, 0.1, 0.45), 30.0)])
        sf = StructureFactors.from_model(st, 3.0, bulk_solvent=False)
        calc = gemmi.StructureFactorCalculatorX(st.cell)
        hkl = sf.hkl[::7]
        direct = np.array([abs(calc.calculate_sf_from_model(st[0], h)) for h in hkl.tolist()])
        np.testing.assert_allclose(sf.amplitude(*hkl.T), direct, rtol=0.01, atol=0.01 * direct.max())

    def test_bulk_solvent_lowers_low_resolution_amplitudes(self):
        st = sfmod.random_protein_model((40, 50, 60, 90, 90, 90), P212121, seed=1)
        vacuum = StructureFactors.from_model(st, 3.0, bulk_solvent=False)
        solvent = StructureFactors.from_model(st, 3.0)
        np.testing.assert_array_equal(vacuum.hkl, solvent.hkl)
        d = 1 / np.sqrt(4 * stol2(vacuum.cell, vacuum.hkl))
        low, high = d > 10, d < 4
        assert solvent.amplitudes[low].mean() < 0.7 * vacuum.amplitudes[low].mean()
        ratio = solvent.amplitudes[high].mean() / vacuum.amplitudes[high].mean()
        assert ratio == pytest.approx(1.0, abs=0.03)

    def test_k_sol_zero_equals_no_bulk_solvent(self):
        st = sfmod.random_protein_model((30, 30, 40, 90, 90, 90), P212121, seed=2)
        a = StructureFactors.from_model(st, 4.0, bulk_solvent=False)
        b = StructureFactors.from_model(st, 4.0, k_sol=0.0)
        np.testing.assert_allclose(a.table, b.table, rtol=1e-6)

    def test_from_pdb_file_equals_from_structure(self, tmp_path):
        st = one_residue_structure(MONOCLINIC, "P 1", [("O", (0.5, 0.2, 0.7), 18.0)])
        st.write_pdb(str(tmp_path / "m.pdb"))
        a = StructureFactors.from_model(tmp_path / "m.pdb", 3.0, bulk_solvent=False)
        b = StructureFactors.from_model(st, 3.0, bulk_solvent=False)
        np.testing.assert_allclose(a.table, b.table, rtol=1e-3)
        assert a.cell == pytest.approx(MONOCLINIC) and a.space_group_name == "P 1"

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"d_min_A": 0.0}, "d_min_A must be > 0"),
            ({"d_min_A": float("nan")}, "d_min_A must be finite"),
            ({"d_min_A": 0.01}, "d_min_A=0.01 needs a table"),
            ({"d_min_A": 2.0, "k_sol": -0.1}, "k_sol must be >= 0"),
            ({"d_min_A": 2.0, "b_sol_A2": float("inf")}, "b_sol_A2 must be finite"),
            ({"d_min_A": 2.0, "bulk_solvent": "yes"}, "bulk_solvent must be True or False"),
        ],
    )
    def test_bad_parameters_raise(self, kwargs, message):
        st = one_residue_structure(MONOCLINIC, "P 1", [("C", (0.1, 0.2, 0.3), 20.0)])
        with pytest.raises(ValueError, match=message):
            StructureFactors.from_model(st, **kwargs)

    def test_bad_models_raise(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="absent.pdb"):
            StructureFactors.from_model(tmp_path / "absent.pdb", 2.0)
        no_cell = one_residue_structure(MONOCLINIC, "P 1", [("C", (0.1, 0.2, 0.3), 20.0)])
        no_cell.cell = gemmi.UnitCell()
        with pytest.raises(ValueError, match="no crystal unit cell"):
            StructureFactors.from_model(no_cell, 2.0)
        negative_b = one_residue_structure(MONOCLINIC, "P 1", [("C", (0.1, 0.2, 0.3), -5.0)])
        with pytest.raises(ValueError, match="need finite coordinates, B >= 0"):
            StructureFactors.from_model(negative_b, 2.0)
        empty = write_text(tmp_path / "empty.pdb", "CRYST1   10.000   11.000   12.000  90.00  90.00  90.00 P 1\nEND\n")
        with pytest.raises(ValueError, match=r"empty\.pdb: model has no atoms"):
            StructureFactors.from_model(empty, 2.0)


class TestRandomProteinModel:
    def test_composition_solvent_and_b_factors(self):
        st = sfmod.random_protein_model((60, 70, 80, 90, 90, 90), P212121, seed=4)
        counts = element_counts(st)
        total = sum(counts.values())
        assert counts["C"] / total == pytest.approx(0.62, abs=0.03)
        assert counts["S"] > 0
        expected = protein.PROTEIN_ATOMS_PER_A3 * 0.5 * 60 * 70 * 80
        assert total == pytest.approx(expected, rel=0.01)
        b = np.array([cra.atom.b_iso for cra in st[0].all()])
        assert 30 <= np.median(b) <= 60 and b.min() > 15 and b.max() < 75
        mask = gemmi.FloatGrid()
        mask.setup_from(st, spacing=1.0)
        gemmi.SolventMasker(gemmi.AtomicRadiiSet.Cctbx).put_mask_on_float_grid(mask, st[0])
        assert np.array(mask).mean() == pytest.approx(0.5, abs=0.1)

    def test_wilson_statistics(self):
        st = sfmod.random_protein_model((60, 70, 80, 90, 90, 90), P212121, seed=4)
        sf = StructureFactors.from_model(st, 2.5)
        b_wilson, residual = wilson_b(sf, element_counts(st), 4.5, 2.5)
        assert 25 <= b_wilson <= 60
        assert residual < 0.2

    def test_same_seed_same_model_other_seed_differs(self):
        a = sfmod.random_protein_model((30, 30, 40, 90, 90, 90), P212121, seed=7)
        b = sfmod.random_protein_model((30, 30, 40, 90, 90, 90), P212121, seed=7)
        c = sfmod.random_protein_model((30, 30, 40, 90, 90, 90), P212121, seed=8)
        pos = [np.array([cra.atom.pos.tolist() for cra in s[0].all()]) for s in (a, b, c)]
        np.testing.assert_array_equal(pos[0], pos[1])
        assert pos[0].shape != pos[2].shape or not np.array_equal(pos[0], pos[2])


@pytest.fixture(scope="module")
def default_8A(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return StructureFactors.default_protein(8.0, cache_dir=cache), cache


class TestDefaultProtein:
    def test_psii_cell_and_symmetry(self, default_8A):
        sf, _ = default_8A
        assert sf.cell == (117.0, 223.0, 310.0, 90.0, 90.0, 90.0)
        assert sf.space_group_name == P212121
        assert sf.d_min == pytest.approx(8.0, abs=0.05)
        hkl = sf.hkl[::97]
        f = sf.amplitude(*hkl.T)
        for signs in ([-1, 1, 1], [1, -1, 1], [1, 1, -1], [-1, -1, -1]):
            np.testing.assert_allclose(sf.amplitude(*(hkl * signs).T), f, rtol=1e-4, atol=1e-6 * f.max())
        assert sf.n_reflections == len(gemmi.make_miller_array(gemmi.UnitCell(*sf.cell), gemmi.SpaceGroup("P 1"), 8.0, unique=False))

    def test_reproducible_from_seed_in_another_cache(self, default_8A, tmp_path):
        sf, _ = default_8A
        again = StructureFactors.default_protein(8.0, cache_dir=tmp_path)
        np.testing.assert_array_equal(again.table, sf.table)
        assert again.hkl_min == sf.hkl_min
        other = StructureFactors.default_protein(8.0, seed=1, cache_dir=tmp_path)
        assert not np.array_equal(other.table, sf.table, equal_nan=True)

    def test_second_call_loads_cache(self, default_8A, monkeypatch):
        sf, cache = default_8A

        def no_build(*args, **kwargs):
            raise AssertionError("the cached table should have been loaded")

        monkeypatch.setattr(amplitudes, "random_protein_model", no_build)
        monkeypatch.setattr(amplitudes, "fcalc_p1", no_build)
        loaded = StructureFactors.default_protein(8.0, cache_dir=cache)
        np.testing.assert_array_equal(loaded.table, sf.table)
        assert loaded.cell == sf.cell and loaded.space_group_name == P212121
        # read once per process: the 38 MB table of the default resolution is not read again per shot
        assert StructureFactors.default_protein(8.0, cache_dir=cache) is loaded
        monkeypatch.setenv("DIFFRANET_CACHE", str(cache))
        np.testing.assert_array_equal(StructureFactors.default_protein(8.0).table, sf.table)

    def test_cache_file_is_written_atomically_and_only_once(self, default_8A):
        _, cache = default_8A
        names = sorted(p.name for p in cache.iterdir())
        assert names == [f"default_protein-v{sfmod.DEFAULT_PROTEIN_VERSION}-gemmi{gemmi.__version__}-d8.0A-seed0.npz"]

    def test_corrupt_cache_is_rebuilt(self, default_8A, tmp_path):
        sf, cache = default_8A
        (tmp_path / next(cache.iterdir()).name).write_bytes(b"not an npz")
        rebuilt = StructureFactors.default_protein(8.0, cache_dir=tmp_path)
        np.testing.assert_array_equal(rebuilt.table, sf.table)

    def test_low_resolution_is_weakened_by_solvent(self, default_8A):
        sf, _ = default_8A
        d = 1 / np.sqrt(4 * stol2(sf.cell, sf.hkl))
        assert np.isfinite(sf.amplitudes).all() and sf.amplitudes.min() >= 0
        assert np.mean(sf.amplitudes[d > 30] ** 2) < 20 * np.mean(sf.amplitudes[d < 10] ** 2)

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"d_min_A": -1.0}, "d_min_A must be > 0"),
            ({"d_min_A": float("inf")}, "d_min_A must be finite"),
            ({"d_min_A": 0.2}, "needs a table"),
            ({"seed": -1}, "seed must be >= 0"),
            ({"seed": 1.5}, "seed must be an integer"),
            ({"cache_dir": 5}, "cache_dir must be a directory path"),
        ],
    )
    def test_bad_parameters_raise(self, kwargs, message, tmp_path):
        kwargs.setdefault("cache_dir", tmp_path)
        with pytest.raises(ValueError, match=message):
            StructureFactors.default_protein(**kwargs)

    @pytest.mark.slow
    def test_default_resolution_wilson_and_cache(self, tmp_path):
        sf = StructureFactors.default_protein(cache_dir=tmp_path)
        loaded = StructureFactors.default_protein(cache_dir=tmp_path)
        np.testing.assert_array_equal(loaded.table, sf.table)
        assert sf.d_min == pytest.approx(1.9, abs=0.01)
        st = sfmod.random_protein_model(seed=0)
        b_wilson, residual = wilson_b(sf, element_counts(st), 4.0, 1.9)
        assert 30 <= b_wilson <= 60
        assert residual < 0.25


class TestSource:
    def test_hkl_file_source_rebuilds(self, tmp_path):
        path = tmp_path / "f.hkl"
        path.write_text("1 2 3 10.0\n0 0 1 5.0\n")
        sf = StructureFactors.from_hkl_file(path)
        again = StructureFactors.from_source(sf.source)
        np.testing.assert_array_equal(again.table, sf.table)
        assert sf.source["kind"] == "hkl"

    def test_arrays_cannot_be_rebuilt(self):
        sf = StructureFactors(np.array([[1, 0, 0]]), [3.0])
        assert sf.source == {"kind": "arrays"}
        with pytest.raises(ValueError, match="cannot be rebuilt"):
            StructureFactors.from_source(sf.source)

    def test_bad_source(self):
        with pytest.raises(ValueError, match="kind"):
            StructureFactors.from_source({"path": "x"})
