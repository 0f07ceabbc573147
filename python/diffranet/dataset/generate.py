"""Generate a dataset: plan the shards, render them (in process or on Dask), resume.

The work is cut into chunks of a few images; each chunk is one task
(:func:`render_chunk`), run in this process (one worker) or on a Dask cluster
(a :class:`distributed.LocalCluster` by default, or the scheduler at
``scheduler``). Results come back to this process, which writes each shard
as soon as all its chunks are in. At most ``4 x workers`` chunks are in
flight, so memory stays bounded whatever the dataset size.

A rerun with the same settings skips every shard already on disk whose
checksum matches, and renders the rest: since image ``i`` of split ``s``
depends only on ``(seed, s, i)``, the result is byte-identical to an
uninterrupted run. A rerun with larger split sizes (same preset and seed)
grows the dataset: it renders only the new images, completing the last shard
of a split from the images already in it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import threading
from collections import deque
from pathlib import Path

import numpy as np

from .._allocator import keep_freed_memory
from .._atomic import remove_temporaries
from .._validation import check_choice, check_int, check_seed
from .export import export_dataset
from .presets import get_preset
from .regimes import RegimeRenderer, Regimes
from .shards import (
    CONFIG_FILE,
    FORMAT,
    FORMAT_VERSION,
    SHARD_DIR,
    SPLITS,
    TABLE_DTYPE,
    build_index,
    read_shard,
    shard_name,
    verify_shard,
    write_json_atomic,
    write_shard,
)
from .shots import ShotRenderer, class_sequence

__all__ = ["generate_dataset", "render_chunk", "plan_shards", "split_sizes", "WorkerFailure", "SPLITS",
           "PAPER_SIZES"]

#: The paper's split sizes.
PAPER_SIZES = {"train": 10_000, "val": 2_400, "test": 12_600}
FORMATS = ("hdf5", "pgm", "png")
_RENDERERS = {}
_log = logging.getLogger(__name__)


class WorkerFailure(ChildProcessError):
    """A worker process died or failed while rendering; finished shards are kept."""


def _renderer(preset_json):
    """This process's renderer of a preset (structure factors loaded once) or of :class:`Regimes`."""
    renderer = _RENDERERS.get(preset_json)
    if renderer is None:
        preset = get_preset(json.loads(preset_json))
        if isinstance(preset, Regimes):
            renderer = RegimeRenderer(preset)
        else:
            renderer = ShotRenderer(preset, preset.load_structure_factors())
        _RENDERERS.clear()
        _RENDERERS[preset_json] = renderer
    return renderer


def render_chunk(preset_json, seed, split, start, stop):
    """Render images ``start .. stop-1`` of ``split``.

    Parameters
    ----------
    preset_json : str
        :meth:`Preset.to_json` (a string, so workers cache per preset).
    seed : int
    split : str
    start, stop : int

    Returns
    -------
    images : ndarray of uint8, shape (stop - start, rows, cols)
    table : ndarray of TABLE_DTYPE, shape (stop - start,)
    """
    renderer = _renderer(preset_json)
    labels = class_sequence(stop, renderer.preset.class_fractions)
    images = np.empty((stop - start,) + tuple(renderer.preset.shape), dtype=np.uint8)
    table = np.empty(stop - start, dtype=TABLE_DTYPE)
    for j, index in enumerate(range(start, stop)):
        images[j], table[j] = renderer.render(seed, split, index, int(labels[index]))
    return images, table


def split_sizes(n_train=None, n_val=None, n_test=None):
    """Split sizes with the unspecified ones following the given ones.

    With no size given, the paper's 10,000 / 2,400 / 12,600. Otherwise every
    size left as None is scaled from the first given split (train, val, test
    in that order) in the paper's proportions, rounded to the nearest image:
    ``n_train=50`` gives 50 / 12 / 63.

    Returns
    -------
    dict
        ``{"train": int, "val": int, "test": int}``.

    Examples
    --------
    >>> split_sizes(n_train=50)
    {'train': 50, 'val': 12, 'test': 63}
    >>> split_sizes(n_train=0, n_val=0, n_test=600)
    {'train': 0, 'val': 0, 'test': 600}
    """
    given = {split: n for split, n in zip(SPLITS, (n_train, n_val, n_test)) if n is not None}
    given = {split: check_int(f"n_{split}", n, minimum=0) for split, n in given.items()}
    if not given:
        return dict(PAPER_SIZES)
    reference = next(iter(given))
    scale = given[reference] / PAPER_SIZES[reference]
    return {split: given.get(split, int(round(PAPER_SIZES[split] * scale))) for split in SPLITS}


def plan_shards(sizes, shard_size):
    """Shards of every split: a list of ``(split, number, start, stop)``."""
    plan = []
    for split in SPLITS:
        n = sizes.get(split, 0)
        for number, start in enumerate(range(0, n, shard_size)):
            plan.append((split, number, start, min(start + shard_size, n)))
    return plan


def _prepare_directory(out):
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"output directory {out}: exists and is not a directory")
    try:
        (out / SHARD_DIR).mkdir(parents=True, exist_ok=True)
        probe = out / SHARD_DIR / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OSError(f"output directory {out}: cannot write there ({exc.strerror or exc})") from exc
    remove_temporaries(out / SHARD_DIR)  # left by an interrupted run
    return out


def _check_config(out, config):
    """Write dataset.json, or check that an existing one has the same settings.

    Larger split sizes are allowed (the dataset grows: image ``i`` does not
    depend on the sizes); any other difference is refused.
    """
    path = out / CONFIG_FILE
    if path.exists():
        try:
            existing = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not a dataset settings file ({exc})") from exc
        existing = _current_layout(existing)
        if existing != config:
            diff = sorted(k for k in set(config) | set(existing) if config.get(k) != existing.get(k))
            if diff == ["sizes"] and isinstance(existing.get("sizes"), dict):
                old = existing["sizes"]
                shrunk = [s for s in SPLITS if config["sizes"][s] < old.get(s, 0)]
                if shrunk:
                    raise ValueError(f"{out} holds larger splits ({', '.join(f'{s}: {old[s]}' for s in shrunk)}); "
                                     f"a dataset can grow but not shrink: use another --out")
                write_json_atomic(path, config)
                return
            raise ValueError(f"{out} holds a dataset made with other settings ({', '.join(diff)}); "
                             f"use another output directory or the same settings to resume")
    else:
        write_json_atomic(path, config)


def _current_layout(config):
    """``config`` with its preset in today's layout (older sets stored the preset's flat parameters)."""
    stored = config.get("preset") if isinstance(config, dict) else None
    if not isinstance(stored, dict):
        return config
    try:
        return {**config, "preset": get_preset(stored).to_dict()}
    except (ValueError, TypeError):
        return config  # not a preset this version reads: the comparison refuses it


class _InProcess:
    """Run chunks here, one after the other (no Dask)."""

    def submit(self, *args):
        return render_chunk(*args)

    @staticmethod
    def result(handle):
        return handle

    def close(self):
        pass


@contextlib.contextmanager
def _workers_ignore_interrupt():
    """Start worker processes with SIGINT ignored: Ctrl-C reaches this process only.

    The terminal sends SIGINT to every process of the foreground group; worker
    processes would print their own tracebacks. A child started while SIGINT is
    ignored keeps ignoring it, and this process, which closes the cluster on
    KeyboardInterrupt, stops them.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _prepare_worker():
    """Settings for a worker process of this package's own cluster.

    The renderers run single-threaded, one per process: BLAS thread pools
    would only spin beside them. Each image allocates the same arrays again:
    freed memory is kept for reuse rather than page-faulted in anew.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")
    keep_freed_memory()


# The cluster this package starts for itself serves a few long tasks: the workers' sampling
# profiler (every 10 ms), GIL monitor (every 1 ms) and fast resource polls would cost
# several percent of the cores the renderers need.
_LOCAL_CLUSTER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.gil.enabled": False,
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "1s",
}


class _OnDask:
    """Run chunks on a Dask cluster: a LocalCluster, or an existing scheduler."""

    def __init__(self, workers, scheduler, connect_timeout="30s"):
        import logging

        from distributed import Client, LocalCluster

        self.cluster = None
        if scheduler is None:
            # dashboard on any free port: another cluster on the default 8787 must not matter
            import dask

            with _workers_ignore_interrupt(), dask.config.set(_LOCAL_CLUSTER_CONFIG):
                self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                            dashboard_address=":0", silence_logs=logging.ERROR)
            self.client = Client(self.cluster)
            self.client.run(_prepare_worker)
        else:
            try:
                self.client = Client(scheduler, timeout=connect_timeout)
            except OSError as exc:
                raise OSError(f"Dask scheduler {scheduler}: cannot connect ({exc})") from exc

    def submit(self, *args):
        return self.client.submit(render_chunk, *args, pure=False, retries=1)

    @staticmethod
    def result(future):
        from distributed import KilledWorker

        try:
            return future.result()
        except KilledWorker as exc:
            raise WorkerFailure(f"a worker died while rendering ({exc})") from exc

    def close(self):
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _progress_bar(total, progress):
    from tqdm import tqdm

    return tqdm(total=total, unit="img", desc="diffranet dataset", disable=not progress or total == 0,
                file=sys.stderr, smoothing=0.05, dynamic_ncols=True)


def generate_dataset(out, preset="diffranet", n_train=PAPER_SIZES["train"], n_val=PAPER_SIZES["val"],
                     n_test=PAPER_SIZES["test"], seed=0, workers=None, scheduler=None, format="hdf5",
                     shard_size=500, chunk_size=10, progress=True, connect_timeout="30s"):
    """Render a labelled dataset into ``out`` (resuming whatever is there).

    Parameters
    ----------
    out : path-like
        Dataset directory; created if missing.
    preset : str, dict or Preset, default "diffranet"
        A name of :data:`diffranet.dataset.presets.PRESETS` or a preset .json file.
    n_train, n_val, n_test : int
        Images per split (>= 0); default the paper's 10,000 / 2,400 / 12,600.
    seed : int, default 0
    workers : int, optional
        Worker processes; default: the CPU count. 1 renders in this process.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:port``); then
        ``workers`` is ignored and the cluster's workers render.
    format : {"hdf5", "pgm", "png"}, default "hdf5"
        The HDF5 shards are always written; ``pgm`` and ``png`` also export the
        original DiffraNet folder layout (``<split>/<1..5>/``).
    shard_size : int, default 500
        Images per shard file.
    chunk_size : int, default 10
        Images per task.
    progress : bool, default True
        Show a progress bar (on stderr).
    connect_timeout : str, default "30s"
        How long to wait for ``scheduler``.

    Returns
    -------
    dict
        The index (see :func:`diffranet.dataset.shards.build_index`).

    Raises
    ------
    ValueError
        For a bad argument or a directory holding a dataset with other settings.
    OSError
        If ``out`` cannot be written or a shard write fails (full disk); the
        finished shards are kept.
    WorkerFailure
        If a worker dies repeatedly; the finished shards are kept.
    """
    preset = get_preset(preset)
    sizes = {split: check_int(f"n_{split}", n, minimum=0) for split, n in zip(SPLITS, (n_train, n_val, n_test))}
    seed = check_seed("seed", seed)
    workers = (os.cpu_count() or 1) if workers is None else check_int("workers", workers, minimum=1)
    format = check_choice("format", format, FORMATS)
    shard_size = check_int("shard_size", shard_size, minimum=1)
    chunk_size = check_int("chunk_size", chunk_size, minimum=1)
    out = _prepare_directory(out)
    config = {"format": FORMAT, "version": FORMAT_VERSION, "preset": preset.to_dict(), "seed": seed,
              "sizes": sizes, "shard_size": shard_size}
    _check_config(out, config)

    plan = plan_shards(sizes, shard_size)
    pending = []
    for split, number, start, stop in plan:
        path = out / SHARD_DIR / shard_name(split, number)
        kept = 0
        if path.exists():
            attrs = verify_shard(path)
            if attrs is not None and attrs.get("start") == start and attrs.get("count") == stop - start:
                continue
            if attrs is not None and attrs.get("start") == start and attrs.get("count", 0) < stop - start:
                kept = int(attrs["count"])  # the last shard of a smaller split: keep its images, add the rest
            else:
                path.unlink()  # damaged: render it again
        pending.append((split, number, start, stop, kept))
    n_done = len(plan) - len(pending)
    total = sum(stop - start - kept for _, _, start, stop, kept in pending)
    _log.info("%s: %d of %d shards present, %d images to render (%s)", out, n_done, len(plan), total,
              f"scheduler {scheduler}" if scheduler else f"{workers} worker(s)")
    if pending:
        _render_pending(out, preset, seed, pending, workers, scheduler, chunk_size, total, progress, connect_timeout)
    index = build_index(out)
    if format != "hdf5":
        export_dataset(out, out, format, progress=progress)
    return index


def _render_pending(out, preset, seed, pending, workers, scheduler, chunk_size, total, progress, connect_timeout):
    preset_json = preset.to_json()
    attrs_common = {"format": FORMAT, "version": FORMAT_VERSION, "preset": preset.to_dict(), "seed": seed,
                    "label_rule": preset.label_rule().to_dict()}
    chunks = deque()
    buffers = {}
    for split, number, start, stop, kept in pending:
        shard = (split, number, start, stop)
        if kept:
            old = read_shard(out / SHARD_DIR / shard_name(split, number))
            buffers[shard] = [(start, old["images"], old["metadata"])]
        for a in range(start + kept, stop, chunk_size):
            chunks.append((shard, a, min(a + chunk_size, stop)))
    executor = _InProcess() if scheduler is None and workers == 1 else _OnDask(workers, scheduler, connect_timeout)
    window = 1 if isinstance(executor, _InProcess) else 4 * (workers if scheduler is None else max(
        len(executor.client.scheduler_info().get("workers", {})), 1))
    written = 0
    in_flight = deque()
    bar = _progress_bar(total, progress)
    try:
        while chunks or in_flight:
            while chunks and len(in_flight) < window:
                shard, a, b = chunks.popleft()
                in_flight.append((shard, a, b, executor.submit(preset_json, seed, shard[0], a, b)))
            shard, a, b, handle = in_flight.popleft()
            images, table = executor.result(handle)
            parts = buffers.setdefault(shard, [])
            parts.append((a, images, table))
            bar.update(b - a)
            split, number, start, stop = shard
            if sum(len(p[2]) for p in parts) == stop - start:
                parts.sort(key=lambda p: p[0])
                tables = np.concatenate([p[2] for p in parts])
                path = out / SHARD_DIR / shard_name(split, number)
                try:
                    write_shard(path, np.concatenate([p[1] for p in parts]), tables["label"], tables,
                                dict(attrs_common, split=split, shard=number, start=start, count=stop - start))
                except OSError as exc:
                    raise OSError(f"writing {path} failed ({exc.strerror or exc}); the {written} shard(s) "
                                  f"finished in this run and earlier ones are kept in {out}") from exc
                del buffers[shard]
                written += 1
    except WorkerFailure as exc:
        raise WorkerFailure(f"{exc}; the {written} shard(s) finished in this run and earlier ones are kept in "
                            f"{out}; run the same command again to resume") from exc
    finally:
        bar.close()
        executor.close()
