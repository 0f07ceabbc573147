"""Make the DeepFreak model shipped with diffranet (``diffranet classify --model default``).

From fixed seeds, on one CPU core:

1. render 1,000 images with the package's generator (preset "diffranet",
   512 x 512 px, seed 2026) into ``WORK/data`` (an interrupted run resumes);
   the class of image ``i`` follows the generator's fixed interleaving of the
   class shares, so every run of consecutive images has the set's class mix;
2. hold out by image number: images 0-699 train, 700-799 validate (early
   stopping), 800-999 test (never seen in training or model selection);
3. train the "cpu" recipe (:data:`diffranet.models.recipes.RECIPES`),
   checkpointing every epoch (an interrupted run resumes);
4. score it on the test images, write the model to
   ``python/diffranet/inference/models/default.dfm``, the learning curve to
   ``docs/images/deepfreak-learning-curve.png`` and a summary (sizes, times,
   scores) to ``WORK/summary.json``.

Usage::

    python scripts/make_default_model.py [--work DIR] [--threads 1]

The same command on the same diffranet version gives the same weights.
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

DATA = {"preset": "diffranet", "n_train": 1000, "n_val": 0, "n_test": 0, "seed": 2026}
#: Image numbers of the training, validation and test images.
HOLDOUT = {"train": (0, 700), "val": (700, 800), "test": (800, 1000)}
TRAIN_SEED = 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="default-model-work", help="folder for the data, checkpoint and summary")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=1, help="processes rendering the data (default: %(default)s)")
    parser.add_argument("--loader-workers", type=int, default=0,
                        help="DataLoader worker processes reading the shards while training (default: %(default)s)")
    parser.add_argument("--epochs", type=int, help="total epochs instead of the recipe's (a rerun with more "
                        "epochs continues from the checkpoint)")
    parser.add_argument("--model", default=str(MODEL_PATH), help="where to write the model (default: in the package)")
    parser.add_argument("--curve", default=str(CURVE_PATH), help="learning-curve PNG (default: in docs/images)")
    args = parser.parse_args(argv)

    from diffranet.dataset.generate import generate_dataset
    from diffranet.models.recipes import RECIPES
    from diffranet.training.curves import plot_learning_curve
    from diffranet.training.metrics import format_confusion

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    data = work / "data"
    start = time.perf_counter()
    generate_dataset(data, workers=args.workers, **DATA)
    data_seconds = time.perf_counter() - start

    from torch.utils.data import Subset

    from diffranet.dataset.loader import ShardDataset
    from diffranet.models import DeepFreakClassifier
    from diffranet.training.deep import raw_image, save_deepfreak
    from diffranet.training.metrics import evaluate

    images = ShardDataset(data, "train", transform=raw_image)
    parts = {name: Subset(images, range(*span)) for name, span in HOLDOUT.items()}
    labels = {name: images.labels[slice(*span)] for name, span in HOLDOUT.items()}
    print(", ".join(f"{name}: {len(part)} images" for name, part in parts.items()))

    out = work / "default.dfm"
    params = dict(RECIPES["cpu"], device="cpu", n_threads=args.threads, workers=args.loader_workers,
                  random_state=TRAIN_SEED, checkpoint_path=str(work / "default.dfm.checkpoint"), verbose=1)
    if args.epochs is not None:
        params["epochs"] = args.epochs
    start = time.perf_counter()
    model = DeepFreakClassifier(**params).fit(parts["train"], validation=parts["val"])
    train_seconds = time.perf_counter() - start
    metrics = {name: evaluate(model, parts[name], labels[name]) for name in ("val", "test")}
    metrics.update(train_seconds=train_seconds, holdout={k: list(v) for k, v in HOLDOUT.items()},
                   train_images_per_s=len(parts["train"]) * len(model.epoch_seconds_) / sum(model.epoch_seconds_))
    save_deepfreak(model, out, data, labels["train"], metrics)

    Path(args.model).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out, args.model)
    history = {"loss": model.loss_curve_, "val_accuracy": model.validation_scores_}
    Path(args.curve).parent.mkdir(parents=True, exist_ok=True)
    plot_learning_curve(history, args.curve, title="DeepFreak default model (recipe 'cpu', 700 training images)")
    summary = {
        "data": DATA,
        "recipe": {k: list(v) if isinstance(v, tuple) else v for k, v in RECIPES["cpu"].items()},
        "epochs_asked": params["epochs"],
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
