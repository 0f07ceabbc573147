"""Command-line interface: argument parsing only; each command calls into the package."""

from __future__ import annotations

import argparse
import logging
import sys

from . import classify, demo, evaluate, search, stream, train, watch


def _cmd_dataset(args):
    from .dataset import run_dataset_command

    run_dataset_command(args)


def _version():
    from .. import __version__

    return __version__


def build_parser():
    parser = argparse.ArgumentParser(
        prog="diffranet",
        description="Simulate and classify serial-crystallography diffraction images.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    demo.add_parser(sub)
    evaluate.add_parser(sub)
    train.add_parser(sub)
    search.add_parser(sub)

    dataset = sub.add_parser("dataset", help="generate the labelled DiffraNet dataset, or summarise one (--info)")
    dataset.add_argument("--out", help="dataset directory (created; an interrupted run there resumes, a run with "
                         "larger sizes adds the new images); with --info, the gallery picture (default "
                         "DIR/gallery.png)")
    dataset.add_argument("--info", metavar="DIR", help="print class counts and label ranges of DIR and save a "
                         "gallery of examples per class")
    dataset.add_argument("--preset", default="diffranet",
                         help="preset name (diffranet, quick) or a preset .json file (default: %(default)s)")
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
    dataset.set_defaults(func=_cmd_dataset)

    classify.add_parser(sub)
    stream.add_parser(sub)
    watch.add_parser(sub)
    return parser


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a message comes (main may run again with another one)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def _show_progress_messages(quiet):
    """Send the package's log messages (progress of long steps) to stderr, unless ``quiet``."""
    logger = logging.getLogger("diffranet")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("diffranet: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    _show_progress_messages(quiet=getattr(args, "quiet", False))
    try:
        status = args.func(args)
    except (ValueError, FileNotFoundError, OSError, ImportError) as exc:
        print(f"diffranet {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"diffranet {args.command}: interrupted", file=sys.stderr)
        return 130
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
