"""The shortcuts of preprocessing give exactly the images (and verdicts) of the general route.

The reference below takes the general route every time: resampling scatters every subpixel's photons
with ``np.add.at``, binning sums padded blocks, and the missing area gets the full local background
(as before the shortcuts existed). The shortcuts under test: the sparse resampling matrix cached per
geometry, the coverage cached per mask, the one-to-one window for frames in the training geometry,
the 8-bit table for integer frames with nothing to ignore, and the background computed only where it
is used.
"""

import numpy as np
import pytest

import importlib
from diffranet.inference import FrameGeometry, Preprocessing, preprocess
from diffranet.inference.geometry import PAPER_PREPROCESSING
from diffranet.simulation.response import to_8bit

pp = importlib.import_module("diffranet.inference.preprocess")  # the module, not the function of that name
SHAPE = PAPER_PREPROCESSING.shape
#: The paper's detector as a Stream V2 start message gives it (172e-6 m * 1e3 is not exactly 0.172).
PAPER_FROM_METRES = FrameGeometry(172e-6 * 1e3, 0.08 * 1e3, 1.5)
OTHER = FrameGeometry(0.15, 90.0, 1.3, (250.0, 262.5))


def _reference_resample(frame, invalid, geometry, preprocessing):
    target, shape_t = preprocessing.geometry, preprocessing.shape
    k = pp._subpixels_per_side(frame.shape, geometry, preprocessing)
    values = np.where(invalid, 0.0, frame.astype(np.float64)).ravel()
    valid = (~invalid).astype(np.float64).ravel()
    sums, covered = np.zeros(shape_t).ravel(), np.zeros(shape_t).ravel()
    y = np.arange(frame.shape[0], dtype=np.float64)[:, None] + 0.5
    x = np.arange(frame.shape[1], dtype=np.float64)[None, :] + 0.5
    for i in range(k):
        for j in range(k):
            xt, yt = pp._target_positions(geometry, frame.shape, target, shape_t, x - 0.5 + (j + 0.5) / k,
                                          y - 0.5 + (i + 0.5) / k)
            with np.errstate(invalid="ignore"):
                col, row = np.floor(xt).ravel(), np.floor(yt).ravel()
                inside = (col >= 0) & (col < shape_t[1]) & (row >= 0) & (row < shape_t[0])
            index = (row[inside] * shape_t[1] + col[inside]).astype(np.intp)
            np.add.at(sums, index, values[inside] / (k * k))
            np.add.at(covered, index, valid[inside] / (k * k))
    return sums.reshape(shape_t), covered.reshape(shape_t), pp._expected_pixels(geometry, preprocessing)


def _reference_bin(frame, invalid, factor, shape_t, beam_center_px):
    rows, cols = frame.shape
    bx, by = (cols / 2.0, rows / 2.0) if beam_center_px is None else beam_center_px
    top, left = int(round(by - shape_t[0] * factor / 2.0)), int(round(bx - shape_t[1] * factor / 2.0))
    sums, covered = np.zeros(shape_t), np.zeros(shape_t)
    for r in range(shape_t[0] * factor):
        fr = top + r
        if not 0 <= fr < rows:
            continue
        c = np.arange(shape_t[1] * factor)
        fc = left + c
        inside = (fc >= 0) & (fc < cols)
        good = ~invalid[fr, fc[inside]]
        np.add.at(sums[r // factor], c[inside][good] // factor, frame[fr, fc[inside]][good].astype(np.float64))
        np.add.at(covered[r // factor], c[inside][good] // factor, 1.0)
    return sums, covered, np.full(shape_t, float(factor * factor))


def _reference_complete(sums, covered, expected, center):
    masked = (covered < pp.MIN_COVERAGE * expected) | (covered <= 0)
    if not masked.any() and np.all(covered >= expected):
        return np.maximum(sums, 0.0).astype(np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        density = np.where(covered > 0, sums / np.where(covered > 0, covered, 1.0), 0.0)
    background = pp.local_background(density, masked, center)
    counts = np.where(masked, expected * background, sums + (expected - covered) * background)
    return np.maximum(counts, 0.0).astype(np.float32)


def _reference(frame, mask=None, geometry=None, preprocessing=PAPER_PREPROCESSING, beam_center_px=None,
               saturation=None):
    invalid = pp.invalid_pixels(frame, mask, saturation)
    if geometry is not None:
        parts = _reference_resample(frame, invalid, geometry, preprocessing)
    else:
        factor = preprocessing.bin_factor or pp.default_bin_factor(frame.shape, preprocessing.shape)
        parts = _reference_bin(frame, invalid, factor, preprocessing.shape, beam_center_px)
    counts = _reference_complete(*parts, preprocessing.geometry.center_px(preprocessing.shape))
    return to_8bit(counts + np.float32(preprocessing.adc_offset))


def _frame(shape=SHAPE, dtype="<u2", seed=0):
    rng = np.random.default_rng(seed)
    frame = rng.poisson(3.0, shape).astype(np.float64)
    frame[rng.integers(0, shape[0], 40), rng.integers(0, shape[1], 40)] += rng.uniform(100, 3000, 40)
    return frame.astype(dtype)


def _gap_and_beamstop(shape=SHAPE):
    mask = np.zeros(shape, bool)
    mask[:, shape[1] // 2 - 5: shape[1] // 2 + 5] = True  # a module gap through the beam
    rows, cols = np.indices(shape)
    mask |= np.hypot(cols - shape[1] / 2, rows - shape[0] / 2) < 12  # the beamstop
    return mask


CASES = {
    "training geometry, nothing masked (table)": dict(geometry=PAPER_FROM_METRES, saturation=65535),
    "training geometry, gap and beamstop": dict(geometry=PAPER_FROM_METRES, mask="gap"),
    "training geometry, saturated pixels": dict(geometry=PAPER_FROM_METRES, saturation=1000),
    "training geometry, float frame": dict(geometry=PAPER_FROM_METRES, dtype="<f4", mask="gap"),
    "no geometry, frame of the training shape": dict(),
    "no geometry, mask": dict(mask="gap"),
    "no geometry, uint8 frame": dict(dtype="u1", input="counts"),  # of counts, not a model input
    "no geometry, larger frame, window inside": dict(shape=(600, 700), beam_center_px=(330.0, 290.0)),
    "no geometry, window past the edge": dict(beam_center_px=(200.0, 300.0)),
    "no geometry, binned by 2": dict(shape=(1030, 1024)),
    "other geometry (sparse resampling)": dict(geometry=OTHER),
    "other geometry, mask": dict(geometry=OTHER, mask="gap"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_fast_paths_give_the_general_route_s_image(case):
    options = dict(CASES[case])
    frame = _frame(options.pop("shape", SHAPE), options.pop("dtype", "<u2"))
    if options.get("mask") == "gap":
        options["mask"] = _gap_and_beamstop(frame.shape)
    kind = options.pop("input", "auto")
    expected = _reference(frame, **options)
    assert np.array_equal(preprocess(frame, input=kind, **options), expected)
    assert np.array_equal(preprocess(frame, input=kind, **options), expected)  # again, from the caches


def test_one_to_one_only_for_the_training_detector():
    corner = pp.one_to_one_corner
    assert corner(SHAPE, PAPER_FROM_METRES) == (0, 0)
    assert corner(SHAPE, FrameGeometry(0.172, 80.0, 1.5, (256.0, 256.0))) == (0, 0)
    assert corner(SHAPE, FrameGeometry(0.172, 80.0 * (1 + 1e-6), 1.5)) is None
    assert corner(SHAPE, FrameGeometry(0.172, 80.0, 1.5, (256.5, 256.0))) is None
    assert corner((512, 513), FrameGeometry(0.172, 80.0, 1.5)) is None
    assert corner(SHAPE) == (0, 0)
    assert corner((600, 700), beam_center_px=(330.0, 290.0)) == (34, 74)
    assert corner(SHAPE, beam_center_px=(200.0, 300.0)) is None
    assert corner((1024, 1024)) is None  # binned by 2
    off_centre = Preprocessing(geometry=FrameGeometry(0.172, 80.0, 1.5, (300.0, 200.0)))
    assert corner(SHAPE, FrameGeometry(0.172, 80.0, 1.5, (300.0, 200.0)), off_centre) == (0, 0)
    assert corner(SHAPE, PAPER_FROM_METRES, off_centre) is None


def test_geometry_and_mask_changes_are_not_served_from_stale_caches():
    frame = _frame(seed=4)
    gap = _gap_and_beamstop()
    other_mask = np.zeros(SHAPE, bool)
    other_mask[100:140, :] = True
    nearer = FrameGeometry(0.15, 70.0, 1.3, (250.0, 262.5))
    sequence = [dict(geometry=OTHER), dict(geometry=nearer), dict(geometry=OTHER, mask=gap),
                dict(geometry=OTHER, mask=other_mask), dict(geometry=nearer, mask=gap), dict(geometry=OTHER)]
    images = [preprocess(frame, **options) for options in sequence]
    for options, image in zip(sequence, images):
        assert np.array_equal(image, _reference(frame, **options))
    assert not np.array_equal(images[0], images[1]) and not np.array_equal(images[2], images[3])
    # the 8-bit table belongs to its ADC offset
    photon_counting = Preprocessing(adc_offset=0.0)
    assert np.array_equal(preprocess(frame, preprocessing=photon_counting),
                          _reference(frame, preprocessing=photon_counting))
    assert not np.array_equal(preprocess(frame, preprocessing=photon_counting), preprocess(frame))


def test_background_where_used_equals_the_whole_background():
    rng = np.random.default_rng(5)
    values = rng.gamma(2.0, 3.0, SHAPE)
    rows, cols = np.indices(SHAPE)
    half = cols < 200
    for masked, where in [(_gap_and_beamstop(), _gap_and_beamstop()), (half, cols >= 190),
                          (np.hypot(cols - 256, rows - 256) < 30, rows < 250), (half, np.ones(SHAPE, bool))]:
        full = pp.local_background(values, masked, (256.0, 256.0))
        assert np.array_equal(pp._background_at(values, masked, (256.0, 256.0), where), full[where])


def test_verdicts_are_the_same_with_and_without_the_shortcuts():
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline

    from diffranet.classes import CLASS_NAMES
    from diffranet.features import GLCMExtractor
    from diffranet.inference import SavedModel

    frames = np.stack([_frame(seed=s) for s in range(6)])
    frames[::2, 100:104, 100:400] += np.uint16(500)  # a streak on half of them: two kinds of frame
    training = np.stack([preprocess(f) for f in frames])
    labels = np.arange(6) % 2 * 3
    model = SavedModel(make_pipeline(GLCMExtractor(), RandomForestClassifier(n_estimators=10, random_state=0))
                       .fit(training, labels), CLASS_NAMES)
    gap = _gap_and_beamstop()
    labels_seen = set()
    for options in (dict(geometry=PAPER_FROM_METRES, saturation=65535), dict(geometry=PAPER_FROM_METRES, mask=gap),
                    dict(), dict(geometry=OTHER, mask=gap)):
        mask = options.pop("mask", None)
        fast = model.classify(list(frames), masks=mask, **options)
        slow = model.verdicts(model.predict_proba(np.stack([_reference(f, mask, **options) for f in frames])))
        assert fast == slow
        labels_seen |= {v["label"] for v in fast}
    assert labels_seen == {"blank", "good"}


def _whole_frame_map(shape, source, preprocessing):
    """The resampling matrix with every frame pixel evaluated (no window), as built before the window."""
    import scipy.sparse

    target, shape_t = preprocessing.geometry, preprocessing.shape
    rows, cols = shape
    y = np.arange(rows, dtype=np.float64)[:, None] + 0.5
    x = np.arange(cols, dtype=np.float64)[None, :] + 0.5
    xt, yt = pp._target_positions(source, shape, target, shape_t, x, y)
    seen = (xt >= 0) & (xt < shape_t[1]) & (yt >= 0) & (yt < shape_t[0])
    largest = 0.0
    for axis in (0, 1):
        near = np.diff(seen, axis=axis) | np.delete(seen, -1, axis=axis)
        for positions in (xt, yt):
            step = np.abs(np.diff(positions, axis=axis))[near]
            step = step[np.isfinite(step)]
            largest = max(largest, float(step.max()) if step.size else 0.0)
    k = int(min(max(np.ceil(2.0 * largest), 1), 8))
    sources, targets = [], []
    for i in range(k):
        for j in range(k):
            xt, yt = pp._target_positions(source, shape, target, shape_t, x - 0.5 + (j + 0.5) / k,
                                          y - 0.5 + (i + 0.5) / k)
            with np.errstate(invalid="ignore"):
                col, row = np.floor(xt).ravel(), np.floor(yt).ravel()
                inside = (col >= 0) & (col < shape_t[1]) & (row >= 0) & (row < shape_t[0])
            sources.append(np.flatnonzero(inside))
            targets.append((row[inside] * shape_t[1] + col[inside]).astype(np.intp))
    sources, targets = np.concatenate(sources), np.concatenate(targets)
    matrix = scipy.sparse.csr_matrix((np.ones(sources.size), (targets, sources)),
                                     shape=(shape_t[0] * shape_t[1], rows * cols))
    matrix.sum_duplicates()
    matrix.data /= k * k
    return k, matrix


@pytest.mark.parametrize("shape, geometry", [
    ((1400, 1300), FrameGeometry(0.075, 80.0, 1.0, (650.0, 700.0))),    # a small part of a large frame seen
    ((600, 700), FrameGeometry(0.1, 50.0, 0.8, (-100.0, 300.0))),       # beam centre off the frame
    ((300, 400), FrameGeometry(0.3, 40.0, 1.5, (200.0, 150.0))),        # coarse pixels: 7 x 7 subpixels
    ((900, 800), FrameGeometry(0.172, 1000.0, 2.0, (700.0, 100.0))),    # all of it seen
    ((100, 100), FrameGeometry(0.1, 500.0, 1.0, (5000.0, 5000.0))),     # nothing seen
])
def test_resampling_window_gives_the_whole_frame_s_map(shape, geometry, monkeypatch):
    # only the window of frame pixels that can land on the training detector is evaluated, a band of rows at
    # a time: the same matrix, with bands of any size
    k, expected = _whole_frame_map(shape, geometry, PAPER_PREPROCESSING)
    for band_px in (pp._MAP_CHUNK_PX, 3000):
        monkeypatch.setattr(pp, "_MAP_CHUNK_PX", band_px)
        matrix, _ = pp._build_mapping(shape, geometry, PAPER_PREPROCESSING)
        assert pp._subpixels_per_side(shape, geometry, PAPER_PREPROCESSING) == k
        np.testing.assert_array_equal(matrix.indptr, expected.indptr)
        np.testing.assert_array_equal(matrix.indices, expected.indices)
        np.testing.assert_array_equal(matrix.data, expected.data)
    rows, cols = pp._source_window(shape, geometry, PAPER_PREPROCESSING)
    seen = np.unique(expected.indices)
    assert np.all((seen // shape[1] >= rows.start) & (seen // shape[1] < rows.stop))
    assert np.all((seen % shape[1] >= cols.start) & (seen % shape[1] < cols.stop))
    if shape == (1400, 1300):
        assert (rows.stop - rows.start) * (cols.stop - cols.start) < 0.5 * shape[0] * shape[1]


def test_a_map_beyond_the_budget_is_refused_before_it_is_built(monkeypatch):
    # a start message may claim a huge frame of tiny pixels: every one lands on the model input
    monkeypatch.setattr(pp, "MAX_MAP_SUBPIXELS", 100_000)
    geometry = FrameGeometry(0.01, 100.0, 1.0)
    with pytest.raises(ValueError, match="at most 100,000"):
        pp._build_mapping((400, 400), geometry, PAPER_PREPROCESSING)
    matrix, _ = pp._build_mapping((300, 300), geometry, PAPER_PREPROCESSING)  # 90,000: built
    assert matrix.nnz == 90_000
