"""Parameter objects are immutable values: validated at construction, changed only by copy."""

import dataclasses

import numpy as np
import pytest

from diffranet import Beam, Beamstop, Background, CCDResponse, Crystal, Detector, PixelArrayResponse, Simulator
from diffranet.dataset.presets import PRESETS, Preset
from diffranet.simulation.background import LatticeDiffuse, air, water

CELL = (50.0, 60.0, 70.0, 90.0, 90.0, 90.0)

EXAMPLES = [
    (Detector((8, 8)), "distance_mm", 100.0),
    (Beam(1.5, fluence_photons_per_m2=1e24), "fluence_photons_per_m2", 2e24),
    (Crystal(CELL), "volume_scale", -5.0),
    (Background(), "compton", True),
    (water(), "thickness_mm", 1.0),
    (LatticeDiffuse(), "b_factor_A2", 10.0),
    (Beamstop(1.0), "radius_mm", 2.0),
    (CCDResponse(), "readout_rms_photons", 1.0),
    (PixelArrayResponse(), "saturation", 10.0),
    (PRESETS["quick"], "oversample", 2),
]


@pytest.mark.parametrize("obj, name, value", EXAMPLES, ids=lambda x: type(x).__name__)
def test_setting_an_attribute_raises(obj, name, value):
    before = getattr(obj, name)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(obj, name, value)
    assert getattr(obj, name) == before


@pytest.mark.parametrize("obj, name, value", EXAMPLES, ids=lambda x: type(x).__name__)
def test_with_returns_a_changed_copy(obj, name, value):
    if value == -5.0:
        value = 5.0
    changed = obj.with_(**{name: value})
    assert getattr(changed, name) == value
    assert changed != obj and getattr(obj, name) != value
    assert obj.with_() == obj


@pytest.mark.parametrize("obj, changes, match", [
    (Detector((8, 8)), dict(distance_mm=-1.0), "distance_mm"),
    (Beam(1.5, fluence_photons_per_m2=1e24), dict(polarization_fraction=2.0), "polarization_fraction"),
    (Crystal(CELL), dict(volume_scale=-5.0), "volume_scale"),
    (Crystal(CELL), dict(spot_shape="bogus"), "spot_shape"),
    (Background(), dict(materials=[water(), "air"]), "materials"),
    (Beamstop(1.0), dict(radius_mm=float("nan")), "radius_mm"),
    (CCDResponse(), dict(psf="airy"), "psf"),
    (PixelArrayResponse(), dict(dead_time_s=1e-6), "exposure_s"),
    (PRESETS["quick"], dict(oversample=0), "oversample"),
    (PRESETS["quick"], dict(crystal="bogus"), "crystal"),
    (PRESETS["quick"], dict(structure_factors="pdb"), "structure_factors"),
])
def test_replace_validates_again(obj, changes, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(obj, **changes)
    with pytest.raises(ValueError, match=match):
        obj.with_(**changes)


def test_bad_spot_shape_is_a_value_error_at_construction():
    with pytest.raises(ValueError, match="spot_shape must be one of"):
        Crystal(CELL, spot_shape="bogus")


class TestDerivedValuesFollow:
    def test_detector_origin_and_axes(self):
        det = Detector((10, 20), pixel_size_mm=0.1, distance_mm=80.0)
        near = det.with_(distance_mm=40.0)
        np.testing.assert_allclose(near.origin_mm, [40.0, 0.5, -1.0])
        np.testing.assert_allclose(det.origin_mm, [80.0, 0.5, -1.0])
        turned = det.with_(rotation_deg=(0.0, 0.0, 90.0))
        np.testing.assert_allclose(turned.normal, [0.0, 1.0, 0.0], atol=1e-12)

    def test_default_beam_centre_follows_the_shape(self):
        det = Detector((10, 20), pixel_size_mm=0.1)
        assert det.direct_beam_mm == pytest.approx((1.0, 0.5))
        assert det.with_(shape=(40, 40)).direct_beam_mm == pytest.approx((2.0, 2.0))
        assert det.with_(beam_center_mm=(0.3, 0.4)).with_(shape=(40, 40)).direct_beam_mm == (0.3, 0.4)

    def test_image_follows_a_changed_detector(self):
        xtal = Crystal(CELL, ncells=(5, 5, 5), orientation=np.eye(3))
        beam = Beam(1.5, fluence_photons_per_m2=1e24)
        det = Detector((32, 32), distance_mm=80.0)
        det.subpixel_directions(1)  # fill the cache of the original
        near = det.with_(distance_mm=40.0)
        image = Simulator(near, beam, xtal).bragg()
        np.testing.assert_array_equal(image, Simulator(Detector((32, 32), distance_mm=40.0), beam, xtal).bragg())
        assert not np.array_equal(image, Simulator(det, beam, xtal).bragg())

    def test_preset_parts_follow(self):
        quick = PRESETS["quick"]
        preset = quick.with_(detector=quick.detector.with_(distance_mm=40.0),
                             crystal=quick.crystal.with_(ncells=(2, 2, 2)))
        assert preset.detector.distance_mm == 40.0
        assert preset.simulator(crystal=False).detector.distance_mm == 40.0
        a, b, c = preset.crystal.cell[:3]
        assert preset.crystal.block_volume_um3 == pytest.approx(8 * a * b * c * 1e-12)


class TestArraysAreReadOnly:
    def test_arrays(self):
        mask = np.zeros((4, 4), bool)
        det = Detector((4, 4), mask=mask)
        mask[0, 0] = True  # the detector keeps its own copy
        assert not det.mask.any()
        xtal = Crystal(CELL)
        material = water()
        for array in (det.mask, det.origin_mm, det.normal, xtal.orientation, material.F, material.stol_per_A,
                      Beam(1.5, fluence_photons_per_m2=1.0).polarization_axis):
            with pytest.raises(ValueError, match="read-only"):
                array[0] = 1


class TestRoundTrips:
    def test_equal_by_value_and_hashable(self):
        assert Detector((8, 8)) == Detector((8, 8))
        assert hash(Beam(1.0, fluence_photons_per_m2=2.0)) == hash(Beam(1.0, fluence_photons_per_m2=2.0))
        assert len({Crystal(CELL), Crystal(CELL), Crystal(CELL, ncells=(2, 2, 2))}) == 2

    def test_changed_builtin_material_records_its_tables(self):
        thin = water(thickness_um=5.0)
        changed = thin.with_(density_g_cm3=2.0)
        assert "builtin" in thin.to_dict() and "builtin" not in changed.to_dict()
        rebuilt = type(changed).from_dict(changed.to_dict())
        assert rebuilt.tables_equal(changed) and rebuilt.density_g_cm3 == 2.0

    def test_simulator_metadata_round_trip(self):
        sim = Simulator(Detector((8, 8), beam_center_mm=(0.5, 0.6)),
                        Beam(1.2, fluence_photons_per_m2=1e24, beam_size_mm=0.05,
                             sources=[((1, 0, 0), 1.2, 2.0), ((1, 0.01, 0), 1.3, 1.0)]),
                        Crystal(CELL, ncells=(3, 3, 3), spot_shape="gauss"),
                        background=Background((air(path_mm=2.0),), diffuse=LatticeDiffuse()),
                        beamstop=Beamstop(0.2), response=CCDResponse(psf="gauss"))
        again = Simulator.from_metadata(sim.metadata(seed=3))
        for name in ("detector", "beam", "crystal", "background", "beamstop", "response"):
            assert getattr(again, name) == getattr(sim, name), name
        assert again.metadata(3) == sim.metadata(3)

    def test_old_fluence_key_is_read(self):
        assert Beam.from_dict({"wavelength_A": 1.0, "fluence": 5.0}).fluence_photons_per_m2 == 5.0


def test_preset_simulator_is_the_shot_simulator():
    preset = PRESETS["quick"]
    sim = preset.simulator(np.eye(3), photons=2e11, wavelength_A=1.4, volume_scale=10.0)
    assert sim.beam.photons == pytest.approx(2e11) and sim.beam.wavelength_A == 1.4
    assert sim.crystal.volume_scale == 10.0 and sim.response == preset.response
    assert sim.background == preset.background and sim.oversample == preset.oversample
    assert isinstance(Preset.from_dict(preset.to_dict()), Preset)


class TestSimulator:
    def make(self, **changes):
        return Simulator(Detector((16, 16)), Beam(1.5, fluence_photons_per_m2=1e24),
                         Crystal(CELL, ncells=(5, 5, 5)), **changes)

    def test_setting_an_attribute_raises(self):
        sim = self.make()
        with pytest.raises(AttributeError, match="with_"):
            sim.beam = Beam(1.0, fluence_photons_per_m2=1e24)
        assert sim.beam.wavelength_A == 1.5

    def test_with_gives_a_checked_copy(self):
        sim = self.make()
        bright = sim.with_(beam=sim.beam.with_(fluence_photons_per_m2=3e24))
        np.testing.assert_allclose(bright.bragg(), 3 * sim.bragg(), rtol=1e-6)
        with pytest.raises(ValueError, match="compact spot_shape"):
            sim.with_(crystal=sim.crystal.with_(spot_shape="sinc"), method="reflection")
        with pytest.raises(ValueError, match="no parameters"):
            sim.with_(wavelength_A=1.0)

    def test_stats_are_returned(self):
        image, stats = self.make().bragg(return_stats=True)
        assert stats["method"] == "reflection" and stats["spots"] > 0
        np.testing.assert_array_equal(image, self.make().bragg())
