"""The compiled core's bindings refuse bad arguments with ValueError and never write to inputs.

These tests call the private ``diffranet._core`` functions directly, with the
arguments a careless caller could pass, bypassing the validation of the public
Python layer: every binding must check dtypes, layouts, shapes and ranges
itself, because its kernel reads and writes raw buffers. They also check that
an exception thrown inside an OpenMP parallel region (here an allocation
failure injected through a test hook) reaches Python as an exception instead of
terminating the process.
"""

import contextlib

import numpy as np
import pytest
from skimage.feature import graycomatrix, graycoprops

from diffranet import _core


def image(shape=(6, 7), value=5.0, dtype=np.float32):
    return np.full(shape, value, dtype=dtype)


def readout(counts, gain=None, mask=None, n_threads=1):
    return _core.ccd_readout(counts, gain, 2.0, 10.0, 65025.0, 3, 0, 0, mask, n_threads)


class TestGainMap:
    @pytest.mark.parametrize("shape", [(6, 6), (7, 7), (1, 1), (42,)])
    def test_wrong_size_is_refused(self, shape):
        # a gain map smaller than the image was read past its end
        with pytest.raises(ValueError, match="gain"):
            readout(image(), gain=np.ones(shape, np.float32))

    def test_wrong_dtype_is_refused(self):
        with pytest.raises(ValueError, match="gain.*float32"):
            readout(image(), gain=np.ones((6, 7)))

    def test_right_size_is_applied(self):
        gain = np.full((6, 7), 2.0, np.float32)
        counts = image(value=100.0)
        quiet = _core.ccd_readout(counts, gain, 0.0, 0.0, 65025.0, 3, 0, 0, None, 1)
        np.testing.assert_array_equal(quiet, 200.0)


class TestReadoutAndClipDoNotWriteToInput:
    @pytest.mark.parametrize("call", [
        lambda counts: readout(counts),
        lambda counts: _core.clip_counts(counts, 4.0, None, 1),
    ], ids=["ccd_readout", "clip_counts"])
    def test_input_unchanged_and_result_new(self, call):
        counts = np.random.default_rng(0).uniform(-3.0, 9.0, (6, 7)).astype(np.float32)
        before = counts.copy()
        result = call(counts)
        np.testing.assert_array_equal(counts, before)
        assert not np.shares_memory(result, counts)
        np.testing.assert_array_equal(result, call(before.copy()))

    def test_clip_values(self):
        counts = np.array([[-1.0, 0.5, 3.0, 9.0]], np.float32)
        mask = np.array([[0, 0, 1, 0]], np.uint8)
        np.testing.assert_array_equal(_core.clip_counts(counts, 4.0, mask, 1), [[0.0, 0.5, 0.0, 4.0]])

    @pytest.mark.parametrize("dtype", [np.float64, np.int32, np.uint16])
    def test_other_dtypes_are_refused_not_cast(self, dtype):
        # they used to be converted to a float32 copy, so only float32 input was modified in place
        with pytest.raises(ValueError, match="counts.*float32"):
            readout(image(dtype=dtype))
        with pytest.raises(ValueError, match="counts.*float32"):
            _core.clip_counts(image(dtype=dtype), 4.0, None, 1)


class TestGlcmOut:
    def setup_method(self):
        self.images = np.random.default_rng(1).integers(0, 8, (2, 9, 11), dtype=np.uint8)
        self.offsets = np.array([[0, 1], [1, 0], [2, -1]], np.int64)

    def call(self, out, images=None, offsets=None, levels=8, n_threads=2):
        _core.glcm_features(self.images if images is None else images,
                            self.offsets if offsets is None else offsets, levels, False, out, n_threads)

    def test_float64_out_is_filled(self):
        out = np.full((2, 3, 6), np.nan)
        self.call(out)
        for k in range(2):
            glcm = graycomatrix(self.images[k], [1, 1, 2], [0, np.pi / 2, np.arctan2(2, -1)], levels=8)
            # scikit-image rounds d sin(a), d cos(a): offsets (0, 1), (1, 0), (round(2 sin), round(2 cos))
            for o in range(3):
                np.testing.assert_allclose(out[k, o, 0], graycoprops(glcm[:, :, o:o + 1, o:o + 1], "contrast")[0, 0])

    def test_float32_out_is_refused(self):
        # it used to be converted to a float64 copy that the kernel filled and Python never saw
        out = np.zeros((2, 3, 6), np.float32)
        with pytest.raises(ValueError, match="out.*float64"):
            self.call(out)
        assert not out.any()

    @pytest.mark.parametrize("out", [
        np.zeros((2, 3, 5)), np.zeros((3, 3, 6)), np.zeros((2, 18)), np.zeros((2, 6, 3)).transpose(0, 2, 1),
        np.zeros((2, 3, 12))[:, :, ::2], [[[0.0] * 6] * 3] * 2,
    ], ids=["properties", "images", "2d", "fortran", "strided", "list"])
    def test_wrong_shape_or_layout_is_refused(self, out):
        with pytest.raises(ValueError, match="out"):
            self.call(out)

    def test_read_only_out_is_refused(self):
        out = np.zeros((2, 3, 6))
        out.flags.writeable = False
        with pytest.raises(ValueError, match="writeable"):
            self.call(out)

    def test_grey_level_above_levels_is_refused(self):
        # it indexed past the end of the per-thread count buffer
        with pytest.raises(ValueError, match="levels"):
            self.call(np.zeros((2, 3, 6)), levels=4)

    @pytest.mark.parametrize("levels", [0, 257, -3])
    def test_levels_out_of_range(self, levels):
        with pytest.raises(ValueError, match="levels"):
            self.call(np.zeros((2, 3, 6)), images=np.zeros((2, 9, 11), np.uint8), levels=levels)

    @pytest.mark.parametrize("images, name", [
        (np.zeros((2, 9, 11), np.int64), "images"), (np.zeros((9, 11), np.uint8), "images"),
        (np.zeros((2, 0, 11), np.uint8), "images"), (np.zeros((2, 11, 9), np.uint8).transpose(0, 2, 1), "images"),
    ])
    def test_bad_images(self, images, name):
        with pytest.raises(ValueError, match=name):
            self.call(np.zeros((2, 3, 6)), images=images)

    @pytest.mark.parametrize("offsets", [
        np.zeros((3, 2), np.int32), np.zeros((3, 3), np.int64), np.array([[0, 2**40], [0, 1], [1, 0]], np.int64),
        np.array([[-2**63, 0], [0, 1], [1, 0]], np.int64),
    ], ids=["int32", "three-columns", "huge", "most-negative"])
    def test_bad_offsets(self, offsets):
        with pytest.raises(ValueError, match="offsets"):
            self.call(np.zeros((2, 3, 6)), offsets=offsets)


class TestShapesDtypesRanges:
    @pytest.mark.parametrize("expected", [
        image(dtype=np.float64), image((6,)), image((6, 7, 1)), image((0, 4)), np.ones((6, 14), np.float32)[:, ::2],
        image().astype(">f4"), [[1.0, 2.0]],
    ], ids=["float64", "1d", "3d", "empty", "strided", "big-endian", "list"])
    def test_poisson_bad_expected(self, expected):
        with pytest.raises(ValueError, match="expected|rows"):
            _core.poisson(expected, 1.0, 0, 0, 0, None, 1)

    @pytest.mark.parametrize("value", [np.nan, np.inf, -1.0])
    def test_poisson_non_finite_or_negative_mean(self, value):
        # a NaN mean never left the sampler's rejection loop
        expected = image()
        expected[2, 3] = value
        with pytest.raises(ValueError, match="expected"):
            _core.poisson(expected, 1.0, 0, 0, 0, None, 1)

    @pytest.mark.parametrize("scale", [np.nan, np.inf, -0.5])
    def test_poisson_bad_scale(self, scale):
        with pytest.raises(ValueError, match="scale"):
            _core.poisson(image(), scale, 0, 0, 0, None, 1)

    @pytest.mark.parametrize("mask", [np.zeros((6, 7), bool), np.zeros((7, 6), np.uint8), np.zeros(42, np.uint8)])
    def test_bad_mask(self, mask):
        with pytest.raises(ValueError, match="mask"):
            _core.poisson(image(), 1.0, 0, 0, 0, mask, 1)
        with pytest.raises(ValueError, match="mask"):
            readout(image(), mask=mask)

    @pytest.mark.parametrize("row0, col0", [(-1, 0), (0, -5), (2**31, 0)])
    def test_bad_origin(self, row0, col0):
        with pytest.raises(ValueError, match="row0|col0"):
            _core.poisson(image(), 1.0, 0, row0, col0, None, 1)

    @pytest.mark.parametrize("n_threads", [-1, 10**6])
    def test_bad_thread_count(self, n_threads):
        with pytest.raises(ValueError, match="n_threads"):
            _core.clip_counts(image(), 4.0, None, n_threads)

    @pytest.mark.parametrize("rows, cols", [(0, 4), (4, -1), (2**31, 1)])
    def test_calibration_bad_size(self, rows, cols):
        with pytest.raises(ValueError, match="rows|cols"):
            _core.calibration_map(rows, cols, 0.04, 0, 0, 0, 1)

    @pytest.mark.parametrize("rms", [np.nan, -0.1])
    def test_bad_rms(self, rms):
        with pytest.raises(ValueError, match="rms"):
            _core.calibration_map(3, 3, rms, 0, 0, 0, 1)
        with pytest.raises(ValueError, match="rms"):
            _core.flicker_factor(0, rms)

    @pytest.mark.parametrize("kernel", [np.zeros(0), np.ones(3, np.float32), np.ones((3, 1))],
                             ids=["empty", "float32", "2d"])
    def test_separable_bad_kernel(self, kernel):
        with pytest.raises(ValueError, match="kernel_half"):
            _core.convolve_separable(image(), kernel, 1)

    def test_separable_radius_larger_than_image(self):
        # offsets beyond the image are skipped, not read
        spot = np.zeros((3, 3), np.float32)
        spot[1, 1] = 1.0
        result = _core.convolve_separable(spot, np.full(50, 0.01), 1)
        np.testing.assert_allclose(result, np.full((3, 3), 1e-4), rtol=1e-6)


# Valid arguments of the renderers: a 4 x 5 detector 100 mm downstream, one
# source along the beam (+x), a 50 A cubic cell and one amorphous material.
DETECTOR = {"rows": 4, "cols": 5, "pixel_size_mm": 0.1, "origin_mm": np.array([100.0, -0.25, -0.2]),
            "fast_axis": np.array([0.0, 1.0, 0.0]), "slow_axis": np.array([0.0, 0.0, 1.0]),
            "normal": np.array([1.0, 0.0, 0.0]), "oversample": 2}
BEAM = {"source_directions": np.array([[1.0, 0.0, 0.0]]), "source_wavelengths_A": np.array([1.0]),
        "source_weights": np.array([1.0]), "fluence": 1e24, "polarization_fraction": 0.0,
        "polarization_axis": np.array([0.0, 0.0, 1.0])}
CRYSTAL = {"real_basis_A": np.eye(3) * 50.0, "ncells": np.full(3, 5.0), "shape": 1, "domain_rotations": np.eye(3)[None],
           "method": "reflection", "n_threads": 1}
STRUCTURE_FACTORS = {"sf_table": np.ones((3, 3, 3), np.float32), "sf_hkl_min": [-1, -1, -1], "default_F": 1.0}
MATERIALS = {"material_stol_per_A": [np.array([0.0, 0.5])], "material_F": [np.array([2.0, 1.0])],
             "material_incoherent": [np.zeros(2)], "material_molecules": [1e12], "n_threads": 1}


def structure_factors(**changes):
    return _core.StructureFactorTable(**{**STRUCTURE_FACTORS, **changes})


def bragg(**changes):
    args = {**DETECTOR, **BEAM, **CRYSTAL, "structure_factors": structure_factors(), **changes}
    return _core.render_bragg(**args)[0]


def background(**changes):
    return _core.render_background(**{**DETECTOR, **BEAM, **MATERIALS, **changes})


def directions(**changes):
    args = {**DETECTOR, **changes}
    return _core.DirectionGrid(**{name: args[name] for name in DETECTOR})


def samples(**changes):
    args = {**DETECTOR, **BEAM, **changes}
    return _core.BackgroundSamples(**{name: args[name] for name in {**DETECTOR, **BEAM}})


RENDERERS = {"render_bragg": bragg, "render_background": background}
DETECTOR_USERS = {**RENDERERS, "DirectionGrid": directions, "BackgroundSamples": samples}


class TestRendererArguments:
    @pytest.mark.parametrize("call", RENDERERS.values(), ids=RENDERERS.keys())
    def test_baseline_renders(self, call):
        image = call()
        assert image.shape == (4, 5) and image.dtype == np.float32
        assert np.all(np.isfinite(image)) and image.max() > 0

    def test_single_point_table_is_constant(self):
        # the shortest table the kernel can interpolate: held at its one value everywhere
        one = background(material_stol_per_A=[np.array([0.1])], material_F=[np.array([2.0])],
                         material_incoherent=[np.array([0.5])])
        flat = background(material_stol_per_A=[np.array([0.0, 9.0])], material_F=[np.array([2.0, 2.0])],
                          material_incoherent=[np.array([0.5, 0.5])])
        np.testing.assert_allclose(one, flat, rtol=1e-6)

    @pytest.mark.parametrize("call", DETECTOR_USERS.values(), ids=DETECTOR_USERS.keys())
    @pytest.mark.parametrize("rows, cols", [(0, 5), (4, -1), (2**31, 5)])
    def test_bad_rows_or_cols(self, call, rows, cols):
        with pytest.raises(ValueError, match="rows|cols"):
            call(rows=rows, cols=cols)

    @pytest.mark.parametrize("call", DETECTOR_USERS.values(), ids=DETECTOR_USERS.keys())
    @pytest.mark.parametrize("rows, oversample", [(4, 0), (4, -2), (2**16, 2**16), (1, 2**31)])
    def test_bad_oversample(self, call, rows, oversample):
        # rows * oversample = 2**32 wrapped around in the kernels' int subpixel counters
        with pytest.raises(ValueError, match="oversample"):
            call(rows=rows, oversample=oversample)

    @pytest.mark.parametrize("call", RENDERERS.values(), ids=RENDERERS.keys())
    @pytest.mark.parametrize("n_threads", [-1, 10**6])
    def test_bad_thread_count(self, call, n_threads):
        # a huge count asked OpenMP for that many threads
        with pytest.raises(ValueError, match="n_threads"):
            call(n_threads=n_threads)

    @pytest.mark.parametrize("call", DETECTOR_USERS.values(), ids=DETECTOR_USERS.keys())
    @pytest.mark.parametrize("name, value", [
        ("pixel_size_mm", 0.0), ("pixel_size_mm", np.nan), ("origin_mm", np.array([np.inf, 0.0, 0.0])),
        ("origin_mm", np.zeros(2)), ("fast_axis", np.array([0.0, 2.0, 0.0])), ("normal", np.zeros(3)),
    ])
    def test_bad_detector(self, call, name, value):
        with pytest.raises(ValueError, match=name):
            call(**{name: value})

    @pytest.mark.parametrize("call", DETECTOR_USERS.values(), ids=DETECTOR_USERS.keys())
    @pytest.mark.parametrize("value", [np.array([100.0, 0.0, 0.0], np.float32), np.array([100, 0, 0]),
                                       [100.0, 0.0, 0.0], np.zeros(6)[::2]],
                             ids=["float32", "int64", "list", "strided"])
    def test_arrays_are_refused_not_cast(self, call, value):
        with pytest.raises(ValueError, match="origin_mm"):
            call(origin_mm=value)

    @pytest.mark.parametrize("call", RENDERERS.values(), ids=RENDERERS.keys())
    @pytest.mark.parametrize("wavelength", [np.nan, np.inf, 0.0, -1.0])
    def test_bad_wavelength(self, call, wavelength):
        with pytest.raises(ValueError, match="source_wavelengths_A"):
            call(source_wavelengths_A=np.array([wavelength]))

    @pytest.mark.parametrize("call", RENDERERS.values(), ids=RENDERERS.keys())
    @pytest.mark.parametrize("fluence", [np.nan, np.inf, -1.0])
    def test_bad_fluence(self, call, fluence):
        with pytest.raises(ValueError, match="fluence"):
            call(fluence=fluence)

    @pytest.mark.parametrize("call", RENDERERS.values(), ids=RENDERERS.keys())
    @pytest.mark.parametrize("name, value", [
        ("source_wavelengths_A", np.zeros(0)), ("source_wavelengths_A", np.array([1.0], np.float32)),
        ("source_directions", np.array([[1.0, 0.0, 0.0]] * 2)), ("source_directions", np.array([[0.5, 0.0, 0.0]])),
        ("source_weights", np.array([-0.5])), ("source_weights", np.array([1.0, 0.0])),
        ("polarization_fraction", 1.5), ("polarization_axis", np.array([0.0, 0.0, np.nan])),
    ])
    def test_bad_beam(self, call, name, value):
        with pytest.raises(ValueError, match=name):
            call(**{name: value})


class TestBraggArguments:
    @pytest.mark.parametrize("ncells", [[np.nan, 5, 5], [5, np.inf, 5], [5, 5, 0], [-2, 5, 5]])
    def test_bad_ncells(self, ncells):
        with pytest.raises(ValueError, match="ncells"):
            bragg(ncells=np.array(ncells, dtype=float))

    @pytest.mark.parametrize("basis", [np.full((3, 3), np.nan), np.diag([50.0, 50.0, 0.0]),
                                       np.array([[50.0, 0, 0], [0, 50, 0], [50, 50, 0]]),
                                       (np.eye(3) * 50).astype(np.float32)],
                             ids=["nan", "zero-axis", "coplanar", "float32"])
    def test_bad_real_basis(self, basis):
        # a flat cell has no finite reciprocal basis
        with pytest.raises(ValueError, match="real_basis_A"):
            bragg(real_basis_A=basis)

    @pytest.mark.parametrize("rotations", [np.zeros((0, 3, 3)), np.full((1, 3, 3), np.nan),
                                           np.eye(3, dtype=np.float32)[None]], ids=["none", "nan", "float32"])
    def test_bad_domain_rotations(self, rotations):
        with pytest.raises(ValueError, match="domain_rotations"):
            bragg(domain_rotations=rotations)

    @pytest.mark.parametrize("name, value", [
        ("sf_table", np.ones((3, 3, 3))), ("sf_table", np.full((3, 3, 3), np.nan, np.float32)),
        ("sf_table", np.full((3, 3, 3), -1.0, np.float32)), ("sf_table", np.ones((3, 3), np.float32)),
        ("sf_hkl_min", [0, 0]), ("sf_hkl_min", [-2**31, 0, 0]), ("default_F", np.nan), ("default_F", -1.0),
    ])
    def test_bad_structure_factors(self, name, value):
        with pytest.raises(ValueError, match=name):
            structure_factors(**{name: value})

    def test_structure_factor_table_is_a_copy(self):
        # checked once when made: later changes to the caller's array must not reach the renderer
        values = np.ones((3, 3, 3), np.float32)
        table = structure_factors(sf_table=values)
        expected = bragg(structure_factors=table)
        values[:] = np.nan
        np.testing.assert_array_equal(bragg(structure_factors=table), expected)

    @pytest.mark.parametrize("change", [{"oversample": 1}, {"cols": 6}, {"pixel_size_mm": 0.1 + 1e-12},
                                        {"origin_mm": np.array([100.0, -0.25, -0.21])}],
                             ids=["oversample", "cols", "pixel_size", "origin"])
    def test_directions_of_another_geometry_refused(self, change):
        # a grid of another size was read past its end; of another geometry, it gave wrong spots
        with pytest.raises(ValueError, match="directions"):
            bragg(directions=directions(**change))

    def test_directions_cache_gives_same_image(self):
        np.testing.assert_array_equal(bragg(directions=directions()), bragg())

    def test_direction_grid_values_are_read_only_unit_vectors(self):
        grid = directions()
        values = grid.values
        assert values.shape == (8, 10, 3) and not values.flags.writeable
        np.testing.assert_allclose(np.linalg.norm(values, axis=-1), 1.0, rtol=1e-12)
        del grid  # the view keeps the grid alive
        np.testing.assert_allclose(np.linalg.norm(values, axis=-1), 1.0, rtol=1e-12)


class TestBackgroundSamples:
    TWO_SOURCES = {"source_directions": np.array([[1.0, 0.0, 0.0], [np.cos(0.01), np.sin(0.01), 0.0]]),
                   "source_wavelengths_A": np.array([1.0, 1.1]), "source_weights": np.array([0.25, 0.75]),
                   "polarization_fraction": 0.8}

    @pytest.mark.parametrize("beam", [{}, TWO_SOURCES], ids=["one-source", "two-sources"])
    def test_samples_give_same_image(self, beam):
        np.testing.assert_array_equal(background(samples=samples(**beam), **beam), background(**beam))

    def test_wavelengths_and_fluence_are_not_part_of_the_samples(self):
        made_for_other = samples(source_wavelengths_A=np.array([3.0]), fluence=1.0)
        np.testing.assert_array_equal(background(samples=made_for_other), background())

    @pytest.mark.parametrize("change", [
        {"oversample": 1}, {"cols": 6}, {"rows": 3}, {"pixel_size_mm": 0.1 + 1e-12},
        {"origin_mm": np.array([100.0, -0.25, -0.21])}, {"source_directions": np.array([[1.0, 1e-9, 0.0]])},
        {"source_weights": np.array([0.5])}, {"polarization_fraction": 0.5},
        {"polarization_axis": np.array([0.0, 1.0, 0.0])},
        {"source_directions": np.array([[1.0, 0.0, 0.0]] * 2), "source_wavelengths_A": np.ones(2),
         "source_weights": np.array([0.5, 0.5])},
    ], ids=["oversample", "cols", "rows", "pixel_size", "origin", "direction", "weight", "polarization", "axis",
            "sources"])
    def test_samples_of_another_geometry_refused(self, change):
        # a set of another size was read past its end; of another geometry, it gave a wrong image
        with pytest.raises(ValueError, match="samples"):
            background(samples=samples(**change))

    def test_size(self):
        # weight and half the scattering vector per subpixel and source
        assert samples().nbytes == 16 * 8 * 10
        assert samples(**self.TWO_SOURCES).nbytes == 16 * 8 * 10 * 2


class TestMosaicArguments:
    @pytest.mark.parametrize("distribution", [2, -1, 99])
    def test_unknown_distribution(self, distribution):
        # it was cast to the enum unchecked
        with pytest.raises(ValueError, match="distribution"):
            _core.mosaic_rotations(3, 0.01, distribution, 0)

    @pytest.mark.parametrize("n_domains", [0, -1, 2**31])
    def test_bad_domain_count(self, n_domains):
        with pytest.raises(ValueError, match="n_domains"):
            _core.mosaic_rotations(n_domains, 0.01, 0, 0)

    @pytest.mark.parametrize("spread", [np.nan, np.inf, -0.01])
    def test_bad_spread(self, spread):
        with pytest.raises(ValueError, match="spread_rad"):
            _core.mosaic_rotations(3, spread, 0, 0)


class TestBackgroundArguments:
    def test_empty_table_is_refused(self):
        # the kernel read x.front() of an empty table: a segfault
        with pytest.raises(ValueError, match=r"material_stol_per_A\[0\] must hold at least one value"):
            background(material_stol_per_A=[np.zeros(0)], material_F=[np.zeros(0)], material_incoherent=[np.zeros(0)])

    @pytest.mark.parametrize("stol", [[0.0, 0.2, 0.1], [0.0, 0.1, 0.1]], ids=["decreasing", "repeated"])
    def test_table_not_strictly_increasing(self, stol):
        with pytest.raises(ValueError, match=r"material_stol_per_A\[0\] must be strictly increasing"):
            background(material_stol_per_A=[np.array(stol)], material_F=[np.ones(3)], material_incoherent=[np.zeros(3)])

    @pytest.mark.parametrize("name", ["material_stol_per_A", "material_F", "material_incoherent"])
    @pytest.mark.parametrize("value", [np.nan, np.inf, -1.0])
    def test_non_finite_or_negative_table(self, name, value):
        table = MATERIALS[name][0].copy()
        table[0] = value
        with pytest.raises(ValueError, match=rf"{name}\[0\]"):
            background(**{name: [table]})

    @pytest.mark.parametrize("name, value", [
        ("material_F", [np.ones(3)]), ("material_incoherent", [np.zeros(1)]),
        ("material_F", [np.ones(2, np.float32)]), ("material_stol_per_A", [[0.0, 0.5]]),
        ("material_molecules", [1e12, 1e12]), ("material_F", []),
    ], ids=["F-length", "incoherent-length", "float32", "list", "two-molecule-counts", "no-F"])
    def test_tables_of_wrong_size_or_dtype(self, name, value):
        with pytest.raises(ValueError, match=name):
            background(**{name: value})

    @pytest.mark.parametrize("molecules", [np.nan, np.inf, -1.0, 0.0])
    def test_bad_molecule_count(self, molecules):
        with pytest.raises(ValueError, match="material_molecules"):
            background(material_molecules=[molecules])


@contextlib.contextmanager
def failing(kernel):
    _core._inject_failure(kernel)
    try:
        yield
    finally:
        _core._inject_failure("")


PARALLEL_KERNELS = {
    "poisson": lambda n: _core.poisson(image((64, 64)), 1.0, 0, 0, 0, None, n),
    "ccd_readout": lambda n: readout(image((64, 64)), n_threads=n),
    "calibration_map": lambda n: _core.calibration_map(64, 64, 0.04, 0, 0, 0, n),
    "clip_counts": lambda n: _core.clip_counts(image((64, 64)), 4.0, None, n),
    "convolve_separable": lambda n: _core.convolve_separable(image((64, 64)), np.full(3, 0.2), n),
    "glcm_features": lambda n: _core.glcm_features(np.zeros((8, 16, 16), np.uint8), np.array([[0, 1]], np.int64),
                                                   256, False, np.zeros((8, 1, 6)), n),
    "find_peaks": lambda n: _core.find_peaks(image((1, 32, 32)), _core.RingLayout(32, 32, 15.5, 15.5, None), None,
                                             5.0, 0.0, 2, 200, 3, 5, 0.0,
                                             np.inf, n),
}


class TestExceptionsInParallelRegions:
    @pytest.mark.parametrize("n_threads", [1, 2])
    @pytest.mark.parametrize("kernel", sorted(PARALLEL_KERNELS))
    def test_allocation_failure_reaches_python(self, kernel, n_threads):
        # without the catch inside the region, std::terminate would abort the interpreter
        call = PARALLEL_KERNELS[kernel]
        with failing(kernel), pytest.raises(MemoryError):
            call(n_threads)
        # the hook of one kernel leaves the others alone, and the kernel works again afterwards
        other = next(name for name in PARALLEL_KERNELS if name != kernel)
        with failing(other):
            call(n_threads)
        call(n_threads)


def test_stub_lists_every_core_function():
    """python/diffranet/_core.pyi declares exactly what the compiled module exports."""
    import pathlib
    import re

    stub = pathlib.Path(_core.__file__).parent / "_core.pyi"
    if not stub.exists():  # an installed wheel next to an editable source tree
        stub = pathlib.Path(__file__).resolve().parents[1] / "python" / "diffranet" / "_core.pyi"
    declared = set(re.findall(r"^(?:def|class) (\w+)\b", stub.read_text(), flags=re.M))
    exported = {name for name in dir(_core) if not name.startswith("__") and callable(getattr(_core, name))}
    assert declared == exported


# ---------------------------------------------------------------- order statistics per group

@pytest.mark.parametrize("k", [1, 2, 3, 7])
def test_kth_smallest_per_group_matches_sorting(k):
    rng = np.random.default_rng(k)
    n_groups = 50
    labels = rng.integers(0, n_groups + 1, size=5000).astype(np.int32)
    values = rng.exponential(size=5000)
    values[rng.random(5000) < 0.1] = np.inf
    values[:40] = 0.25  # ties
    got = _core.kth_smallest_per_group(labels, values, n_groups, k)
    for g in range(1, n_groups + 1):
        members = np.sort(values[labels == g])
        assert got[g - 1] == (members[k - 1] if len(members) >= k else np.inf)


def test_kth_smallest_per_group_empty_groups_are_inf():
    got = _core.kth_smallest_per_group(np.zeros(4, np.int32), np.arange(4.0), 3, 1)
    assert np.all(np.isinf(got)) and got.shape == (3,)


@pytest.mark.parametrize("labels, values, n_groups, k, message", [
    (np.array([0, 3], np.int32), np.zeros(2), 2, 1, "labels must lie"),
    (np.array([0, -1], np.int32), np.zeros(2), 2, 1, "labels must lie"),
    (np.array([1, 1], np.int32), np.array([0.0, np.nan]), 2, 1, "NaN"),
    (np.array([1, 1], np.int64), np.zeros(2), 2, 1, "dtype"),
    (np.array([1, 1], np.int32), np.zeros(3), 2, 1, "expected length"),
    (np.array([1, 1], np.int32), np.zeros(2), 2, 0, "k must lie"),
    (np.array([1, 1], np.int32), np.zeros(2), -1, 1, "n_groups"),
])
def test_kth_smallest_per_group_refuses_bad_input(labels, values, n_groups, k, message):
    with pytest.raises(ValueError, match=message):
        _core.kth_smallest_per_group(labels, values, n_groups, k)


# ---------------------------------------------------------------- table look-up

@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_lookup_matches_numpy_take(dtype):
    rng = np.random.default_rng(0)
    n_values = np.iinfo(dtype).max + 1
    table = rng.integers(0, 256, n_values).astype(np.uint8)
    image = rng.integers(0, n_values, (37, 53)).astype(dtype)
    got = _core.lookup_u8(table, image)
    assert got.dtype == np.uint8 and got.shape == image.shape
    np.testing.assert_array_equal(got, np.take(table, image))


@pytest.mark.parametrize("table, image, match", [
    (np.zeros(256, np.uint8), np.zeros((2, 2), np.uint16), "65536 entries"),
    (np.zeros(65536, np.uint8), np.zeros((2, 2), np.uint8), "256 entries"),
    (np.zeros(256, np.uint8), np.zeros((2, 2), np.int16), "uint8 or uint16"),
    (np.zeros(256, np.uint8), np.zeros((2, 2), ">u2"), "uint8 or uint16"),
    (np.zeros(256, np.float32), np.zeros((2, 2), np.uint8), "table"),
    (np.zeros(256, np.uint8), np.zeros((4, 4), np.uint8)[:, ::2], "C-contiguous"),
])
def test_lookup_refuses_what_it_cannot_index(table, image, match):
    # a short table was read past its end
    with pytest.raises(ValueError, match=match):
        _core.lookup_u8(table, image)
