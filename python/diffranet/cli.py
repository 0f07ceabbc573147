"""Command-line interface: argument parsing only; each command calls into the package."""

from __future__ import annotations

import argparse
import sys


def _cmd_demo(args):
    from .demo import run_demo

    run_demo(out_dir=args.out, seed=args.seed)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="diffranet",
        description="Simulate and classify serial-crystallography diffraction images.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="render example diffraction images and save them")
    demo.add_argument("--out", default="diffranet-demo", help="output folder (default: %(default)s)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    demo.set_defaults(func=_cmd_demo)

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
