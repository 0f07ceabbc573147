"""``diffranet dataset``: generate a dataset, or summarise one with ``--info``."""

from __future__ import annotations

import sys
from pathlib import Path

from .._allocator import keep_freed_memory
from ..detectors import load_detector

__all__ = ["add_parser", "run_dataset_command"]


def add_parser(subparsers):
    """Register ``dataset`` on the ``diffranet`` sub-command parsers."""
    dataset = subparsers.add_parser("dataset",
                                    help="generate the labelled DiffraNet dataset, or summarise one (--info)")
    dataset.add_argument("--out", help="dataset directory (created; an interrupted run there resumes, a run with "
                         "larger sizes adds the new images); with --info, the gallery picture (default "
                         "DIR/gallery.png)")
    dataset.add_argument("--info", metavar="DIR", help="print class counts and label ranges of DIR and save a "
                         "gallery of examples per class")
    dataset.add_argument("--preset", default="diffranet",
                         help="preset name (diffranet, quick, regimes) or a preset .json file, also of 'Regimes' "
                              "(default: %(default)s)")
    dataset.add_argument("--detector", metavar="FILE",
                         help="render on this detector: a detector TOML file or a shipped name "
                              "(paper, pilatus6m, eiger16m)")
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
    dataset.set_defaults(func=run_dataset_command)
    return dataset


def run_dataset_command(args):
    """Run the ``dataset`` command from parsed arguments (see ``diffranet dataset --help``)."""
    # imported here: the dataset package loads the simulation (gemmi, scipy) and Dask, which the
    # other commands do not need at start-up
    from ..dataset.detector_presets import training_preset
    from ..dataset.generate import generate_dataset, split_sizes
    from ..dataset.info import dataset_info, format_info, write_gallery

    if args.out is None and args.info is None:
        raise ValueError("give either --out DIR (generate) or --info DIR [--out PICTURE] (summarise)")
    if args.info is not None:
        print(format_info(dataset_info(args.info)))
        gallery = write_gallery(args.info, Path(args.info) / "gallery.png" if args.out is None else args.out)
        print(f"gallery: {gallery}")
        return
    sizes = split_sizes(args.n_train, args.n_val, args.n_test)
    if not args.quiet:
        given = [f"--n-{s}" for s, n in zip(("train", "val", "test"), (args.n_train, args.n_val, args.n_test))
                 if n is not None]
        rule = "" if len(given) in (0, 3) else f" (unspecified sizes follow {given[0]} in the paper's proportions)"
        print(f"diffranet dataset: train {sizes['train']}, val {sizes['val']}, test {sizes['test']} images{rule}",
              file=sys.stderr)
    preset = args.preset
    if getattr(args, "detector", None) is not None:
        preset = training_preset(load_detector(args.detector), preset)
    # this process collects every image into shards: freed buffers are reused, not faulted in anew
    keep_freed_memory()
    index = generate_dataset(args.out, preset=preset, n_train=sizes["train"], n_val=sizes["val"],
                             n_test=sizes["test"], seed=args.seed, workers=args.workers, scheduler=args.scheduler,
                             format=args.format, shard_size=args.shard_size, progress=not args.quiet)
    total = sum(entry["n_images"] for entry in index["splits"].values())
    print(f"diffranet dataset: {total} images in {args.out}")
