"""Shots on real detectors: rendered at the detector's own pixel count, then preprocessed like a file.

Training images of :class:`~diffranet.dataset.regimes.Regimes` are rendered on
the model-input detector itself (512 x 512 pixels of 172 um). A real frame is
not: it comes from a detector of 1-18 megapixels, and reaches the model
through :func:`diffranet.inference.preprocess.preprocess` (photons summed onto
the model input by resolution, or binned and cropped when the frame carries no
geometry). Summing several pixels into one changes what a frame looks like:
spots, ice rings, a direct-beam halo, hot pixels and cosmic-ray tracks become
smaller, and the background of each input pixel larger. This module renders
shots of :class:`Regimes` on :data:`FAMILIES` of real detector sizes and sends
each through the same preprocessing as a file, so a model can be trained and
scored on frames that reach it the way real frames do.

The label is the regimes' rule on the real detector (detectable spots at its
own pixels), before any preprocessing.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .._validation import check_int
from ..dataset.regimes import RegimeRenderer, Regimes
from ..dataset.shots import image_rng
from ..detectors import FrameGeometry
from ..inference.geometry import PAPER_PREPROCESSING
from ..inference.preprocess import preprocess

__all__ = ["DetectorFamily", "FAMILIES", "NativeRenderer", "render_set", "LABEL_CYCLE"]


@dataclasses.dataclass(frozen=True)
class DetectorFamily:
    """A kind of real detector: its size, pixel, distances and detector kind.

    Parameters
    ----------
    name : str
    shape : tuple of int
        ``(rows, cols)`` of the whole detector.
    pixel_size_mm : float
    distance_mm : tuple of float
        Range of sample-detector distances (log-uniform).
    detector_weights : tuple of 3 float
        Relative frequency of photon counting, integrating and CCD responses
        (:data:`diffranet.dataset.regimes.DETECTOR_KINDS`).
    """

    name: str
    shape: tuple
    pixel_size_mm: float
    distance_mm: tuple
    detector_weights: tuple

    def regimes(self, base=Regimes()):
        """``base`` with this family's detector: shots drawn as the regimes draw them."""
        return dataclasses.replace(base, shape=tuple(self.shape), pixel_size_mm=self.pixel_size_mm,
                                   distance_mm=tuple(self.distance_mm),
                                   detector_weights=tuple(self.detector_weights))


#: Real detector sizes: pixel arrays that count photons, integrating pixel detectors, CCDs and image plates.
FAMILIES = (
    DetectorFamily("PILATUS 6M", (2527, 2463), 0.172, (150.0, 800.0), (1, 0, 0)),
    DetectorFamily("PILATUS 2M", (1679, 1475), 0.172, (100.0, 600.0), (1, 0, 0)),
    DetectorFamily("EIGER 4M", (2167, 2070), 0.075, (60.0, 400.0), (1, 0, 0)),
    DetectorFamily("JUNGFRAU 1M", (1030, 1064), 0.075, (40.0, 200.0), (0, 1, 0)),
    DetectorFamily("CSPAD-like", (1480, 1552), 0.110, (60.0, 200.0), (0, 1, 0)),
    DetectorFamily("MAR345", (2300, 2300), 0.150, (100.0, 400.0), (0, 0, 1)),
    DetectorFamily("Rayonix 2x2", (1536, 1536), 0.146, (100.0, 500.0), (0, 0, 1)),
    DetectorFamily("lab CCD", (1024, 1024), 0.090, (40.0, 100.0), (0, 0, 1)),
)


class NativeRenderer:
    """Render labelled shots on real detector sizes and preprocess them onto a model input.

    Parameters
    ----------
    families : sequence of DetectorFamily, default :data:`FAMILIES`
    preprocessing : Preprocessing, default the paper's
        The model input the frames are preprocessed onto.
    no_geometry_share : float, default 0.25
        Share of frames preprocessed without their geometry (binned and
        cropped around the beam centre), as a file without distance and
        wavelength is.
    base : Regimes
        The regimes whose draws (source, sample, crystal, flaws) each family uses.

    Image ``index`` of ``split`` depends only on ``(seed, split, index)``.
    """

    def __init__(self, families=FAMILIES, preprocessing=PAPER_PREPROCESSING, no_geometry_share=0.25,
                 base=Regimes()):
        self.families = tuple(families)
        if not self.families or not all(isinstance(f, DetectorFamily) for f in self.families):
            raise ValueError("families must be a non-empty sequence of DetectorFamily")
        if not 0.0 <= float(no_geometry_share) <= 1.0:
            raise ValueError(f"no_geometry_share must lie in [0, 1], got {no_geometry_share!r}")
        self.no_geometry_share = float(no_geometry_share)
        self.preprocessing = preprocessing
        self._renderers = [RegimeRenderer(f.regimes(base)) for f in self.families]

    def render(self, seed, split, index, label):
        """Shot ``index`` of ``split`` with class ``label``, preprocessed.

        Returns
        -------
        image8 : ndarray of uint8, shape preprocessing.shape
        info : dict
            ``family``, ``geometry_given``, ``n_detectable_spots`` and the shot's set-up.
        """
        check_int("label", label, minimum=0, maximum=4)
        rng = image_rng(seed, f"{split}-family", index)  # apart from the shot's own draws
        which = int(rng.integers(len(self.families)))
        with_geometry = bool(rng.random() >= self.no_geometry_share)
        counts, setup, row = self._renderers[which].render_counts(seed, f"{split}-native", index, label)
        det = setup.detector
        centre_px = tuple(x / det.pixel_size_mm for x in det.direct_beam_mm)
        geometry = FrameGeometry(det.pixel_size_mm, det.distance_mm, setup.wavelength_A, centre_px)
        mask = det.mask
        if not all(math.isfinite(x) for x in centre_px) or not with_geometry and not _on_frame(centre_px, det.shape):
            with_geometry = True  # binning needs a beam centre on the frame
        image8 = preprocess(counts, mask, geometry if with_geometry else None, self.preprocessing,
                            beam_center_px=centre_px)
        info = {"family": self.families[which].name, "geometry_given": with_geometry,
                "n_detectable_spots": int(row["n_detectable_spots"]), "label": int(label),
                "setup": json.loads(bytes(row["setup"]).rstrip(b"\0").decode())}
        return image8, info


def _on_frame(centre_px, shape):
    x, y = centre_px
    return 0 <= x < shape[1] and 0 <= y < shape[0]


#: Classes of shot ``index``, in turn: two misses, and hits of three strengths, faint ones more often.
LABEL_CYCLE = (0, 1, 2, 3, 4, 1, 2)

#: Frames per file of :func:`render_set`.
CHUNK = 20


def render_set(folder, split, n, seed, *, renderer=None, workers=1, progress=True):
    """Render ``n`` shots of ``split`` into ``folder`` (files of :data:`CHUNK` shots) and load them.

    A file is written whole or not at all, so an interrupted run resumes
    where it stopped; files already there are read, not rendered again.

    Returns
    -------
    images8 : ndarray of uint8, shape (n, rows, cols)
    labels : ndarray of int64, shape (n,)
    info : list of dict
        One :meth:`NativeRenderer.render` ``info`` per shot.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    check_int("n", n, minimum=1)
    starts = list(range(0, n, CHUNK))
    missing = [s for s in starts if not _chunk_path(folder, split, s).exists()]
    jobs = [(folder, split, s, min(s + CHUNK, n), seed, renderer) for s in missing]
    with tqdm(total=len(starts), initial=len(starts) - len(missing), unit="file", desc=f"{split} shots",
              disable=not progress) as bar:
        if workers > 1 and len(jobs) > 1:
            with ProcessPoolExecutor(check_int("workers", workers, minimum=1)) as pool:
                for _ in pool.map(_render_chunk, jobs):
                    bar.update()
        else:
            for job in jobs:
                _render_chunk(job)
                bar.update()
    images, labels, info = [], [], []
    for s in starts:
        with np.load(_chunk_path(folder, split, s)) as f:
            images.append(f["images"])
            labels.append(f["labels"])
            info += [json.loads(str(x)) for x in f["info"]]
    return np.concatenate(images), np.concatenate(labels).astype(np.int64), info


def _chunk_path(folder, split, start):
    return folder / f"{split}-{start:06d}.npz"


def _render_chunk(job):
    folder, split, start, stop, seed, renderer = job
    renderer = renderer or NativeRenderer()
    images, labels, info = [], [], []
    for index in range(start, stop):
        label = LABEL_CYCLE[index % len(LABEL_CYCLE)]
        image8, shot = renderer.render(seed, split, index, label)
        images.append(image8)
        labels.append(label)
        info.append(json.dumps(shot))
    path = _chunk_path(folder, split, start)
    tmp = path.with_suffix(".part.npz")
    np.savez_compressed(tmp, images=np.stack(images), labels=np.array(labels), info=np.array(info))
    os.replace(tmp, path)

