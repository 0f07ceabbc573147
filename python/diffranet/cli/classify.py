"""``diffranet classify``: apply a model to every frame of image files."""

from __future__ import annotations

import csv
import json
import sys

from ._model_options import add_model_and_geometry_options, detector_and_overrides

__all__ = ["add_parser", "run"]


def add_parser(subparsers):
    """Register ``classify`` on the ``diffranet`` sub-command parsers."""
    parser = subparsers.add_parser(
        "classify", help="classify every frame of image files (PGM, PNG, TIFF, CBF, HDF5/NeXus/CXI, npz)",
        description="Classify every frame of every file; one JSON line per frame on stdout, a summary on stderr.",
    )
    parser.add_argument("files", nargs="+", metavar="FILES", help="image files")
    add_model_and_geometry_options(parser)
    parser.add_argument("--csv", action="store_true", help="write a CSV table instead of JSON lines")
    parser.add_argument("--batch-size", type=int, default=16, help="frames scored together (default: %(default)s)")
    parser.set_defaults(func=run)
    return parser


def _load(args):
    # imported on use, so that the other commands start without loading scikit-learn and the simulation
    from ..inference import ModelFileError, load_model

    try:
        return load_model(args.model, trust=args.trust)
    except ModelFileError as exc:
        if "pickle" in str(exc) and not args.trust:
            raise ModelFileError(f"{exc}; pass --trust to load it") from exc
        raise


def run(args):
    """Run ``classify`` from parsed arguments; returns the exit status (1 if a file was unreadable)."""
    # imported on use, so that the other commands start without loading scikit-learn and the simulation
    from ..inference.files import FileError, Summary, classify_files

    model = _load(args)
    detector, overrides = detector_and_overrides(args)
    writer = None
    if args.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["file", "frame", "label", "hit", "latency_ms", *(f"p_{n}" for n in model.class_names)])
    summary = Summary()
    try:
        for record in classify_files(model, args.files, detector=detector, overrides=overrides,
                                     batch_size=args.batch_size):
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
        print(f"diffranet classify: {s['frames']} frames, {s['hits']} hits, hit rate {s['hit_rate']:.3f}, "
              f"{s['frames_per_s']:.1f} frames/s" + (f", {s['unreadable']} unreadable" if s["unreadable"] else ""),
              file=sys.stderr)
    return 1 if s["unreadable"] else 0
