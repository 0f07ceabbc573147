"""Per-frame spot figures of the verdicts: peak count and the resolution of the outermost spot.

What the field's live monitors show next to a hit / miss verdict (OM's peak
count, the DIALS / Jungfraujoch spot-finding resolution estimate). Two
sources (:data:`PEAK_SOURCES`):

``"input"`` (:meth:`SpotCounter.summarise`)
    the image the model already has: the 8-bit model input of each frame, a
    ``preprocessing.shape`` image in the training detector's geometry. The
    cost does not depend on the detector; spots beyond the resolution the
    training detector sees at its corner are outside the input, so
    ``d_min_A`` is never below that resolution.
``"frame"`` (:meth:`SpotCounter.summarise_frame`)
    the frame itself, in its own pixels (masked, negative, non-finite and
    saturated pixels ignored), its geometry turning radii into d. Exact to
    the detector's edge; the cost grows with the frame's pixel count.

On the model input:

* ``n_peaks``: the Bragg peaks :func:`diffranet.peaks.find_peaks` finds in
  the model input, squared back to counts (the input holds
  ``round(sqrt(counts + adc_offset))``; a constant offset does not move a
  peakfinder8 threshold, which is relative to each ring's background).
* ``d_min_A``: the resolution d = lambda / (2 sin theta) of the peak farthest
  from the beam, in Angstrom. A frame with a known geometry reaches the model
  input resampled by resolution (:func:`diffranet.inference.preprocess.resample`),
  so a radius there means the same d as on the detector and the training
  geometry turns it into d. Without the frame's geometry (binned and
  cropped) the radius has no known resolution: ``None``, as for a frame
  without peaks.
"""

from __future__ import annotations

import math

import numpy as np

from .._validation import check_threads
from ..inference.preprocess import invalid_pixels
from ..peaks import PeakFinderSettings
from ..peaks.finder import SQUARES_8BIT
from ..peaks.finder import _run as run_finder

__all__ = ["SpotCounter", "NO_SPOTS", "PEAK_SOURCES"]

#: The spot fields of a verdict when they are not computed.
NO_SPOTS = {"n_peaks": None, "d_min_A": None}

#: Where peaks are counted: the model input, the frame itself, or nowhere (``NO_SPOTS``).
PEAK_SOURCES = ("input", "frame", "none")


class SpotCounter:
    """Peak count and highest-resolution spot of model inputs.

    Parameters
    ----------
    preprocessing : Preprocessing
        The model's input: shape and training geometry.
    settings : PeakFinderSettings, optional
        Peak-finder parameters (default: CrystFEL's peakfinder8 defaults,
        see :class:`~diffranet.peaks.PeakFinderSettings`).
    n_threads : int or None, default 1
        Threads of the peak finder over a batch of model inputs (None: every
        core); the figures do not depend on it.

    Examples
    --------
    Two 2 x 2-pixel spots on a noisy 8-bit background, 40 pixels right of and
    20 pixels below the beam of a 128 x 128 input (0.688 mm pixels at 80 mm,
    1.5 A). The outer one is at 40 x 0.688 = 27.52 mm: 2 theta =
    atan(27.52 / 80) = 18.98 degrees, d = 1.5 / (2 sin 9.49 deg) = 4.55 A.

    >>> from diffranet.inference import FrameGeometry, Preprocessing
    >>> counter = SpotCounter(Preprocessing(shape=(128, 128), geometry=FrameGeometry(0.688, 80.0, 1.5)))
    >>> images = np.random.default_rng(0).integers(9, 12, (1, 128, 128)).astype(np.uint8)
    >>> images[0, 63:65, 103:105] = 60
    >>> images[0, 83:85, 63:65] = 60
    >>> spots = counter.summarise(images, geometry_known=True)
    >>> spots[0]["n_peaks"], spots[0]["d_min_A"]
    (2, 4.55)
    >>> counter.summarise(images, geometry_known=False)[0]["d_min_A"] is None
    True
    """

    def __init__(self, preprocessing, settings=None, n_threads=1):
        self.preprocessing = preprocessing
        check_threads(n_threads)
        self.n_threads = n_threads
        self.settings = PeakFinderSettings() if settings is None else settings
        if not isinstance(self.settings, PeakFinderSettings):
            raise ValueError(f"settings must be a PeakFinderSettings, got {type(self.settings).__name__}")
        x, y = preprocessing.geometry.center_px(preprocessing.shape)
        self._center = (x - 0.5, y - 0.5)  # the finder puts pixel centres at integer positions

    def d_min_A(self, x, y):
        """Resolution (Angstrom) of the model-input positions farthest from the beam; None for no positions."""
        return _d_min_A(self.preprocessing.geometry, self._center, x, y)

    def summarise_frame(self, frame, mask=None, geometry=None, *, beam_center_px=None, saturation=None):
        """``{"n_peaks", "d_min_A"}`` of one raw frame, found in its own pixels.

        Parameters
        ----------
        frame : ndarray, shape (rows, cols)
            Raw detector values (photons).
        mask : ndarray of bool, optional
            True for pixels to ignore.
        geometry : FrameGeometry, optional
            Gives the beam centre and turns radii into d; without it
            ``d_min_A`` is None and the beam is at ``beam_center_px`` (or the
            frame's centre).
        beam_center_px : (x, y), optional
        saturation : float, optional
            Values at or above it are ignored.

        Returns
        -------
        dict
        """
        invalid = invalid_pixels(frame, mask, saturation)
        values = np.where(invalid, 0.0, frame).astype(np.float32)
        shape = values.shape
        if geometry is not None:
            x, y = geometry.center_px(shape)
        elif beam_center_px is not None:
            x, y = beam_center_px
        else:
            x, y = shape[1] / 2.0, shape[0] / 2.0
        center = (float(x) - 0.5, float(y) - 0.5)
        found = run_finder(values[np.newaxis], invalid, center, self.settings, 1)
        n_peaks = int(found["counts"][0])
        d_min = None if geometry is None else _d_min_A(geometry, center, found["x"], found["y"])
        return {"n_peaks": n_peaks, "d_min_A": d_min}

    def summarise(self, images8, *, geometry_known):
        """``{"n_peaks", "d_min_A"}`` of each 8-bit model input.

        Parameters
        ----------
        images8 : ndarray of uint8, shape (n, rows, cols)
            Model inputs (:meth:`~diffranet.inference.SavedModel.preprocess`).
        geometry_known : bool
            Whether the frames were placed on the input by their geometry
            (then ``d_min_A`` is computed; else it is None).

        Returns
        -------
        list of dict
        """
        images8 = np.asarray(images8)
        if images8.ndim != 3 or images8.dtype != np.uint8 or images8.shape[1:] != tuple(self.preprocessing.shape):
            raise ValueError(f"images8 must be uint8 of shape (n, *{tuple(self.preprocessing.shape)}), "
                             f"got {images8.dtype} {images8.shape}")
        if len(images8) == 0:
            return []
        found = run_finder(np.ascontiguousarray(images8), None, self._center, self.settings, self.n_threads,
                           SQUARES_8BIT)
        summaries = []
        for index, n_peaks in enumerate(found["counts"].tolist()):
            d_min = None
            if geometry_known and n_peaks:
                mine = found["image"] == index
                d_min = self.d_min_A(found["x"][mine], found["y"][mine])
            summaries.append({"n_peaks": int(n_peaks), "d_min_A": d_min})
        return summaries


def _d_min_A(geometry, center, x, y):
    """Resolution (Angstrom) of the positions (pixels, centres at integers) farthest from ``center``; None if none."""
    if len(x) == 0:
        return None
    radius_px = float(np.max(np.hypot(np.asarray(x) - center[0], np.asarray(y) - center[1])))
    d = geometry.resolution_A(radius_px * geometry.pixel_size_mm)
    return None if math.isinf(d) else round(d, 2)
