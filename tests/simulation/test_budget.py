"""The render budget: estimates bound the real work, and what exceeds the budget is refused up front."""

import logging
import math
import threading

import numpy as np
import pytest

from diffranet import Beam, Crystal, Detector, Simulator
from diffranet.simulation.background import Background
from diffranet.simulation.budget import FLOAT32_MAX, Budget, check, check_photons, estimate, progress
from diffranet.dataset import paper_ccd

LARGE = Budget(max_work=1e15, max_memory_bytes=1e15)


def crystal(**changes):
    params = dict(cell=(50, 60, 70, 90, 90, 90), ncells=(5, 5, 5))
    params.update(changes)
    return Crystal(**params)


class TestEstimate:
    def test_pixel_work_is_subpixels_sources_domains(self):
        sim = Simulator(Detector((12, 17)), Beam(1.0, fluence_photons_per_m2=1e24, dispersion=0.01, dispersion_steps=3,
                                                 divergence_steps=2), crystal(mosaic_domains=7), oversample=3,
                        method="pixel")
        assert estimate(sim).work == 12 * 17 * 9 * (3 * 4) * 7

    @pytest.mark.parametrize("changes", [
        dict(), dict(mosaic_domains=40, mosaic_spread_deg=2.0), dict(spot_shape="gauss", ncells=(3, 8, 2)),
        dict(cell=(20, 30, 25, 80, 95, 110), mosaic_domains=10, mosaic_spread_deg=5.0, mosaic_distribution="gauss"),
    ])
    @pytest.mark.parametrize("wavelength_A", [0.6, 1.5])
    def test_reflection_estimate_bounds_the_renderer(self, changes, wavelength_A):
        sim = Simulator(Detector((48, 40), 0.172, 60.0), Beam(wavelength_A, fluence_photons_per_m2=1e24), crystal(**changes),
                        oversample=2, method="reflection", budget=LARGE)
        cost = estimate(sim)
        _, stats = sim.bragg(seed=1, return_stats=True)
        subpixels = next(v for k, v in cost.work_terms.items() if k.startswith("spot subpixels"))
        assert stats["subpixels_tested"] <= subpixels
        spots = next(v for k, v in cost.work_terms.items() if k.startswith("spots"))
        assert stats["spots"] <= spots

    def test_photon_bound_holds(self):
        sim = Simulator(Detector((32, 32), 0.172, 50.0), Beam(1.0, fluence_photons_per_m2=1e24, beam_size_mm=0.03),
                        crystal(mosaic_domains=3, mosaic_spread_deg=0.5, volume_scale=3.0), background=Background())
        result = sim.simulate(seed=2)
        assert 0 < result.expected.max() <= estimate(sim).max_photons


class TestCheck:
    def test_too_many_reflections_is_refused_with_the_cause(self):
        # 1e-6 mm pixels at 1e-3 mm and lambda 1e-4 A used to allocate until the machine ran out of memory
        sim = Simulator(Detector((2, 64), 1e-6, 1e-3), Beam(1e-4, fluence_photons_per_m2=1e24), crystal())
        with pytest.raises(ValueError, match=r"(evaluations|GiB).*(candidate reflections|spot subpixels).*wavelength_A"):
            sim.simulate()
        with pytest.raises(ValueError, match="budget"):
            sim.bragg()

    def test_too_much_work_is_refused_and_the_budget_can_be_raised(self):
        det, beam = Detector((16, 16)), Beam(1.0, fluence_photons_per_m2=1e24)
        xtal = crystal(mosaic_domains=20, spot_shape="sinc")
        with pytest.raises(ValueError, match=r"about 5.1e\+03 evaluations.*max_work=1e\+03.*mosaic_domains"):
            Simulator(det, beam, xtal, budget=Budget(max_work=1000)).bragg()
        image = Simulator(det, beam, xtal, budget=Budget(max_work=1e4)).bragg()
        assert np.isfinite(image).all()

    def test_memory_of_a_huge_detector_is_refused(self):
        sim = Simulator(Detector((100_000, 100_000)), Beam(1.0, fluence_photons_per_m2=1e24), crystal(), oversample=4,
                        budget=Budget(max_work=1e20))
        with pytest.raises(ValueError, match="GiB of memory.*subpixel"):
            sim.simulate()

    def test_fiber_psf_memory_is_counted(self):
        sim = Simulator(Detector((4000, 4000)), Beam(1.0, fluence_photons_per_m2=1e24), None, response=paper_ccd())
        assert any("fiber PSF" in name for name in estimate(sim).memory_terms)
        with pytest.raises(ValueError, match="fiber PSF"):
            check(sim, Budget(max_memory_bytes=2e9))

    @pytest.mark.parametrize("changes, factor", [
        (dict(default_F=1e30), r"\|F\|\^2"), (dict(volume_scale=1e300), "volume_scale"),
        (dict(default_F=1e200), r"\|F\|\^2"),
    ])
    def test_overflowing_photons_are_refused(self, changes, factor):
        # default_F=1e30 used to return inf
        sim = Simulator(Detector((16, 16)), Beam(1.0, fluence_photons_per_m2=1e24), crystal(**changes))
        with pytest.raises(ValueError, match=f"float32.*{factor}"):
            sim.simulate()

    def test_fluence_overflow_is_refused(self):
        sim = Simulator(Detector((16, 16)), Beam(1.0, fluence_photons_per_m2=1e300), crystal())
        with pytest.raises(ValueError, match="fluence"):
            sim.bragg()

    def test_largest_accepted_photons_stay_finite(self):
        xtal = crystal(default_F=1e10)
        det, beam = Detector((16, 16), 0.172, 80.0), Beam(1.0, fluence_photons_per_m2=1e24)
        bound = estimate(Simulator(det, beam, xtal)).max_photons
        scale = FLOAT32_MAX / 32 / bound
        image = Simulator(det, beam, crystal(default_F=1e10, volume_scale=scale)).bragg()
        assert np.isfinite(image).all() and image.max() > 0

    def test_no_possible_reflection_gives_zeros(self):
        # a wavelength longer than twice the largest d-spacing: only the forward (000) reflection is on the
        # Ewald sphere, and its spot (about 7 degrees wide for 50 cells) misses a detector at 2theta ~ 30 deg
        sim = Simulator(Detector((16, 16), 0.172, 50.0, beam_center_mm=(-30.0, 1.4)), Beam(500.0, fluence_photons_per_m2=1e24),
                        crystal(ncells=(50, 50, 50), mosaic_domains=5, mosaic_spread_deg=3.0))
        for method in ("reflection", "pixel"):
            np.testing.assert_array_equal(sim.bragg(method=method), 0.0)
        np.testing.assert_array_equal(sim.simulate().expected, 0.0)

    @pytest.mark.parametrize("budget", [dict(max_work=0), dict(max_memory_bytes=-1.0), dict(progress_after_s=math.nan)])
    def test_budget_validation(self, budget):
        with pytest.raises(ValueError):
            Budget(**budget)

    def test_simulator_budget_type(self):
        with pytest.raises(ValueError, match="budget"):
            Simulator(Detector((4, 4)), Beam(1.0, fluence_photons_per_m2=1.0), budget=1e9)


class TestCheckPhotons:
    @pytest.mark.parametrize("value, message", [(np.inf, "overflowed"), (np.nan, "overflowed"), (-1.0, ">= 0")])
    def test_refuses(self, value, message):
        image = np.ones((3, 3), np.float32)
        image[1, 2] = value
        with pytest.raises(ValueError, match=message):
            check_photons(image)

    def test_passes_finite_non_negative(self):
        image = np.zeros((2, 2), np.float32)
        assert check_photons(image) is image


class _ProgressSeen(logging.Handler):
    """Sets ``seen`` when a progress message ("... so far ...") is logged."""

    def __init__(self):
        super().__init__()
        self.seen = threading.Event()

    def emit(self, record):
        if "so far" in record.getMessage():
            self.seen.set()


class TestProgress:
    def test_long_render_logs_progress(self, caplog):
        cost = estimate(Simulator(Detector((4, 4)), Beam(1.0, fluence_photons_per_m2=1.0), crystal()))
        logger, handler = logging.getLogger("diffranet.simulation.budget"), _ProgressSeen()
        logger.addHandler(handler)
        try:
            with caplog.at_level(logging.INFO, logger="diffranet.simulation.budget"):
                with progress("test render", cost, Budget(progress_after_s=0.02)):
                    assert handler.seen.wait(60.0), "no progress message while the block ran"
        finally:
            logger.removeHandler(handler)
        messages = [r.getMessage() for r in caplog.records]
        assert any("test render" in m and "so far" in m for m in messages)
        assert messages[-1].startswith("test render: done in")

    def test_short_render_logs_nothing(self, caplog):
        sim = Simulator(Detector((8, 8)), Beam(1.0, fluence_photons_per_m2=1e24), crystal())
        with caplog.at_level(logging.INFO, logger="diffranet.simulation.budget"):
            sim.bragg()
        assert not caplog.records


def test_overflow_before_volume_scale_is_refused():
    # the Bragg image is rendered, then scaled: a zero volume_scale must not hide an overflowing render
    sim = Simulator(Detector((1, 1)), Beam(1.5, fluence_photons_per_m2=1e24), crystal(ncells=(1, 1, 1), default_F=1e25,
                                                                       volume_scale=0.0))
    with pytest.raises(ValueError, match="float32"):
        sim.simulate()
