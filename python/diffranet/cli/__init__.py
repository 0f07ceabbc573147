"""Command-line interface: argument parsing only; each command calls into the package."""

from __future__ import annotations

import argparse
import logging
import sys

from .._version import __version__
from . import classify, dataset, demo, evaluate, search, stream, train, watch


def build_parser():
    parser = argparse.ArgumentParser(
        prog="diffranet",
        description="Simulate and classify serial-crystallography diffraction images.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    demo.add_parser(sub)
    evaluate.add_parser(sub)
    train.add_parser(sub)
    search.add_parser(sub)
    dataset.add_parser(sub)
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
