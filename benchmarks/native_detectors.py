"""Score models on frames of real detector sizes, rendered at their own pixel count.

Every training image of the regimes is rendered on the model-input detector (512 x 512 pixels of
172 um). Real frames come from detectors of 1-18 megapixels and reach the model through the
preprocessing. This script renders shots on the detector families of
:data:`diffranet.training.native.FAMILIES` (PILATUS, EIGER, JUNGFRAU, CSPAD-like, MAR345, Rayonix,
a lab CCD), preprocesses them as files are (a quarter without geometry: binned and cropped), and
scores each model beside the ten-peak counter on the same inputs, per family.

Usage::

    python benchmarks/native_detectors.py MODEL [MODEL ...] [--frames N] [--seed S] [--cache DIR]
        [--workers W] [--split test|val] [--hit-threshold P ...]

The frames are rendered once into ``--cache`` (a run that stops resumes); the seed of the shipped
model's training frames is 11, so the default seed 7 scores it on other shots. Prints one JSON line
per model and family, and a Markdown table.
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def scores(hits, truth):
    return {"frames": int(truth.size), "hit_miss": round(float((hits == truth).mean()), 3),
            "recall": round(float(hits[truth].mean()), 3) if truth.any() else None,
            "misses_called_hits": round(float(hits[~truth].mean()), 3) if (~truth).any() else None}


def main(argv=None):
    from diffranet import load_model
    from diffranet.inference.geometry import PAPER_PREPROCESSING
    from diffranet.peaks import PeakFinderHitFinder
    from diffranet.training.native import render_set

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cache", default="native-frames")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--split", default="test", choices=["test", "val"],
                        help="the cache's split: choose a hit threshold on val, report it on test")
    parser.add_argument("--hit-threshold", type=float, action="append", default=[], metavar="P",
                        help="also score each model at this hit threshold (repeat for several)")
    args = parser.parse_args(argv)
    from diffranet.inference import VerdictRule

    models = {m: load_model(m) for m in args.models}
    for name, model in models.items():
        if model.preprocessing != PAPER_PREPROCESSING:
            raise SystemExit(f"{name}: the frames are preprocessed onto the paper's input; this model has another")
    X, y, info = render_set(args.cache, args.split, args.frames, args.seed, workers=args.workers)
    truth = y >= 2
    families = np.array([i["family"] for i in info])
    geometry = np.array([i["geometry_given"] for i in info])
    counter = PeakFinderHitFinder(min_peaks=10).fit(X[:1], [0])  # a fixed threshold: nothing is learnt
    verdicts = {}
    for name, model in models.items():
        proba = model.predict_proba(X)
        verdicts[name] = np.array([v["hit"] for v in model.verdicts(proba)])
        for threshold in args.hit_threshold:
            ruled = model.with_rule(VerdictRule(hit_threshold=threshold))
            verdicts[f"{name} at {threshold:g}"] = np.array([v["hit"] for v in ruled.verdicts(proba)])
    verdicts["ten-peak counter"] = counter.predict(X).astype(bool)
    groups = {"all": np.ones(len(y), bool), "no geometry": ~geometry,
              **{f: families == f for f in dict.fromkeys(families)}}
    rows = []
    for group, where in groups.items():
        for name, hits in verdicts.items():
            rows.append({"group": group, "model": name, **scores(hits[where], truth[where])})
            print(json.dumps(rows[-1]), flush=True)
    print("\n| frames | " + " | ".join(verdicts) + " |\n|---|" + "---|" * len(verdicts))
    for group in groups:
        cells = [r for r in rows if r["group"] == group]
        print(f"| {group} ({cells[0]['frames']}) | "
              + " | ".join(f"{100 * r['hit_miss']:.1f} % ({r['recall']} / {r['misses_called_hits']})" for r in cells)
              + " |")
    return rows


if __name__ == "__main__":
    main()
