"""Shared fixtures for the benchmarks (run with `pytest benchmarks/`)."""

import pytest

from diffranet import random_orientation
from diffranet.dataset.presets import PRESETS

#: The paper's set-up with uniform structure factors (default_F 100): the renderers' speed does not
#: depend on the amplitudes, and the table need not be built.
PAPER_UNIFORM_F = PRESETS["diffranet"].with_(structure_factors=None)


@pytest.fixture(scope="session")
def paper_orientation():
    return random_orientation(0)


@pytest.fixture
def paper_sim(paper_orientation):
    """Factory for the Bragg-only simulator of the paper's set-up; keywords change the preset."""

    def make(n_threads=None, **preset_changes):
        return PAPER_UNIFORM_F.with_(**preset_changes).simulator(paper_orientation, background=False,
                                                                  response=False, n_threads=n_threads)

    return make
