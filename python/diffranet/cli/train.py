"""``diffranet train``: train a classic classifier (the paper's best settings) or DeepFreak, and save it."""

from __future__ import annotations


def add_parser(subparsers):
    train = subparsers.add_parser(
        "train", help="train a classifier (classic or DeepFreak) and save it as a model file",
        description="Train a classifier on the train split of --data, score it on val and test (accuracy, "
                    "hit/miss accuracy and the confusion matrix, printed with class names), and save it. "
                    "Classic models (--model rf or svm with --features) use the paper's best settings; "
                    "--model deepfreak trains the ResNet classifier, checkpointing every epoch to "
                    "MODEL.checkpoint: running the same command again resumes there (a larger --epochs "
                    "continues training).")
    train.add_argument("--model", choices=["rf", "svm", "deepfreak"], required=True, help="classifier")
    train.add_argument("--features", choices=["glcm", "lbp", "bovw"],
                       help="feature extractor (required for rf and svm)")
    train.add_argument("--data", required=True,
                       help="a dataset made by 'diffranet dataset' (HDF5 shards), or a folder with train/ "
                            "(and val/, test/) holding class folders 1..5 or blank .. strong")
    train.add_argument("--out", required=True,
                       help="model file (.dfm, loads without running code); classic settings also go to MODEL.json")
    train.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    train.add_argument("--n-jobs", "--jobs", dest="n_jobs", type=int, default=-1,
                       help="classic models: parallel jobs (joblib), -1: all cores (default: %(default)s)")
    deep = train.add_argument_group("DeepFreak")
    deep.add_argument("--config", default="cpu",
                      help="DeepFreak settings: 'cpu' (the shipped model's recipe), 'paper' (Tables 1-2, "
                           "configuration B; GPU-days), or a JSON/TOML file of DeepFreakClassifier parameters, "
                           "e.g. the best_config.json of 'diffranet search deepfreak' (default: %(default)s)")
    deep.add_argument("--init", metavar="MODEL",
                      help="fine-tune: start from the weights of this DeepFreak model file ('default': the "
                           "shipped model); its network settings replace --config, at a tenth of its learning "
                           "rate, for 4 epochs unless --epochs says otherwise")
    deep.add_argument("--epochs", type=int, help="total training epochs (default: the recipe's)")
    deep.add_argument("--device", default="auto",
                      help="torch device: auto (CUDA when available), cpu, cuda, cuda:N (default: %(default)s)")
    deep.add_argument("--threads", type=int, help="CPU threads torch may use (default: torch's)")
    deep.add_argument("--workers", type=int, default=1,
                      help="DataLoader worker processes reading the shards (default: %(default)s)")
    deep.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=run)


def run(args):
    if args.model == "deepfreak":
        return _run_deepfreak(args)
    if args.features is None:
        raise ValueError(f"--model {args.model} needs --features (glcm, lbp or bovw)")
    # imported on use, so that the other commands start without loading hyperopt, scikit-learn and OpenCV
    from ..search.spaces import default_configuration
    from ..training.classic import train_classic
    from ..training.metrics import format_scores

    _, metrics = train_classic(args.data, default_configuration(args.features, args.model), args.out, args.seed,
                               args.n_jobs)
    print(format_scores(metrics))


def _run_deepfreak(args):
    # imported on use, so that the other commands start without loading torch
    from ..models.recipes import read_recipe
    from ..training.deep import train_deepfreak
    from ..training.metrics import format_scores

    params = read_recipe(args.config) if args.init is None else _fine_tuning(args.init)
    if args.epochs is not None:
        params["epochs"] = args.epochs
    params.update(device=args.device, n_threads=args.threads, workers=args.workers, random_state=args.seed,
                  checkpoint_path=f"{args.out}.checkpoint", verbose=0 if args.quiet else 1)
    _, metrics = train_deepfreak(args.data, args.out, **params)
    print(format_scores(metrics))


def _fine_tuning(path):
    """DeepFreakClassifier parameters that continue training the network of a model file."""
    # imported on use, so that the other commands start without loading scikit-learn and the simulation
    from ..inference import load_model
    from ..models import DeepFreakClassifier

    start = load_model(path).estimator
    if not isinstance(start, DeepFreakClassifier):
        raise ValueError(f"--init needs a DeepFreak model file (loaded with torch installed), got {path} "
                         f"holding a {type(start).__name__}")
    params = {k: v for k, v in start.get_params(deep=False).items() if k not in ("init", "checkpoint_path")}
    params.update(init=start, learning_rate=start.learning_rate / 10, lr_step_epochs=None, epochs=4)
    return params
