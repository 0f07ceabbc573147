"""``diffranet classify``: apply a model to every frame of image files."""

from __future__ import annotations

import csv
import json
import sys

from ._model_options import (
    add_frame_limit_option,
    add_input_option,
    add_model_and_geometry_options,
    check_run_options,
    detector_and_overrides,
    load_model_option,
)

__all__ = ["add_parser", "run"]


def add_parser(subparsers):
    """Register ``classify`` on the ``diffranet`` sub-command parsers."""
    parser = subparsers.add_parser(
        "classify", help="classify every frame of image files (PGM, PNG, TIFF, CBF, HDF5/NeXus/CXI, npz)",
        description="Classify every frame of every file; one JSON line per frame on stdout, a summary on stderr.",
    )
    parser.add_argument("files", nargs="+", metavar="FILES",
                        help="image files, or directories (their image files, in name order)")
    add_model_and_geometry_options(parser)
    add_frame_limit_option(parser)
    add_input_option(parser)
    parser.add_argument("--csv", action="store_true", help="write a CSV table instead of JSON lines")
    parser.add_argument("--batch-size", type=int, default=16, help="frames scored together (default: %(default)s)")
    parser.add_argument("--quiet", action="store_true",
                        help="no summary line on stderr (unreadable files are still reported)")
    parser.set_defaults(func=run)
    return parser


def run(args):
    """Run ``classify`` from parsed arguments; returns the exit status (1 if a file was unreadable)."""
    # imported on use, so that the other commands start without loading scikit-learn and the simulation
    from ..inference.files import FileError, Summary, classify_files

    check_run_options(args)  # bad options stop before the model, any frame and the summary
    detector, overrides = detector_and_overrides(args)
    model = load_model_option(args)
    writer = None
    if args.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["file", "frame", "label", "hit", "latency_ms", *(f"p_{n}" for n in model.class_names)])
    summary = Summary()
    try:
        for record in classify_files(model, args.files, detector=detector, overrides=overrides,
                                     batch_size=args.batch_size, max_frame_pixels=args.max_frame_pixels,
                                     input=args.input):
            summary.add(record)
            if isinstance(record, FileError):
                print(f"diffranet classify: cannot read {record.message}", file=sys.stderr, flush=True)
            elif writer is not None:
                writer.writerow([record.file, record.frame, record.label, int(record.hit),
                                 f"{record.latency_ms:.2f}", *(f"{p:.6g}" for p in record.proba)])
                sys.stdout.flush()
            else:
                print(json.dumps(record.to_dict()), flush=True)
    finally:  # the summary of what was done, also after an interruption
        s = summary.to_dict()
        if not args.quiet:
            print(f"diffranet classify: {s['frames']} frames, {s['hits']} hits, hit rate {s['hit_rate']:.3f}, "
                  f"{s['frames_per_s']:.1f} frames/s" + (f", {s['unreadable']} unreadable" if s["unreadable"] else ""),
                  file=sys.stderr)
    return 1 if s["unreadable"] else 0
