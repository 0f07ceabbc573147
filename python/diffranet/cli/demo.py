"""``diffranet demo``: render one example shot of each class."""

from __future__ import annotations


def add_parser(subparsers):
    demo = subparsers.add_parser("demo", help="render example diffraction images and save them")
    demo.add_argument("--out", default="diffranet-demo", help="output folder (default: %(default)s)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    demo.add_argument("--preset", default="diffranet",
                      help="dataset preset: diffranet (the paper's set-up), quick, or a JSON file (default: %(default)s)")
    demo.set_defaults(func=run)


def run(args):
    from ..demo import make_demo

    print(f"diffranet demo: preset {args.preset}; the first run builds and caches the structure factors")
    summary = make_demo(out_dir=args.out, seed=args.seed, preset=args.preset)
    for record in summary:
        print(f"  {record['class']:>10}: {record['seconds']:.2f} s, {record['n_detectable_spots']} detectable "
              f"spots, {record['photons']:.3g} photons -> {record['image']}")
    print(f"diffranet demo: wrote the five classes and {args.out}/gallery.png")
