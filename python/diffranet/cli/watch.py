"""``diffranet watch``: classify image files as they appear in a directory."""

from __future__ import annotations

import sys

from .._allocator import freeze_loaded_objects, keep_freed_memory
from ._live import add_hit_options, add_status_options, hit_writer, print_hits, print_summary, status_printer
from ._model_options import add_file_options, add_pipeline_options, check_run_options, detector_and_overrides, \
    load_model_option

__all__ = ["add_parser", "run"]


def add_parser(subparsers):
    """Register ``watch`` on the ``diffranet`` sub-command parsers."""
    parser = subparsers.add_parser(
        "watch", help="classify image files as they appear in a directory (once completely written)",
        description="Watch DIR; classify every frame of each new image file once it is completely written; one "
                    "JSON line per frame on stdout (and in --log). Stops cleanly on Ctrl-C / SIGTERM.",
    )
    parser.add_argument("directory", metavar="DIR", help="directory the detector writes to")
    add_file_options(parser)
    add_status_options(parser)
    parser.add_argument("--settle", type=float, default=1.0, metavar="S",
                        help="seconds a file's size must stay unchanged before it is read (default: %(default)s)")
    parser.add_argument("--poll", type=float, default=0.2, metavar="S",
                        help="seconds between directory scans (default: %(default)s)")
    parser.add_argument("--existing", action="store_true", help="also classify the files already in DIR")
    parser.add_argument("--recursive", action="store_true",
                        help="also watch DIR's subdirectories, at any depth (one per run, say)")
    parser.add_argument("--follow-symlinks", action="store_true",
                        help="also read symlinks pointing outside DIR (by default only those inside it)")
    parser.add_argument("--publish", metavar="tcp://HOST:PORT", help="also publish verdicts on a PUB socket")
    add_pipeline_options(parser, batch_size=16)
    add_hit_options(parser)
    parser.set_defaults(func=run)
    return parser


def run(args):
    """Watch until SIGINT / SIGTERM; returns the exit status."""
    # imported on use, so that the other commands start without loading ZeroMQ, scikit-learn and the simulation
    import zmq

    from .._validation import check_positive
    from ..live import DirectoryWatcher, RecordWriter, stop_on_signals, watch_directory

    check_run_options(args)
    check_positive("--poll", args.poll)
    check_positive("--status-interval", args.status_interval)
    detector, overrides = detector_and_overrides(args)
    workers = args.workers
    model = load_model_option(args)
    # this process reads (and with one worker classifies) every frame: freed buffers are reused, and the
    # collector no longer walks the libraries and the model just loaded
    keep_freed_memory()
    freeze_loaded_objects()
    watcher = DirectoryWatcher(args.directory, settle_s=args.settle, include_existing=args.existing,
                               recursive=args.recursive, follow_symlinks=args.follow_symlinks)
    context = zmq.Context()
    publish = None
    if args.publish:
        publish = context.socket(zmq.PUB)
        publish.bind(args.publish)
    log = open(args.log, "a", encoding="utf-8") if args.log else None
    hits = hit_writer(args)
    try:
        if hits is not None:
            hits.start()
        writer = RecordWriter(publish, [sys.stdout] + ([log] if log else []), status=status_printer(args),
                              status_interval_s=args.status_interval, hits=hits).start()
        with stop_on_signals() as stop:
            print(f"diffranet watch: watching {args.directory}", file=sys.stderr, flush=True)
            try:
                watch_directory(model if workers == 1 else args.model, watcher, writer, stop, detector=detector,
                                overrides=overrides, poll_s=args.poll, batch_size=args.batch_size,
                                max_frame_pixels=args.max_frame_pixels, input=args.input, workers=workers,
                                peaks=args.peaks, trust=args.trust, rule=model.rule,
                                keep_hit_frames=hits is not None)
            finally:
                final = writer.close()
    finally:
        if hits is not None:
            hits.close()  # completes the open file: no hit lost at shutdown
        if log is not None:
            log.close()
        if publish is not None:
            publish.close(linger=1000)
        context.term()
    print_summary(args.command, final)
    print_hits(args.command, hits)
    return 0
