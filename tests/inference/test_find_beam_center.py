"""The beam centre found from a frame's own symmetry (diffranet.inference.beam_center)."""

import numpy as np
import pytest

import diffranet.inference.beam_center as bc
from diffranet.detectors import FrameGeometry
from diffranet.inference.beam_center import fill_beam_center, find_beam_center
import diffranet.live.files as live_files
from diffranet.live.files import BEAM_CENTER_TRIES, file_frames


def scatter_frame(shape, centre, seed=0, spots=200, ring_px=None):
    """Poisson counts of air / solvent scatter about ``centre`` (x, y), a beamstop, and Bragg-like spots."""
    rng = np.random.default_rng(seed)
    rows, cols = np.indices(shape)
    r = np.hypot(cols + 0.5 - centre[0], rows + 0.5 - centre[1])
    expected = 2.0 + 60.0 / (1.0 + (r / 60.0) ** 2)
    if ring_px is not None:  # a solvent ring
        expected += 15.0 * np.exp(-0.5 * ((r - ring_px) / 12.0) ** 2)
    expected[r < 12] = 0.05  # the beamstop's shadow
    frame = rng.poisson(expected).astype(np.float32)
    where = rng.integers(0, shape, (spots, 2))
    frame[where[:, 0], where[:, 1]] += rng.uniform(50, 500, spots).astype(np.float32)
    return frame


@pytest.mark.parametrize("shape, centre", [
    ((900, 1000), (480.0, 455.0)),      # near the middle
    ((900, 1000), (300.3, 610.8)),      # far from it
    ((1200, 700), (420.0, 350.0)),      # an upright frame
])
def test_finds_the_centre_of_the_scatter(shape, centre):
    frame = scatter_frame(shape, centre, ring_px=220.0)
    x, y = find_beam_center(frame)
    assert abs(x - centre[0]) < 2.0 and abs(y - centre[1]) < 2.0


def test_module_gaps_bad_pixels_and_flags_are_ignored():
    centre = (530.0, 420.0)
    frame = scatter_frame((900, 1000), centre, seed=1, ring_px=200.0)
    mask = np.zeros(frame.shape, bool)
    mask[:, 195:212] = mask[:, 600:617] = mask[300:310, :] = True
    frame[mask] = 1e6                                # whatever masked pixels hold
    frame[700:710, :] = -1                           # PILATUS-style gap flags
    frame[50, 50:60] = np.nan
    x, y = find_beam_center(frame, mask)
    assert abs(x - centre[0]) < 2.0 and abs(y - centre[1]) < 2.0


def test_no_beam_no_centre():
    rng = np.random.default_rng(2)
    assert find_beam_center(rng.poisson(3.0, (800, 800)).astype(np.float32)) is None   # dark current only
    assert find_beam_center(np.zeros((600, 600), np.float32)) is None                    # nothing at all
    assert find_beam_center(np.full((600, 600), -1.0)) is None                           # every pixel flagged


def test_a_gradient_without_a_centre_is_declined():
    rows, cols = np.indices((700, 900))
    rng = np.random.default_rng(3)
    frame = rng.poisson(5.0 + 40.0 * cols / 900.0).astype(np.float32)  # symmetric about no point
    assert find_beam_center(frame) is None


def test_same_answer_for_scaled_frames_and_any_dtype():
    frame = scatter_frame((800, 900), (400.0, 380.0), seed=4, ring_px=180.0)
    a = find_beam_center(frame)
    b = find_beam_center((frame * 7.0).astype(np.float64))
    c = find_beam_center(frame.astype(np.int32))
    assert np.allclose(a, b, atol=1.0) and np.allclose(a, c, atol=1e-9)


def test_fill_keeps_a_known_centre(monkeypatch):
    monkeypatch.setattr(bc, "find_beam_center", lambda *a, **k: pytest.fail("searched"))
    geometry = FrameGeometry(0.172, 200.0, 1.0, (10.0, 20.0))
    frame = np.zeros((50, 50))
    assert fill_beam_center(frame, None, None, geometry, None) == (geometry, None)
    assert fill_beam_center(frame, None, None, None, (3.0, 4.0)) == (None, (3.0, 4.0))


def test_fill_puts_the_found_centre_in_the_geometry():
    frame = scatter_frame((900, 1000), (300.0, 610.0), seed=5, ring_px=220.0)
    geometry, beam = fill_beam_center(frame, None, None, FrameGeometry(0.172, 200.0, 1.0), None)
    assert geometry.beam_center_px == beam and abs(beam[0] - 300.0) < 2 and abs(beam[1] - 610.0) < 2
    geometry, beam = fill_beam_center(frame, None, None, None, None)   # no geometry: for binning
    assert geometry is None and abs(beam[0] - 300.0) < 2


def test_file_frames_find_the_centre_unless_given(tmp_path):
    centre = (300.0, 610.0)
    np.save(tmp_path / "a.npy", scatter_frame((900, 1000), centre, seed=6, ring_px=220.0))
    geometry = {"pixel_size_mm": 0.172, "distance_mm": 200.0, "wavelength_A": 1.0}
    (frame,) = file_frames([tmp_path / "a.npy"], overrides=geometry)
    assert np.allclose(frame.geometry.beam_center_px, centre, atol=2.0)
    assert frame.beam_center_px == frame.geometry.beam_center_px
    (frame,) = file_frames([tmp_path / "a.npy"], overrides={**geometry, "beam_center_px": (1.0, 2.0)})
    assert frame.geometry.beam_center_px == (1.0, 2.0)  # the command line's centre wins


def test_file_frames_search_a_stack_until_a_frame_shows_the_centre(tmp_path, monkeypatch):
    rng = np.random.default_rng(7)
    n_blank = 3
    blanks = rng.poisson(2.0, (n_blank, 600, 700)).astype(np.float32)
    lit = scatter_frame((600, 700), (250.0, 330.0), seed=8, ring_px=150.0)[None]
    np.save(tmp_path / "stack.npy", np.concatenate([blanks, lit, lit]))
    calls = []
    real = bc.find_beam_center
    monkeypatch.setattr(live_files, "find_beam_center", lambda *a, **k: calls.append(1) or real(*a, **k))
    frames = list(file_frames([tmp_path / "stack.npy"]))
    assert [f.beam_center_px for f in frames[:n_blank]] == [None] * n_blank  # the middle, for now
    assert all(np.allclose(f.beam_center_px, (250.0, 330.0), atol=2.0) for f in frames[n_blank:])
    assert len(calls) == n_blank + 1  # found once, then kept for the file
    assert BEAM_CENTER_TRIES >= n_blank + 1
