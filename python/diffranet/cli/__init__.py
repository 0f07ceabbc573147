"""Command-line interface: argument parsing only; each command calls into the package."""

from __future__ import annotations

import argparse
import sys


def _cmd_demo(args):
    from ..demo import run_demo

    run_demo(out_dir=args.out, seed=args.seed, preset=args.preset)


def _cmd_train(args):
    from ..search.spaces import default_configuration
    from ..train import train_classic

    train_classic(args.data, default_configuration(args.features, args.model), args.out, args.seed, args.jobs)


def _cmd_search_classic(args):
    from ..search.classic import run_search_classic

    run_search_classic(args.data, args.out, args.max_evals, args.resume, args.seed, args.jobs)


def _cmd_dataset(args):
    from .dataset import run_dataset_command

    run_dataset_command(args)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="diffranet",
        description="Simulate and classify serial-crystallography diffraction images.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="render example diffraction images and save them")
    demo.add_argument("--out", default="diffranet-demo", help="output folder (default: %(default)s)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    demo.add_argument("--preset", default="diffranet",
                      help="dataset preset: diffranet (the paper's set-up), quick, or a JSON file (default: %(default)s)")
    demo.set_defaults(func=_cmd_demo)

    train = sub.add_parser("train", help="train a classic classifier (the paper's best settings) and save it",
                           description="Train a classic classifier with the paper's best settings on the "
                                       "train split of --data, score it on val and test (accuracy, hit/miss accuracy "
                                       "and the confusion matrix, printed with class names), and save it.")
    train.add_argument("--features", choices=["glcm", "lbp", "bovw"], required=True, help="feature extractor")
    train.add_argument("--model", choices=["rf", "svm"], required=True, help="classifier")
    train.add_argument("--data", required=True,
                       help="a dataset made by 'diffranet dataset' (HDF5 shards), or a folder with train/ "
                            "(and val/, test/) holding class folders 1..5 or blank .. strong")
    train.add_argument("--out", required=True, help="model file (joblib); its settings go to MODEL.json")
    train.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    train.add_argument("--jobs", type=int, default=-1, help="parallel workers, -1: all cores (default: %(default)s)")
    train.set_defaults(func=_cmd_train)

    search = sub.add_parser("search", help="hyper-parameter search")
    search_sub = search.add_subparsers(dest="search_command", required=True)
    classic = search_sub.add_parser("classic", help="Hyperopt search of extractor + RF/SVM (paper Table 8)")
    classic.add_argument("--data", required=True, help="data folder with train/ and val/ class folders")
    classic.add_argument("--max-evals", type=int, required=True, help="total number of evaluations")
    classic.add_argument("--resume", action="store_true", help="continue the search saved in --out")
    classic.add_argument("--out", default="search-classic", help="output folder (default: %(default)s)")
    classic.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    classic.add_argument("--jobs", type=int, default=-1, help="parallel workers, -1: all cores (default: %(default)s)")
    classic.set_defaults(func=_cmd_search_classic)

    dataset = sub.add_parser("dataset", help="generate the labelled DiffraNet dataset, or summarise one (--info)")
    dataset.add_argument("--out", help="dataset directory (created; an interrupted run there resumes, a run with "
                         "larger sizes adds the new images); with --info, the gallery picture (default "
                         "DIR/gallery.png)")
    dataset.add_argument("--info", metavar="DIR", help="print class counts and label ranges of DIR and save a "
                         "gallery of examples per class")
    dataset.add_argument("--preset", default="diffranet",
                         help="preset name (diffranet, quick) or a preset .json file (default: %(default)s)")
    dataset.add_argument("--n-train", type=int, default=None,
                         help="training images (default: 10000; when only some sizes are given, the others "
                              "follow them in the paper's proportions 10000 : 2400 : 12600)")
    dataset.add_argument("--n-val", type=int, default=None, help="validation images (default: 2400)")
    dataset.add_argument("--n-test", type=int, default=None, help="test images (default: 12600)")
    dataset.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    dataset.add_argument("--workers", type=int, default=None,
                         help="worker processes; 1 renders in this process (default: CPU count)")
    dataset.add_argument("--scheduler", default=None, help="address of a running Dask scheduler, tcp://HOST:PORT")
    dataset.add_argument("--format", choices=["hdf5", "pgm", "png"], default="hdf5",
                         help="hdf5 shards; pgm/png also write <split>/<1..5>/ image folders (default: %(default)s)")
    dataset.add_argument("--shard-size", type=int, default=500, help="images per shard file (default: %(default)s)")
    dataset.add_argument("--quiet", action="store_true", help="no progress bar")
    dataset.set_defaults(func=_cmd_dataset)

    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (ValueError, FileNotFoundError, OSError, ImportError) as exc:
        print(f"diffranet {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"diffranet {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
