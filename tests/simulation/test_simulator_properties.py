"""Property-based test: any parameters give an image or a clear ValueError, within a work and memory bound.

Parameters are drawn as a careless or adversarial user would choose them:
each is a plain value, an extreme of its range, or anything log-uniformly in
between (pixel 1e-6 to 1e3 mm, distance 1e-3 to 1e6 mm, wavelength 1e-4 to
1e4 A, fluence 0 to 1e40, cell edges 0.5 to 1e4 A with odd angles, 1 to 200
cells, 1 to 50 domains spread 0 to 360 degrees, F 0 to 1e30, with or without
background and detector response) on detectors of 1 x 1 to 16 x 16 pixels.

Every ``simulate()`` must return finite, non-negative expected photons and
counts, or raise ``ValueError`` (refused parameters, or a render beyond the
budget) - never another exception, an overflow, or an open-ended run - and a
share of the examples must give an image (a simulator that refused everything
would otherwise pass). The
default run keeps each render within a small ``Budget`` in-process; the slow
run repeats it with more examples in a subprocess whose address space is
capped (``RLIMIT_AS``), so a render that allocated beyond its estimate would
fail there with MemoryError instead of exhausting the machine. Outcome counts
are reported by ``--hypothesis-show-statistics``.
"""

import math
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from diffranet import Beam, Crystal, Detector, Simulator
from diffranet.simulation.background import Background
from diffranet.simulation.budget import Budget
from diffranet.dataset import paper_ccd
from diffranet.simulation.response import CCDResponse, PixelArrayResponse
from property_outcomes import REFUSED, Outcomes

# the slow variant runs this file again in a subprocess with these raised
EXAMPLES = int(os.environ.get("DIFFRANET_PROPERTY_EXAMPLES", "60"))
MAX_WORK = float(os.environ.get("DIFFRANET_PROPERTY_MAX_WORK", "3e5"))
BUDGET = Budget(max_work=MAX_WORK, max_memory_bytes=256 * 2**20)
#: Least share of the examples that must give an image (about two thirds do).
MIN_IMAGE_SHARE = 0.3
ADDRESS_SPACE_BYTES = 6 * 2**30


def log_uniform(lo, hi):
    return st.floats(math.log10(lo), math.log10(hi)).map(lambda e: 10.0**e)


def plain_or_extreme(plain, lo, hi, zero=False):
    """The plain value, an end of the range (or 0), or anything log-uniformly between."""
    ends = [lo, hi] + ([0.0] if zero else [])
    return st.one_of(st.just(plain), st.sampled_from(ends), log_uniform(lo, hi))


angles = st.one_of(st.just(90.0), st.sampled_from([1.0, 60.0, 120.0, 179.0]), st.floats(0.5, 179.5))

parameters = st.fixed_dictionaries({
    "detector": st.fixed_dictionaries({
        "shape": st.tuples(st.integers(1, 16), st.integers(1, 16)),
        "pixel_size_mm": plain_or_extreme(0.172, 1e-6, 1e3),
        "distance_mm": plain_or_extreme(80.0, 1e-3, 1e6),
        "rotation_deg": st.one_of(st.just((0.0, 0.0, 0.0)), st.tuples(*[st.floats(-180, 180)] * 3)),
    }),
    "beam": st.fixed_dictionaries({
        "wavelength_A": plain_or_extreme(1.5, 1e-4, 1e4),
        "fluence_photons_per_m2": plain_or_extreme(1e24, 1e-10, 1e40, zero=True),
        "beam_size_mm": st.one_of(st.none(), plain_or_extreme(0.03, 1e-6, 1e3)),
        "polarization_fraction": st.floats(0.0, 1.0),
        "dispersion": st.one_of(st.just(0.0), st.floats(0.0, 0.99)),
        "dispersion_steps": st.integers(1, 3),
        "divergence_mrad": st.one_of(st.just(0.0), st.floats(0.0, 100.0)),
        "divergence_steps": st.integers(1, 3),
    }),
    "crystal": st.one_of(st.none(), st.fixed_dictionaries({
        "cell": st.tuples(*[plain_or_extreme(50.0, 0.5, 1e4)] * 3, angles, angles, angles),
        "ncells": st.tuples(*[st.integers(1, 200)] * 3),
        "mosaic_domains": st.integers(1, 50),
        "mosaic_spread_deg": st.one_of(st.just(0.0), st.floats(0.0, 360.0)),
        "mosaic_distribution": st.sampled_from(["tophat", "gauss"]),
        "spot_shape": st.sampled_from(["tophat", "gauss", "sinc", "round"]),
        "default_F": plain_or_extreme(100.0, 1e-3, 1e30, zero=True),
        "volume_scale": plain_or_extreme(1.0, 1e-6, 1e12, zero=True),
    })),
    "oversample": st.integers(1, 3),
    "method": st.sampled_from(["auto", "pixel"]),
    "background": st.booleans(),
    "response": st.sampled_from(["none", "paper_ccd", "gauss_ccd", "pixel_array"]),
})

RESPONSES = {
    "none": lambda: None,
    "paper_ccd": paper_ccd,
    "gauss_ccd": lambda: CCDResponse(psf="gauss", flicker_rms=1.0),
    "pixel_array": lambda: PixelArrayResponse(module_shape=(4, 5), gap_px=1),
}


def simulate(params):
    """Build everything from ``params`` and simulate one shot: the result, or the ValueError raised."""
    try:
        crystal = None if params["crystal"] is None else Crystal(**params["crystal"])
        sim = Simulator(Detector(**params["detector"]), Beam(**params["beam"]), crystal,
                        oversample=params["oversample"], method=params["method"], n_threads=1,
                        background=Background() if params["background"] else None,
                        response=RESPONSES[params["response"]](), budget=BUDGET)
        return sim.simulate(seed=7)
    except ValueError as error:
        return error


def test_simulate_gives_finite_photons_or_value_error():
    outcomes = Outcomes()

    @seed(20261130)
    @settings(max_examples=EXAMPLES, deadline=None, database=None, print_blob=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(params=parameters)
    def simulate_once(params):
        result = simulate(params)
        if isinstance(result, ValueError):
            message = str(result)
            outcomes.record(REFUSED, "over budget" if "budget" in message
                            else "photons overflow" if "float32" in message else "parameters")
            return
        outcomes.record("image")
        for name in ("bragg", "background", "expected", "counts"):
            values = getattr(result, name)
            assert values.shape == tuple(params["detector"]["shape"])
            assert np.isfinite(values).all(), name
            assert values.min() >= 0, name
        assert result.image8.dtype == np.uint8

    simulate_once()
    outcomes.require("image", MIN_IMAGE_SHARE)


@pytest.mark.slow
def test_more_examples_under_an_address_space_cap():
    code = (
        "import resource, sys, pytest\n"
        f"resource.setrlimit(resource.RLIMIT_AS, ({ADDRESS_SPACE_BYTES}, {ADDRESS_SPACE_BYTES}))\n"
        f"sys.exit(pytest.main([{__file__!r}, '-q', '-p', 'no:cacheprovider', '-m', 'not slow',\n"
        "                      '--hypothesis-show-statistics']))\n"
    )
    env = dict(os.environ, DIFFRANET_PROPERTY_EXAMPLES="400", DIFFRANET_PROPERTY_MAX_WORK="2e7",
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=3600)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
