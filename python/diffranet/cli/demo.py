"""``diffranet demo``: render a small labelled set, classify it, write a report."""

from __future__ import annotations

from ..demo import DEMO_SIZE, run_demo

__all__ = ["add_parser", "run"]


def add_parser(subparsers):
    """Register ``demo`` on the ``diffranet`` sub-command parsers."""
    demo = subparsers.add_parser(
        "demo", help="render shots of the five classes, classify them and write a report",
        description="Render test shots of the five classes (the paper's 512 x 512 set-up by default), classify "
                    "them with a GLCM + random forest trained here on twice as many shots (and with the shipped model, "
                    "when there is one for these images), "
                    "and write an HTML report with a gallery, the confusion matrix and metrics.json.")
    demo.add_argument("--out", default="diffranet-demo", help="output folder (default: %(default)s)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    demo.add_argument("--preset", default="diffranet",
                      help="dataset preset: diffranet (the paper's set-up), quick, or a JSON file "
                           "(default: %(default)s)")
    demo.add_argument("--size", type=int, default=DEMO_SIZE,
                      help="test shots to render; the model trained here uses twice as many (default: %(default)s)")
    demo.add_argument("--workers", type=int, default=None,
                      help="worker processes for rendering and training (default: CPU count)")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(func=run)
    return demo


def run(args):
    """Run ``diffranet demo`` from parsed arguments."""
    result = run_demo(out_dir=args.out, seed=args.seed, preset=args.preset, size=args.size, workers=args.workers,
                      progress=not args.quiet)
    steps = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in result["seconds"].items())
    for name, score in result["scores"].items():
        print(f"{name}: accuracy {100 * score['accuracy']:.1f} %, hit/miss accuracy "
              f"{100 * score['hitmiss_accuracy']:.1f} % on {args.size} test shots")
    print(f"times: {steps}")
    print(f"report: {result['report']}")
