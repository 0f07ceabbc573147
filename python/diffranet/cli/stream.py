"""``diffranet stream``: classify frames from a ZMQ stream, publish verdicts."""

from __future__ import annotations

import sys
import threading

from .._allocator import freeze_loaded_objects, keep_freed_memory, passive_openmp_wait
from .._budget import DEFAULT_MAX_FRAME_PIXELS
from ._live import add_hit_options, add_status_options, hit_writer, print_hits, print_summary, status_printer
from ._model_options import add_model_and_geometry_options, add_pipeline_options, detector_and_overrides, rule_option

__all__ = ["add_parser", "run"]


def add_parser(subparsers):
    """Register ``stream`` on the ``diffranet`` sub-command parsers."""
    parser = subparsers.add_parser(
        "stream", help="classify frames from a detector's ZMQ stream (simple or DECTRIS Stream V2)",
        description="Connect a PULL socket to --input, classify every frame, publish one JSON verdict per frame "
                    "on a PUB socket bound to --publish and append it to --log. Stops cleanly on Ctrl-C / SIGTERM.",
    )
    parser.add_argument("--input", required=True, metavar="tcp://HOST:PORT",
                        help="address of the sender's PUSH socket (connected to)")
    parser.add_argument("--publish", required=True, metavar="tcp://HOST:PORT",
                        help="address to bind the PUB socket for verdicts")
    parser.add_argument("--format", choices=["simple", "dectris"], default="simple",
                        help="simple: JSON header + raw pixels; dectris: DECTRIS Stream V2 (default: %(default)s)")
    add_model_and_geometry_options(parser)
    add_status_options(parser)
    parser.set_defaults(log="diffranet-stream.jsonl")
    parser.add_argument("--queue-size", type=int, default=256,
                        help="most frames in flight (received, not yet published) (default: %(default)s)")
    parser.add_argument("--overflow", choices=["drop", "block"], default="drop",
                        help="when the queue is full: drop the new frame (counted, published as dropped) or "
                             "stop reading so the sender blocks (default: %(default)s)")
    add_pipeline_options(parser, batch_size=32)
    # the other defaults live in diffranet.live.limits (not imported here: the parser stays light)
    parser.add_argument("--max-message-bytes", type=int, metavar="BYTES",
                        help="largest message part taken from the socket; a longer one is refused before "
                             "it is read and the connection opened again (default: 134217728, 128 MiB)")
    parser.add_argument("--max-frame-pixels", type=int, default=DEFAULT_MAX_FRAME_PIXELS, metavar="PIXELS",
                        help="largest frame or pixel mask a message may declare; a larger one gets an error record "
                             "before anything is allocated (default: %(default)s, as for files: above the largest "
                             "detectors)")
    parser.add_argument("--max-queue-bytes", type=int, metavar="BYTES",
                        help="most bytes of frames in flight, images waiting for their series info included "
                             "(compressed frames counted expanded); beyond it --overflow applies as for "
                             "--queue-size (default: 536870912, 512 MiB)")
    add_hit_options(parser)
    series = parser.add_argument_group("several services pulling from one Stream V2 detector")
    series.add_argument("--series-publish", metavar="tcp://*:PORT",
                        help="bind a PUB socket here to announce the series whose start message this service gets")
    series.add_argument("--series-subscribe", action="append", default=[], metavar="tcp://HOST:PORT",
                        help="another service's --series-publish address (repeat for each other service)")
    series.add_argument("--series-wait", type=float, default=2.0, metavar="S",
                        help="longest wait for the series info of an image whose start message went to another "
                             "service (default: %(default)s)")
    parser.set_defaults(func=run)
    return parser


def run(args):
    """Serve until SIGINT / SIGTERM; returns the exit status."""
    # before any OpenMP runtime loads: threads waiting for the next frame must not spin on the cores the
    # receiving thread and the sender need
    passive_openmp_wait()
    # imported on use, so that the other commands start without loading ZeroMQ, scikit-learn and the simulation
    from ..inference.files import frame_geometry
    from ..live import StageFailure, StreamLimits, StreamService, stop_on_signals

    # this process decodes (and with one worker classifies) every frame: freed buffers are reused
    keep_freed_memory()

    detector, overrides = detector_and_overrides(args)
    rule = rule_option(args)  # a bad threshold stops before the service starts
    geometry, beam_center_px = frame_geometry(None, detector, overrides)
    given = {name: getattr(args, name) for name in ("max_message_bytes", "max_frame_pixels", "max_queue_bytes")}
    limits = StreamLimits(**{name: value for name, value in given.items() if value is not None})
    hits = hit_writer(args)
    service = StreamService(args.model, args.input, args.publish, source_format=args.format, geometry=geometry,
                            beam_center_px=beam_center_px, queue_size=args.queue_size, overflow=args.overflow,
                            workers=args.workers, batch_size=args.batch_size, log_path=args.log, trust=args.trust,
                            status=status_printer(args), status_interval_s=args.status_interval, limits=limits,
                            peaks=args.peaks, hits=hits, series_publish=args.series_publish,
                            series_subscribe=args.series_subscribe, series_wait_s=args.series_wait,
                            rule=rule)
    # once the model is loaded (by the service, after it has bound its sockets, so that subscribers have
    # connected when the first verdicts go out), the collector's walks are limited to what the frames make
    ready = threading.Event()
    threading.Thread(target=lambda: ready.wait() and freeze_loaded_objects(), daemon=True).start()
    with stop_on_signals() as stop:
        try:
            final = service.run(stop, ready)
        except StageFailure as exc:  # a stage could not go on: fail loudly so that a supervisor restarts it
            if exc.final is not None:
                print_summary(args.command, exc.final)
            print_hits(args.command, hits)
            print(f"diffranet {args.command}: error: {exc}", file=sys.stderr)
            return 1
    print_summary(args.command, final)
    print_hits(args.command, hits)
    return 0
