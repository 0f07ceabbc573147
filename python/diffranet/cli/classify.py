"""``diffranet classify``: apply a model to every frame of image files."""

from __future__ import annotations

import csv
import json
import sys

from .._allocator import freeze_loaded_objects, keep_freed_memory
from ._live import add_hit_options, hit_writer, print_hits, status_printer
from ._model_options import add_file_options, add_pipeline_options, check_run_options, detector_and_overrides, \
    load_model_option

__all__ = ["add_parser", "run"]

#: The CSV's first columns; the class probabilities (``p_<class>``) follow, then ``n_peaks`` and ``d_min_A``.
CSV_FIELDS = ("file", "frame", "label", "hit", "latency_ms")


def add_parser(subparsers):
    """Register ``classify`` on the ``diffranet`` sub-command parsers."""
    parser = subparsers.add_parser(
        "classify", help="classify every frame of image files (PGM, PNG, TIFF, CBF, HDF5/NeXus/CXI, npz)",
        description="Classify every frame of every file; one JSON line per frame on stdout (the fields of "
                    "`diffranet stream`), a summary on stderr.",
    )
    parser.add_argument("files", nargs="+", metavar="FILES",
                        help="image files, or directories (their image files, in name order)")
    add_file_options(parser)
    add_pipeline_options(parser, batch_size=16)
    parser.add_argument("--csv", action="store_true", help="write a CSV table instead of JSON lines")
    parser.add_argument("--status-interval", type=float, default=0.0, metavar="S",
                        help="also a status line on stderr every S seconds (default: none)")
    parser.add_argument("--quiet", action="store_true",
                        help="no summary line on stderr (unreadable files are still reported)")
    add_hit_options(parser)
    parser.set_defaults(func=run)
    return parser


def _output(args, class_names, error_text):
    """The sink of the records: JSON lines or CSV rows on stdout, errors on stderr (``error_text(record)``)."""
    writer = None
    if args.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow([*CSV_FIELDS, *(f"p_{n}" for n in class_names), "n_peaks", "d_min_A"])

    def write(record):
        if "error" in record:
            what = "classify" if "stage" in record else "read"
            print(f"diffranet classify: cannot {what} {error_text(record)}", file=sys.stderr, flush=True)
        elif writer is not None:
            writer.writerow([record["file"], record["frame"], record["label"], int(bool(record["hit"])),
                             f"{record['latency_ms']:.2f}", *(f"{p:.6g}" for p in record["proba"]),
                             "" if record.get("n_peaks") is None else record["n_peaks"],
                             "" if record.get("d_min_A") is None else f"{record['d_min_A']:.3f}"])
            sys.stdout.flush()
        else:
            print(json.dumps(record), flush=True)

    return write


def run(args):
    """Run ``classify`` from parsed arguments; returns the exit status (1 if a file was unreadable)."""
    # imported on use, so that the other commands start without loading scikit-learn and the simulation
    import itertools
    import time

    from .._validation import check_nonnegative
    from ..live.files import error_text, feed_frames, file_frames
    from ..live.pipeline import FramePipeline
    from ..live.sinks import RecordWriter

    check_run_options(args)  # bad options stop before the model, any frame and the summary
    workers = args.workers
    interval = check_nonnegative("--status-interval", args.status_interval)
    detector, overrides = detector_and_overrides(args)
    # loaded here once for all files (each worker process loads it again from its file)
    model = load_model_option(args)
    source = model if workers == 1 else args.model
    # this process reads (and with one worker classifies) every frame: freed buffers are reused, and the
    # collector no longer walks the libraries and the model just loaded
    keep_freed_memory()
    freeze_loaded_objects()
    status = status_printer(args) if interval > 0 else None
    queue_size = max(4 * args.batch_size * workers, 8)  # enough to keep every worker busy while files are read
    hits = hit_writer(args)
    if hits is not None:
        hits.start()
    writer = RecordWriter(None, [_output(args, model.class_names, error_text)], status=status,
                          queue_size=queue_size, queue_depth=lambda: pipeline.in_flight,
                          status_interval_s=interval or 3600.0, hits=hits).start()
    pipeline = FramePipeline(source, writer.put, workers=workers, batch_size=args.batch_size, trust=args.trust,
                             peaks=args.peaks, input=args.input, rule=model.rule, queue_size=queue_size,
                             keep_hit_frames=hits is not None)
    start = time.perf_counter()
    try:
        pipeline.start()
        frames = file_frames(args.files, detector=detector, overrides=overrides,
                             max_frame_pixels=args.max_frame_pixels)
        feed_frames(pipeline, frames, itertools.count())
    finally:  # the verdicts of the frames in flight and the summary, also after an interruption
        pipeline.finish()
        final = writer.close()
        if hits is not None:
            hits.close()  # completes the open file and writes the event list
        seconds = time.perf_counter() - start
        if not args.quiet:
            rate = final.frames / seconds if seconds > 0 else 0.0
            print(f"diffranet classify: {final.frames} frames, {final.hits} hits, hit rate {final.hit_rate:.3f}, "
                  f"{rate:.1f} frames/s" + (f", {final.errors} unreadable" if final.errors else ""),
                  file=sys.stderr)
            print_hits(args.command, hits)
    return 1 if final.errors else 0
