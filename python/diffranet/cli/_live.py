"""Options and terminal output shared by ``diffranet watch`` and ``diffranet stream``."""

from __future__ import annotations

import sys


def add_model_and_geometry_options(parser):
    """``--model``, ``--trust``, ``--detector`` and the geometry options of ``diffranet classify``."""
    parser.add_argument("--model", required=True,
                        help="model file, or 'default' for the model shipped with diffranet")
    parser.add_argument("--trust", action="store_true",
                        help="also load a joblib/pickle model file (can run code: only for files you trust)")
    parser.add_argument("--detector", metavar="FILE",
                        help="detector TOML file, or a shipped name (paper, pilatus6m, eiger16m)")
    parser.add_argument("--pixel-size-mm", type=float, help="pixel size (mm)")
    parser.add_argument("--distance-mm", type=float, help="sample-detector distance (mm)")
    parser.add_argument("--wavelength-A", type=float, help="X-ray wavelength (Angstrom)")
    parser.add_argument("--beam-center-px", type=float, nargs=2, metavar=("X", "Y"),
                        help="beam centre in pixels (x along columns, y along rows)")
    parser.add_argument("--log", metavar="FILE", help="JSON-lines log, appended to")
    parser.add_argument("--status-interval", type=float, default=1.0, metavar="S",
                        help="seconds between status lines on stderr (default: %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no status line")


def detector_and_overrides(args):
    """The detector file (or None) and the geometry values given on the command line."""
    from ..inference.detector_files import load_detector

    detector = None if args.detector is None else load_detector(args.detector)
    overrides = {"pixel_size_mm": args.pixel_size_mm, "distance_mm": args.distance_mm,
                 "wavelength_A": args.wavelength_A,
                 "beam_center_px": None if args.beam_center_px is None else tuple(args.beam_center_px)}
    return detector, overrides


def status_printer(args):
    """A callable writing each status snapshot to stderr (one updating line on a terminal), or None."""
    if args.quiet:
        return None
    tty = sys.stderr.isatty()

    def show(snapshot):
        line = f"diffranet {args.command}: {snapshot.status_line()}"
        sys.stderr.write(f"\r\033[K{line}" if tty else f"{line}\n")
        sys.stderr.flush()

    return show


def print_summary(command, snapshot):
    """The final counts on stderr."""
    sys.stderr.write(f"\ndiffranet {command}: done: {snapshot.frames} frames, {snapshot.hits} hits "
                     f"(hit rate {snapshot.hit_rate:.3f}), {snapshot.dropped} dropped, {snapshot.errors} errors, "
                     f"latency p50 {snapshot.latency_p50_ms:.1f} ms p99 {snapshot.latency_p99_ms:.1f} ms\n")
