"""Physics of the Bragg renderers, checked against a slow numpy reference and
against analytic expectations (Laue positions, scaling laws, integrated
intensities, thread-count invariance)."""

import math
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage

from bragg_reference import bragg_reference
from diffranet import Beam, Crystal, Detector, Simulator, StructureFactors, random_orientation
from diffranet.simulation.orientation import misset_to_rotation


def small_simulator(shape="tophat", oversample=2, **crystal_kw):
    det = Detector(shape=(32, 40), pixel_size_mm=0.5, distance_mm=50.0, beam_center_mm=(9.0, 7.0),
                   rotation_deg=(3.0, -4.0, 2.0))
    beam = Beam(1.2, fluence_photons_per_m2=1e24, dispersion=0.02, dispersion_steps=2, divergence_mrad=1.0,
                divergence_steps=2, polarization_fraction=0.9)
    kw = dict(ncells=(3, 4, 5), mosaic_domains=4, mosaic_spread_deg=2.0, spot_shape=shape,
              orientation=random_orientation(3))
    kw.update(crystal_kw)
    xtal = Crystal((30, 40, 50, 80, 95, 105), **kw)
    return Simulator(det, beam, xtal, oversample=oversample)


class TestAgainstReference:
    @pytest.mark.parametrize("shape", ["tophat", "sinc", "gauss", "round"])
    def test_matches_numpy_reference(self, shape):
        # triclinic cell, rotated detector, oversampling, dispersion, divergence,
        # polarisation and mosaicity all at once
        sim = small_simulator(shape)
        image = sim.bragg(seed=1)
        reference = bragg_reference(sim, seed=1)
        assert image.dtype == np.float32 and image.shape == (32, 40)
        assert reference.max() > 0 and np.count_nonzero(reference) > 20
        assert np.abs(image - reference).max() <= 1e-5 * reference.max()

    @pytest.mark.parametrize("method", ["reflection", "pixel"])
    def test_nanobragg_tophat_volume(self, method):
        # nanoBragg's tophat: F_latt = Na Nb Nc inside the sphere, with the volume scale on top
        sim = small_simulator("tophat", tophat_volume="nanobragg", volume_scale=3.0)
        image = sim.bragg(seed=1, method=method)
        reference = bragg_reference(sim, seed=1)
        assert reference.max() > 0 and np.count_nonzero(reference) > 20
        assert np.abs(image - reference).max() <= 1e-5 * reference.max()
        # the spots are the same, 4/3 pi 0.63^3 = 1.0474 times brighter than the default's
        default = small_simulator("tophat", volume_scale=3.0).bragg(seed=1, method=method)
        np.testing.assert_allclose(image, default * (4 / 3 * np.pi * 0.63**3), rtol=1e-6, atol=1e-6 * image.max())

    def test_tophat_volume_ignored_for_other_shapes(self):
        gauss = small_simulator("gauss", tophat_volume="nanobragg").bragg(seed=1)
        np.testing.assert_array_equal(gauss, small_simulator("gauss").bragg(seed=1))

    @pytest.mark.parametrize("shape", ["tophat", "gauss"])
    def test_reflection_renderer_equals_pixel_loop(self, shape):
        sim = small_simulator(shape, oversample=3, mosaic_domains=7)
        fast = sim.bragg(seed=2, method="reflection")
        slow = sim.bragg(seed=2, method="pixel")
        assert np.count_nonzero(slow) > 20
        np.testing.assert_allclose(fast, slow, rtol=1e-6, atol=1e-6 * slow.max())

    @pytest.mark.parametrize("shape", ["tophat", "gauss"])
    def test_reflection_renderer_equals_pixel_loop_for_wide_spots(self, shape):
        # one cell along a: spots reach past half a reciprocal cell, so each
        # subpixel must count for its nearest reflection only
        sim = small_simulator(shape, oversample=2, ncells=(1, 2, 3), mosaic_domains=3)
        fast = sim.bragg(seed=4, method="reflection")
        slow = sim.bragg(seed=4, method="pixel")
        assert np.count_nonzero(slow) > 200
        np.testing.assert_allclose(fast, slow, rtol=1e-6, atol=1e-6 * slow.max())

    def test_structure_factor_table_used(self):
        hkl = np.array([[h, k, l] for h in range(-3, 4) for k in range(-3, 4) for l in range(-3, 4)])
        rng = np.random.default_rng(0)
        sf = StructureFactors(hkl, rng.uniform(10, 200, len(hkl)))
        sim = small_simulator("tophat", structure_factors=sf, default_F=5.0)
        image = sim.bragg(seed=0)
        reference = bragg_reference(sim, seed=0)
        assert np.abs(image - reference).max() <= 1e-5 * reference.max()


def laue_spot_positions(sim):
    """Detector (row, col) of every reflection whose G lies on the Ewald sphere
    (within the spot size) for a single, unrotated domain: the Laue condition
    k_out = k_in + G with |k_out| = |k_in|."""
    det, beam, xtal = sim.detector, sim.beam, sim.crystal
    k_in = np.array([1.0, 0.0, 0.0]) / beam.wavelength_A
    recip = np.linalg.inv(xtal.real_basis_A)
    idx = np.arange(-12, 13)
    hkl = np.stack(np.meshgrid(idx, idx, idx, indexing="ij"), -1).reshape(-1, 3)
    g = hkl @ recip.T
    k_out = g + k_in
    tolerance = 0.05 / (np.array(xtal.ncells).min() * min(xtal.cell[:3]))
    on_sphere = np.abs(np.linalg.norm(k_out, axis=1) - 1 / beam.wavelength_A) < tolerance
    spots = []
    for k in k_out[on_sphere]:
        cos_n = k @ det.normal
        if cos_n <= 0:
            continue
        hit = k / np.linalg.norm(k) * (det.origin_mm @ det.normal) / (k / np.linalg.norm(k) @ det.normal)
        rel = hit - det.origin_mm
        col = rel @ det.fast_axis / det.pixel_size_mm - 0.5
        row = rel @ det.slow_axis / det.pixel_size_mm - 0.5
        if 2 <= row < det.shape[0] - 2 and 2 <= col < det.shape[1] - 2:
            spots.append((row, col))
    return np.array(spots)


def test_spot_centres_obey_laue_equations():
    det = Detector(shape=(200, 200), pixel_size_mm=0.2, distance_mm=60.0)
    beam = Beam(1.0, fluence_photons_per_m2=1e24)
    xtal = Crystal((40, 50, 60, 90, 90, 90), ncells=(20, 20, 20), spot_shape="gauss",
                   orientation=random_orientation(7))
    sim = Simulator(det, beam, xtal, oversample=4)
    image = sim.bragg()
    predicted = laue_spot_positions(sim)
    assert len(predicted) >= 5
    labels, n = ndimage.label(image > 1e-3 * image.max())
    centroids = np.array(ndimage.center_of_mass(image, labels, range(1, n + 1)))
    for row, col in predicted:
        distance = np.hypot(centroids[:, 0] - row, centroids[:, 1] - col).min()
        assert distance <= 0.5, f"spot predicted at ({row:.2f}, {col:.2f}) found {distance:.2f} px away"


class TestScaling:
    def test_proportional_to_fluence(self):
        sim = small_simulator("tophat")
        image = sim.bragg()
        sim = sim.with_(beam=Beam(1.2, fluence_photons_per_m2=3e24, dispersion=0.02, dispersion_steps=2,
                                  divergence_mrad=1.0, divergence_steps=2, polarization_fraction=0.9))
        np.testing.assert_allclose(sim.bragg(), 3 * image, rtol=1e-6)

    def test_proportional_to_f_squared(self):
        image = small_simulator("sinc", default_F=10.0).bragg()
        np.testing.assert_allclose(small_simulator("sinc", default_F=30.0).bragg(), 9 * image, rtol=1e-6)

    def test_flux_fluence_equivalence(self):
        det = Detector(shape=(16, 16), pixel_size_mm=0.5, distance_mm=30.0)
        xtal = Crystal((20, 20, 20, 90, 90, 90), ncells=(4, 4, 4), orientation=random_orientation(1))
        by_fluence = Simulator(det, Beam(1.0, fluence_photons_per_m2=1e12 / (30e-6) ** 2), xtal).bragg()
        by_flux = Simulator(det, Beam(1.0, flux_photons_per_s=1e13, exposure_s=0.1, beam_size_mm=0.03), xtal).bragg()
        np.testing.assert_allclose(by_flux, by_fluence, rtol=1e-6)


def integrated_reflection(shape, ncells, steps):
    """Photons of the single reflection (1, 0, 0) summed over a rotation sweep
    that carries its whole reciprocal-lattice cell through the Ewald sphere."""
    sf = StructureFactors(np.array([[1, 0, 0]]), np.array([100.0]))
    det = Detector(shape=(60, 60), pixel_size_mm=0.2, distance_mm=100.0, beam_center_mm=(6.0, 6.0 - 5.0))
    beam = Beam(1.0, fluence_photons_per_m2=1e24)
    total = 0.0
    # (1,0,0) of a 20 A cube sits at 2theta = 2.865 deg; rotating about the
    # vertical axis (z) sweeps it through the sphere, its spot near column 30.
    bragg_deg = math.degrees(math.asin(1.0 / 40.0))
    for phi in np.linspace(-25, 25, steps):
        # a* first along -y rotated so that G makes the Bragg angle, then swept
        u = misset_to_rotation(0.0, 0.0, -90.0 - bragg_deg + phi)
        xtal = Crystal((20, 20, 20, 90, 90, 90), ncells=ncells, spot_shape=shape, default_F=0.0,
                       orientation=u, structure_factors=sf)
        total += Simulator(det, beam, xtal, oversample=2).bragg().sum(dtype=np.float64)
    return total


class TestIntegratedIntensity:
    def test_proportional_to_number_of_cells(self):
        small = integrated_reflection("tophat", (4, 4, 4), 201)
        large = integrated_reflection("tophat", (8, 4, 4), 201)
        assert small > 0
        assert large / small == pytest.approx(2.0, rel=0.03)

    def test_tophat_equals_sinc(self):
        tophat = integrated_reflection("tophat", (4, 4, 4), 201)
        sinc = integrated_reflection("sinc", (4, 4, 4), 201)
        assert tophat / sinc == pytest.approx(1.0, rel=0.05)


class TestDeterminism:
    def test_same_image_for_one_and_two_threads(self):
        det = Detector(shape=(96, 96), pixel_size_mm=0.172, distance_mm=40.0)
        xtal = Crystal((60, 70, 80, 90, 90, 90), ncells=(5, 5, 5), mosaic_domains=20, mosaic_spread_deg=0.5,
                       orientation=random_orientation(4))
        beam = Beam(1.5, fluence_photons_per_m2=1e24)
        for method in ("reflection", "pixel"):
            one = Simulator(det, beam, xtal, oversample=2, n_threads=1).bragg(seed=5, method=method)
            two = Simulator(det, beam, xtal, oversample=2, n_threads=2).bragg(seed=5, method=method)
            assert np.count_nonzero(one) > 50
            assert np.array_equal(one, two)

    def test_same_image_under_omp_num_threads(self, tmp_path):
        script = (
            "import numpy as np, sys\n"
            "from diffranet import *\n"
            "sim = Simulator(Detector((64, 64), 0.172, 40.0), Beam(1.5, fluence_photons_per_m2=1e24),\n"
            "    Crystal((60, 70, 80, 90, 90, 90), ncells=(5, 5, 5), mosaic_domains=10, mosaic_spread_deg=0.5,\n"
            "            orientation=random_orientation(2)), oversample=2)\n"
            "np.save(sys.argv[1], sim.bragg(seed=3))\n")
        images = []
        for threads in ("1", "2"):
            out = tmp_path / f"img{threads}.npy"
            env = dict(os.environ, OMP_NUM_THREADS=threads)
            subprocess.run([sys.executable, "-c", script, str(out)], env=env, check=True)
            images.append(np.load(out))
        assert np.count_nonzero(images[0]) > 10
        assert np.array_equal(images[0], images[1])

    def test_seed_changes_mosaic(self):
        sim = small_simulator("tophat")
        assert np.array_equal(sim.bragg(seed=1), sim.bragg(seed=1))
        assert not np.array_equal(sim.bragg(seed=1), sim.bragg(seed=2))


class TestMosaic:
    def _angles(self, distribution, spread_deg, n=20000):
        xtal = Crystal((50, 50, 50, 90, 90, 90), mosaic_domains=n, mosaic_spread_deg=spread_deg,
                       mosaic_distribution=distribution)
        sim = Simulator(Detector((4, 4)), Beam(1.0, fluence_photons_per_m2=1.0), xtal)
        rot = sim.mosaic_rotations(seed=0)
        np.testing.assert_allclose(rot @ rot.transpose(0, 2, 1), np.broadcast_to(np.eye(3), rot.shape), atol=1e-12)
        cos = np.clip((np.trace(rot, axis1=1, axis2=2) - 1) / 2, -1, 1)
        return np.degrees(np.arccos(cos)), rot

    def test_tophat_is_uniform_in_a_ball(self):
        angles, _ = self._angles("tophat", 2.0)
        # radius of a uniform ball of radius R: max R, mean 3R/4, P(r < R/2) = 1/8
        assert angles.max() <= 1.0 + 1e-9
        assert angles.mean() == pytest.approx(0.75, rel=0.01)
        assert np.mean(angles < 0.5) == pytest.approx(0.125, abs=0.01)

    def test_gauss_rms_per_axis(self):
        _, rot = self._angles("gauss", 2.0)
        # small rotations: the antisymmetric part holds the rotation vector
        w = np.stack([rot[:, 2, 1] - rot[:, 1, 2], rot[:, 0, 2] - rot[:, 2, 0], rot[:, 1, 0] - rot[:, 0, 1]], 1) / 2
        np.testing.assert_allclose(np.degrees(w.std(axis=0)), 1.0, rtol=0.03)

    def test_zero_spread_is_identity(self):
        _, rot = self._angles("tophat", 0.0, n=3)
        np.testing.assert_array_equal(rot, np.broadcast_to(np.eye(3), (3, 3, 3)))


class TestValidation:
    @pytest.mark.parametrize("kwargs, match", [
        (dict(shape=(0, 10)), "shape"),
        (dict(shape=(10,)), "shape"),
        (dict(pixel_size_mm=0.0), "pixel_size_mm"),
        (dict(pixel_size_mm=float("nan")), "pixel_size_mm"),
        (dict(distance_mm=-5.0), "distance_mm"),
        (dict(distance_mm=float("inf")), "distance_mm"),
        (dict(beam_center_mm=(1.0, float("nan"))), "beam_center_mm"),
        (dict(rotation_deg=(0.0, 1.0)), "rotation_deg"),
        (dict(mask=np.zeros((3, 3), bool)), "mask"),
    ])
    def test_detector(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            Detector(**{"shape": (8, 8), **kwargs})

    @pytest.mark.parametrize("kwargs, match", [
        (dict(wavelength_A=0.0, fluence_photons_per_m2=1.0), "wavelength_A"),
        (dict(wavelength_A=float("nan"), fluence_photons_per_m2=1.0), "wavelength_A"),
        (dict(fluence_photons_per_m2=-1.0), "fluence"),
        (dict(fluence_photons_per_m2=float("inf")), "fluence"),
        (dict(), "fluence"),
        (dict(fluence_photons_per_m2=1.0, flux_photons_per_s=1.0), "either"),
        (dict(fluence_photons_per_m2=1.0, polarization_fraction=1.5), "polarization_fraction"),
        (dict(fluence_photons_per_m2=1.0, polarization_axis=(0, 0, 0)), "polarization_axis"),
        (dict(fluence_photons_per_m2=1.0, dispersion=1.0), "dispersion"),
        (dict(fluence_photons_per_m2=1.0, dispersion_steps=0), "dispersion_steps"),
        (dict(fluence_photons_per_m2=1.0, sources=[]), "sources"),
        (dict(fluence_photons_per_m2=1.0, sources=[((1, 0, 0), -1.0, 1.0)]), "wavelength_A"),
    ])
    def test_beam(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            Beam(**{"wavelength_A": 1.0, **kwargs})

    @pytest.mark.parametrize("kwargs, match", [
        (dict(cell=(50, 50, 50, 90, 90, 200)), "cell"),
        (dict(cell=(50, 50, 50, 10, 10, 170)), "cell"),
        (dict(cell=(50, -50, 50, 90, 90, 90)), "cell"),
        (dict(cell=(50, 50, float("nan"), 90, 90, 90)), "cell"),
        (dict(ncells=(1, 0, 1)), "ncells"),
        (dict(ncells=(1, 1)), "ncells"),
        (dict(mosaic_domains=0), "mosaic_domains"),
        (dict(mosaic_spread_deg=-1.0), "mosaic_spread_deg"),
        (dict(mosaic_distribution="lorentz"), "mosaic_distribution"),
        (dict(spot_shape="square"), "spot_shape"),
        (dict(default_F=float("nan")), "default_F"),
        (dict(orientation=np.diag([1.0, 1.0, -1.0])), "orientation"),
        (dict(orientation=np.ones((2, 2))), "orientation"),
        (dict(structure_factors=[1, 2, 3]), "structure_factors"),
        (dict(tophat_volume="cctbx"), "tophat_volume"),
        (dict(tophat_volume=["sinc"]), "tophat_volume"),
    ])
    def test_crystal(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            Crystal(**{"cell": (50, 50, 50, 90, 90, 90), **kwargs})

    def test_simulator(self):
        det, beam, xtal = Detector((8, 8)), Beam(1.0, fluence_photons_per_m2=1.0), Crystal((50, 50, 50, 90, 90, 90))
        with pytest.raises(ValueError, match="oversample"):
            Simulator(det, beam, xtal, oversample=0)
        with pytest.raises(ValueError, match="n_threads"):
            Simulator(det, beam, xtal, n_threads=0)
        with pytest.raises(ValueError, match="method"):
            Simulator(det, beam, xtal, method="fast")
        with pytest.raises(ValueError, match="detector"):
            Simulator("det", beam, xtal)
        with pytest.raises(ValueError, match="reflection"):
            Simulator(det, beam, Crystal((50, 50, 50, 90, 90, 90), spot_shape="sinc"), method="reflection")
        with pytest.raises(ValueError, match="seed"):
            Simulator(det, beam, xtal).bragg(seed=-1)


class TestSimulate:
    def test_without_models_records_expected_photons(self):
        sim = small_simulator("tophat")
        result = sim.simulate(seed=4)
        np.testing.assert_array_equal(result.bragg, sim.bragg(seed=4))
        np.testing.assert_array_equal(result.background, 0)
        np.testing.assert_array_equal(result.expected, result.bragg)
        assert result.image8.dtype == np.uint8
        np.testing.assert_array_equal(result.image8, np.round(np.sqrt(np.clip(result.counts, 0, 65025))))

    def test_no_crystal(self):
        sim = Simulator(Detector((16, 16)), Beam(1.0, fluence_photons_per_m2=1e24))
        result = sim.simulate()
        assert not result.expected.any()
        with pytest.raises(ValueError, match="no crystal"):
            sim.bragg()

    def test_metadata_rebuilds_the_same_shot(self):
        import json

        sim = small_simulator("gauss", volume_scale=7.0)
        result = sim.simulate(seed=11)
        metadata = json.loads(json.dumps(result.metadata))
        assert metadata["seed"] == 11
        again = Simulator.from_metadata(metadata).simulate(seed=metadata["seed"])
        np.testing.assert_array_equal(again.expected, result.expected)

    def test_volume_scale_multiplies_bragg(self):
        base = small_simulator("tophat").bragg()
        np.testing.assert_allclose(small_simulator("tophat", volume_scale=2.7e7).bragg(), 2.7e7 * base, rtol=1e-6)

    def test_mask_zeroes_counts(self):
        mask = np.zeros((32, 40), bool)
        mask[5:9, :] = True
        sim = small_simulator("tophat")
        sim = sim.with_(detector=sim.detector.with_(mask=mask))
        result = sim.simulate()
        assert not result.counts[mask].any()


def test_core_errors_arrive_as_python_exceptions():
    # the compiled core throws std::invalid_argument; pybind11 raises ValueError
    from diffranet import _core
    from diffranet.simulation._core_args import beam_args, detector_args

    det, beam = Detector((4, 4)), Beam(1.0, fluence_photons_per_m2=1.0)
    args = dict(**detector_args(det, 1), **beam_args(beam), real_basis_A=np.eye(3) * 50, ncells=np.ones(3), shape=1,
                domain_rotations=np.eye(3)[None],
                structure_factors=_core.StructureFactorTable(np.zeros((0, 0, 0), np.float32), [0, 0, 0], 1.0),
                method="reflection", n_threads=1)
    with pytest.raises(ValueError, match="domain_rotations"):
        _core.render_bragg(**{**args, "domain_rotations": np.eye(3)})
    with pytest.raises(ValueError, match="ncells"):
        _core.render_bragg(**{**args, "ncells": np.ones(2)})
