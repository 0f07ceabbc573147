"""One labelled shot: its random draws and its rendering.

Image ``i`` of split ``s`` depends only on ``(seed, s, i)``:

* its class comes from :func:`class_sequence`, a fixed sequence that keeps
  every prefix's class counts within one image of the class shares;
* every other draw comes from ``numpy.random.SeedSequence(seed,
  spawn_key=(crc32(s), i, attempt))``, in a fixed order: the pulse energy, the
  wavelength, the label target, the orientation seed and the shot seed (the
  mosaic domains and every detector noise draw).

Blank shots draw the pulse energy from the part of the Gaussian at or below
zero (beam off). The other shots draw it from the positive part, by the
inverse CDF of the truncated normal. A crystal shot renders its Bragg image
once at volume scale 1, then takes the volume scale at which the label
quantity (detectable spots) equals a target drawn log-uniformly in its class's
range (see :mod:`.labels`); a class out of reach (e.g. strong at a tiny pulse) redraws
the nuisance parameters with the next ``attempt``.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
from scipy.special import ndtr, ndtri

from ..classes import is_hit
from ..simulation.orientation import random_orientation
from .labels import spot_pixels, spot_sums, volume_for_count
from .shards import TABLE_DTYPE

__all__ = ["class_sequence", "class_counts", "image_rng", "ShotRenderer", "shot_simulator"]

_SEED_MAX = 2**63 - 1

#: Smallest relative distance between the chosen volume scale and any spot's detection threshold.
_THRESHOLD_MARGIN = 1e-4
_SEQUENCES = {}


def class_sequence(n, fractions):
    """Labels of images ``0 .. n-1``: a fixed interleaving with the given shares.

    Image ``i`` takes the class ``k`` that most lags its share,
    ``argmax_k (f_k (i + 1) - c_k)`` with ``c_k`` the count so far (ties to the
    lower label). Every prefix of ``n`` images has ``|c_k - f_k n| < 1``, and the
    label of image ``i`` does not depend on ``n``.

    Parameters
    ----------
    n : int
        Number of images.
    fractions : sequence of 5 float
        Shares of labels 0 .. 4.

    Returns
    -------
    ndarray of int64, shape (n,)
    """
    key = tuple(float(f) for f in fractions)
    cached = _SEQUENCES.get(key)
    if cached is not None and len(cached) >= n:
        return cached[:n]
    share = np.asarray(key)
    labels = np.empty(max(n, 1024), dtype=np.int64)
    counts = np.zeros(len(share))
    for i in range(len(labels)):
        k = int(np.argmax(share * (i + 1) - counts))
        labels[i] = k
        counts[k] += 1
    _SEQUENCES[key] = labels
    return labels[:n]


def class_counts(n, fractions):
    """Images per label (5 ints) among the first ``n`` of :func:`class_sequence`."""
    return np.bincount(class_sequence(n, fractions), minlength=5)[:5]


def split_key(split):
    """Stable 32-bit key of a split name."""
    return zlib.crc32(split.encode("utf-8"))


def image_rng(seed, split, index, attempt=0):
    """The generator of image ``index`` of ``split`` (``attempt``-th draw)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(split_key(split), index, attempt)))


def _pulse_photons(preset, u, blank):
    """Inverse CDF of the pulse energy's Gaussian, restricted to <= 0 (blank) or > 0."""
    mean = preset.beam.photons  # the mean pulse
    rms = preset.shots.fluence_rms * mean
    p0 = float(ndtr(-mean / rms))  # probability of a draw <= 0
    p = u * p0 if blank else p0 + u * (1.0 - p0)
    p = min(max(p, 1e-300), 1.0 - 1e-16)
    drawn = mean + rms * float(ndtri(p))
    return min(drawn, 0.0) if blank else max(drawn, np.nextafter(0.0, 1.0))


def _log_uniform_int(u, low, high):
    """An int in [low, high) drawn log-uniformly from u in [0, 1)."""
    value = int(math.floor(math.exp(math.log(low) + u * (math.log(high) - math.log(low)))))
    return min(max(value, low), high - 1)


def volume_for_label(thresholds, rule, label, u_target, max_volume_scale, strong_target_max):
    """(volume scale, target, detectable spots) that put a crystal in class ``label``, or None if out of reach.

    ``thresholds`` are the volumes at which each spot of the unit-volume Bragg
    image becomes detectable (:meth:`LabelRule.detection_thresholds`): the count
    grows with the volume. A target count is drawn log-uniformly (from
    ``u_target``) in the class's range among the counts this crystal reaches
    below ``max_volume_scale``, and the volume that gives it is taken.
    """
    reachable = int(np.count_nonzero(thresholds < max_volume_scale))
    low, high = rule.class_range(label)
    high = min(high, strong_target_max + 1, reachable + 1)
    if low >= high:
        return None
    target = _log_uniform_int(u_target, low, high)
    volume = volume_for_count(thresholds, target, max_volume=max_volume_scale)
    if volume is None:
        return None
    volume = float(np.float32(volume))  # the scale the stored image is made with
    # Counts at this volume follow from the unit image's thresholds (the rule is
    # linear in the volume); a threshold within 1e-4 of it could fall either side
    # after rounding, so such a draw is not used.
    if np.any(np.abs(thresholds / volume - 1.0) < _THRESHOLD_MARGIN):
        return None
    n_detectable = int(np.count_nonzero(thresholds < volume))
    if rule.classify(n_detectable) != label:
        return None
    return volume, target, n_detectable


class ShotRenderer:
    """Render labelled shots of a preset (holds the per-process state).

    Parameters
    ----------
    preset : Preset
    structure_factors : StructureFactors or None
        The preset's (:meth:`Preset.load_structure_factors`); loaded once per process.
    """

    def __init__(self, preset, structure_factors):
        self.preset = preset
        self.structure_factors = structure_factors
        self.detector = preset.detector
        self.background = preset.background
        self.response = preset.response
        self.rule = preset.label_rule()
        self.mask = self.detector.mask

    def _draws(self, seed, split, index, attempt, label):
        preset = self.preset
        rng = image_rng(seed, split, index, attempt)
        u_pulse, z_wavelength, u_target = rng.random(), rng.standard_normal(), rng.random()
        orientation_seed, shot_seed = (int(x) for x in rng.integers(0, _SEED_MAX, size=2))
        drawn = _pulse_photons(preset, u_pulse, blank=label == 0)
        return {"photons_drawn": drawn, "photons": max(drawn, 0.0),
                "wavelength_A": preset.beam.wavelength_A * (1.0 + preset.shots.wavelength_rms * z_wavelength),
                "u_target": u_target, "orientation": random_orientation(orientation_seed), "seed": shot_seed}

    def _crystal(self, draws, label, background):
        """Bragg image and volume scale reaching ``label``, or None if out of reach."""
        preset, rule = self.preset, self.rule
        sim = preset.simulator(draws["orientation"], self.structure_factors, photons=draws["photons"],
                               wavelength_A=draws["wavelength_A"], background=False, response=False, n_threads=1)
        unit = sim.bragg(seed=draws["seed"])
        blurred_background = rule.blur(background)
        spots = spot_pixels(unit, self.mask)  # found once, for both counts
        thresholds = rule.detection_thresholds(unit, background, self.mask, blurred_background, spots=spots)
        found = volume_for_label(thresholds, rule, label, draws["u_target"], preset.shots.max_volume_scale,
                                 preset.shots.strong_target_max)
        if found is None:
            return None
        volume, target, n_detectable = found
        n_significant = int(np.count_nonzero(rule.significant(spot_sums(unit, background, self.mask, spots=spots), volume)))
        return unit * np.float32(volume), volume, target, n_detectable, n_significant, len(thresholds)

    def render(self, seed, split, index, label):
        """Render image ``index`` of ``split`` with class ``label``.

        Returns
        -------
        image8 : ndarray of uint8, shape preset.shape
        row : ndarray of :data:`TABLE_DTYPE`, shape ()
        """
        preset = self.preset
        for attempt in range(preset.shots.max_attempts):
            draws = self._draws(seed, split, index, attempt, label)
            beam = preset.shot_beam(draws["photons"], draws["wavelength_A"])
            if draws["photons"] > 0:
                background = self.background.render(self.detector, beam, oversample=preset.background_oversample,
                                                    n_threads=1)
            else:
                background = np.zeros(self.detector.shape, dtype=np.float32)
            bragg = np.zeros(self.detector.shape, dtype=np.float32)
            volume, target, n_detectable, n_significant, n_spots = 0.0, 0, 0, 0, 0
            if is_hit(label):  # weak, good and strong shots have a crystal in the beam
                found = self._crystal(draws, label, background)
                if found is None:
                    continue
                bragg, volume, target, n_detectable, n_significant, n_spots = found
            counts = self.response.apply(bragg + background, pixel_size_mm=self.detector.pixel_size_mm,
                                         seed=draws["seed"], mask=self.mask, n_threads=1)
            image8 = self.response.to_8bit(counts)
            row = np.zeros((), dtype=TABLE_DTYPE)
            row["index"], row["label"], row["seed"], row["attempt"] = index, label, draws["seed"], attempt
            row["photons_drawn"], row["photons"] = draws["photons_drawn"], draws["photons"]
            row["fluence_per_m2"], row["wavelength_A"] = beam.fluence_photons_per_m2, draws["wavelength_A"]
            row["orientation"] = draws["orientation"]
            row["volume_scale"] = volume
            row["crystal_size_um"] = (volume * preset.crystal.block_volume_um3) ** (1.0 / 3.0)
            row["target_spots"], row["n_spots"] = target, n_spots
            row["n_detectable_spots"], row["n_significant_spots"] = n_detectable, n_significant
            row["bragg_photons"] = float(bragg.sum(dtype=np.float64))
            row["background_photons"] = float(background.sum(dtype=np.float64))
            row["max_bragg_photons"] = float(bragg.max())
            return image8, row
        raise RuntimeError(f"{split} image {index}: class {label} not reached in {preset.shots.max_attempts} attempts; "
                           f"raise the preset's max_attempts or widen its class ranges")


def shot_simulator(preset, row, structure_factors=None, n_threads=None):
    """The :class:`Simulator` of a stored shot: ``.simulate(seed=row["seed"])`` remakes its image.

    Parameters
    ----------
    preset : Preset
    row : record of :data:`TABLE_DTYPE`
        The shot's metadata row.
    structure_factors : StructureFactors, optional
        Default: the preset's.
    n_threads : int, optional

    Returns
    -------
    Simulator
    """
    return preset.simulator(np.asarray(row["orientation"]), structure_factors, photons=float(row["photons"]),
                            wavelength_A=float(row["wavelength_A"]), volume_scale=float(row["volume_scale"]),
                            crystal=int(row["label"]) >= 2, n_threads=n_threads)
