"""Tests for diffranet.simulation.orientation: cells, reference setting, orientations, nanoBragg conversions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from diffranet.simulation.orientation import (
    check_cell,
    misset_to_rotation,
    orientation_from_reciprocal_basis,
    random_orientation,
    random_orientations,
    read_nanobragg_matrix,
    real_space_basis,
    reciprocal_basis,
    rotation_to_misset,
    write_nanobragg_matrix,
)

CELLS = {
    "cubic": (50.0, 50.0, 50.0, 90.0, 90.0, 90.0),
    "orthorhombic": (40.0, 60.0, 90.0, 90.0, 90.0, 90.0),
    "hexagonal": (70.0, 70.0, 120.0, 90.0, 90.0, 120.0),
    "monoclinic": (50.0, 60.0, 70.0, 90.0, 110.0, 90.0),
    "triclinic": (30.0, 40.0, 50.0, 70.0, 80.0, 100.0),
    "rhombohedral": (40.0, 40.0, 40.0, 60.0, 60.0, 60.0),
}


def analytic_volume(cell):
    a, b, c, al, be, ga = cell
    ca, cb, cg = np.cos(np.radians([al, be, ga]))
    return a * b * c * math.sqrt(1 - ca**2 - cb**2 - cg**2 + 2 * ca * cb * cg)


def textbook_rx(deg):
    t = math.radians(deg)
    return np.array([[1, 0, 0], [0, math.cos(t), -math.sin(t)], [0, math.sin(t), math.cos(t)]])


def textbook_ry(deg):
    t = math.radians(deg)
    return np.array([[math.cos(t), 0, math.sin(t)], [0, 1, 0], [-math.sin(t), 0, math.cos(t)]])


def textbook_rz(deg):
    t = math.radians(deg)
    return np.array([[math.cos(t), -math.sin(t), 0], [math.sin(t), math.cos(t), 0], [0, 0, 1]])


def assert_proper_rotation(U):
    assert U.shape == (3, 3)
    np.testing.assert_allclose(U @ U.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(U) == pytest.approx(1.0, abs=1e-12)


class TestCheckCell:
    def test_returns_six_floats(self):
        assert check_cell([78, 78, 37, 90, 90, 90]) == (78.0, 78.0, 37.0, 90.0, 90.0, 90.0)
        assert all(type(x) is float for x in check_cell(np.array(CELLS["triclinic"])))

    @pytest.mark.parametrize(
        "cell, reason",
        [
            ((50, 50, 50, 90, 90, 200), "gamma=200.0 must lie in"),
            ((50, 50, 50, 10, 10, 170), "smaller than the sum"),
            ((-50, 50, 50, 90, 90, 90), "length a=-50.0"),
            ((50, 0, 50, 90, 90, 90), "length b=0.0"),
            ((50, 50, float("nan"), 90, 90, 90), "c must be finite"),
            ((50, 50, 50, 0, 90, 90), "alpha=0.0 must lie in"),
            ((50, 50, 50, 120, 120, 120), "must be < 360"),
            ((50, 50, 50, 90, 90), "got 5 values"),
            ((50, 50, 50, 90, 90, "x"), "gamma must be a real number"),
            ((50, 50, 50, 90, 90, True), "gamma must be a real number"),
            (50.0, "must be 6 numbers"),
        ],
    )
    def test_invalid_cells_raise(self, cell, reason):
        with pytest.raises(ValueError, match="cell") as info:
            check_cell(cell)
        assert reason in str(info.value)

    def test_zero_volume_triangle_equality_rejected(self):
        with pytest.raises(ValueError, match="smaller than the sum"):
            check_cell((50, 50, 50, 60, 60, 120))


class TestReciprocalBasis:
    @pytest.mark.parametrize("name", sorted(CELLS))
    def test_dual_basis_and_volume(self, name):
        cell = CELLS[name]
        B = reciprocal_basis(cell)
        real = real_space_basis(cell)
        np.testing.assert_allclose(real @ B, np.eye(3), atol=1e-13)
        np.testing.assert_allclose(B @ real, np.eye(3), atol=1e-13)
        assert np.linalg.det(real) == pytest.approx(analytic_volume(cell), rel=1e-12)
        assert np.linalg.det(B) == pytest.approx(1.0 / analytic_volume(cell), rel=1e-12)

    @pytest.mark.parametrize("name", sorted(CELLS))
    def test_real_space_rows_reproduce_cell(self, name):
        cell = CELLS[name]
        a, b, c = real_space_basis(cell)
        lengths = [np.linalg.norm(v) for v in (a, b, c)]
        angles = [
            math.degrees(math.acos(np.dot(u, v) / np.linalg.norm(u) / np.linalg.norm(v)))
            for u, v in ((b, c), (a, c), (a, b))
        ]
        np.testing.assert_allclose(lengths + angles, cell, rtol=1e-12)

    @pytest.mark.parametrize("name", sorted(CELLS))
    def test_reference_setting_alignment(self, name):
        cell = CELLS[name]
        B = reciprocal_basis(cell)
        # a* along +x, b* in the x-y plane with b*_y > 0, c*_z > 0
        assert B[1, 0] == 0.0 and B[2, 0] == 0.0 and B[2, 1] == 0.0
        assert B[0, 0] > 0 and B[1, 1] > 0 and B[2, 2] > 0
        assert B[2, 2] == pytest.approx(1.0 / cell[2], rel=1e-15)
        # hence real-space c along +z and b in the y-z plane (both normal to a*)
        real = real_space_basis(cell)
        np.testing.assert_allclose(real[2], [0.0, 0.0, cell[2]], atol=1e-12)
        assert abs(real[1, 0]) < 1e-12 and real[1, 1] > 0

    def test_orthorhombic_hand_values(self):
        B = reciprocal_basis((40.0, 50.0, 80.0, 90.0, 90.0, 90.0))
        np.testing.assert_allclose(B, np.diag([1 / 40, 1 / 50, 1 / 80]), atol=1e-17)

    def test_hexagonal_hand_values(self):
        a = 70.0
        B = reciprocal_basis((a, a, 120.0, 90.0, 90.0, 120.0))
        # |a*| = |b*| = 2 / (a sqrt 3), angle(a*, b*) = 60 degrees
        star = 2.0 / (a * math.sqrt(3.0))
        np.testing.assert_allclose(B[:, 0], [star, 0, 0], atol=1e-15)
        np.testing.assert_allclose(B[:, 1], [star / 2, star * math.sqrt(3) / 2, 0], atol=1e-15)

    @pytest.mark.parametrize("name", ["cubic", "orthorhombic", "hexagonal", "monoclinic"])
    def test_equals_nanobragg_cell_construction_with_two_right_angles(self, name):
        # nanoBragg -cell sets c*_z = |c*| V / (a b c sin(gamma*)); equal to 1/c here
        cell = CELLS[name]
        assert reciprocal_basis(cell)[2, 2] == pytest.approx(_nanobragg_c_star_z(cell), rel=1e-12)

    @pytest.mark.parametrize("name", ["triclinic", "rhombohedral"])
    def test_differs_from_nanobragg_cell_construction_otherwise(self, name):
        cell = CELLS[name]
        assert abs(reciprocal_basis(cell)[2, 2] / _nanobragg_c_star_z(cell) - 1) > 1e-3

    def test_invalid_cell_raises(self):
        with pytest.raises(ValueError, match="invalid cell"):
            reciprocal_basis((50, 50, 50, 90, 90, 200))


def _nanobragg_c_star_z(cell):
    a, b, c, al, be, ga = cell
    volume = analytic_volume(cell)
    c_star = a * b * math.sin(math.radians(ga)) / volume
    sin_gamma_star = volume / (a * b * c * math.sin(math.radians(al)) * math.sin(math.radians(be)))
    return c_star * volume / (a * b * c * sin_gamma_star)


class TestRealSpaceBasis:
    def test_rotation_acts_on_rows(self):
        cell = CELLS["triclinic"]
        U = misset_to_rotation(12, -34, 56)
        rotated = real_space_basis(cell, U)
        np.testing.assert_allclose(rotated, real_space_basis(cell) @ U.T, atol=1e-12)
        np.testing.assert_allclose(rotated @ (U @ reciprocal_basis(cell)), np.eye(3), atol=1e-13)

    def test_miller_indices_of_a_lattice_point(self):
        cell = CELLS["monoclinic"]
        U = random_orientation(5)
        S = U @ reciprocal_basis(cell) @ np.array([3.0, -2.0, 7.0])
        np.testing.assert_allclose(real_space_basis(cell, U) @ S, [3.0, -2.0, 7.0], atol=1e-12)

    @pytest.mark.parametrize("U", [np.diag([1.0, 1.0, -1.0]), np.ones((3, 3)), np.eye(2)])
    def test_invalid_rotation_raises(self, U):
        with pytest.raises(ValueError, match="U must be"):
            real_space_basis(CELLS["cubic"], U)


class TestRandomOrientation:
    def test_proper_rotation(self):
        for seed in range(20):
            assert_proper_rotation(random_orientation(seed))

    def test_reproducible_by_seed(self):
        np.testing.assert_array_equal(random_orientation(42), random_orientation(42))
        assert not np.allclose(random_orientation(42), random_orientation(43))

    def test_first_of_batch_equals_single(self):
        batch = random_orientations(5, 11)
        np.testing.assert_array_equal(batch[0], random_orientation(11))
        np.testing.assert_array_equal(random_orientations(3, 11), batch[:3])

    def test_rotated_axis_is_isotropic_over_seeds(self):
        x = np.array([random_orientation(seed)[:, 0] for seed in range(4000)])
        # each component: mean 0 (sd 0.009 for 4000 draws) and mean square 1/3
        np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=0.04)
        np.testing.assert_allclose((x**2).mean(axis=0), 1.0 / 3.0, atol=0.03)

    def test_haar_rotation_angle_distribution(self):
        Us = random_orientations(20000, seed=2024)
        cos_w = np.clip((np.trace(Us, axis1=1, axis2=2) - 1.0) / 2.0, -1.0, 1.0)
        angles = np.arccos(cos_w)
        # density (1 - cos w) / pi on [0, pi] has CDF (w - sin w) / pi
        result = stats.kstest(angles, lambda w: (w - np.sin(w)) / np.pi)
        assert result.pvalue > 1e-3
        # E[R] = 0 under the Haar measure
        np.testing.assert_allclose(Us.mean(axis=0), 0.0, atol=0.03)

    def test_batch_shapes_and_rotations(self):
        Us = random_orientations(50, seed=1)
        assert Us.shape == (50, 3, 3)
        np.testing.assert_allclose(Us @ np.transpose(Us, (0, 2, 1)), np.broadcast_to(np.eye(3), (50, 3, 3)), atol=1e-12)
        np.testing.assert_allclose(np.linalg.det(Us), 1.0, atol=1e-12)
        assert random_orientations(0, seed=1).shape == (0, 3, 3)

    @pytest.mark.parametrize("seed", [-1, 1.5, "7", None, 2**63])
    def test_invalid_seed_raises(self, seed):
        with pytest.raises(ValueError, match="seed"):
            random_orientation(seed)

    @pytest.mark.parametrize("n", [-1, 2.0])
    def test_invalid_count_raises(self, n):
        with pytest.raises(ValueError, match="n must be"):
            random_orientations(n, seed=0)


class TestMissetToRotation:
    @pytest.mark.parametrize("angle", [-150.0, -30.0, 10.0, 90.0, 179.0])
    def test_single_axes_are_textbook_rotations(self, angle):
        np.testing.assert_allclose(misset_to_rotation(angle, 0, 0), textbook_rx(angle), atol=1e-15)
        np.testing.assert_allclose(misset_to_rotation(0, angle, 0), textbook_ry(angle), atol=1e-15)
        np.testing.assert_allclose(misset_to_rotation(0, 0, angle), textbook_rz(angle), atol=1e-15)

    def test_right_handed_sign(self):
        # +90 about x takes y to z, about y takes z to x, about z takes x to y
        np.testing.assert_allclose(misset_to_rotation(90, 0, 0) @ [0, 1, 0], [0, 0, 1], atol=1e-15)
        np.testing.assert_allclose(misset_to_rotation(0, 90, 0) @ [0, 0, 1], [1, 0, 0], atol=1e-15)
        np.testing.assert_allclose(misset_to_rotation(0, 0, 90) @ [1, 0, 0], [0, 1, 0], atol=1e-15)

    def test_order_x_then_y_then_z(self):
        v = np.array([0.3, -1.2, 0.7])
        stepwise = textbook_rz(30) @ (textbook_ry(20) @ (textbook_rx(10) @ v))
        np.testing.assert_allclose(misset_to_rotation(10, 20, 30) @ v, stepwise, atol=1e-14)
        assert not np.allclose(misset_to_rotation(10, 20, 30), textbook_rx(10) @ textbook_ry(20) @ textbook_rz(30))

    def test_applied_to_reciprocal_basis(self):
        cell = CELLS["orthorhombic"]
        U = misset_to_rotation(0, 0, 90)
        # a* (along x) turns to +y, b* (along y) to -x
        A = U @ reciprocal_basis(cell)
        np.testing.assert_allclose(A[:, 0], [0, 1 / 40, 0], atol=1e-17)
        np.testing.assert_allclose(A[:, 1], [-1 / 60, 0, 0], atol=1e-17)

    @pytest.mark.parametrize("bad", [float("nan"), float("inf"), "10", None])
    def test_invalid_angle_raises(self, bad):
        with pytest.raises(ValueError, match="roty_deg"):
            misset_to_rotation(0, bad, 0)


class TestRotationToMisset:
    def test_round_trip_from_angles(self):
        rng = np.random.default_rng(0)
        for _ in range(200):
            angles = (rng.uniform(-180, 180), rng.uniform(-89.9, 89.9), rng.uniform(-180, 180))
            np.testing.assert_allclose(rotation_to_misset(misset_to_rotation(*angles)), angles, atol=1e-9)

    def test_round_trip_from_rotation(self):
        for U in random_orientations(200, seed=3):
            np.testing.assert_allclose(misset_to_rotation(*rotation_to_misset(U)), U, atol=1e-13)

    def test_ranges(self):
        for U in random_orientations(200, seed=4):
            rotx, roty, rotz = rotation_to_misset(U)
            assert -180 < rotx <= 180 and -90 <= roty <= 90 and -180 < rotz <= 180
        assert rotation_to_misset(misset_to_rotation(180, 0, 180)) == pytest.approx((180.0, 0.0, 180.0))

    def test_matches_nanobragg_umat2misset_away_from_gimbal_lock(self):
        for U in random_orientations(50, seed=5):
            expected = (
                math.degrees(math.atan2(U[2, 1], U[2, 2])),
                math.degrees(math.atan2(-U[2, 0], math.hypot(U[2, 1], U[2, 2]))),
                math.degrees(math.atan2(U[1, 0], U[0, 0])),
            )
            np.testing.assert_allclose(rotation_to_misset(U), expected, atol=1e-9)

    @pytest.mark.parametrize("roty, combined", [(90.0, -20.0), (-90.0, 40.0)])
    def test_gimbal_lock(self, roty, combined):
        U = misset_to_rotation(10, roty, 30)
        rotx, got_roty, rotz = rotation_to_misset(U)
        assert (rotx, got_roty, rotz) == pytest.approx((combined, roty, 0.0), abs=1e-9)
        np.testing.assert_allclose(misset_to_rotation(rotx, got_roty, rotz), U, atol=1e-14)

    def test_near_gimbal_lock_reconstructs(self):
        for roty in (90 - 1e-7, -90 + 1e-9, 89.999):
            U = misset_to_rotation(-70, roty, 25)
            np.testing.assert_allclose(misset_to_rotation(*rotation_to_misset(U)), U, atol=1e-13)

    def test_invalid_rotation_raises(self):
        with pytest.raises(ValueError, match="U must be a proper rotation"):
            rotation_to_misset(-np.eye(3))


class TestOrientationFromReciprocalBasis:
    @pytest.mark.parametrize("name", sorted(CELLS))
    def test_recovers_orientation_and_cell(self, name):
        U0 = random_orientation(8)
        U, cell = orientation_from_reciprocal_basis(U0 @ reciprocal_basis(CELLS[name]))
        assert_proper_rotation(U)
        np.testing.assert_allclose(U, U0, atol=1e-12)
        np.testing.assert_allclose(cell, CELLS[name], rtol=1e-11)

    @pytest.mark.parametrize(
        "matrix",
        [np.diag([0.02, 0.02, -0.02]), np.zeros((3, 3)), np.full((3, 3), np.nan), np.eye(2)],
    )
    def test_invalid_raises(self, matrix):
        with pytest.raises(ValueError, match="reciprocal must be"):
            orientation_from_reciprocal_basis(matrix)


class TestNanobraggMatrixFile:
    def test_round_trip(self, tmp_path):
        path = tmp_path / "A.mat"
        cell = CELLS["triclinic"]
        U0 = random_orientation(9)
        write_nanobragg_matrix(path, U0, cell, wavelength_A=1.3)
        U, got_cell = read_nanobragg_matrix(path, wavelength_A=1.3, cell=cell)
        np.testing.assert_allclose(U, U0, atol=1e-13)
        np.testing.assert_allclose(got_cell, cell, rtol=1e-12)

    def test_first_nine_numbers_are_exact_a_matrix(self, tmp_path):
        path = tmp_path / "A.mat"
        cell, U, wavelength = CELLS["monoclinic"], random_orientation(10), 0.9792
        write_nanobragg_matrix(str(path), U, cell, wavelength)
        numbers = [float(t) for t in path.read_text().split()[:9]]
        np.testing.assert_array_equal(np.reshape(numbers, (3, 3)), wavelength * (U @ reciprocal_basis(cell)))
        assert len(path.read_text().splitlines()) == 9

    def test_rows_are_lab_axes_columns_are_reciprocal_vectors(self, tmp_path):
        # a* along +y, b* along -x, c* along +z: the cell turned by +90 degrees about z
        path = tmp_path / "rot.mat"
        wavelength = 2.0
        path.write_text(
            f"0 {-wavelength / 60} 0\n{wavelength / 40} 0 0\n0 0 {wavelength / 90}\n"
        )
        U, cell = read_nanobragg_matrix(path, wavelength)
        np.testing.assert_allclose(cell, (40, 60, 90, 90, 90, 90), rtol=1e-12)
        np.testing.assert_allclose(rotation_to_misset(U), (0, 0, 90), atol=1e-9)

    def test_reads_mosflm_layout(self, tmp_path):
        # 8-decimal A matrix (lambda = 1 A) followed by MOSFLM's extra lines
        path = tmp_path / "mosflm.mat"
        cell = (78.0, 78.0, 37.0, 90.0, 90.0, 90.0)
        U0 = misset_to_rotation(20, 30, 40)
        amat = U0 @ reciprocal_basis(cell)
        lines = ["".join(f"{v:12.8f}" for v in row) for row in amat]
        lines += ["       0.000       0.000       0.000"]
        lines += ["".join(f"{v:12.7f}" for v in row) for row in U0]
        lines += ["".join(f"{v:12.4f}" for v in cell), "       0.000       0.000       0.000"]
        path.write_text("\n".join(lines) + "\n")
        U, got_cell = read_nanobragg_matrix(path, 1.0, cell=cell)
        np.testing.assert_allclose(rotation_to_misset(U), (20, 30, 40), atol=1e-3)
        np.testing.assert_allclose(got_cell, cell, rtol=1e-5)

    def test_wavelength_scales_the_cell(self, tmp_path):
        path = tmp_path / "A.mat"
        write_nanobragg_matrix(path, np.eye(3), CELLS["cubic"], 1.0)
        _, cell = read_nanobragg_matrix(path, 2.0)
        np.testing.assert_allclose(cell[:3], [100.0, 100.0, 100.0], rtol=1e-12)
        with pytest.raises(ValueError, match="A.mat.*expected"):
            read_nanobragg_matrix(path, 2.0, cell=CELLS["cubic"])

    @pytest.mark.parametrize(
        "content, reason",
        [
            ("", "found 0 values"),
            ("0.01 0 0\n0 0.01 0\n0 0\n", "found 8 values"),
            ("0.01 0 0\n0 0.01 x\n0 0 0.01\n", "'x' is not a number"),
            ("0.01 0 0\n0 0.01 0\n0 0 nan\n", "'nan' is not finite"),
            ("0.01 0 0\n0 0.01 0\n0 0 0\n", "not hold a valid orientation"),
            ("0.01 0 0\n0 0.01 0\n0 0 -0.01\n", "not hold a valid orientation"),
        ],
    )
    def test_malformed_file_raises(self, tmp_path, content, reason):
        path = tmp_path / "bad.mat"
        path.write_text(content)
        with pytest.raises(ValueError, match="bad.mat") as info:
            read_nanobragg_matrix(path, 1.0)
        assert reason in str(info.value)

    def test_missing_file_raises(self, tmp_path):
        with pytest.raises(ValueError, match="cannot read nanoBragg matrix file .*missing.mat"):
            read_nanobragg_matrix(tmp_path / "missing.mat", 1.0)

    def test_binary_file_raises(self, tmp_path):
        path = tmp_path / "binary.mat"
        path.write_bytes(b"\xff\xfe\x00\x81" * 8)
        with pytest.raises(ValueError, match="binary.mat"):
            read_nanobragg_matrix(path, 1.0)

    @pytest.mark.parametrize("wavelength", [0.0, -1.0, float("nan"), "1"])
    def test_invalid_wavelength_raises(self, tmp_path, wavelength):
        with pytest.raises(ValueError, match="wavelength_A"):
            read_nanobragg_matrix(tmp_path / "A.mat", wavelength)
        with pytest.raises(ValueError, match="wavelength_A"):
            write_nanobragg_matrix(tmp_path / "A.mat", np.eye(3), CELLS["cubic"], wavelength)

    def test_write_validates_rotation_and_cell(self, tmp_path):
        with pytest.raises(ValueError, match="U must be"):
            write_nanobragg_matrix(tmp_path / "A.mat", 2 * np.eye(3), CELLS["cubic"], 1.0)
        with pytest.raises(ValueError, match="invalid cell"):
            write_nanobragg_matrix(tmp_path / "A.mat", np.eye(3), (50, 50, 50, 10, 10, 170), 1.0)
        assert not (tmp_path / "A.mat").exists()
