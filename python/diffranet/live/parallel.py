"""The parallelisation layer: where frames are classified, and verdicts put back in order.

* :class:`ThreadBackend` (``workers=1``): one processing thread in the
  service process, fed by an in-memory queue.
* :class:`ProcessBackend` (``workers=N >= 2``): N worker processes behind a
  ZMQ PUSH socket (frames, dealt round-robin) and a PULL socket (verdicts).
  Each worker loads the model once, takes the frames waiting for it in
  batches, expands compressed pixels, preprocesses and classifies them,
  and sends back one verdict (or error) per frame with the frame's
  sequence number. Masks go to the workers once, as files (not with every
  frame).
* :class:`OrderedMerger`: results arrive in any order; records leave in
  sequence-number order, so the published stream and the log follow the
  order in which frames arrived.

The number of frames in flight is bounded by the service (see
:mod:`diffranet.live.service`), not by these classes.

A failure that concerns one frame or batch (any exception from the model or
the pixels) becomes that frame's error. A failure that stops a backend
(its thread ends, a worker process exits) is reported once to
``on_failure(stage, exception)``, so that the service stops instead of
waiting for verdicts that will never come.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import signal
import tempfile
import threading
import time

import numpy as np
import zmq

from .._allocator import freeze_loaded_objects
from ..detectors import FrameGeometry
from ..inference import load_model
from .compression import CompressedArray
from .frames import Frame, describe_exception
from .processing import FrameClassifier
from .tuning import one_torch_thread, prepare_processing_thread, prepare_worker_process

__all__ = ["OrderedMerger", "ThreadBackend", "ProcessBackend"]

_STOP = b"STOP"



def _run_stage(body, on_failure, stage="classify"):
    """Run a stage's thread body; if it cannot go on, say so (``on_failure``) rather than go deaf."""
    try:
        body()
    except BaseException as exc:
        if on_failure is None:
            raise
        on_failure(stage, exc)

class OrderedMerger:
    """Release records in sequence order (0, 1, 2, ...) whatever order they are added in.

    Parameters
    ----------
    emit : callable
        Called with each record, in order, under the merger's lock.

    Examples
    --------
    >>> out = []
    >>> merger = OrderedMerger(out.append)
    >>> merger.add(1, "b"); merger.add(0, "a"); merger.add(2, "c")
    >>> out
    ['a', 'b', 'c']
    """

    def __init__(self, emit):
        self._emit = emit
        self._next = 0
        self._waiting = {}
        self._lock = threading.Lock()

    def add(self, seq, record):
        """Add the record of sequence number ``seq`` (each number exactly once)."""
        with self._lock:
            self._waiting[seq] = record
            while self._next in self._waiting:
                self._emit(self._waiting.pop(self._next))
                self._next += 1

    @property
    def waiting(self):
        """Records held back until an earlier one arrives."""
        return len(self._waiting)


def _batch_failed(exc, n):
    """The error of each frame of a batch whose model call failed as a whole."""
    return [ValueError(f"classification failed: {describe_exception(exc)}")] * n


class ThreadBackend:
    """Classify frames on one thread of this process.

    Parameters
    ----------
    classifier : FrameClassifier
    on_results : callable
        Called with a list of ``(seq, verdict or ValueError)`` after each batch.
    batch_size : int
        Most frames per model call.
    on_failure : callable, optional
        Called with ``("classify", exception)`` if the thread stops on an
        exception no frame explains (default: the exception ends the thread).
    """

    def __init__(self, classifier, on_results, batch_size=32, on_failure=None):
        self.classifier = classifier
        self.on_results = on_results
        self.batch_size = batch_size
        self.on_failure = on_failure
        self._queue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="diffranet-classifier", daemon=True)

    def start(self):
        self._thread.start()
        return self

    def submit(self, seq, frame):
        """Queue one frame (the caller bounds the number in flight)."""
        self._queue.put((seq, frame))

    def close(self, timeout=30.0):
        """Finish the queued frames and stop the thread."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self):
        _run_stage(self._loop, self.on_failure)

    def _loop(self):
        prepare_processing_thread()
        running = True
        while running:
            batch = [self._queue.get()]
            while len(batch) < self.batch_size:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if batch[-1] is None:
                running = False
                batch.pop()
            if None in batch:  # pragma: no cover - close() puts exactly one, last
                batch = [item for item in batch if item is not None]
                running = False
            if not batch:
                continue
            seqs = [seq for seq, _ in batch]
            try:
                results = self.classifier.classify([frame for _, frame in batch])
            except Exception as exc:  # the service must survive a failing model call
                results = _batch_failed(exc, len(batch))
            self.on_results(list(zip(seqs, results)))


# --------------------------------------------------------------------------- worker processes


class _MaskFiles:
    """Masks shared with the worker processes as files, written once per mask rather than sent per frame.

    The sending side names each mask by a digest of its pixels and writes it
    to ``directory`` the first time it is seen; a worker loads a name once
    and keeps the array (the same object for every frame, so frames that
    share a mask still form one batch). A file is removed once its mask is
    no longer among the ``keep`` remembered and no frame sent with it waits
    for its verdict: a sender of ever new masks (one per start message)
    would otherwise fill the disk, up to 64 MB a mask.

    Parameters
    ----------
    directory : str or path
    keep : int
        Most masks remembered on either side.
    """

    def __init__(self, directory, keep=8):
        self.directory = directory
        self.keep = keep
        self._names = {}   # sender: id(mask) -> (mask, name); the mask kept alive so that its id stays its own
        self._written = set()  # sender: names of the files in the directory
        self._waiting = {}  # sender: sequence number -> mask name, for frames sent and not answered
        self._lock = threading.Lock()  # name() on the receiving thread, answered() on the collector thread
        self._arrays = {}  # worker: name -> read-only mask

    def name(self, mask, seq):
        """The name of the mask of frame ``seq``, written to the directory the first time (sending side)."""
        with self._lock:
            known = self._names.get(id(mask))
            if known is not None and known[0] is mask:
                self._waiting[seq] = known[1]
                return known[1]
            pixels = np.ascontiguousarray(mask, dtype=bool)
            digest = hashlib.blake2b(np.packbits(pixels).tobytes(), digest_size=12)
            digest.update(repr(pixels.shape).encode())
            name = f"mask-{digest.hexdigest()}.npy"
            if name not in self._written:
                path = os.path.join(self.directory, name)
                partial = path + ".part.npy"
                np.save(partial, pixels, allow_pickle=False)
                os.replace(partial, path)
                self._written.add(name)
            if len(self._names) >= self.keep:
                self._names.pop(next(iter(self._names)))
            self._names[id(mask)] = (mask, name)
            self._waiting[seq] = name
            self._remove_unused()
            return name

    def answered(self, seqs):
        """Frames ``seqs`` have their verdicts (or were never sent): their masks' files may go (sending side)."""
        with self._lock:
            popped = [self._waiting.pop(seq, None) for seq in seqs]
            if any(name is not None for name in popped):
                self._remove_unused()

    def _remove_unused(self):
        used = {name for _, name in self._names.values()} | set(self._waiting.values())
        for name in self._written - used:
            try:
                os.remove(os.path.join(self.directory, name))
            except FileNotFoundError:
                pass
        self._written &= used

    def load(self, name):
        """The mask of a name (worker side)."""
        array = self._arrays.get(name)
        if array is None:
            if os.path.basename(name) != name:
                raise ValueError(f"bad mask name {name!r}")
            array = np.load(os.path.join(self.directory, name), allow_pickle=False)
            array.flags.writeable = False
            if len(self._arrays) >= self.keep:
                self._arrays.pop(next(iter(self._arrays)))
            self._arrays[name] = array
        return array


def _frame_parts(seq, frame, masks):
    data = frame.data
    header = {"seq": seq, "shape": list(data.shape), "dtype": data.dtype.str,
              "geometry": None if frame.geometry is None else frame.geometry.to_dict(),
              "beam_center_px": None if frame.beam_center_px is None else list(frame.beam_center_px),
              "saturation": frame.saturation, "mask": None if frame.mask is None else masks.name(frame.mask, seq),
              "finite": frame.finite}
    if isinstance(data, CompressedArray):  # expanded by the worker
        header["compressed"] = [data.algorithm, data.modifier]
        pixels = data.payload
    else:
        pixels = np.ascontiguousarray(data).data
    return [json.dumps(header).encode(), pixels]


def _frame_from_parts(parts, masks):
    header = json.loads(bytes(parts[0].buffer))
    shape, dtype = tuple(header["shape"]), np.dtype(header["dtype"])
    if header.get("compressed"):
        data = CompressedArray(*header["compressed"], parts[1].buffer, dtype, shape)
    else:
        data = np.frombuffer(parts[1].buffer, dtype=dtype).reshape(shape)
    mask = None if header["mask"] is None else masks.load(header["mask"])
    geometry = None if header["geometry"] is None else FrameGeometry.from_dict(header["geometry"])
    center = header["beam_center_px"]
    return header["seq"], Frame(tags={}, data=data, mask=mask, geometry=geometry,
                                beam_center_px=None if center is None else tuple(center),
                                saturation=header["saturation"], finite=header["finite"] is True)


def _result_json(seq, result):
    if isinstance(result, Exception):
        return {"seq": seq, "error": str(result)}
    return {"seq": seq, "verdict": result}


def worker_main(model, trust, tasks_address, results_address, batch_size, parent_pid, mask_directory, peaks="input",
                input="auto", rule=None):
    """Body of one worker process: load the model, classify frames until told to stop.

    The worker ignores SIGINT and SIGTERM: the service stops it once every
    frame in flight is classified (a STOP message), or it exits when its
    parent is gone.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    prepare_worker_process()
    context = zmq.Context()
    tasks = context.socket(zmq.PULL)
    tasks.connect(tasks_address)
    results = context.socket(zmq.PUSH)
    results.connect(results_address)
    try:
        loaded = load_model(model, trust=trust)
        classifier = FrameClassifier(loaded if rule is None else loaded.with_rule(rule), peaks=peaks, input=input)
        one_torch_thread()  # a worker classifies on one core: the workers are the parallelism
        classifier.warm_up()  # ready means the first frame is answered at speed
        freeze_loaded_objects()  # the model and its libraries stay for the worker's life
    except Exception as exc:  # reported to the service, which stops with a clear error
        results.send_json({"ready": False, "error": f"{type(exc).__name__}: {exc}"})
        results.close(linger=5000)
        context.term()
        return
    results.send_json({"ready": True, "pid": os.getpid()})
    masks = _MaskFiles(mask_directory)
    poller = zmq.Poller()
    poller.register(tasks, zmq.POLLIN)
    running = True
    while running:
        if not poller.poll(500):
            if os.getppid() != parent_pid:
                break
            continue
        batch = []
        while len(batch) < batch_size:
            try:
                parts = tasks.recv_multipart(flags=zmq.NOBLOCK if batch else 0, copy=False)
            except zmq.Again:
                break
            if parts[0].bytes == _STOP:
                running = False
                break
            try:
                batch.append(_frame_from_parts(parts, masks))
            except Exception as exc:  # the service built the message: only memory can fail here
                seq = json.loads(bytes(parts[0].buffer)).get("seq")
                results.send_json([_result_json(seq, ValueError("frame not passed to the worker: "
                                                                f"{describe_exception(exc)}"))])
        if not batch:
            continue
        try:
            outcome = classifier.classify([frame for _, frame in batch])
        except Exception as exc:  # keep serving: every frame of the batch gets the error
            outcome = _batch_failed(exc, len(batch))
        results.send_json([_result_json(seq, result) for (seq, _), result in zip(batch, outcome)])
    tasks.close(linger=0)
    results.close(linger=5000)
    context.term()


class ProcessBackend:
    """Classify frames in ``n_workers`` processes behind PUSH / PULL sockets.

    Parameters
    ----------
    model : str or path
        Model file or name; each worker loads it.
    trust : bool
        Passed to :func:`~diffranet.inference.load_model`.
    n_workers : int
    on_results : callable
        Called (on the collector thread) with a list of ``(seq, verdict or ValueError)``.
    batch_size : int
    context : zmq.Context
    start_timeout_s : float
        How long to wait for every worker to load the model.
    on_failure : callable, optional
        Called with ``("classify", exception)`` when a worker process exits
        while serving or the collector thread stops on an exception.
    peaks : {"input", "frame", "none"}, default "input"
        Where the workers count the peaks of the verdicts (see
        :class:`~diffranet.live.processing.FrameClassifier`).
    input : {"auto", "counts", "8bit"}, default "auto"
        What the frames hold.
    rule : VerdictRule, optional
        The workers' verdict rule (:meth:`~diffranet.inference.SavedModel.with_rule`); None: the model's.
    """

    def __init__(self, model, trust, n_workers, on_results, batch_size=32, context=None, start_timeout_s=120.0,
                 on_failure=None, peaks="input", input="auto", rule=None):
        self.model, self.trust = str(model), trust
        self.peaks, self.input, self.rule = peaks, input, rule
        self.n_workers = n_workers
        self.on_results = on_results
        self.on_failure = on_failure
        self.batch_size = batch_size
        self.context = context or zmq.Context.instance()
        self.start_timeout_s = start_timeout_s
        self._processes = []
        self._collector = None
        self._stopping = threading.Event()
        self._closing = threading.Event()  # workers told to stop: their exit is expected

    def start(self):
        """Start the workers and wait until each has loaded the model.

        Raises
        ------
        ValueError
            A worker could not load the model, or did not start in time.
        """
        import multiprocessing

        self._dir = tempfile.TemporaryDirectory(prefix="diffranet-live-")
        self._masks = _MaskFiles(self._dir.name)
        tasks_address = f"ipc://{self._dir.name}/tasks"
        results_address = f"ipc://{self._dir.name}/results"
        self.tasks = self.context.socket(zmq.PUSH)
        self.tasks.bind(tasks_address)
        self.results = self.context.socket(zmq.PULL)
        self.results.bind(results_address)
        spawn = multiprocessing.get_context("spawn")
        for _ in range(self.n_workers):
            process = spawn.Process(target=worker_main, daemon=True,
                                    args=(self.model, self.trust, tasks_address, results_address,
                                          self.batch_size, os.getpid(), self._dir.name, self.peaks,
                                          self.input, self.rule))
            process.start()
            self._processes.append(process)
        deadline = time.monotonic() + self.start_timeout_s
        ready = 0
        while ready < self.n_workers:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.results.poll(int(remaining * 1000)):
                self._kill()
                raise ValueError(f"{self.n_workers - ready} of {self.n_workers} workers did not start "
                                 f"within {self.start_timeout_s:.0f} s")
            message = self.results.recv_json()
            if not message.get("ready"):
                self._kill()
                raise ValueError(f"a worker could not load the model: {message.get('error')}")
            ready += 1
        self._collector = threading.Thread(target=self._collect, name="diffranet-collector", daemon=True)
        self._collector.start()
        return self

    def submit(self, seq, frame):
        """Send one frame to the next worker (from the thread that receives frames only)."""
        try:
            self.tasks.send_multipart(_frame_parts(seq, frame, self._masks), copy=False)
        except BaseException:
            self._masks.answered([seq])  # not sent: its mask need not be kept for it
            raise

    def _collect(self):
        _run_stage(self._collect_results, self.on_failure)

    def _collect_results(self):
        while not self._stopping.is_set():
            if not self.results.poll(200):
                dead = [p for p in self._processes if not p.is_alive()]
                if dead and not self._closing.is_set():
                    raise RuntimeError(f"worker process {dead[0].pid} exited with status {dead[0].exitcode}")
                continue
            message = self.results.recv_json()
            self._masks.answered(item["seq"] for item in message)
            self.on_results([(item["seq"], item["verdict"] if "verdict" in item else ValueError(item["error"]))
                             for item in message])

    def close(self, timeout=10.0):
        """Stop the workers (after the service has collected every frame in flight)."""
        self._closing.set()
        for _ in self._processes:
            try:
                self.tasks.send(_STOP, flags=zmq.NOBLOCK)
            except zmq.Again:
                break
        deadline = time.monotonic() + timeout
        for process in self._processes:
            process.join(max(0.0, deadline - time.monotonic()))
        self._kill()
        self._stopping.set()
        if self._collector is not None:
            self._collector.join(timeout)
        self.tasks.close(linger=0)
        self.results.close(linger=0)
        self._dir.cleanup()

    def _kill(self):
        for process in self._processes:
            if process.is_alive():
                process.kill()
                process.join(5)
