"""The compiled frame path gives the Python path's model input, byte for byte.

:func:`preprocess` sends frames that need resampling (a geometry) or binning (integer frames
without one) through the compiled core (``_core.FrameMap``: pixels to ignore skipped as they
are read, the missing area completed, the square root taken in one call). The Python route,
``to_8bit(to_training_counts(...) + adc_offset)``, is the reference: every case below compares
the two images pixel by pixel, over detector shapes, distances, wavelengths, beam centres on,
off and beyond the detector, module-gap masks, saturated, negative and non-finite pixels, and
the integer and floating-point types detectors write.
"""

import importlib

import numpy as np
import pytest

from diffranet.detectors.masks import module_gap_mask
from diffranet.inference import FrameGeometry, Preprocessing, preprocess
from diffranet.inference.geometry import PAPER_PREPROCESSING
from diffranet.simulation.response import to_8bit

pp = importlib.import_module("diffranet.inference.preprocess")  # the module, not the function of that name


def _python_route(frame, mask=None, geometry=None, preprocessing=PAPER_PREPROCESSING, *, beam_center_px=None,
                  saturation=None):
    counts, _ = pp.to_training_counts(frame, mask, geometry, preprocessing, beam_center_px=beam_center_px,
                                      saturation=saturation)
    return to_8bit(counts + np.float32(preprocessing.adc_offset))


def _frame(shape, dtype, seed=0, spots=300):
    """Photon counts of one per pixel, bright spots; negative flags and non-finite values where the type has them."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    frame = rng.poisson(2.0, shape).astype(np.float64)
    rows, cols = rng.integers(0, shape[0], spots), rng.integers(0, shape[1], spots)
    frame[rows, cols] += rng.integers(50, 200 if dtype.itemsize == 1 else 3000, spots)
    if dtype.kind == "f":
        frame += rng.uniform(-0.4, 0.4, shape)  # photon-converted values (JUNGFRAU): not whole numbers
    if dtype.kind in "if":
        frame[rng.integers(0, shape[0], 40), rng.integers(0, shape[1], 40)] = -2  # bad pixels
    frame = frame.astype(dtype)
    if dtype.kind == "f":
        frame[rng.integers(0, shape[0], 5), rng.integers(0, shape[1], 5)] = np.nan
        frame[rng.integers(0, shape[0], 5), rng.integers(0, shape[1], 5)] = np.inf
    return frame


def _gaps(shape, module=(195, 487), gap=(17, 7)):
    return module_gap_mask(shape, module, gap)


#: (frame shape, geometry): other shapes, distances, wavelengths, beam centres.
GEOMETRIES = {
    "pilatus-like, beam near the centre": ((1011, 985), FrameGeometry(0.172, 300.0, 1.0, (492.5, 505.5))),
    "small pixels, far, off-centre beam": ((900, 1200), FrameGeometry(0.075, 200.0, 0.9, (300.0, 420.0))),
    "beam off the detector": ((800, 700), FrameGeometry(0.1, 120.0, 1.2, (-60.0, 380.0))),
    "beam far beyond the corner": ((600, 600), FrameGeometry(0.1, 100.0, 1.0, (900.0, 950.0))),
    "coarse pixels, near (subpixels)": ((300, 260), FrameGeometry(0.4, 70.0, 1.6, (130.0, 150.0))),
    "long wavelength": ((700, 700), FrameGeometry(0.1, 100.0, 2.5)),
}

DTYPES = ["uint8", "uint16", "uint32", "int16", "int32", "int64", "float32", "float64"]


@pytest.mark.parametrize("name", sorted(GEOMETRIES))
@pytest.mark.parametrize("dtype", DTYPES)
def test_resampled_frames_equal_the_python_route(name, dtype):
    shape, geometry = GEOMETRIES[name]
    frame = _frame(shape, dtype, seed=len(name))
    mask = _gaps(shape)
    saturation = 2000 if np.dtype(dtype).itemsize > 1 else 200
    assert pp.compiled_route_applies(frame, geometry)
    for options in (dict(), dict(mask=mask), dict(mask=mask, saturation=saturation)):
        image = preprocess(frame, geometry=geometry, **options)
        assert image.dtype == np.uint8 and image.shape == PAPER_PREPROCESSING.shape
        assert np.array_equal(image, _python_route(frame, geometry=geometry, **options)), options


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "uint32", "int16", "int32"])
@pytest.mark.parametrize("shape, beam_center_px", [((2527, 2463), None), ((1100, 1030), (400.0, 700.0)),
                                                   ((1300, 1100), (-20.0, 1200.0)), ((1024, 1024), None)])
def test_binned_integer_frames_equal_the_python_route(dtype, shape, beam_center_px):
    frame = _frame(shape, dtype, seed=shape[0])
    assert pp.compiled_route_applies(frame, None)
    for options in (dict(), dict(mask=_gaps(shape)), dict(mask=_gaps(shape), saturation=150)):
        image = preprocess(frame, beam_center_px=beam_center_px, **options)
        assert np.array_equal(image, _python_route(frame, beam_center_px=beam_center_px, **options)), options


def test_other_training_detectors_and_offsets():
    shape, geometry = GEOMETRIES["small pixels, far, off-centre beam"]
    frame = _frame(shape, np.uint32, seed=3)
    for preprocessing in (Preprocessing(adc_offset=0.0), Preprocessing(shape=(256, 384)),
                          Preprocessing(shape=(128, 128), geometry=FrameGeometry(0.688, 80.0, 1.5, (40.0, 70.0))),
                          Preprocessing(bin_factor=2)):
        for g in (geometry, None):
            image = preprocess(frame, _gaps(shape), g, preprocessing, saturation=2500)
            assert image.shape == preprocessing.shape
            assert np.array_equal(image, _python_route(frame, _gaps(shape), g, preprocessing, saturation=2500))


def test_every_pixel_masked_and_every_pixel_fed():
    shape, geometry = GEOMETRIES["pilatus-like, beam near the centre"]
    frame = _frame(shape, np.int32)
    everything = np.ones(shape, bool)
    assert np.array_equal(preprocess(frame, everything, geometry), _python_route(frame, everything, geometry))
    assert np.array_equal(preprocess(frame, everything), _python_route(frame, everything))
    # binned by exactly 2 inside the frame: every training pixel fully fed, no background added
    square = np.random.default_rng(1).poisson(3.0, (1024, 1024)).astype(np.uint32)
    assert np.array_equal(preprocess(square), _python_route(square))


def test_mask_of_integers_and_non_contiguous_frames():
    shape, geometry = GEOMETRIES["small pixels, far, off-centre beam"]
    frame = _frame(shape, np.float32, seed=8)
    mask = _gaps(shape).astype(np.int32) * 7
    assert np.array_equal(preprocess(frame, mask, geometry), _python_route(frame, mask != 0, geometry))
    wide = np.zeros((shape[0], 2 * shape[1]), np.float32)
    wide[:, ::2] = frame
    assert np.array_equal(preprocess(wide[:, ::2], None, geometry), _python_route(frame, None, geometry))
    swapped = frame.astype(">f4")  # non-native byte order: the Python route
    assert not pp.compiled_route_applies(swapped, geometry)
    assert np.array_equal(preprocess(swapped, None, geometry), _python_route(frame, None, geometry))


def test_float_frames_without_geometry_take_the_python_route():
    frame = _frame((1100, 1030), np.float32)
    assert not pp.compiled_route_applies(frame, None)
    assert not pp.compiled_route_applies(np.zeros((1100, 1030), np.int64), None)
    assert not pp.compiled_route_applies(frame.astype(np.float16), GEOMETRIES["long wavelength"][1])
    assert not pp.compiled_route_applies(frame > 3, GEOMETRIES["long wavelength"][1])
    assert np.array_equal(preprocess(frame), _python_route(frame))


def test_maps_follow_the_geometry_and_masks_the_frame():
    """A changed geometry, beam centre or training detector gets its own map; masks and saturation are per frame."""
    shape = (900, 1200)
    frame = _frame(shape, np.uint32, seed=11)
    first = FrameGeometry(0.075, 200.0, 0.9, (300.0, 420.0))
    sequence = [dict(geometry=first), dict(geometry=FrameGeometry(0.075, 150.0, 0.9, (300.0, 420.0))),
                dict(geometry=FrameGeometry(0.075, 200.0, 0.9, (600.0, 420.0))),
                dict(geometry=first, mask=_gaps(shape)), dict(geometry=first, mask=_gaps(shape, (100, 300), (5, 5))),
                dict(geometry=first, saturation=100), dict(geometry=first),
                dict(beam_center_px=(500.0, 400.0)), dict(beam_center_px=(700.0, 400.0)), dict()]
    images = [preprocess(frame, **options) for options in sequence]
    for options, image in zip(sequence, images):
        assert np.array_equal(image, _python_route(frame, **options)), options
    for i in range(5):
        assert not np.array_equal(images[i], images[i + 1])
    assert np.array_equal(images[0], images[6])
    assert not np.array_equal(images[7], images[8])
    mapped = pp._frame_map(shape, first, PAPER_PREPROCESSING, None)
    assert pp._frame_map(shape, first, PAPER_PREPROCESSING, None) is mapped
    assert pp._frame_map(shape, first, Preprocessing(adc_offset=0.0), None) is not mapped


def test_gather_equals_the_sparse_products():
    shape, geometry = GEOMETRIES["coarse pixels, near (subpixels)"]
    frame = _frame(shape, np.float32, seed=2)
    mask = _gaps(shape, (60, 100), (3, 4))
    invalid = pp.invalid_pixels(frame, mask, 1500.0)
    sums_ref, covered_ref, _ = pp.resample(frame, invalid, geometry)
    sums, covered = np.empty(PAPER_PREPROCESSING.shape), np.empty(PAPER_PREPROCESSING.shape)
    mapped = pp._frame_map(shape, geometry, PAPER_PREPROCESSING, None)
    for n_threads in (1, 2):
        mapped.gather(frame, mask.view(np.uint8), 1500.0, sums, covered, n_threads)
        assert np.array_equal(sums, sums_ref) and np.array_equal(covered, covered_ref)


def test_square_root_rounds_half_to_even():
    """The 8-bit step rounds as np.rint: sqrt 0.5, 1.5, 2.5, 3.5 give 0, 2, 2, 4; NaN and negative counts 0."""
    from diffranet import _core

    counts = np.array([0.25, 2.25, 6.25, 12.25, 3.0, 65025.0, 1e9, -4.0], np.float32)
    n = counts.size
    identity = _core.FrameMap(1, n, np.arange(n + 1, dtype=np.int64), np.arange(n, dtype=np.int32), np.ones(n),
                              np.ones((1, n)), np.zeros((1, n), np.int32), np.arange(n, dtype=np.int32),
                              np.array([0, n], np.int64), 1, 1, 0.5)
    out = np.empty((1, n), np.uint8)
    for n_threads in (1, 2):
        identity.to_8bit(counts[None], None, None, 0.0, out, n_threads)
        # the negative pixel is ignored: it holds the background (the median of the others, 6.25)
        assert out.tolist() == [[0, 2, 2, 4, 2, 255, 255, 2]]
    assert np.array_equal(out, to_8bit(np.where(counts < 0, 6.25, counts)[None]))


class TestRefusals:
    shape, geometry = GEOMETRIES["long wavelength"]

    @pytest.fixture
    def mapped(self):
        return pp._frame_map(self.shape, self.geometry, PAPER_PREPROCESSING, None)

    def _out(self):
        return np.empty(PAPER_PREPROCESSING.shape, np.uint8)

    def test_wrong_dtype(self, mapped):
        for dtype in (np.float16, np.bool_, np.complex64, ">u4"):
            with pytest.raises(ValueError, match="frame must hold"):
                mapped.to_8bit(np.zeros(self.shape, dtype), None, None, 10.0, self._out(), 1)
        with pytest.raises(ValueError, match="frame must be a numpy array"):
            mapped.to_8bit([[1, 2], [3, 4]], None, None, 10.0, self._out(), 1)

    def test_shape_mismatch(self, mapped):
        with pytest.raises(ValueError, match="frame"):
            mapped.to_8bit(np.zeros((700, 701), np.uint16), None, None, 10.0, self._out(), 1)
        with pytest.raises(ValueError, match="mask"):
            mapped.to_8bit(np.zeros(self.shape, np.uint16), np.zeros((700, 701), np.uint8), None, 10.0, self._out(), 1)
        with pytest.raises(ValueError, match="out"):
            mapped.to_8bit(np.zeros(self.shape, np.uint16), None, None, 10.0, np.empty((512, 511), np.uint8), 1)
        with pytest.raises(ValueError, match="out"):
            mapped.to_8bit(np.zeros(self.shape, np.uint16), None, None, 10.0, np.empty((512, 512), np.float32), 1)
        readonly = self._out()
        readonly.flags.writeable = False
        with pytest.raises(ValueError, match="writeable"):
            mapped.to_8bit(np.zeros(self.shape, np.uint16), None, None, 10.0, readonly, 1)
        with pytest.raises(ValueError, match="mask has shape"):
            preprocess(np.zeros(self.shape, np.uint16), np.zeros((700, 701), bool), self.geometry)

    def test_nan_in_arguments_and_pixels(self, mapped):
        frame = _frame(self.shape, np.float32)
        for bad in (np.nan, np.inf):
            with pytest.raises(ValueError, match="saturation"):
                mapped.to_8bit(frame, None, bad, 10.0, self._out(), 1)
            with pytest.raises(ValueError, match="saturation"):
                preprocess(frame, None, self.geometry, saturation=bad)
            with pytest.raises(ValueError, match="adc_offset"):
                mapped.to_8bit(frame, None, None, bad, self._out(), 1)
        # NaN and infinite pixels carry no photons: ignored, as by the Python route
        assert np.isnan(frame).any() and np.isinf(frame).any()
        assert np.array_equal(preprocess(frame, None, self.geometry), _python_route(frame, None, self.geometry))
        # photon sums that overflow (inf - inf = NaN) are refused, as the Python route refuses them
        huge = np.full(self.shape, 1e308)
        huge[::2] = 0.0
        with pytest.raises(ValueError), np.errstate(all="ignore"):
            _python_route(huge, None, self.geometry)
        with pytest.raises(ValueError, match="NaN"):
            preprocess(huge, None, self.geometry)

    def test_inconsistent_maps(self, mapped):
        n = 512 * 512
        cells = np.zeros((512, 512), np.int32)
        good = dict(starts=np.zeros(n + 1, np.int64), sources=np.zeros(0, np.int32), weights=np.zeros(0),
                    expected=np.ones((512, 512)), cells=cells, order=np.arange(n, dtype=np.int32),
                    cell_starts=np.array([0, n], np.int64), n_rings=1, n_sectors=1, min_coverage=0.5)
        from diffranet import _core

        _core.FrameMap(10, 10, **good)
        bad = [dict(sources=np.array([100], np.int32), weights=np.ones(1),
                    starts=np.r_[np.zeros(n, np.int64), 1]),  # a source beyond the 10 x 10 frame
               dict(starts=np.r_[0, np.ones(n, np.int64)]),  # past the sources
               dict(cells=np.full((512, 512), 3, np.int32)),  # beyond n_rings * n_sectors
               dict(order=np.zeros(n, np.int32) - 1),
               dict(cell_starts=np.array([0, n - 1], np.int64)),
               dict(expected=np.full((512, 512), np.nan)),
               dict(min_coverage=1.5)]
        for change in bad:
            with pytest.raises(ValueError):
                _core.FrameMap(10, 10, **{**good, **change})


class TestCompressedFrames:
    """Frames still bslz4-compressed: only the blocks the map reads are expanded, the image is the same."""

    @staticmethod
    def _packed(frame, algorithm="bslz4"):
        from diffranet.live.compression import CompressedArray, compress

        return CompressedArray(*compress(frame, algorithm), frame.dtype, frame.shape)

    @pytest.mark.parametrize("dtype", ["uint8", "uint16", "uint32", "int32", "uint64"])
    @pytest.mark.parametrize("name", ["small pixels, far, off-centre beam", "coarse pixels, near (subpixels)",
                                      "beam far beyond the corner", "pilatus-like, beam near the centre"])
    def test_equal_to_the_expanded_frame(self, name, dtype):
        """Maps of weight 1 add integer pixels block by block (sums exact in any order), others gather them;
        the Pilatus-like frame ends in 3 pixels outside the blocks."""
        shape, geometry = GEOMETRIES[name]
        frame = _frame(shape, dtype, seed=len(name))
        packed = self._packed(frame)
        for options in (dict(), dict(mask=_gaps(shape), saturation=150 if dtype == "uint8" else 2000)):
            expected = _python_route(frame, geometry=geometry, **options)
            for n_threads in (1, 2):
                image = pp._bslz4_image(packed, options.get("mask"), geometry, PAPER_PREPROCESSING, None,
                                        options.get("saturation"), "auto", n_threads)
                assert np.array_equal(image, expected), (options, n_threads)
            assert np.array_equal(preprocess(packed, geometry=geometry, **options), expected)

    def test_binned_frames_and_other_routes(self):
        shape = (1100, 1030)
        frame = _frame(shape, np.uint16, seed=5)
        assert np.array_equal(preprocess(self._packed(frame), beam_center_px=(400.0, 700.0)),
                              _python_route(frame, beam_center_px=(400.0, 700.0)))
        # expanded first: lz4 pixels, floats (their non-finite pixels are checked), training-geometry frames
        shape, geometry = GEOMETRIES["long wavelength"]
        for frame, packed in ((_frame(shape, np.uint16), self._packed(_frame(shape, np.uint16), "lz4")),
                              (_frame(shape, np.float32), self._packed(_frame(shape, np.float32)))):
            assert pp._bslz4_image(packed, None, geometry, PAPER_PREPROCESSING, None, None, "auto") is None
            assert np.array_equal(preprocess(packed, geometry=geometry), _python_route(frame, geometry=geometry))
        small = np.random.default_rng(0).poisson(3.0, PAPER_PREPROCESSING.shape).astype(np.uint16)
        assert pp._bslz4_image(self._packed(small), None, None, PAPER_PREPROCESSING, None, None, "auto") is None
        assert np.array_equal(preprocess(self._packed(small)), preprocess(small))
        model_input = small.astype(np.uint8)
        assert np.array_equal(preprocess(self._packed(model_input)), model_input)

    @pytest.mark.parametrize("name, preprocessing", [
        ("coarse pixels, near (subpixels)", PAPER_PREPROCESSING),  # subpixels: gathered
        ("small pixels, far, off-centre beam", Preprocessing(shape=(128, 128))),  # weight 1: added block by block
    ])
    def test_reads_only_the_blocks_it_needs_and_refuses_damaged_ones(self, name, preprocessing):
        """The training detector sees a part of the frame: the other blocks are not even decoded."""
        from diffranet.live.compression import CompressedArray

        shape, geometry = GEOMETRIES[name]
        frame = _frame(shape, np.uint32, seed=2)
        packed = self._packed(frame)
        expected = _python_route(frame, geometry=geometry, preprocessing=preprocessing)
        frame_map = pp._frame_map(shape, geometry, preprocessing, None)
        mat, _ = pp._mapping(shape, geometry, preprocessing)
        options = dict(geometry=geometry, preprocessing=preprocessing)
        read = np.zeros(-(-frame.size // 2048), bool)
        read[mat.indices // 2048] = True
        assert 0 < read.sum() < read.size
        payload = bytearray(packed.payload)
        offset, starts = 12, []
        for _ in range(read.size):
            starts.append(offset + 4)
            offset += 4 + int.from_bytes(payload[offset:offset + 4], "big")
        unread, needed = starts[int(np.flatnonzero(~read)[0])], starts[int(np.flatnonzero(read)[0])]
        damaged = bytearray(payload)
        damaged[unread:unread + 8] = b"\xff" * 8  # a block the map never reads: not looked at
        image = preprocess(CompressedArray("bslz4", 4, bytes(damaged), frame.dtype, shape), **options)
        assert np.array_equal(image, expected)
        damaged = bytearray(payload)
        damaged[needed:needed + 8] = b"\xff" * 8
        with pytest.raises(ValueError, match="corrupt LZ4 block"):
            preprocess(CompressedArray("bslz4", 4, bytes(damaged), frame.dtype, shape), **options)
        with pytest.raises(ValueError, match="after the last block"):
            preprocess(CompressedArray("bslz4", 4, bytes(payload) + b"\0" * 4, frame.dtype, shape), **options)
        truncated = CompressedArray("bslz4", 4, bytes(payload[:-100]), frame.dtype, shape)
        with pytest.raises(ValueError, match="runs past the end|after the last block"):
            preprocess(truncated, **options)
        assert np.array_equal(preprocess(packed, **options), expected)  # after the failures, as before
        rng = np.random.default_rng(0)
        for _ in range(50):  # bytes changed anywhere: an error or an image, never a crash
            damaged = bytearray(payload)
            for at in rng.integers(12, len(payload), 4):
                damaged[at] = rng.integers(0, 256)
            try:
                frame_map.bslz4_to_8bit(bytes(damaged), 12, np.dtype(np.uint32), 2048, None, None, 10.0,
                                        np.empty(preprocessing.shape, np.uint8), 1)
            except ValueError:
                pass

    def test_refusals(self):
        shape, geometry = GEOMETRIES["long wavelength"]
        frame_map = pp._frame_map(shape, geometry, PAPER_PREPROCESSING, None)
        payload = self._packed(_frame(shape, np.uint16)).payload
        out = np.empty(PAPER_PREPROCESSING.shape, np.uint8)
        arguments = dict(payload=payload, offset=12, dtype=np.dtype(np.uint16), block_elements=4096, mask=None,
                         saturation=None, adc_offset=10.0, out=out, n_threads=1)
        frame_map.bslz4_to_8bit(**arguments)
        assert np.array_equal(out, _python_route(_frame(shape, np.uint16), geometry=geometry))
        for change, match in ((dict(dtype=np.dtype(np.float32)), "integers"), (dict(dtype=np.dtype(">u2")), "integers"),
                              (dict(block_elements=100), "multiple of 8"), (dict(offset=len(payload) + 1), "offset"),
                              (dict(out=np.empty((512, 511), np.uint8)), "out"),
                              (dict(mask=np.zeros((3, 3), np.uint8)), "mask"), (dict(saturation=np.nan), "saturation"),
                              (dict(adc_offset=-1.0), "adc_offset"), (dict(payload=[1, 2]), None)):
            with pytest.raises((ValueError, TypeError), match=match):
                frame_map.bslz4_to_8bit(**{**arguments, **change})


@pytest.mark.parametrize("name", ["coarse pixels, near (subpixels)", "pilatus-like, beam near the centre"])
@pytest.mark.parametrize("dtype", ["uint32", "float32"])
def test_the_image_does_not_depend_on_the_thread_count(name, dtype):
    """Rows of the map, cells of the background and pixels of the square root are spread over the threads."""
    shape, geometry = GEOMETRIES[name]
    frame = _frame(shape, dtype, seed=7)
    mask = _gaps(shape)
    expected = _python_route(frame, mask, geometry, saturation=2000)
    for n_threads in (1, 2, 3, 8):
        assert np.array_equal(preprocess(frame, mask, geometry, saturation=2000, n_threads=n_threads), expected)
    with pytest.raises(ValueError, match="n_threads"):
        preprocess(frame, mask, geometry, n_threads=0)


@pytest.mark.parametrize("values", ["constant", "two levels", "mostly zero", "noise"])
def test_background_medians_of_cells_full_of_ties(values):
    """Each cell's median is selected, not sorted: cells whose densities are all equal, of two values or mostly 0
    (sparse frames) give the Python path's medians, whatever the thread count."""
    shape, geometry = GEOMETRIES["pilatus-like, beam near the centre"]
    rng = np.random.default_rng(5)
    frame = {"constant": np.full(shape, 3.0), "two levels": rng.choice([1.0, 4.0], shape),
             "mostly zero": (rng.random(shape) < 0.05).astype(np.float64),
             "noise": rng.normal(1.0, 0.5, shape)}[values].astype(np.float32)
    mask = _gaps(shape)
    expected = _python_route(frame, mask, geometry)
    for n_threads in (1, 2, 5):
        assert np.array_equal(preprocess(frame, mask, geometry, n_threads=n_threads), expected)
