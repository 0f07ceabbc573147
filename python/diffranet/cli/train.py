"""``diffranet train``: train a classic classifier with the paper's best settings."""

from __future__ import annotations


def add_parser(subparsers):
    train = subparsers.add_parser("train", help="train a classic classifier (the paper's best settings) and save it",
                                  description="Train a classic classifier with the paper's best settings on the "
                                              "train split of --data, score it on val and test (accuracy, hit/miss "
                                              "accuracy and the confusion matrix, printed with class names), and "
                                              "save it.")
    train.add_argument("--features", choices=["glcm", "lbp", "bovw"], required=True, help="feature extractor")
    train.add_argument("--model", choices=["rf", "svm"], required=True, help="classifier")
    train.add_argument("--data", required=True,
                       help="a dataset made by 'diffranet dataset' (HDF5 shards), or a folder with train/ "
                            "(and val/, test/) holding class folders 1..5 or blank .. strong")
    train.add_argument("--out", required=True, help="model file (.dfm, loads without running code); settings also go to MODEL.json")
    train.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    train.add_argument("--n-jobs", "--jobs", dest="n_jobs", type=int, default=-1,
                       help="parallel jobs (joblib), -1: all cores (default: %(default)s)")
    train.set_defaults(func=run)


def run(args):
    from ..search.spaces import default_configuration
    from ..training.classic import train_classic

    train_classic(args.data, default_configuration(args.features, args.model), args.out, args.seed, args.n_jobs,
                  log=print)
