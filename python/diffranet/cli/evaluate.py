"""``diffranet evaluate``: score models on labelled data and write a report folder."""

from __future__ import annotations

import math

from ._model_options import rule_option

__all__ = ["add_parser", "run"]


def add_parser(subparsers):
    """Register ``evaluate`` on the ``diffranet`` sub-command parsers."""
    evaluate = subparsers.add_parser(
        "evaluate", help="score models on labelled data: metrics.json, figures and an HTML report",
        description="Score one or more models on a generated dataset, a folder of class folders, or a CSV of "
                    "real frames (columns file,label with label hit or miss). Writes REPORT/index.html, "
                    "REPORT/metrics.json and the figures.")
    evaluate.add_argument("--model", action="append", required=True, metavar="MODEL",
                          help="model file, or 'default' for the shipped model; repeat to compare models")
    evaluate.add_argument("--data", required=True, metavar="DIR",
                          help="dataset directory, data folder with <split>/<class>/ images, or a .csv of file,label")
    evaluate.add_argument("--split", default="test", help="split of a data folder (default: %(default)s)")
    evaluate.add_argument("--out", required=True, metavar="REPORT", help="report folder (created)")
    evaluate.add_argument("--trust", action="store_true",
                          help="also load joblib / pickle model files (they can run code: only files you made)")
    evaluate.add_argument("--hit-threshold", type=float, default=0.5, metavar="P",
                          help="score the verdicts `classify --hit-threshold P` gives: a hit when the hit classes' "
                               "probabilities add up to at least P (default: %(default)s)")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bars")
    evaluate.set_defaults(func=run)
    return evaluate


def _percent(value):
    return "-" if value is None or math.isnan(value) else f"{100 * value:.2f} %"


def run(args):
    """Run ``diffranet evaluate`` from parsed arguments."""
    # imported on use, so that the other commands start without loading matplotlib, scikit-learn and the simulation
    from ..evaluation import evaluate

    result = evaluate(args.model, args.data, args.out, split=args.split, trust=args.trust, progress=not args.quiet,
                      rule=rule_option(args))
    for e in result["evaluations"]:
        x = e.metrics
        print(f"{e.name}: {x['n_images']} frames, accuracy {_percent(x['accuracy'])} "
              f"({'5 classes' if e.task == 'classes' else 'hit / miss'}), "
              f"hit/miss accuracy {_percent(x['hitmiss_accuracy'])}")
    print(f"report: {result['report']}")
    print(f"metrics: {result['metrics']}")
