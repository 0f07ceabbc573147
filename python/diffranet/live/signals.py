"""Turn SIGINT and SIGTERM into a stop event, so services shut down cleanly."""

from __future__ import annotations

import contextlib
import signal
import threading

__all__ = ["stop_on_signals"]


@contextlib.contextmanager
def stop_on_signals(signals=(signal.SIGINT, signal.SIGTERM)):
    """Yield a :class:`threading.Event` set by the first of ``signals``; restore the handlers after.

    Must be entered on the main thread.
    """
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in signals}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
