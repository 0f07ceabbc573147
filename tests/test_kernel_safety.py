"""The parallel kernels (Bragg reflection renderer, per-pixel loop, background)
hand errors raised in their worker threads back to Python, and stop promptly
on Ctrl-C."""

import os
import signal
import threading
import time

import numpy as np
import pytest

from diffranet import Beam, Crystal, Detector, Simulator, _core, random_orientation
from diffranet.simulation.background import Background, water
from diffranet.simulation.budget import Budget


def bragg_simulator(n_threads, shape=(48, 48), domains=4, spot_shape="tophat", oversample=2):
    det = Detector(shape=shape, pixel_size_mm=0.172, distance_mm=60.0)
    xtal = Crystal((60, 70, 80, 90, 90, 90), ncells=(5, 5, 5), mosaic_domains=domains, mosaic_spread_deg=0.5,
                   spot_shape=spot_shape, orientation=random_orientation(1))
    # the long renders below exceed the default budget on purpose
    return Simulator(det, Beam(1.5, fluence_photons_per_m2=1e24, beam_size_mm=0.03), xtal, oversample=oversample,
                     n_threads=n_threads, budget=Budget(max_work=1e15, max_memory_bytes=1e15))


RENDERS = {
    "bragg_reflection": lambda n_threads: bragg_simulator(n_threads).bragg(method="reflection"),
    "bragg_pixel": lambda n_threads: bragg_simulator(n_threads).bragg(method="pixel"),
    "background": lambda n_threads: Background((water(10.0),)).render(
        Detector((48, 48), 0.172, 60.0), Beam(1.5, fluence_photons_per_m2=1e24, beam_size_mm=0.03), oversample=2,
        n_threads=n_threads),
}


class TestErrorsInWorkerThreads:
    @pytest.mark.parametrize("kernel", sorted(RENDERS))
    @pytest.mark.parametrize("n_threads", [1, 2])
    def test_allocation_failure_becomes_memory_error(self, kernel, n_threads):
        # every task of the kernel's parallel loop throws std::bad_alloc, as a
        # failing allocation inside a worker thread would; without the guard
        # the exception would leave the OpenMP region and abort the process
        expected = RENDERS[kernel](n_threads)
        assert expected.max() > 0
        _core._inject_failure(kernel)
        try:
            with pytest.raises(MemoryError, match="out of memory"):
                RENDERS[kernel](n_threads)
        finally:
            _core._inject_failure("")
        np.testing.assert_array_equal(RENDERS[kernel](n_threads), expected)

    def test_other_kernels_unaffected(self):
        _core._inject_failure("background")
        try:
            assert RENDERS["bragg_reflection"](2).max() > 0
        finally:
            _core._inject_failure("")


def interrupt_after(seconds):
    """Send SIGINT to this process (as Ctrl-C does) after `seconds`."""
    timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    return timer


LONG_RENDERS = {
    # each would take minutes; Ctrl-C must end it within a fraction of a second
    "bragg_reflection": lambda: bragg_simulator(2, shape=(512, 512), domains=200000, oversample=2).bragg(),
    "bragg_pixel": lambda: bragg_simulator(2, shape=(512, 512), domains=5000, spot_shape="sinc").bragg(),
    "background": lambda: Background((water(10.0),)).render(
        Detector((4096, 4096), 0.05, 60.0), Beam(1.5, fluence_photons_per_m2=1e24, beam_size_mm=0.03), oversample=16, n_threads=2),
}


# slow: it times the stop on the wall clock, which a loaded machine can stretch
@pytest.mark.slow
@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals reach the main thread")
@pytest.mark.parametrize("kernel", sorted(LONG_RENDERS))
def test_ctrl_c_stops_a_long_render(kernel):
    timer = interrupt_after(0.5)
    start = time.perf_counter()
    try:
        with pytest.raises(KeyboardInterrupt):
            LONG_RENDERS[kernel]()
    finally:
        timer.cancel()
    elapsed = time.perf_counter() - start
    # 0.5 s until the signal, then at most one poll interval (0.1 s) and the
    # current work item of each thread; generous for a loaded machine
    assert elapsed < 2.5
    # the core is usable afterwards
    assert RENDERS[kernel](2).max() > 0
