"""Make the DeepFreak model shipped with diffranet (``diffranet classify --model default``).

From fixed seeds, on a two-core CPU:

1. render two training sets with the package's generator (an interrupted run
   resumes; ``--regimes`` / ``--paper`` reuse sets those commands made):

   * ``diffranet dataset --preset regimes --seed 0 --n-train 9000 --n-val 800 --n-test 1000``:
     shots whose beam, sample, detector and crystal are drawn from wide
     distributions (:mod:`diffranet.dataset.regimes`);
   * ``diffranet dataset --preset diffranet --seed 0 --n-train 3000 --n-val 200 --n-test 1260``:
     the paper's set-up, so the paper's classes keep their boundaries;

2. train the ``"regimes"`` recipe (:data:`diffranet.models.recipes.RECIPES`:
   the CPU ResNet on the local-significance map) on both training splits,
   with early stopping on both validation splits and a checkpoint every epoch
   (an interrupted run resumes); then fine-tune it (:data:`FINE_TUNE`) with
   the sets of :data:`STAGE2` added: faint crystals, 3-9 detectable spots
   labelled weak (the paper's set-up and the regimes, seed 1), so that a
   crystal a peak finder sees a few spots of is a hit;
3. score it on both test splits (never seen in training or model selection),
   write the model (with its ONNX graph, so it classifies without torch) to
   ``python/diffranet/inference/models/default.dfm``, the learning curve to
   ``docs/images/deepfreak-learning-curve.png`` and a summary to
   ``WORK/summary.json``.

Usage::

    python scripts/make_default_model.py [--work DIR] [--regimes DIR] [--paper DIR]

The same command on the same diffranet version gives the same weights
(training on the CPU is deterministic for any thread count).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODEL_PATH = ROOT / "python" / "diffranet" / "inference" / "models" / "default.dfm"
CURVE_PATH = ROOT / "docs" / "images" / "deepfreak-learning-curve.png"

#: The two training sets: (preset, sizes), seed 0.
DATA = {
    "regimes": {"preset": "regimes", "n_train": 9_000, "n_val": 800, "n_test": 1_000, "seed": 0},
    "paper": {"preset": "diffranet", "n_train": 3_000, "n_val": 200, "n_test": 1_260, "seed": 0},
}
TRAIN_SEED = 0
RECIPE = "regimes"

#: Faint crystals, labelled weak: 3-9 detectable spots (the sets above start at 10). A peak finder
#: sees a few spots, and nanoBragg's detectability (>= 20 pixels above 3 sigma) calls such shots
#: hits; the shipped model learns them in a second, fine-tuning stage. Seed 1: other draws than
#: the sets above.
STAGE2 = {"paper-faint": {"n_train": 1_500, "n_val": 150, "n_test": 0, "seed": 1},
          "regimes-faint": {"n_train": 1_000, "n_val": 100, "n_test": 0, "seed": 1}}


#: The second stage: a few epochs from the first stage's weights at a fifth of its first rate.
FINE_TUNE = {"epochs": 5, "learning_rate": 0.01, "lr_step_epochs": 3}


def stage2_presets():
    """The presets of :data:`STAGE2`: the paper's set-up and the regimes with every shot a crystal of
    3-9 detectable spots by the same rule (k sigma, pixels per spot)."""
    from diffranet.dataset.labels import LabelThresholds
    from diffranet.dataset.presets import PRESETS
    from diffranet.dataset.regimes import Regimes

    paper = PRESETS["diffranet"]
    labels = dataclasses.replace(paper.labels, weak_min=3, good_min=10)
    only_weak = (0.0, 0.0, 1.0, 0.0, 0.0)
    return {"paper-faint": paper.with_(name="diffranet-faint", labels=labels,
                                       shots=dataclasses.replace(paper.shots, class_fractions=only_weak)),
            "regimes-faint": Regimes(name="regimes-faint", labels=LabelThresholds(weak_min=3, good_min=10),
                                     class_fractions=only_weak)}


def train_default(train, val, tests, out, *, threads=2, checkpoint=None, epochs=None, log=print, data=None,
                  changes=None):
    """Fit the recipe on ``train`` = (X, y), select on ``val``, score on ``tests`` (name -> (X, y)), save ``out``.

    Returns (model, scores).
    """
    from diffranet.classes import CLASS_NAMES
    from diffranet.inference import save_model
    from diffranet.inference.geometry import PAPER_PREPROCESSING
    from diffranet.models import DeepFreakClassifier
    from diffranet.models.recipes import RECIPES
    from diffranet.training.metrics import split_scores

    params = dict(RECIPES[RECIPE], device="cpu", n_threads=threads, random_state=TRAIN_SEED,
                  checkpoint_path=checkpoint, verbose=1)
    if epochs is not None:
        params["epochs"] = epochs
    params.update(changes or {})
    X, y = train
    log(f"training on {len(y)} images ({np.bincount(y, minlength=5).tolist()} per class), "
        f"validating on {len(val[1])}")
    start = time.perf_counter()
    model = DeepFreakClassifier(**params).fit(X, y, validation=val)
    seconds = time.perf_counter() - start
    scores = {name: split_scores(model, Xs, ys) for name, (Xs, ys) in tests.items()}
    for name, s in scores.items():
        log(f"{name}: accuracy {s['accuracy']:.4f}, hit/miss {s['hit_miss_accuracy']:.4f}")
    recipe = {k: list(v) if isinstance(v, tuple) else v for k, v in RECIPES[RECIPE].items()}
    if changes:
        recipe["fine_tune"] = {k: v for k, v in changes.items() if k != "init"}
    save_model(model, out, class_names=CLASS_NAMES, preprocessing=PAPER_PREPROCESSING,
               training={"data": data or {}, "recipe": recipe, "train_seed": TRAIN_SEED,
                         "n_images": int(len(y)), "class_counts": np.bincount(y, minlength=5).tolist(),
                         "train_seconds": seconds, "epochs": model.n_epochs_,
                         "scores": {name: {k: s[k] for k in ("accuracy", "hit_miss_accuracy")}
                                    for name, s in scores.items()}})
    return model, scores, seconds


def fine_tune(base, train, val, tests, out, *, threads=2, checkpoint=None, log=print, data=None):
    """Second stage: start from ``base`` (the first stage's DeepFreakClassifier) and fit a few epochs at a
    lower rate on ``train``, which adds the :data:`STAGE2` sets; save ``out`` like :func:`train_default`."""
    changes = dict(init=base, epochs=FINE_TUNE["epochs"], learning_rate=FINE_TUNE["learning_rate"],
                   lr_step_epochs=FINE_TUNE["lr_step_epochs"])
    return train_default(train, val, tests, out, threads=threads, checkpoint=checkpoint, log=log,
                         data=data, changes=changes)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="default-model-work", help="folder for the data, checkpoint and summary")
    parser.add_argument("--regimes", help="the regimes set (default: WORK/regimes, made there when missing)")
    parser.add_argument("--paper", help="the paper-preset set (default: WORK/paper, made there when missing)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="processes rendering the data (default: %(default)s)")
    parser.add_argument("--epochs", type=int, help="total epochs instead of the recipe's")
    parser.add_argument("--model", default=str(MODEL_PATH), help="where to write the model (default: in the package)")
    parser.add_argument("--curve", default=str(CURVE_PATH), help="learning-curve PNG (default: in docs/images)")
    args = parser.parse_args(argv)

    from diffranet.dataset.generate import generate_dataset
    from diffranet.dataset.loader import load_arrays
    from diffranet.plots import learning_curve_figure
    from diffranet.training_history import training_history

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    dirs = {"regimes": Path(args.regimes or work / "regimes"), "paper": Path(args.paper or work / "paper"),
            **{name: work / name for name in STAGE2}}
    for name, settings in DATA.items():
        generate_dataset(dirs[name], workers=args.workers, **settings)  # resumes; refuses a set made otherwise
    presets = stage2_presets()
    for name, settings in STAGE2.items():
        generate_dataset(dirs[name], preset=presets[name], workers=args.workers, **settings)
    splits = {name: {s: load_arrays(d, s) for s in ("train", "val", "test") if s != "test" or name in DATA}
              for name, d in dirs.items()}
    tests = {f"{n} test": splits[n]["test"] for n in DATA}

    def union(split, names):
        return (np.concatenate([splits[n][split][0] for n in names]),
                np.concatenate([splits[n][split][1] for n in names]))

    # stage 1: the regimes and the paper's set-up, from random weights
    first = work / "stage1.dfm"
    model, _, seconds = train_default(union("train", DATA), union("val", DATA), tests, first, threads=args.threads,
                                      checkpoint=str(work / "stage1.dfm.checkpoint"), epochs=args.epochs, data=DATA)
    # stage 2: add the faint crystals and fine-tune
    out = work / "default.dfm"
    data = {**DATA, **{n: {**STAGE2[n], "preset": presets[n].to_dict()} for n in STAGE2}}
    model, scores, seconds2 = fine_tune(model, union("train", dirs), union("val", dirs), tests, out,
                                              threads=args.threads, checkpoint=str(work / "default.dfm.checkpoint"),
                                              data=data)
    Path(args.model).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out, args.model)
    history = training_history(model)
    learning_curve_figure(history, args.curve, title=f"DeepFreak default model (recipe {RECIPE!r}, stage 2)")
    summary = {"data": data, "recipe": RECIPE, "fine_tune": FINE_TUNE, "train_seed": TRAIN_SEED,
               "threads": args.threads, "train_seconds": [seconds, seconds2], "epochs": model.n_epochs_,
               "history": history, "scores": scores, "model_bytes": Path(args.model).stat().st_size}
    (work / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(f"model: {args.model}; curve: {args.curve}; summary: {work / 'summary.json'}")


if __name__ == "__main__":
    main()
