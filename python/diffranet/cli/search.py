"""``diffranet search classic`` (Hyperopt, the paper's Table 8) and ``diffranet search deepfreak`` (BOHB, Table 10)."""

from __future__ import annotations

import json
import time
from pathlib import Path


def add_parser(subparsers):
    search = subparsers.add_parser("search", help="hyper-parameter search")
    search_sub = search.add_subparsers(dest="search_command", required=True)
    classic = search_sub.add_parser("classic", help="Hyperopt search of extractor + RF/SVM (paper Table 8)")
    classic.add_argument("--data", required=True, help="data folder with train/ and val/ class folders, "
                         "or a generated dataset")
    classic.add_argument("--max-evals", type=int, required=True, help="total number of evaluations")
    classic.add_argument("--resume", action="store_true", help="continue the search saved in --out")
    classic.add_argument("--out", default="search-classic", help="output folder (default: %(default)s)")
    classic.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    classic.add_argument("--n-jobs", "--jobs", dest="n_jobs", type=int, default=-1,
                         help="parallel jobs (joblib), -1: all cores (default: %(default)s)")
    classic.set_defaults(func=run_classic)

    deep = search_sub.add_parser("deepfreak", help="BOHB search of DeepFreak's topology and SGD settings "
                                 "(paper Table 10); budgets in epochs")
    deep.add_argument("--data", required=True, help="data folder with train/ and val/ class folders, "
                      "or a generated dataset")
    deep.add_argument("--min-budget", type=float, default=1.0, help="smallest budget, epochs (default: %(default)s)")
    deep.add_argument("--max-budget", type=float, default=50.0, help="largest budget, epochs (default: %(default)s)")
    deep.add_argument("--eta", type=int, default=3, help="successive-halving factor (default: %(default)s)")
    deep.add_argument("--iterations", type=int, default=4, help="BOHB iterations in all (default: %(default)s)")
    deep.add_argument("--workers", type=int, default=1, help="configurations trained at once (default: %(default)s)")
    deep.add_argument("--config", help="JSON file of DeepFreakClassifier settings every configuration keeps "
                      "(e.g. {\"depth\": 18, \"input_size\": 128}); they override the topology's")
    deep.add_argument("--device", default="auto", help="torch device: auto, cpu, cuda (default: %(default)s)")
    deep.add_argument("--resume", action="store_true", help="continue the search logged in --out")
    deep.add_argument("--out", default="search-deepfreak", help="output folder (default: %(default)s)")
    deep.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    deep.set_defaults(func=run_deepfreak)


def run_classic(args):
    """Search on the data folder's train/val splits; the refitted best model is also scored on test."""
    # imported on use, so that the other commands start without loading hyperopt, scikit-learn and OpenCV
    from ..dataset.loader import has_split, load_split
    from ..search.classic import MODEL_FILE, TRIALS_FILE, search_classic

    if (Path(args.out) / TRIALS_FILE).exists() and not args.resume:
        raise ValueError(f"{Path(args.out) / TRIALS_FILE} exists: add --resume to continue that search, "
                         f"or choose another --out")
    X_train, y_train = load_split(args.data, "train")
    X_val, y_val = load_split(args.data, "val")
    test = load_split(args.data, "test") if has_split(args.data, "test") else None
    print(f"train: {len(y_train)} images, val: {len(y_val)} images")
    start = time.perf_counter()
    result = search_classic(X_train, y_train, X_val, y_val, max_evals=args.max_evals, out_dir=args.out,
                            resume=args.resume, random_state=args.seed, n_jobs=args.n_jobs, test=test)
    print(f"{len(result.trials.trials)} evaluations, {time.perf_counter() - start:.1f} s in this run")
    print(f"best validation accuracy {result.best_val_accuracy:.4f}: {json.dumps(result.best_config)}")
    if "test" in result.metrics:
        test_metrics = result.metrics["test"]
        print(f"test: accuracy {test_metrics['accuracy']:.4f}, "
              f"hit/miss accuracy {test_metrics['hit_miss_accuracy']:.4f}")
    print(f"saved {Path(args.out) / MODEL_FILE}")


def run_deepfreak(args):
    """BOHB on the data folder's train/val splits; prints and saves the best configuration."""
    # imported on use, so that the other commands start without loading torch and hpbandster
    from ..dataset.loader import load_split
    from ..search.deepfreak import BEST_FILE, search_deepfreak

    base = {"device": args.device}
    if args.config:
        base.update(json.loads(Path(args.config).read_text()))
    X_train, y_train = load_split(args.data, "train")
    X_val, y_val = load_split(args.data, "val")
    print(f"train: {len(y_train)} images, val: {len(y_val)} images")
    start = time.perf_counter()
    outcome = search_deepfreak((X_train, y_train, X_val, y_val), args.out, min_budget=args.min_budget,
                               max_budget=args.max_budget, eta=args.eta, n_iterations=args.iterations,
                               workers=args.workers, base_params=base, resume=args.resume, seed=args.seed)
    print(f"{outcome.n_evaluations} evaluations, {time.perf_counter() - start:.1f} s in this run")
    print(f"best validation accuracy {outcome.best_val_accuracy:.4f}: {json.dumps(outcome.best_config)}")
    print(f"saved {Path(args.out) / BEST_FILE}")
