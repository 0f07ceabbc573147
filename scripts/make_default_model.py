"""Make the DeepFreak model shipped with diffranet (``diffranet classify --model default``).

From fixed seeds, on one CPU core:

1. render a training set with the package's generator (preset "diffranet",
   512 x 512 px; 2,000 training, 400 validation and 1,000 test images, seed
   2026) into ``WORK/data`` (an interrupted run resumes);
2. train the "cpu" recipe (:data:`diffranet.models.recipes.RECIPES`) on the
   training split, early-stopped on the validation split, checkpointing
   every epoch (an interrupted run resumes);
3. score it on the test split, which played no part in training or model
   selection, write the model to ``python/diffranet/inference/models/default.dfm``,
   the learning curve to ``docs/images/deepfreak-learning-curve.png`` and a
   summary (sizes, times, scores) to ``WORK/summary.json``.

Usage::

    python scripts/make_default_model.py [--work DIR] [--threads 1]

The same command on the same diffranet version gives the same model file
contents (weights identical; the file's creation time differs).
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

DATA = {"preset": "diffranet", "n_train": 2000, "n_val": 400, "n_test": 1000, "seed": 2026}
TRAIN_SEED = 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="default-model-work", help="folder for the data, checkpoint and summary")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=1, help="processes rendering the data (default: %(default)s)")
    parser.add_argument("--loader-workers", type=int, default=0,
                        help="DataLoader worker processes reading the shards while training (default: %(default)s)")
    parser.add_argument("--model", default=str(MODEL_PATH), help="where to write the model (default: in the package)")
    parser.add_argument("--curve", default=str(CURVE_PATH), help="learning-curve PNG (default: in docs/images)")
    args = parser.parse_args(argv)

    from diffranet.dataset.generate import generate_dataset
    from diffranet.models.recipes import RECIPES
    from diffranet.training.curves import plot_learning_curve
    from diffranet.training.deep import train_deepfreak
    from diffranet.training.metrics import format_confusion

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    data = work / "data"
    start = time.perf_counter()
    generate_dataset(data, workers=args.workers, **DATA)
    data_seconds = time.perf_counter() - start

    out = work / "default.dfm"
    params = dict(RECIPES["cpu"], device="cpu", n_threads=args.threads, workers=args.loader_workers,
                  random_state=TRAIN_SEED, checkpoint_path=str(work / "default.dfm.checkpoint"), verbose=1)
    start = time.perf_counter()
    model, metrics = train_deepfreak(data, out, log=print, **params)
    train_seconds = time.perf_counter() - start

    Path(args.model).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out, args.model)
    history = {"loss": model.loss_curve_, "val_accuracy": model.validation_scores_}
    Path(args.curve).parent.mkdir(parents=True, exist_ok=True)
    plot_learning_curve(history, args.curve, title="DeepFreak default model (recipe 'cpu', 2,000 training images)")
    summary = {
        "data": DATA,
        "recipe": {k: list(v) if isinstance(v, tuple) else v for k, v in RECIPES["cpu"].items()},
        "train_seed": TRAIN_SEED,
        "threads": args.threads,
        "data_seconds_this_run": data_seconds,
        "train_seconds_this_run": train_seconds,
        "epochs": model.n_epochs_,
        "best_epoch": 1 + max(range(len(model.validation_scores_)), key=model.validation_scores_.__getitem__),
        "history": {**history, "epoch_seconds": model.epoch_seconds_},
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
