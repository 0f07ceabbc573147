"""The file source: classify image files as they appear in a directory, once completely written.

A file is taken when

1. its size and modification time have not changed for ``settle_s`` seconds,
   it is not empty, and its name is not a temporary one (hidden, ``.part``,
   ``.tmp``, ``~``); and
2. no process has it open for writing, where Linux can tell: the watcher
   asks for a read lease (``fcntl(F_SETLEASE)``), which the kernel refuses
   while a writer holds the file open. Leases need the file to belong to
   the watching user; for other files the settle time alone decides.

Each version of a file is classified once: a file that changes afterwards
(size or modification time) is classified again. Files that vanish before
they are read are forgotten; truncated, corrupt or too large files (any
failure, running out of memory included) give one error record and the
watcher goes on. Only regular files are taken (FIFOs and devices never),
symlinks only when they point inside the watched directory (unless
``follow_symlinks``); subdirectories are watched with ``recursive``. Frames are read by
:func:`diffranet.live.files.file_frames` and classified by the same
:class:`~diffranet.live.pipeline.FramePipeline` as ``diffranet classify``
and ``diffranet stream`` (header geometry, masks, every frame of
multi-frame files; the same record fields).
"""

from __future__ import annotations

import errno
import fcntl
import itertools
import os
import time
from pathlib import Path

from .. import io as dio
from .._validation import check_nonnegative, check_positive
from .files import feed_frames, file_frames
from .pipeline import FramePipeline

__all__ = ["DirectoryWatcher", "watch_directory", "is_open_for_writing"]

_F_SETLEASE = getattr(fcntl, "F_SETLEASE", 1024)
_TEMPORARY_SUFFIXES = (".part", ".tmp", ".temp", "~", ".swp")


def is_open_for_writing(path):
    """Whether the kernel reports a writer holding ``path`` open (False when it cannot tell).

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    bool
        True if a read lease is refused because the file is open for
        writing, or the file cannot be opened (it vanished); False if the
        lease was granted (and released) or leases are not available for it.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return True
    try:
        fcntl.fcntl(fd, _F_SETLEASE, fcntl.F_RDLCK)
    except OSError as exc:
        return exc.errno in (errno.EAGAIN, errno.EBUSY)
    else:
        fcntl.fcntl(fd, _F_SETLEASE, fcntl.F_UNLCK)
        return False
    finally:
        os.close(fd)


class DirectoryWatcher:
    """Find the completely written image files of a directory, each version once.

    Parameters
    ----------
    directory : str or path-like
    settle_s : float, default 1.0
        How long size and modification time must stay unchanged.
    include_existing : bool, default False
        Also report the files present when the watcher starts.
    extensions : sequence of str, optional
        File name endings to watch (default: every format
        :mod:`diffranet.io` reads).
    recursive : bool, default False
        Also watch the subdirectories (beamlines write one per run), at any
        depth; hidden ones (``.name``) are skipped.
    follow_symlinks : bool, default False
        Also take symlinks whose target lies outside ``directory`` (and, with
        ``recursive``, descend into symlinked directories). By default a
        symlink is taken only when its target is a regular file inside
        ``directory``. Broken links and symlink loops are skipped.
    """

    def __init__(self, directory, *, settle_s=1.0, include_existing=False, extensions=None, recursive=False,
                 follow_symlinks=False):
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise ValueError(f"{self.directory} is not a directory")
        self.settle_s = check_nonnegative("settle_s", settle_s)
        self.extensions = tuple(e.lower() for e in (extensions or dio.supported_extensions()))
        self.recursive = bool(recursive)
        self.follow_symlinks = bool(follow_symlinks)
        self._root = os.path.realpath(self.directory)
        self._observed = {}  # path -> (signature, time the signature was first seen)
        self._done = {}  # path -> signature classified
        if not include_existing:
            self._done = {path: signature for path, signature in self._scan().items()}

    def _wanted(self, name):
        lower = name.lower()
        return (not name.startswith(".") and lower.endswith(self.extensions)
                and not lower.endswith(_TEMPORARY_SUFFIXES))

    def _inside(self, path):
        """Whether ``path`` resolves to a place inside the watched directory."""
        try:
            return os.path.commonpath([self._root, os.path.realpath(path)]) == self._root
        except ValueError:
            return False

    def _scan(self):
        """``{path: (size, mtime_ns, inode)}`` of the regular image files now present."""
        found = {}
        pending = [self.directory]
        visited = set()  # (device, inode) of directories scanned, so a symlinked directory loop ends
        while pending:
            directory = pending.pop()
            try:
                st = os.stat(directory)
                if (st.st_dev, st.st_ino) in visited:
                    continue
                visited.add((st.st_dev, st.st_ino))
                entries = list(os.scandir(directory))
            except OSError:  # vanished, unreadable, a loop: nothing to take there now
                continue
            for entry in entries:
                try:
                    self._scan_entry(entry, found, pending)
                except OSError:  # vanished between listing and stat, a symlink loop, no permission
                    continue
        return found

    def _scan_entry(self, entry, found, pending):
        link = entry.is_symlink()
        if link and not self.follow_symlinks and not self._inside(entry.path):
            return
        if entry.is_dir():
            if self.recursive and not entry.name.startswith(".") and (not link or self.follow_symlinks):
                pending.append(entry.path)
            return
        if not self._wanted(entry.name) or not entry.is_file():  # FIFOs, devices, sockets are not files
            return
        st = entry.stat()
        found[entry.path] = (st.st_size, st.st_mtime_ns, st.st_ino)

    def poll(self, now=None):
        """The files that became ready since the last call, oldest first.

        Returns
        -------
        list of pathlib.Path
        """
        now = time.monotonic() if now is None else now
        current = self._scan()
        for path in list(self._observed):
            if path not in current:
                del self._observed[path]
        for path in list(self._done):
            if path not in current:
                del self._done[path]
        ready = []
        for path, signature in current.items():
            if self._done.get(path) == signature:
                continue
            seen = self._observed.get(path)
            if seen is None or seen[0] != signature:
                self._observed[path] = (signature, now)
                continue
            if signature[0] == 0 or now - seen[1] < self.settle_s or is_open_for_writing(path):
                continue
            ready.append((signature[1], path))
            self._done[path] = signature
            del self._observed[path]
        return [Path(path) for _, path in sorted(ready)]


def watch_directory(model, watcher, writer, stop, *, detector=None, overrides=None, poll_s=0.2, batch_size=16,
                    max_frame_pixels=None, input="auto", workers=1, peaks="input", trust=False, rule=None,
                    keep_hit_frames=False):
    """Classify the files ``watcher`` reports as completely written until ``stop`` is set.

    Parameters
    ----------
    model : SavedModel, str or path
        A loaded model (one worker) or its file or name.
    watcher : DirectoryWatcher
    writer : RecordWriter
        Receives one record per frame (``{"file", "frame", "label", "hit",
        "proba", "n_peaks", "d_min_A"}`` and the arrival time the writer turns
        into ``latency_ms``) or per unreadable file (``{"file", "frame",
        "error"}``), in file and frame order.
    stop : threading.Event
        Set to stop; the frames already read get their verdicts first.
    detector, overrides
        Geometry as for :func:`diffranet.live.files.file_frames`.
    poll_s : float
        Time between directory scans.
    batch_size : int
    max_frame_pixels : int, optional
        Largest frame read (default :data:`diffranet.io.DEFAULT_MAX_FRAME_PIXELS`);
        a larger file gets one error record, unread.
    input : {"auto", "counts", "8bit"}
        What the frames hold (:func:`diffranet.inference.preprocess.preprocess`).
    workers : int, default 1
        Classifier processes (1: a thread of this process, while the next file is read).
    peaks, trust, rule, keep_hit_frames
        As for :class:`~diffranet.live.pipeline.FramePipeline` (``keep_hit_frames``
        for a writer with a hit sink).
    """
    poll_s = check_positive("poll_s", poll_s)
    limit = dio.DEFAULT_MAX_FRAME_PIXELS if max_frame_pixels is None else max_frame_pixels
    pipeline = FramePipeline(model, writer.put, workers=workers, batch_size=batch_size, trust=trust, peaks=peaks,
                             input=input, rule=rule, queue_size=max(4 * batch_size * workers, 8),
                             keep_hit_frames=keep_hit_frames).start()
    seq = itertools.count()
    try:
        while not stop.is_set():
            for path in watcher.poll():
                feed_frames(pipeline, file_frames([path], detector=detector, overrides=overrides,
                                                  max_frame_pixels=limit), seq, stop)
                if stop.is_set():
                    break
            stop.wait(poll_s)
    finally:
        pipeline.finish()
