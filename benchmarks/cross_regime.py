"""Score a model on a detector kind it never saw: train without it, test on it, beside the peak counter.

The regimes set (``diffranet dataset --preset regimes``) stores each shot's drawn set-up; this
script trains the ``"regimes"`` recipe on the training shots of every detector kind but one
and scores hit / miss on the test shots of that kind, beside the same recipe trained on all
kinds and beside the ten-peak counter (``PeakFinderHitFinder(min_peaks=10)``) on the same
images. A model that learned one detector's noise loses its accuracy on the held-out kind; one
that learned spots keeps it.

Usage::

    python benchmarks/cross_regime.py --data REGIMES_DIR [--hold-out integrating] [--epochs 8]

Prints one table row per model (markdown).
"""

from __future__ import annotations

import argparse
import json

import numpy as np

HIT = np.array([False, False, True, True, True])


def detector_kinds(table):
    """Detector kind of each shot of a regimes split (from its stored set-up)."""
    return np.array([json.loads(bytes(row["setup"]).decode())["detector_kind"] for row in table])


def hit_miss(predicted_hit, labels):
    """Hit / miss accuracy, hit recall and the share of misses called hits."""
    truth = HIT[labels]
    return {"hit_miss": float((predicted_hit == truth).mean()), "recall": float(predicted_hit[truth].mean()),
            "misses_called_hits": float(predicted_hit[~truth].mean())}


def peak_counter():
    """The ten-peak counter, fitted (it learns nothing but the class names)."""
    from diffranet.peaks import PeakFinderHitFinder

    X = np.zeros((2, 512, 512), np.uint8)
    return PeakFinderHitFinder(min_peaks=10).fit(X, np.array([0, 1]))


def cross_regime(train, val, test, kinds_train, kinds_test, hold_out, epochs, threads=2):
    """Rows of scores: the recipe without ``hold_out``, with every kind, and the peak counter, on ``hold_out``."""
    from diffranet.models import DeepFreakClassifier
    from diffranet.models.recipes import RECIPES

    seen = kinds_train != hold_out
    Xt, yt = test[0][kinds_test == hold_out], test[1][kinds_test == hold_out]
    rows = {}
    for name, keep in ((f"trained without {hold_out}", seen), ("trained on every kind", np.ones_like(seen))):
        params = dict(RECIPES["regimes"], epochs=epochs, lr_step_epochs=max(epochs // 3, 1), n_threads=threads,
                      random_state=0, verbose=0)
        model = DeepFreakClassifier(**params).fit(train[0][keep], train[1][keep], validation=val)
        rows[name] = hit_miss(np.isin(model.predict(Xt), (2, 3, 4)), yt)
    rows["ten-peak counter"] = hit_miss(peak_counter().predict(Xt) == 1, yt)
    return rows, len(yt)


def main(argv=None):
    from diffranet.dataset.loader import load_arrays

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a regimes dataset (diffranet dataset --preset regimes)")
    parser.add_argument("--hold-out", default="integrating", choices=("photon_counting", "integrating", "ccd"))
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args(argv)
    X, y, table = load_arrays(args.data, "train", metadata=True)
    val = load_arrays(args.data, "val")
    Xt, yt, table_t = load_arrays(args.data, "test", metadata=True)
    rows, n = cross_regime((X, y), val, (Xt, yt), detector_kinds(table), detector_kinds(table_t), args.hold_out,
                           args.epochs)
    print(f"| on {n} test shots of {args.hold_out} detectors | hit / miss | hit recall | misses called hits |")
    print("| --- | --- | --- | --- |")
    for name, s in rows.items():
        print(f"| {name} | {s['hit_miss']:.1%} | {s['recall']:.3f} | {s['misses_called_hits']:.1%} |")


if __name__ == "__main__":
    main()
