"""Amorphous background, beamstop shadow and detector masks: checked against
a slow numpy evaluation of the nonBragg formula, hand-computed values and
scaling laws."""

import gc
import json
import math

import numpy as np
import pytest

from bragg_reference import R_E_SQ_M2, polarization, subpixel_positions
from diffranet import Beam, Detector
from diffranet.simulation import background as background_module
from diffranet.simulation.background import (
    AVOGADRO_PER_MOL,
    AmorphousMaterial,
    Background,
    Beamstop,
    LatticeDiffuse,
    air,
    atomic_form_factor,
    incoherent_scattering,
    water,
)
from diffranet.simulation.masks import bad_pixel_mask, module_gap_mask


def background_reference(background, det, beam, oversample):
    """Expected photons per pixel, float64, straight from the nonBragg formula."""
    pos = subpixel_positions(det, oversample)
    dist = np.linalg.norm(pos, axis=-1)
    diffracted = pos / dist[..., None]
    omega = det.pixel_size_mm**2 / dist**2 * (pos @ det.normal) / dist
    total = np.zeros(pos.shape[:2])
    for direction, lam, weight in zip(*beam.sampled_sources()):
        stol = np.linalg.norm(diffracted - direction, axis=-1) / (2 * lam)
        per_molecule = np.zeros_like(stol)
        for m in background.scatterers():
            f = np.interp(stol, m.stol_per_A, m.F)
            s = np.interp(stol, m.stol_per_A, m.incoherent) if background.compton else 0.0
            per_molecule += m.molecules(beam.beam_size_mm) * (f**2 + s)
        pol = polarization(beam.polarization_fraction, beam.polarization_axis, direction, diffracted)
        total += weight * omega * pol * per_molecule
    total *= R_E_SQ_M2 * beam.fluence_photons_per_m2 / oversample**2
    rows, cols = det.shape
    return total.reshape(rows, oversample, cols, oversample).sum(axis=(1, 3))


def constant_material(F=3.0, thickness_mm=0.01, width_mm=None):
    return AmorphousMaterial("flat", [0.0, 1.0], [F, F], thickness_mm=thickness_mm, density_g_cm3=1.0,
                             molecular_weight_g_mol=18.0, incoherent=[0.0, 2.0], width_mm=width_mm)


def small_setup(**beam_kw):
    det = Detector(shape=(24, 32), pixel_size_mm=1.0, distance_mm=40.0, beam_center_mm=(9.0, 7.0),
                   rotation_deg=(2.0, -3.0, 1.0))
    kw = dict(fluence_photons_per_m2=1e24, beam_size_mm=0.05, polarization_fraction=0.9,
              sources=[((1.0, 0.0, 0.0), 1.3, 1.0), ((1.0, 0.002, -0.001), 1.4, 2.0)])
    kw.update(beam_kw)
    return det, Beam(1.3, **kw)


class TestAgainstReference:
    @pytest.mark.parametrize("compton", [False, True])
    def test_water_air_diffuse(self, compton):
        det, beam = small_setup()
        bg = Background(compton=compton, diffuse=LatticeDiffuse())
        image = bg.render(det, beam, oversample=2)
        assert image.dtype == np.float32 and image.shape == det.shape
        np.testing.assert_allclose(image, background_reference(bg, det, beam, 2), rtol=1e-6)

    def test_user_table_beyond_its_range(self):
        # s reaches ~0.3 here: the table's last value holds beyond 0.2
        det, beam = small_setup()
        m = AmorphousMaterial("glass", [0.05, 0.1, 0.2], [1.0, 4.0, 2.0], thickness_mm=0.1, density_g_cm3=2.2,
                              molecular_weight_g_mol=60.0)
        bg = Background(materials=[m])
        np.testing.assert_allclose(bg.render(det, beam, oversample=3), background_reference(bg, det, beam, 3),
                                   rtol=1e-6)


def test_absolute_scale_by_hand():
    # one unpolarised source along +x, one pixel on the axis: Omega = p^2 / L^2
    det = Detector(shape=(1, 1), pixel_size_mm=0.1, distance_mm=100.0)
    beam = Beam(1.0, fluence_photons_per_m2=1e20, beam_size_mm=0.02)
    F, thickness_mm = 3.0, 0.01
    image = Background(materials=[constant_material(F, thickness_mm)]).render(det, beam)
    molecules = thickness_mm * 0.02**2 * 1e-3 * 1.0 * AVOGADRO_PER_MOL / 18.0  # mm^3 -> cm^3
    omega = (0.1 / 100.0) ** 2
    expected = 7.94079248018965e-30 * 1e20 * molecules * omega * 1.0 * F**2  # P = 1 at 2theta = 0
    assert image[0, 0] == pytest.approx(expected, rel=1e-6)


class TestWaterRing:
    @pytest.mark.parametrize("wavelength_A", [1.0, 1.5])
    def test_ring_at_table_maximum(self, wavelength_A):
        det = Detector(shape=(300, 300), pixel_size_mm=0.3, distance_mm=60.0, beam_center_mm=(1.0, 1.0))
        beam = Beam(wavelength_A, fluence_photons_per_m2=1e24, beam_size_mm=0.03)
        image = Background(materials=[water()]).render(det, beam)
        two_theta = det.two_theta_deg()
        # divide out the solid angle (cos^3 2theta on a flat detector) and the
        # unpolarised Kahn factor: what remains is F(s)^2
        cos2t = np.cos(np.radians(two_theta))
        f_squared = image / (cos2t**3 * (1 + cos2t**2) / 2)
        bin_deg = math.degrees(det.pixel_size_mm / det.distance_mm) / 2
        bins = np.round(two_theta / bin_deg).astype(int)
        profile = np.bincount(bins.ravel(), f_squared.ravel()) / np.maximum(np.bincount(bins.ravel()), 1)
        peak_deg = np.argmax(profile) * bin_deg
        stol_peak = water().stol_per_A[np.argmax(water().F)]
        expected_deg = math.degrees(2 * math.asin(stol_peak * wavelength_A))
        # within two pixels of 2theta at the ring
        pixel_deg = math.degrees(det.pixel_size_mm * math.cos(math.radians(expected_deg)) ** 2 / det.distance_mm)
        assert abs(peak_deg - expected_deg) < 2 * pixel_deg


class TestScaling:
    def setup_method(self):
        self.det = Detector(shape=(16, 20), pixel_size_mm=0.5, distance_mm=50.0)
        self.beam = Beam(1.5, fluence_photons_per_m2=1e24, beam_size_mm=0.03)

    def render(self, material, beam=None):
        return Background(materials=[material]).render(self.det, beam or self.beam)

    def test_air_proportional_to_path(self):
        np.testing.assert_allclose(self.render(air(path_mm=10.0)), 2 * self.render(air(path_mm=5.0)), rtol=1e-6)

    def test_water_proportional_to_thickness(self):
        np.testing.assert_allclose(self.render(water(30.0)), 3 * self.render(water(10.0)), rtol=1e-6)

    def test_proportional_to_fluence(self):
        beam = Beam(1.5, fluence_photons_per_m2=4e24, beam_size_mm=0.03)
        np.testing.assert_allclose(self.render(water(), beam), 4 * self.render(water()), rtol=1e-6)

    def test_proportional_to_beam_area(self):
        beam = Beam(1.5, fluence_photons_per_m2=1e24, beam_size_mm=0.06)
        np.testing.assert_allclose(self.render(water(), beam), 4 * self.render(water()), rtol=1e-6)

    def test_sample_narrower_than_beam_is_clipped(self):
        wide = Beam(1.5, fluence_photons_per_m2=1e24, beam_size_mm=1.0)
        np.testing.assert_allclose(self.render(constant_material(width_mm=0.1), wide),
                                   self.render(constant_material(), Beam(1.5, fluence_photons_per_m2=1e24, beam_size_mm=0.1)),
                                   rtol=1e-6)

    def test_materials_add(self):
        both = Background(materials=[water(), air()]).render(self.det, self.beam)
        np.testing.assert_allclose(both, self.render(water()) + self.render(air()), rtol=1e-6)

    def test_compton_adds_incoherent(self):
        # constant F = 3 and S rising linearly from 0 to 2 over s in [0, 1]
        m = constant_material()
        plain = Background(materials=[m]).render(self.det, self.beam)
        with_compton = Background(materials=[m], compton=True).render(self.det, self.beam)
        stol = 2 * np.sin(np.radians(self.det.two_theta_deg()) / 2) / 2 / 1.5
        np.testing.assert_allclose(with_compton / plain, 1 + 2 * stol / 9, rtol=1e-3)

    def test_diffuse_off_by_default_and_grows_with_b(self):
        bg = Background()
        assert bg.diffuse is None and not bg.compton
        low = Background(materials=[], diffuse=LatticeDiffuse(b_factor_A2=10.0)).render(self.det, self.beam)
        high = Background(materials=[], diffuse=LatticeDiffuse(b_factor_A2=40.0)).render(self.det, self.beam)
        assert np.all(high > low) and np.all(low > 0)


class TestTables:
    @pytest.mark.parametrize("element", ["H", "C", "N", "O", "S", "Ar"])
    def test_form_factors_are_gemmi_it92(self, element):
        gemmi = pytest.importorskip("gemmi")
        for s in (0.0, 0.1, 0.3, 0.7):
            assert atomic_form_factor(element, s) == pytest.approx(gemmi.Element(element).it92.calculate_sf(s * s),
                                                                   rel=1e-5)

    def test_incoherent_limits(self):
        # S(0) = 0 and S -> number of electrons at high angle
        assert incoherent_scattering({"H": 2, "O": 1}, 0.0) == 0.0
        assert incoherent_scattering({"H": 2, "O": 1}, 2.0) == pytest.approx(10, rel=0.03)

    def test_air_forward_and_density(self):
        # computed: forward F^2 of an N2/O2/Ar mixture = sum_k x_k Z_k^2 (whole molecules scatter in phase)
        computed = air(table="computed")
        assert computed.F[0] ** 2 == pytest.approx(0.78 * 14**2 + 0.21 * 16**2 + 0.01 * 18**2, rel=2e-3)
        # nonBragg's table: F(0) = 14.10; below s = 0.1 1/A it has the computed shape to 1 %, 5.2 % lower
        a = air()
        assert a.F[0] == pytest.approx(14.0954) and a.stol_per_A.size == 100
        s = np.linspace(0.0, 0.1, 21)
        ratio = a.structure_factor(s) ** 2 / computed.structure_factor(s) ** 2
        np.testing.assert_allclose(ratio, (14.0954 / computed.F[0]) ** 2, rtol=0.01)
        assert a.density_g_cm3 == computed.density_g_cm3
        assert a.density_g_cm3 == pytest.approx(1.2041e-3, rel=1e-3)
        assert air(temperature_C=0.0).density_g_cm3 > a.density_g_cm3

    def test_water_table(self):
        # nonBragg's water.stol: F(0) = 2.57, the ring's maximum 8.01 at s = 0.1603 1/A
        w = water()
        assert w.F[0] == pytest.approx(2.57, abs=1e-4) and w.stol_per_A.size == 10000
        assert w.stol_per_A[np.argmax(w.F)] == pytest.approx(0.1603, abs=1e-4)
        assert w.F.max() == pytest.approx(8.01, abs=0.01)
        assert w.thickness_mm == pytest.approx(0.01)

    def test_tables_read_only(self):
        with pytest.raises(ValueError):
            water().F[0] = 1.0


class TestBeamstop:
    def setup_method(self):
        # 1 mm pixels; the direct beam at the corner shared by pixels (4, 4) and (5, 5)
        self.det = Detector(shape=(10, 10), pixel_size_mm=1.0, distance_mm=50.0, beam_center_mm=(5.0, 5.0))

    def rendered(self):
        return Background().render(self.det, Beam(1.5, fluence_photons_per_m2=1e24, beam_size_mm=0.03))

    def test_shadow_is_zero_rest_unchanged(self):
        stop = Beamstop(radius_mm=1.6, arm_width_mm=1.0, arm_angle_deg=30.0)
        image = self.rendered()
        out = stop.apply(image, self.det)
        shadow = stop.shadow(self.det)
        assert shadow.sum() > 4 and np.all(out[shadow] == 0)
        np.testing.assert_array_equal(out[~shadow], image[~shadow])

    def test_disc_centred_on_direct_beam(self):
        shadow = Beamstop(radius_mm=1.0).shadow(self.det)
        expected = np.zeros((10, 10), bool)
        expected[4:6, 4:6] = True  # centres 0.707 mm from the beam; the next ones 1.58 mm
        np.testing.assert_array_equal(shadow, expected)

    def test_arm_at_0_degrees(self):
        shadow = Beamstop(radius_mm=0.0, arm_width_mm=2.0, arm_angle_deg=0.0).shadow(self.det)
        expected = np.zeros((10, 10), bool)
        expected[4:6, 5:] = True  # rows 4, 5 (0.5 mm off axis), columns right of the centre
        np.testing.assert_array_equal(shadow, expected)

    def test_arm_at_90_degrees(self):
        shadow = Beamstop(radius_mm=0.0, arm_width_mm=2.0, arm_angle_deg=90.0).shadow(self.det)
        expected = np.zeros((10, 10), bool)
        expected[5:, 4:6] = True  # towards increasing rows
        np.testing.assert_array_equal(shadow, expected)

    def test_arm_at_45_degrees(self):
        shadow = Beamstop(radius_mm=0.0, arm_width_mm=0.5, arm_angle_deg=45.0).shadow(self.det)
        expected = np.zeros((10, 10), bool)
        for i in range(5, 10):
            expected[i, i] = True  # the diagonal pixels; their neighbours are 0.71 mm off it
        np.testing.assert_array_equal(shadow, expected)

    def test_explicit_centre(self):
        shadow = Beamstop(radius_mm=0.6, center_mm=(0.5, 9.5)).shadow(self.det)
        assert shadow.sum() == 1 and shadow[9, 0]

    def test_rotated_detector_default_centre(self):
        det = Detector(shape=(40, 40), pixel_size_mm=1.0, distance_mm=50.0, rotation_deg=(0.0, 10.0, 0.0))
        shadow = Beamstop(radius_mm=2.0).shadow(det)
        # the shadow is centred where the +x axis meets the tilted detector
        pos = det.pixel_centers_mm()
        off_axis = np.linalg.norm(pos[..., 1:], axis=-1)
        assert np.all(off_axis[shadow] < 2.5) and shadow.sum() >= 8


class TestMasks:
    def test_module_gaps(self):
        mask = module_gap_mask((20, 30), (6, 8), (2, 3))
        assert set(np.flatnonzero(mask.all(axis=1))) == {6, 7, 14, 15}
        assert set(np.flatnonzero(mask.all(axis=0))) == {8, 9, 10, 19, 20, 21}
        assert not mask[0:6, 0:8].any()

    def test_origin_shifts_the_grid(self):
        full = module_gap_mask((20, 30), (6, 8), (2, 3))
        np.testing.assert_array_equal(module_gap_mask((10, 12), (6, 8), (2, 3), origin=(5, 7)), full[5:15, 7:19])

    def test_pilatus_6m_geometry(self):
        mask = module_gap_mask((2527, 2463), (195, 487), (17, 7))
        assert (~mask).sum() == 60 * 195 * 487

    def test_bad_pixels_reproducible(self):
        a = bad_pixel_mask((50, 40), 0.01, seed=3)
        assert a.sum() == 20
        np.testing.assert_array_equal(a, bad_pixel_mask((50, 40), 0.01, seed=3))
        assert not np.array_equal(a, bad_pixel_mask((50, 40), 0.01, seed=4))

    def test_masks_fit_detector(self):
        mask = module_gap_mask((8, 8), (3, 3), 1) | bad_pixel_mask((8, 8), 0.1)
        stored = Detector((8, 8), mask=mask).mask
        assert np.array_equal(stored, mask) and not stored.flags.writeable


class TestSerialisation:
    def test_background_round_trip(self):
        custom = AmorphousMaterial("glass", [0.05, 0.1, 0.2], [1.0, 4.0, 2.0], thickness_mm=0.1,
                                   density_g_cm3=2.2, molecular_weight_g_mol=60.0, incoherent=[0.1, 0.5, 1.0],
                                   width_mm=0.02)
        bg = Background(materials=[water(20.0), air(3.0, temperature_C=5.0), custom], compton=True,
                        diffuse=LatticeDiffuse(b_factor_A2=30.0))
        again = Background.from_dict(json.loads(json.dumps(bg.to_dict())))
        det, beam = small_setup()
        np.testing.assert_array_equal(again.render(det, beam), bg.render(det, beam))
        assert bg.to_dict()["materials"][0] == {"builtin": "water", "params": {"thickness_um": 20.0}}

    def test_beamstop_round_trip(self):
        det = Detector((30, 30), 1.0, 50.0)
        for stop in (Beamstop(2.0, 1.0, 30.0), Beamstop(2.0, center_mm=(3.0, 4.0))):
            again = Beamstop(**json.loads(json.dumps(stop.to_dict())))
            np.testing.assert_array_equal(again.shadow(det), stop.shadow(det))

    def test_unknown_builtin(self):
        with pytest.raises(ValueError, match="builtin"):
            AmorphousMaterial.from_dict({"builtin": "glass", "params": {}})


def test_same_image_for_one_and_two_threads():
    det, beam = small_setup()
    bg = Background(compton=True, diffuse=LatticeDiffuse())
    np.testing.assert_array_equal(bg.render(det, beam, oversample=2, n_threads=1),
                                  bg.render(det, beam, oversample=2, n_threads=2))


class TestSamplesCache:
    """Every render of a detector and beam direction reuses one set of per-subpixel samples."""

    def test_cached_samples_give_the_uncached_image(self, monkeypatch):
        det, beam = small_setup()
        bg = Background(compton=True, diffuse=LatticeDiffuse())
        cached = bg.render(det, beam, oversample=2)
        assert background_module._SAMPLES[det]  # the render above stored its samples
        monkeypatch.setattr(background_module, "MAX_CACHED_SAMPLES_BYTES", 0)
        np.testing.assert_array_equal(bg.render(det, beam, oversample=2), cached)

    def test_new_wavelength_and_fluence_reuse_the_samples(self):
        det, beam = small_setup()
        bg = Background()
        bg.render(det, beam, oversample=2)
        changed = small_setup(fluence_photons_per_m2=3e24,
                              sources=[((1.0, 0.0, 0.0), 1.0, 1.0), ((1.0, 0.002, -0.001), 1.1, 2.0)])[1]
        assert len(background_module._SAMPLES[det]) == 1
        image = bg.render(det, changed, oversample=2)
        assert len(background_module._SAMPLES[det]) == 1
        np.testing.assert_allclose(image, background_reference(bg, det, changed, 2), rtol=1e-6)

    @pytest.mark.parametrize("beam_kw", [
        {"polarization_fraction": 0.5}, {"polarization_axis": (0.0, 1.0, 0.0)},
        {"sources": [((1.0, 0.0, 0.0), 1.3, 1.0), ((1.0, 0.003, -0.001), 1.4, 2.0)]},
        {"sources": [((1.0, 0.0, 0.0), 1.3, 2.0), ((1.0, 0.002, -0.001), 1.4, 2.0)]},
        {"sources": [((1.0, 0.0, 0.0), 1.3, 1.0)]},
    ], ids=["polarization", "axis", "direction", "weights", "one-source"])
    def test_another_beam_geometry_gets_its_own_samples(self, beam_kw):
        det, beam = small_setup()
        bg = Background()
        bg.render(det, beam, oversample=2)
        other = small_setup(**beam_kw)[1]
        np.testing.assert_allclose(bg.render(det, other, oversample=2), background_reference(bg, det, other, 2),
                                   rtol=1e-6)
        assert len(background_module._SAMPLES[det]) == 2

    def test_cache_is_bounded_per_detector(self):
        det, _ = small_setup()
        bg = Background()
        for k in range(8):
            bg.render(det, small_setup(polarization_fraction=k / 10)[1], oversample=1)
        assert len(background_module._SAMPLES[det]) == background_module._SAMPLES_PER_DETECTOR

    def test_samples_go_with_their_detector(self):
        det, beam = small_setup()
        Background().render(det, beam)
        n = len(background_module._SAMPLES)
        del det
        gc.collect()
        assert len(background_module._SAMPLES) == n - 1


class TestValidation:
    ok = dict(name="m", stol_per_A=[0.0, 0.1], F=[1.0, 2.0], thickness_mm=1.0, density_g_cm3=1.0,
              molecular_weight_g_mol=18.0)

    @pytest.mark.parametrize("kwargs, match", [
        (dict(name=""), "name"),
        (dict(name=3), "name"),
        (dict(stol_per_A=[]), "stol_per_A"),
        (dict(stol_per_A=[[0.0, 0.1]]), "stol_per_A"),
        (dict(stol_per_A=[0.1, 0.0]), "stol_per_A.*increasing"),
        (dict(stol_per_A=[0.0, 0.0]), "stol_per_A.*increasing"),
        (dict(stol_per_A=[-0.1, 0.1]), "stol_per_A"),
        (dict(stol_per_A=[0.0, np.inf]), "stol_per_A"),
        (dict(F=[1.0]), "F"),
        (dict(F=[1.0, -1.0]), "F"),
        (dict(F=[1.0, np.nan]), "F"),
        (dict(incoherent=[0.0]), "incoherent"),
        (dict(incoherent=[0.0, -1.0]), "incoherent"),
        (dict(thickness_mm=0.0), "thickness_mm"),
        (dict(thickness_mm="1"), "thickness_mm"),
        (dict(density_g_cm3=-1.0), "density_g_cm3"),
        (dict(molecular_weight_g_mol=0.0), "molecular_weight_g_mol"),
        (dict(width_mm=0.0), "width_mm"),
    ])
    def test_material(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            AmorphousMaterial(**{**self.ok, **kwargs})

    @pytest.mark.parametrize("call, match", [
        (lambda: water(0.0), "thickness_um"),
        (lambda: air(path_mm=-1.0), "path_mm"),
        (lambda: air(temperature_C=-300.0), "temperature_C"),
        (lambda: air(pressure_kPa=0.0), "pressure_kPa"),
        (lambda: LatticeDiffuse(b_factor_A2=0.0), "b_factor_A2"),
        (lambda: LatticeDiffuse(crystal_size_um=-1.0), "crystal_size_um"),
        (lambda: LatticeDiffuse(solvent_fraction=1.0), "solvent_fraction"),
        (lambda: LatticeDiffuse(solvent_fraction=-0.1), "solvent_fraction"),
        (lambda: atomic_form_factor("Xx", 0.1), "element"),
        (lambda: atomic_form_factor("O", -0.1), "stol_per_A"),
        (lambda: incoherent_scattering({}, 0.1), "composition"),
        (lambda: incoherent_scattering({"O": -1}, 0.1), "composition"),
        (lambda: constant_material().molecules(0.0), "beam_size_mm"),
    ])
    def test_builders(self, call, match):
        with pytest.raises(ValueError, match=match):
            call()

    @pytest.mark.parametrize("kwargs, match", [
        (dict(materials=water()), "materials"),
        (dict(materials=[water(), "air"]), r"materials\[1\]"),
        (dict(compton=1), "compton"),
        (dict(diffuse=water()), "diffuse"),
        (dict(materials=[AmorphousMaterial(**ok)], compton=True), "incoherent.*'m'"),
    ])
    def test_background(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            Background(**kwargs)

    @pytest.mark.parametrize("args, match", [
        (("det", Beam(1.5, fluence_photons_per_m2=1.0, beam_size_mm=0.03)), "detector"),
        ((Detector((4, 4)), "beam"), "beam"),
        ((Detector((4, 4)), Beam(1.5, fluence_photons_per_m2=1.0)), "beam_size_mm"),
    ])
    def test_render_arguments(self, args, match):
        with pytest.raises(ValueError, match=match):
            Background().render(*args)

    @pytest.mark.parametrize("kwargs, match", [(dict(oversample=0), "oversample"), (dict(n_threads=0), "n_threads")])
    def test_render_options(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            Background().render(Detector((4, 4)), Beam(1.5, fluence_photons_per_m2=1.0, beam_size_mm=0.03), **kwargs)

    @pytest.mark.parametrize("kwargs, match", [
        (dict(radius_mm=-1.0), "radius_mm"),
        (dict(radius_mm=1.0, arm_width_mm=-1.0), "arm_width_mm"),
        (dict(radius_mm=1.0, arm_angle_deg=np.nan), "arm_angle_deg"),
        (dict(radius_mm=1.0, center_mm=(1.0,)), "center_mm"),
        (dict(radius_mm=1.0, center_mm=(1.0, np.inf)), r"center_mm\[1\]"),
    ])
    def test_beamstop(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            Beamstop(**kwargs)

    def test_beamstop_use(self):
        stop = Beamstop(1.0)
        with pytest.raises(ValueError, match="detector"):
            stop.shadow("det")
        with pytest.raises(ValueError, match="image"):
            stop.apply(np.zeros((3, 3)), Detector((4, 4)))
        with pytest.raises(ValueError, match="direct beam"):
            stop.shadow(Detector((4, 4), rotation_deg=(0.0, 120.0, 0.0)))

    @pytest.mark.parametrize("call, match", [
        (lambda: module_gap_mask((10,), (2, 2), 1), "shape"),
        (lambda: module_gap_mask((10, 10), (0, 2), 1), r"module_shape\[0\]"),
        (lambda: module_gap_mask((10, 10), (2, 2), -1), r"gap_px\[0\]"),
        (lambda: module_gap_mask((10, 10), (2, 2), 1.5), "gap_px"),
        (lambda: module_gap_mask((10, 10), (2, 2), 1, origin=(0, -1)), r"origin\[1\]"),
        (lambda: bad_pixel_mask((10, 10), 1.5), "fraction"),
        (lambda: bad_pixel_mask((10, 10), 0.1, seed=-1), "seed"),
        (lambda: bad_pixel_mask((0, 10), 0.1), r"shape\[0\]"),
    ])
    def test_masks(self, call, match):
        with pytest.raises(ValueError, match=match):
            call()


def test_background_oversample_changes_the_image_by_a_second_order_term():
    # the background is smooth: one sample per pixel agrees with 2 x 2 to ~(pixel/distance)^2
    from diffranet import Simulator

    det = Detector((64, 64), pixel_size_mm=0.172, distance_mm=80.0)
    beam = Beam(1.5, fluence_photons_per_m2=1e22, beam_size_mm=0.03)
    fine = Simulator(det, beam, background=Background((water(10.0), air(5.0))), oversample=2).background_image()
    coarse = Simulator(det, beam, background=Background((water(10.0), air(5.0))), oversample=2,
                       background_oversample=1).background_image()
    assert fine.min() > 0
    np.testing.assert_allclose(coarse, fine, rtol=1e-4)
    assert not np.array_equal(coarse, fine)
