"""``diffranet stream``: classify frames from a ZMQ stream, publish verdicts."""

from __future__ import annotations

from .._allocator import keep_freed_memory
from ._live import add_status_options, print_summary, status_printer
from ._model_options import add_model_and_geometry_options, detector_and_overrides

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
    parser.add_argument("--workers", type=int, default=1,
                        help="classifier processes; 1 classifies in the service process (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=32, help="most frames per model call (default: %(default)s)")
    parser.set_defaults(func=run)
    return parser


def run(args):
    """Serve until SIGINT / SIGTERM; returns the exit status."""
    # imported on use, so that the other commands start without loading ZeroMQ, scikit-learn and the simulation
    from ..inference.files import frame_geometry
    from ..live import StreamService, stop_on_signals

    # this process decodes (and with one worker classifies) every frame: freed buffers are reused
    keep_freed_memory()

    detector, overrides = detector_and_overrides(args)
    geometry, beam_center_px = frame_geometry(None, detector, overrides)
    service = StreamService(args.model, args.input, args.publish, source_format=args.format, geometry=geometry,
                            beam_center_px=beam_center_px, queue_size=args.queue_size, overflow=args.overflow,
                            workers=args.workers, batch_size=args.batch_size, log_path=args.log, trust=args.trust,
                            status=status_printer(args), status_interval_s=args.status_interval)
    with stop_on_signals() as stop:
        final = service.run(stop)
    print_summary(args.command, final)
    return 0
