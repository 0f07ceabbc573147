"""Score models where they were not made, beside the ten-peak counter on the same inputs.

Sets (each optional): the test split of a regimes set and of a paper-preset set (``diffranet
dataset`` directories), and frames rendered by another simulator (a folder of ``.npz`` files with
``image8`` and ``hit``, such as nanoBragg + nonBragg + noisify frames). Real frames are scored
through ``diffranet evaluate --data FRAMES.csv`` (their files, labels and geometry).

Usage::

    python benchmarks/where_not_made.py MODEL [MODEL ...] [--regimes DIR] [--paper DIR]
        [--npz-frames DIR]

Prints one JSON line of scores per model (hit / miss accuracy, hit recall, share of misses called
hits; five-class accuracy where the set has five classes; per detector kind on regimes).
"""

from __future__ import annotations

import argparse
import glob
import json
from pathlib import Path

import numpy as np

HIT = np.array([False, False, True, True, True])


def scores(hit, truth):
    return {"hit_miss": round(float((hit == truth).mean()), 4), "recall": round(float(hit[truth].mean()), 4),
            "misses_called_hits": round(float(hit[~truth].mean()), 4) if (~truth).any() else None}


def main(argv=None):
    from diffranet import load_model
    from diffranet.dataset.loader import load_arrays
    from diffranet.inference import VerdictRule
    from diffranet.peaks import PeakFinderHitFinder

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--regimes")
    parser.add_argument("--paper")
    parser.add_argument("--npz-frames")
    args = parser.parse_args(argv)

    sets = {}
    if args.regimes:
        X, y, table = load_arrays(args.regimes, "test", metadata=True)
        kinds = np.array([json.loads(bytes(r["setup"]).decode())["detector_kind"] for r in table])
        sets["regimes"] = (X, y, kinds)
    if args.paper:
        X, y = load_arrays(args.paper, "test")
        sets["paper"] = (X, y, None)
    if args.npz_frames:
        files = sorted(glob.glob(str(Path(args.npz_frames) / "*.npz")))
        sets["npz_frames"] = (np.stack([np.load(f)["image8"] for f in files]),
                              np.array([4 if np.load(f)["hit"] else 1 for f in files]), None)

    counter = PeakFinderHitFinder(min_peaks=10).fit(np.zeros((2, 512, 512), np.uint8), np.array([0, 1]))
    models = {path: load_model(path) for path in args.models}
    runs = {path: (m.predict_proba, m.class_names) for path, m in models.items()}
    runs["ten-peak counter"] = (counter.predict_proba, ("miss", "hit"))
    for name, (predict_proba, class_names) in runs.items():
        row = {}
        for set_name, (X, y, kinds) in sets.items():
            proba = predict_proba(X)
            labels, hit = VerdictRule().decide(proba, class_names)  # the verdicts `classify` gives
            row[set_name] = scores(hit, HIT[y])
            if len(class_names) == 5 and set_name in ("regimes", "paper"):
                row[set_name]["five_class"] = round(float((labels == y).mean()), 4)
            if kinds is not None:
                for kind in np.unique(kinds):
                    row[set_name][kind] = scores(hit[kinds == kind], HIT[y][kinds == kind])["hit_miss"]
        print(json.dumps({"model": name, **row}), flush=True)


if __name__ == "__main__":
    main()
