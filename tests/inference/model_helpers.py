"""Small model and images shared by the inference tests."""

import numpy as np

from diffranet.inference import FrameGeometry, Preprocessing
from diffranet.simulation.response import to_8bit

#: A small training detector: 64 x 64 pixels of 0.5 mm at 60 mm, 1.0 A, no offset.
SMALL = Preprocessing(shape=(64, 64), geometry=FrameGeometry(0.5, 60.0, 1.0), adc_offset=0.0)


def spotty_images(n, rng, n_spots):
    """8-bit 64 x 64 images as :func:`preprocess` makes them: 16 background photons per pixel,
    ``n_spots`` pixels of 5000 photons, square-root transform."""
    counts = rng.poisson(16.0, (n, 64, 64)).astype(np.float32)
    for image in counts:
        image[rng.integers(0, 64, n_spots), rng.integers(0, 64, n_spots)] += 5000.0
    return to_8bit(counts)
