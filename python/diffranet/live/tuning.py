"""Process and thread settings that make per-frame work cheap in the live service.

Two costs dominate a naive service on 512 x 512 frames and have nothing to do
with the work itself:

* **Fresh pages.** glibc hands out arrays above its mmap threshold (128 KiB
  to 32 MiB, adaptive) as new memory maps and returns them to the kernel when
  freed, so every frame's temporaries (a 512 x 512 float64 array is 2 MiB)
  are page-faulted in again; on virtual machines a page fault costs several
  microseconds and a frame's temporaries thousands of them.
  :func:`diffranet._allocator.keep_freed_memory` makes glibc keep freed memory in the process
  heap for reuse: the resident size then stays at the peak working set of
  the frames in flight (bounded by the queue), and stays flat. It changes the
  allocator of the whole process, so it runs only in processes this package
  owns: the worker processes (:func:`prepare_worker_process`) and the
  ``stream`` command; a :class:`~diffranet.live.StreamService` started from a
  user's interpreter leaves that interpreter's allocator alone.
* **Thread pools inside one frame.** Frames are parallel across worker
  processes; OpenMP thread teams within one frame (bitshuffle, the
  compiled feature extractors) only add spinning and synchronisation.
  :func:`one_thread_per_frame` limits the calling thread to one OpenMP thread,
  after loading the libraries that bring their own OpenMP runtime (a limit set
  before a library is loaded does not reach it). torch keeps its own thread
  count: :func:`one_torch_thread` sets it in worker processes, where two
  workers with two torch threads each spent three to five times the CPU per
  frame of one worker.
"""

from __future__ import annotations

from .._allocator import keep_freed_memory

__all__ = ["keep_freed_memory", "one_thread_per_frame", "one_torch_thread", "prepare_processing_thread",
           "prepare_worker_process"]


def one_thread_per_frame():
    """One OpenMP thread in the calling thread, also for bitshuffle's own OpenMP runtime."""
    import bitshuffle  # noqa: F401  (loads its OpenMP runtime so that the limit reaches it)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="openmp")


def one_torch_thread():
    """One intra-op thread for torch in this process, if a model has loaded torch (else nothing)."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


def prepare_processing_thread():
    """One OpenMP thread, for a thread that decodes, preprocesses or classifies frames.

    Safe in a user's process: it sets the calling thread only.
    """
    one_thread_per_frame()


def prepare_worker_process():
    """Both settings, for a worker process this package spawned (never a user's interpreter)."""
    keep_freed_memory()
    one_thread_per_frame()
