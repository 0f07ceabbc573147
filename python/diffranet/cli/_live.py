"""Terminal output shared by ``diffranet watch`` and ``diffranet stream``."""

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
