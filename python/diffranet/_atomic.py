"""Atomic file writes: a file appears under its final name complete, or not at all.

Every file the package writes (images, dataset shards and their index, models,
checkpoints, caches, search state) goes through :func:`atomic_path` or
:func:`atomic_write`:

1. the content is written to a temporary file in the same directory, under a
   name unique to this write (two processes writing the same file never share
   a temporary file);
2. the temporary file is flushed to disk (``fsync``);
3. it is renamed over the final name (``os.replace``, atomic on POSIX and
   Windows within one file system), and the directory entry is flushed too;
4. if anything fails or the write is interrupted, the temporary file is
   removed and the final name keeps its previous content.

Readers therefore see either the old or the new complete file, and of two
concurrent writers the last rename wins.
"""

from __future__ import annotations

import errno
import os
import secrets
from contextlib import contextmanager, suppress
from pathlib import Path

__all__ = ["atomic_path", "atomic_write", "remove_temporaries", "TEMPORARY_GLOB"]

#: Glob matching the temporary files of interrupted writes in a directory.
TEMPORARY_GLOB = ".*.part*"


def _temporary_name(path):
    """A fresh hidden name beside ``path`` that keeps its extension (for libraries that look at it)."""
    return path.parent / f".{path.name}.{secrets.token_hex(8)}.part{path.suffix}"


def _fsync_file(path):
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _fsync_directory(directory):
    """Flush a directory entry (a rename) to disk, where the platform allows it."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows: directories cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path, *, fsync=True):
    """Yield a temporary path beside ``path``; on success move it to ``path``.

    For libraries that write to a file name (h5py, tifffile, joblib, ...): the
    body writes the temporary path, which is then flushed and renamed.

    Parameters
    ----------
    path : path-like
        The final file name. Its directory must exist.
    fsync : bool, default True
        Flush the file and the directory to disk (durable after a power cut,
        not only after a crash of the process).

    Yields
    ------
    pathlib.Path
        Where to write; hidden, unique to this call, with ``path``'s extension.

    Raises
    ------
    FileNotFoundError
        If the directory of ``path`` does not exist.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "numbers.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("1 2 3")
    >>> target.read_text()
    '1 2 3'
    """
    path = Path(os.fspath(path))
    parent = path.parent
    if not parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, "directory of the file to write does not exist", str(parent))
    tmp = _temporary_name(path)
    try:
        yield tmp
        if fsync:
            _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if fsync:
        _fsync_directory(parent)


@contextmanager
def atomic_write(path, mode="wb", *, fsync=True, **open_kwargs):
    """Open a temporary file for writing; on success it replaces ``path``.

    Parameters
    ----------
    path : path-like
        The final file name. Its directory must exist.
    mode : {"wb", "w"}, default "wb"
        Binary or text.
    fsync : bool, default True
        See :func:`atomic_path`.
    **open_kwargs
        Passed to :func:`open` (e.g. ``encoding="utf-8"``).

    Yields
    ------
    file object

    Examples
    --------
    >>> import json, tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "settings.json"
    >>> with atomic_write(target, "w", encoding="utf-8") as fh:
    ...     json.dump({"seed": 0}, fh)
    >>> json.loads(target.read_text())
    {'seed': 0}
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}")
    with atomic_path(path, fsync=fsync) as tmp:
        with open(tmp, mode.replace("w", "x"), **open_kwargs) as fh:
            yield fh
            fh.flush()


def remove_temporaries(directory):
    """Delete the temporary files that interrupted writes left in ``directory``; return how many."""
    removed = 0
    for stale in Path(directory).glob(TEMPORARY_GLOB):
        with suppress(FileNotFoundError):
            stale.unlink()
            removed += 1
    return removed
