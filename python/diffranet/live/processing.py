"""The processing layer: frames to verdicts with one saved model.

Frames are classified in batches (one ``SavedModel.classify`` call per run
of consecutive frames that share mask, geometry and saturation), so the
per-call overhead of the model is paid once per batch. A frame the model
rejects (any exception: wrong shape for the geometry, unusable values, out
of memory) is isolated by classifying its batch frame by frame; it gets an
error and the others their verdicts. Pixels that arrive still compressed
(Stream V2) are expanded here, in the thread or worker process that
classifies them; bslz4 integers go to the preprocessing still compressed,
which expands only the blocks the model input reads. A frame with non-finite pixels (NaN, inf) outside its mask
gets an error: no verdict can be trusted on it.

Each verdict also carries the frame's spot figures, ``n_peaks`` and
``d_min_A`` (:mod:`diffranet.live.spots`), from the same model input or from
the frame itself.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from .._validation import check_choice, check_threads
from ..inference.preprocess import INPUT_KINDS, count_nonfinite
from .compression import CompressedArray
from .frames import describe_exception
from .spots import NO_SPOTS, PEAK_SOURCES, SpotCounter

log = logging.getLogger("diffranet.live")

__all__ = ["FrameClassifier"]


def _group_key(frame):
    return (id(frame.mask), frame.geometry, frame.beam_center_px, frame.saturation)


class FrameClassifier:
    """Classify :class:`~diffranet.live.frames.Frame` objects with a :class:`~diffranet.inference.SavedModel`.

    Parameters
    ----------
    model : SavedModel
        Any object with the ``preprocess``, ``predict_proba``, ``verdicts``
        methods and the ``preprocessing`` of a saved model.
    peaks : {"input", "frame", "none"}, default "input"
        Where ``n_peaks`` and ``d_min_A`` come from: the model input, the
        frame itself, or nowhere (both None).
    input : {"auto", "counts", "8bit"}, default "auto"
        What the frames hold (:func:`~diffranet.inference.preprocess.preprocess`).
    n_threads : int or None, default 1
        Threads of each frame's preprocessing and of the spot count over a
        batch (None: every core). One worker process of several keeps 1; the
        single classifier thread of a service takes the process's cores, which
        the other threads leave idle while it works.
    """

    def __init__(self, model, peaks="input", input="auto", n_threads=1):
        self.model = model
        self.peaks = check_choice("peaks", peaks, PEAK_SOURCES)
        self.input = check_choice("input", input, INPUT_KINDS)
        check_threads(n_threads)
        self.n_threads = n_threads
        self.spots = None if peaks == "none" else SpotCounter(model.preprocessing, n_threads=n_threads)

    def warm_up(self):
        """Run the model and the spot count once on a blank model input.

        The first call of a network builds its kernels (torch: about a second
        on a CPU); a service warmed up before its first frame does not make
        that frame, and the ones queued behind it, wait. A model that fails
        on a blank input is only logged: frames may still suit it.
        """
        blank = np.zeros((1, *self.model.preprocessing.shape), np.uint8)
        try:
            self.model.predict_proba(blank)
            if self.spots is not None:
                self.spots.summarise(blank, geometry_known=False)
        except Exception as exc:  # the frames will say whether the model works
            log.warning("model warm-up on a blank input failed: %s", describe_exception(exc))

    def _classify_group(self, frames):
        first = frames[0]
        masks = None if first.mask is None else [f.mask for f in frames]
        images = self.model.preprocess([f.data for f in frames], masks, first.geometry,
                                       beam_center_px=first.beam_center_px, saturation=first.saturation,
                                       input=self.input, n_threads=self.n_threads)
        verdicts = self.model.verdicts(self.model.predict_proba(images))
        if self.spots is None:
            return [{**verdict, **NO_SPOTS} for verdict in verdicts]
        if self.peaks == "frame":
            spots = [self.spots.summarise_frame(f.data, f.mask, f.geometry, beam_center_px=f.beam_center_px,
                                                saturation=f.saturation) for f in frames]
        else:
            spots = self.spots.summarise(images, geometry_known=first.geometry is not None)
        return [{**verdict, **figures} for verdict, figures in zip(verdicts, spots)]

    def classify(self, frames):
        """Verdicts of a batch of frames (compressed pixels are expanded here first, or by the preprocessing).

        Parameters
        ----------
        frames : list of Frame

        Returns
        -------
        list of dict or ValueError
            For each frame, in order, its verdict ``{"label", "hit",
            "proba", "n_peaks", "d_min_A"}`` or the ``ValueError`` that
            explains why it could not be classified.
        """
        results = [None] * len(frames)
        ready = []
        for i, frame in enumerate(frames):
            try:
                if isinstance(frame.data, CompressedArray) and not self._stays_compressed(frame.data):
                    frame = dataclasses.replace(frame, data=frame.data.expand())
                if not frame.finite:
                    _check_finite(frame, self.n_threads)
            except Exception as exc:  # truncated, corrupt or non-finite pixels, out of memory: this frame only
                results[i] = _failure("pixels not usable", exc)
                continue
            ready.append((i, frame))
        for (i, _), result in zip(ready, self._classify_expanded([frame for _, frame in ready])):
            results[i] = result
        return results

    def _stays_compressed(self, data):
        """Whether compressed pixels go to the preprocessing as they are: bslz4 integers, which it expands only
        where the model input reads them (integers need no finite check; spots from the frame need it whole)."""
        return data.algorithm == "bslz4" and data.dtype.kind in "ui" and self.peaks != "frame"

    def _classify_expanded(self, frames):
        results = []
        start = 0
        while start < len(frames):
            stop = start + 1
            key = _group_key(frames[start])
            while stop < len(frames) and _group_key(frames[stop]) == key:
                stop += 1
            group = frames[start:stop]
            try:
                results += self._classify_group(group)
            except Exception as exc:  # one bad frame must not cost the others their verdicts
                if len(group) == 1:
                    results.append(_failure("classification failed", exc))
                else:
                    for frame in group:
                        results += self._classify_expanded([frame])
            start = stop
        return results


def _failure(what, exc):
    """A ValueError that says what failed and why (a MemoryError has no text of its own)."""
    return exc if isinstance(exc, ValueError) and str(exc) else ValueError(f"{what}: {describe_exception(exc)}")


def _check_finite(frame, n_threads):
    """Refuse a frame with NaN or infinite pixels outside its mask (integers are always finite)."""
    data = frame.data
    if data.dtype.kind != "f":
        return
    mask = frame.mask if frame.mask is not None and frame.mask.shape == data.shape else None
    count = count_nonfinite(data, mask, n_threads)
    if count:
        raise ValueError(f"frame has {count} non-finite pixels (NaN, infinity or beyond float32's range) "
                         "outside its mask")
