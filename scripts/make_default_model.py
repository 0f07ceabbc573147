"""Make the DeepFreak model shipped with diffranet (``diffranet classify --model default``).

From fixed seeds, on a two-core CPU:

1. render the DiffraNet set with the package's generator: preset "diffranet",
   seed 0, 10,000 training, 2,400 validation and 12,600 test images, the set
   ``diffranet dataset --out DATA --seed 0`` makes (an interrupted run
   resumes; ``--data`` reuses a set that command made, and refuses any other);
2. train the "cpu" recipe (:data:`diffranet.models.recipes.RECIPES`) on the
   training split, with early stopping on the validation split and a
   checkpoint every epoch (an interrupted run resumes), as
   ``diffranet train --model deepfreak --data DATA --threads 2 --workers 1``
   does;
3. score it on the validation and test splits (the test images are never
   seen in training or model selection), write the model to
   ``python/diffranet/inference/models/default.dfm``, the learning curve to
   ``docs/images/deepfreak-learning-curve.png`` and a summary (sizes, times,
   scores) to ``WORK/summary.json``.

About 35 minutes for the images and 40 for the training on two free cores.

Usage::

    python scripts/make_default_model.py [--work DIR] [--data DIR]

The same command on the same diffranet version gives the same weights
(training on the CPU is deterministic for any thread count).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL_PATH = ROOT / "python" / "diffranet" / "inference" / "models" / "default.dfm"
CURVE_PATH = ROOT / "docs" / "images" / "deepfreak-learning-curve.png"

#: The data: the paper's split sizes (the generator's defaults), seed 0.
DATA = {"preset": "diffranet", "n_train": 10_000, "n_val": 2_400, "n_test": 12_600, "seed": 0}
TRAIN_SEED = 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="default-model-work", help="folder for the checkpoint and summary "
                        "(and the data without --data)")
    parser.add_argument("--data", help="the DiffraNet set (default: WORK/data, made there when missing)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="processes rendering the data (default: %(default)s)")
    parser.add_argument("--loader-workers", type=int, default=1,
                        help="DataLoader worker processes reading the shards while training (default: %(default)s)")
    parser.add_argument("--epochs", type=int, help="total epochs instead of the recipe's (a rerun with more "
                        "epochs continues from the checkpoint)")
    parser.add_argument("--model", default=str(MODEL_PATH), help="where to write the model (default: in the package)")
    parser.add_argument("--curve", default=str(CURVE_PATH), help="learning-curve PNG (default: in docs/images)")
    args = parser.parse_args(argv)

    from diffranet.dataset.generate import generate_dataset
    from diffranet.models.recipes import RECIPES
    from diffranet.plots import learning_curve_figure
    from diffranet.training.deep import train_deepfreak
    from diffranet.training_history import training_history
    from diffranet.training.metrics import format_confusion

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    data = Path(args.data) if args.data else work / "data"
    start = time.perf_counter()
    generate_dataset(data, workers=args.workers, **DATA)  # resumes; refuses a set made otherwise
    data_seconds = time.perf_counter() - start

    out = work / "default.dfm"
    params = dict(RECIPES["cpu"], device="cpu", n_threads=args.threads, workers=args.loader_workers,
                  random_state=TRAIN_SEED, checkpoint_path=str(work / "default.dfm.checkpoint"), verbose=1)
    if args.epochs is not None:
        params["epochs"] = args.epochs
    model, metrics = train_deepfreak(data, out, log=print, **params)

    Path(args.model).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out, args.model)
    history = training_history(model)
    learning_curve_figure(history, args.curve,
                          title=f"DeepFreak default model (recipe 'cpu', {DATA['n_train']:,} training images)")
    scores = model.validation_scores_
    summary = {
        "data": DATA,
        "recipe": {k: list(v) if isinstance(v, tuple) else v for k, v in RECIPES["cpu"].items()},
        "epochs_asked": params["epochs"],
        "train_seed": TRAIN_SEED,
        "threads": args.threads,
        "data_seconds_this_run": data_seconds,
        "epochs": model.n_epochs_,
        "best_epoch": 1 + max(range(len(scores)), key=scores.__getitem__) if scores else None,
        "history": history,
        "metrics": metrics,
        "model_bytes": Path(args.model).stat().st_size,
    }
    (work / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    test = metrics["test"]
    print(f"test: accuracy {test['accuracy']:.4f}, hit/miss {test['hit_miss_accuracy']:.4f}")
    print(format_confusion(test["confusion_matrix"]))
    print(f"model: {args.model} ({summary['model_bytes']} bytes); curve: {args.curve}; "
          f"summary: {work / 'summary.json'}")


if __name__ == "__main__":
    main()
