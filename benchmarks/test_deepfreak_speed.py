"""Training and inference speed of DeepFreak on the CPU.

Run with ``pytest benchmarks/test_deepfreak_speed.py`` (add ``-s`` to see the
rates as they are measured; ``--benchmark-json FILE`` keeps them). Rates are
in images/s of the input size, over the threads torch may use. Two networks:

- "paper": the published DeepFreak (ResNet-50, width 64, stage strides
  1, 2, 3, 3; the 7 x 7 head pool at 512 px, global pooling below, where a
  7 x 7 pool no longer fits);
- "small": ResNet-18 of width 16 with the same strides, a CPU-sized network.

Training is one epoch of SGD in batches of 8 (batch size changes the rate
little on a CPU); inference is ``predict_proba`` in batches of 64.
"""

import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from diffranet import DeepFreakClassifier  # noqa: E402

THREADS = [1, 2]
SIZES = [64, 128, 512]
NETWORKS = {
    "paper": {"depth": 50, "width": 64},
    "small": {"depth": 18, "width": 16},
}
# Images per timed training epoch / prediction call, by input size.
N_TRAIN = {64: 64, 128: 32, 512: 8}
N_PREDICT = {64: 256, 128: 128, 512: 16}
REQUIRED_RATE = 200.0  # images/s: the small network at 64 px on two threads (real-time screening)


def _classifier(network, size, n_threads, epochs=1):
    return DeepFreakClassifier(
        **NETWORKS[network],
        stage_strides=(1, 2, 3, 3),
        head_pool_size=7 if size >= 512 else None,
        input_size=size,
        epochs=epochs,
        batch_size=8,
        learning_rate=0.01,
        momentum=0.9,
        n_threads=n_threads,
        device="cpu",
        random_state=0,
    )


def _images(n, size, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, size, size), dtype=np.uint8), np.arange(n) % 5


_FITTED = {}


@pytest.fixture(scope="module", autouse=True)
def warm_up():
    """One small fit and prediction first: torch's first calls allocate and pick kernels."""
    X, y = _images(16, 64)
    _classifier("small", 64, 1).fit(X, y).predict_proba(X)


def _fitted(network, size, n_threads):
    """A classifier trained for one epoch, and the training rate of that epoch (cached)."""
    key = (network, size, n_threads)
    if key not in _FITTED:
        X, y = _images(N_TRAIN[size], size)
        clf = _classifier(network, size, n_threads)
        start = time.perf_counter()
        clf.fit(X, y)
        _FITTED[key] = clf, len(X) / (time.perf_counter() - start)
    return _FITTED[key]


@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("network", list(NETWORKS))
def test_training(benchmark, network, size, n_threads):
    X, y = _images(N_TRAIN[size], size)
    clf = _classifier(network, size, n_threads)
    start = time.perf_counter()
    benchmark.pedantic(clf.fit, args=(X, y), rounds=1, iterations=1)
    stats = getattr(benchmark, "stats", None)
    rate = len(X) / (stats.stats.median if stats is not None else time.perf_counter() - start)
    _FITTED[(network, size, n_threads)] = clf, rate  # test_inference reuses this fit
    benchmark.extra_info.update(images=len(X), images_per_s=rate)
    print(f"\ntrain {network} {size}px {n_threads} thread(s): {rate:.1f} images/s")


@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("network", list(NETWORKS))
def test_inference(benchmark, network, size, n_threads):
    clf, _ = _fitted(network, size, n_threads)
    X, _ = _images(N_PREDICT[size], size, seed=1)
    start = time.perf_counter()
    clf.predict_proba(X)
    fallback = time.perf_counter() - start
    benchmark.pedantic(clf.predict_proba, args=(X,), rounds=5, iterations=1)
    stats = getattr(benchmark, "stats", None)
    rate = len(X) / (stats.stats.median if stats is not None else fallback)
    benchmark.extra_info.update(images=len(X), images_per_s=rate)
    print(f"\npredict {network} {size}px {n_threads} thread(s): {rate:.1f} images/s")


def test_small_network_is_real_time():
    """The small network classifies at least 200 images/s of 64 px on two threads."""
    clf, _ = _fitted("small", 64, 2)
    X, _ = _images(512, 64, seed=2)
    clf.predict_proba(X[:64])
    start = time.perf_counter()
    clf.predict_proba(X)
    rate = len(X) / (time.perf_counter() - start)
    print(f"\nsmall 64px, 2 threads: {rate:.0f} images/s")
    assert rate >= REQUIRED_RATE
