"""Shared fixtures for the benchmarks (run with `pytest benchmarks/`)."""

import pytest

from diffranet import random_orientation
from diffranet.demo import paper_simulator


@pytest.fixture(scope="session")
def paper_orientation():
    return random_orientation(0)


@pytest.fixture
def paper_sim(paper_orientation):
    """Factory for the DiffraNet configuration of the simulator issue (default_F 100)."""

    def make(n_threads=None, **crystal_changes):
        sim = paper_simulator(orientation=paper_orientation, n_threads=n_threads)
        for name, value in crystal_changes.items():
            setattr(sim.crystal, name, value)
        return sim

    return make
