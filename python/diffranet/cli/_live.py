"""Options and terminal output shared by ``diffranet classify``, ``watch`` and ``stream``."""

from __future__ import annotations

import sys


def add_status_options(parser):
    """``--log``, ``--status-interval`` and ``--quiet``."""
    parser.add_argument("--log", metavar="FILE", help="JSON-lines log, appended to")
    parser.add_argument("--status-interval", type=float, default=1.0, metavar="S",
                        help="seconds between status lines on stderr (default: %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no status line")


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
                     f"{snapshot.latency_text()}\n")


def add_hit_options(parser):
    """``--write-hits DIR`` and its settings: the veto's output."""
    hits = parser.add_argument_group("hit frames (the veto's output)")
    hits.add_argument("--write-hits", metavar="DIR",
                      help="write the hit frames to NXmx / CXI HDF5 files in DIR, with CrystFEL geometry files "
                           "and an event list")
    hits.add_argument("--hits-per-file", type=int, default=1000, metavar="N",
                      help="most frames per hit file (default: %(default)s)")
    hits.add_argument("--hits-file-seconds", type=float, default=60.0, metavar="S",
                      help="a hit file is completed at most S seconds after its first frame (default: %(default)s)")
    hits.add_argument("--hits-compression", choices=["bitshuffle", "gzip", "none"], default="bitshuffle",
                      help="HDF5 compression of the hit frames (default: %(default)s)")


def hit_writer(args):
    """The :class:`~diffranet.live.hits.HitWriter` of ``--write-hits``, or None."""
    if not args.write_hits:
        return None
    # imported on use: h5py loads only when hit frames are written
    from ..live.hits import HitWriter

    return HitWriter(args.write_hits, frames_per_file=args.hits_per_file, file_seconds=args.hits_file_seconds,
                     compression=args.hits_compression)


def print_hits(command, hits):
    """Where the hit frames went (the hit writer is complete once the run has stopped)."""
    if hits is not None:
        print(f"diffranet {command}: {hits.frames_written} hit frames in {hits.files_written} files, "
              f"event list {hits.event_list}" + (f", {hits.failures} write failures" if hits.failures else ""),
              file=sys.stderr)
