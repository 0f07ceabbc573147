"""One beam-centre convention: a header's beam centre is the same point to the peak finder and to preprocessing.

``beam_center_px`` is measured everywhere from the outer corner of pixel (0, 0): the centre
of pixel (row, col) is at (col + 0.5, row + 0.5), as CBF ``Beam_xy`` records it.
"""

import numpy as np
import pytest

from diffranet.detectors import FrameGeometry
from diffranet.inference import Preprocessing, preprocess
from diffranet.io import read_geometry, read_image, write_image
from diffranet.peaks import find_peaks

SPOT_ROW, SPOT_COL = 17, 21
SPOT_PHOTONS = 2000.0
#: The beam hits the centre of pixel (17, 11): the spot's centre lies 10 pixels from it along x.
BEAM_X, BEAM_Y = SPOT_COL - 10 + 0.5, SPOT_ROW + 0.5


@pytest.fixture(scope="module")
def frame_file(tmp_path_factory):
    """A CBF frame with one bright pixel, 10 pixels from the beam centre its header records."""
    frame = np.random.default_rng(0).poisson(10.0, size=(40, 50)).astype(np.int32)
    frame[SPOT_ROW, SPOT_COL] += int(SPOT_PHOTONS)
    header = ("# Pixel_size 172e-6 m x 172e-6 m\r\n# Detector_distance 0.080 m\r\n# Wavelength 1.5 A\r\n"
              f"# Beam_xy ({BEAM_X:.2f}, {BEAM_Y:.2f}) pixels\r\n")
    path = tmp_path_factory.mktemp("beam") / "frame.cbf"
    write_image(path, frame, **{"_array_data.header_contents": header})
    return path


def test_the_header_records_the_beam_centre(frame_file):
    assert read_geometry(frame_file)["beam_center_px"] == (BEAM_X, BEAM_Y)


def test_the_peak_finder_sees_the_spot_10_pixels_from_the_beam(frame_file):
    frame, center = read_image(frame_file), read_geometry(frame_file)["beam_center_px"]
    ring = {"min_pixels": 1, "min_radius_px": 9.8, "max_radius_px": 10.2}
    peaks = find_peaks(frame, beam_center_px=center, **ring)
    assert len(peaks) == 1
    # peak positions and the beam centre share the convention: the spot's centre, 10 px along x
    assert (peaks["x"][0] - center[0], peaks["y"][0] - center[1]) == pytest.approx((10.0, 0.0), abs=1e-9)
    # half a pixel off in x and y, the spot lies 10.51 px from the beam: outside the ring
    assert len(find_peaks(frame, beam_center_px=(center[0] - 0.5, center[1] - 0.5), **ring)) == 0


def test_preprocessing_puts_the_spot_on_the_training_beam(frame_file):
    frame, header = read_image(frame_file), read_geometry(frame_file)
    # the training detector: same pixels, distance and wavelength, beam on the centre of pixel (8, 4)
    training = Preprocessing(shape=(16, 24), geometry=FrameGeometry(0.172, 80.0, 1.5, (4.5, 8.5)), adc_offset=0.0)
    image = preprocess(frame, geometry=FrameGeometry(**header), preprocessing=training).astype(float)
    # 10 pixels along x from the beam: pixel (8, 14), the whole spot in it (8-bit = sqrt of the counts)
    assert np.unravel_index(np.argmax(image), image.shape) == (8, 14)
    assert image[8, 14] ** 2 > 0.9 * SPOT_PHOTONS
    neighbours = image[7:10, 13:16].copy()
    neighbours[1, 1] = 0.0
    assert neighbours.max() ** 2 < 0.05 * SPOT_PHOTONS
