"""Detector response: Poisson counting, PSF, calibration, read-out, clipping, 8 bit.

Statistical checks use fixed seeds, so they are deterministic; their
tolerances are 5 standard errors (a z-test) or a chi-square p-value above
1e-4, so a correct sampler passes them for almost every seed.
"""

import json
import math

import numpy as np
import pytest
from scipy import integrate, ndimage, stats
from scipy.signal import fftconvolve

from diffranet.dataset import paper_ccd
from diffranet.simulation.masks import module_gap_mask
from diffranet.simulation.response import (
    FIBER_G_PER_FWHM,
    CCDResponse,
    PixelArrayResponse,
    apply_psf,
    calibration_map,
    poisson,
    psf_kernel,
    to_8bit,
)

Z_TOL = 5.0


def quiet_ccd(**changes):
    """A CCD with every stage off unless switched on in ``changes``."""
    params = dict(flicker_rms=0.0, psf=None, calibration_rms=0.0, readout_rms_photons=0.0, adc_offset=0.0)
    params.update(changes)
    return CCDResponse(**params)


def fwhm_of_profile(profile):
    """Full width at half maximum (samples) of a symmetric peak, by linear interpolation."""
    centre = int(np.argmax(profile))
    half = profile[centre] / 2.0
    right = profile[centre:]
    i = int(np.argmax(right < half))
    x = i - 1 + (right[i - 1] - half) / (right[i - 1] - right[i])
    return 2.0 * x


class TestPoisson:
    @pytest.mark.parametrize("mu, seed", [(0.01, 11), (0.5, 12), (3.0, 13), (9.9, 14), (10.1, 15), (30.0, 16),
                                          (1e3, 17), (1e5, 18)])
    def test_mean_and_variance(self, mu, seed):
        n = 400 * 500
        counts = poisson(np.full((400, 500), mu), seed=seed).astype(np.float64)
        mean, var = counts.mean(), counts.var(ddof=1)
        assert abs(mean - mu) / math.sqrt(mu / n) < Z_TOL
        # Var(s^2) = (mu4 - sigma^4) / n with mu4 = mu (1 + 3 mu) for a Poisson law
        assert abs(var - mu) / math.sqrt((mu + 2.0 * mu * mu) / n) < Z_TOL

    @pytest.mark.parametrize("mu, seed", [(0.5, 21), (3.0, 22), (9.9, 23), (10.1, 24), (30.0, 25), (1e3, 26)])
    def test_distribution_chi_square(self, mu, seed):
        counts = poisson(np.full((300, 400), mu), seed=seed).ravel().astype(np.int64)
        n = counts.size
        lo, hi = int(stats.poisson.ppf(1e-4, mu)), int(stats.poisson.isf(1e-4, mu))
        observed = np.bincount(np.clip(counts, lo, hi) - lo, minlength=hi - lo + 1).astype(float)
        ks = np.arange(lo, hi + 1)
        expected = n * stats.poisson.pmf(ks, mu)
        expected[0] = n * stats.poisson.cdf(lo, mu)
        expected[-1] = n * stats.poisson.sf(hi - 1, mu)
        assert abs(expected.sum() - n) < 1e-6 * n
        result = stats.chisquare(observed, expected)
        assert result.pvalue > 1e-4

    def test_probability_of_zero_at_small_mean(self):
        mu, n = 0.01, 1000 * 1000
        zeros = np.count_nonzero(poisson(np.full((1000, 1000), mu), seed=5) == 0)
        p0 = math.exp(-mu)
        assert abs(zeros / n - p0) / math.sqrt(p0 * (1 - p0) / n) < Z_TOL

    def test_zero_mean_and_mask_give_zero(self):
        expected = np.full((4, 5), 50.0)
        expected[0, 0] = 0.0
        mask = np.zeros((4, 5), bool)
        mask[2, 3] = True
        counts = poisson(expected, seed=1, mask=mask)
        assert counts[0, 0] == 0 and counts[2, 3] == 0
        assert counts[1].min() > 0

    def test_whole_numbers_float32(self):
        counts = poisson(np.full((10, 10), 7.3), seed=2)
        assert counts.dtype == np.float32
        np.testing.assert_array_equal(counts, np.round(counts))

    def test_same_for_any_thread_count(self):
        expected = np.random.default_rng(0).exponential(20.0, (130, 70))
        np.testing.assert_array_equal(poisson(expected, 9, n_threads=1), poisson(expected, 9, n_threads=2))

    def test_tile_matches_whole_image(self):
        expected = np.random.default_rng(1).exponential(20.0, (64, 80))
        whole = poisson(expected, seed=4)
        tile = poisson(expected[10:30, 5:45], seed=4, origin=(10, 5))
        np.testing.assert_array_equal(tile, whole[10:30, 5:45])

    def test_seed_changes_counts(self):
        expected = np.full((20, 20), 30.0)
        assert not np.array_equal(poisson(expected, 1), poisson(expected, 2))

    @pytest.mark.parametrize("kwargs, name", [
        (dict(expected=np.full((3, 3), -1.0)), "expected"),
        (dict(expected=np.full((3, 3), np.nan)), "expected"),
        (dict(expected=np.ones((2, 2, 2))), "expected"),
        (dict(expected=np.ones((0, 3))), "expected"),
        (dict(expected=np.array([["a"]])), "expected"),
        (dict(seed=-1), "seed"),
        (dict(seed=1.5), "seed"),
        (dict(mask=np.zeros((2, 2), bool)), "mask"),
        (dict(mask=np.zeros((3, 3), int)), "mask"),
        (dict(origin=(-1, 0)), r"origin\[0\]"),
        (dict(origin=(0,)), "origin"),
        (dict(n_threads=0), "n_threads"),
    ])
    def test_validation(self, kwargs, name):
        args = dict(expected=np.ones((3, 3)), seed=0)
        args.update(kwargs)
        with pytest.raises(ValueError, match=name):
            poisson(**args)


class TestPsfKernel:
    def test_fiber_pixel_integral_matches_numerical_integration(self):
        fwhm_um, pixel_mm = 300.0, 0.172
        g = FIBER_G_PER_FWHM * fwhm_um * 1e-3 / pixel_mm
        kernel = psf_kernel("fiber", fwhm_um, pixel_mm)
        r = kernel.shape[0] // 2
        # photons within the truncation square, to undo the kernel's normalisation
        inside, _ = integrate.dblquad(lambda y, x: g / (2 * np.pi * (g * g + x * x + y * y) ** 1.5),
                                      -r - 0.5, r + 0.5, -r - 0.5, r + 0.5, epsabs=1e-12)
        for dy, dx in [(0, 0), (0, 1), (1, 2), (3, 3)]:
            value, _ = integrate.dblquad(lambda y, x: g / (2 * np.pi * (g * g + x * x + y * y) ** 1.5),
                                         dx - 0.5, dx + 0.5, dy - 0.5, dy + 0.5, epsabs=1e-13)
            assert kernel[r + dy, r + dx] == pytest.approx(value / inside, rel=1e-7)

    @pytest.mark.parametrize("fwhm_um", [46.0, 80.0])
    def test_fiber_is_holton_2012(self, fwhm_um):
        # Holton, Nielsen & Frankel (2012), J. Synchrotron Rad. 19, 1006: PSF(x, y) =
        # g / (2 pi (g^2 + x^2 + y^2)^(3/2)) integrated over a pixel from the corner integral
        # atan(x y / (g sqrt(g^2 + x^2 + y^2))) / (2 pi), with g = 0.65238 FWHM (noisify's constant)
        g = 0.65238 * fwhm_um * 1e-3 / 0.172

        def corner(x, y):
            return np.arctan(x * y / (g * np.sqrt(g * g + x * x + y * y))) / (2 * np.pi)

        def pixel(dx, dy):
            return (corner(dx + 0.5, dy + 0.5) - corner(dx + 0.5, dy - 0.5) - corner(dx - 0.5, dy + 0.5)
                    + corner(dx - 0.5, dy - 0.5))

        kernel = psf_kernel("fiber", fwhm_um, 0.172)
        r = kernel.shape[0] // 2
        assert r == math.ceil(g * math.sqrt(1 / 0.001**2 - 1))  # 99.9 % of the photons within R
        inside = 4 * corner(r + 0.5, r + 0.5)  # the kernel holds the photons of its square, rescaled to 1
        for dy, dx in [(0, 0), (0, 1), (1, 1), (2, 5), (10, 0), (r, r)]:
            assert kernel[r + dy, r + dx] == pytest.approx(pixel(dx, dy) / inside, rel=1e-4)
        # and g is the one of the FWHM: the profile falls to half its peak at FWHM / 2
        half = fwhm_um * 1e-3 / 0.172 / 2
        assert (g * g / (g * g + half * half)) ** 1.5 == pytest.approx(0.5, rel=1e-4)

    @pytest.mark.parametrize("kind", ["fiber", "gauss"])
    def test_fwhm_matches_request(self, kind):
        # pixels 40x finer than the FWHM: the pixel-integrated profile is the PSF itself
        kernel = psf_kernel(kind, fwhm_um=80.0, pixel_size_mm=0.002, max_radius=120)
        profile = kernel[kernel.shape[0] // 2]
        assert fwhm_of_profile(profile) == pytest.approx(40.0, abs=0.1)

    @pytest.mark.parametrize("kind", ["fiber", "gauss"])
    def test_normalised_symmetric(self, kind):
        kernel = psf_kernel(kind, 100.0, 0.172)
        assert kernel.sum() == pytest.approx(1.0, abs=1e-12)
        np.testing.assert_allclose(kernel, kernel[::-1, :], atol=1e-17)
        np.testing.assert_allclose(kernel, kernel.T, atol=1e-17)

    def test_fiber_radius_from_enclosed_fraction(self):
        g = FIBER_G_PER_FWHM * 0.08 / 0.172
        kernel = psf_kernel("fiber", 80.0, 0.172, enclosed_fraction=0.99)
        radius = kernel.shape[0] // 2
        assert radius == math.ceil(g * math.sqrt(1 / 0.01**2 - 1))
        # max_radius keeps the inner part, unscaled
        inner = psf_kernel("fiber", 80.0, 0.172, enclosed_fraction=0.99, max_radius=5)
        np.testing.assert_array_equal(inner, kernel[radius - 5:radius + 6, radius - 5:radius + 6])

    @pytest.mark.parametrize("kwargs, name", [
        (dict(kind="lorentz"), "kind"),
        (dict(fwhm_um=0.0), "fwhm_um"),
        (dict(pixel_size_mm=-0.1), "pixel_size_mm"),
        (dict(enclosed_fraction=1.0), "enclosed_fraction"),
        (dict(enclosed_fraction=1.5), "enclosed_fraction"),
        (dict(max_radius=0), "max_radius"),
    ])
    def test_validation(self, kwargs, name):
        args = dict(kind="fiber", fwhm_um=80.0, pixel_size_mm=0.172)
        args.update(kwargs)
        with pytest.raises(ValueError, match=name):
            psf_kernel(**args)


class TestApplyPsf:
    @pytest.mark.parametrize("shape", [(45, 62), (3, 200), (1, 1)])
    @pytest.mark.parametrize("kind, fwhm_um", [("gauss", 250.0), ("fiber", 80.0), ("fiber", 400.0)])
    def test_matches_scipy_fftconvolve(self, kind, fwhm_um, shape):
        image = np.random.default_rng(3).exponential(50.0, shape).astype(np.float32)
        kernel = psf_kernel(kind, fwhm_um, 0.172, max_radius=max(max(image.shape) - 1, 1))
        reference = fftconvolve(image.astype(np.float64), kernel, mode="same")
        result = apply_psf(image, 0.172, kind, fwhm_um)
        np.testing.assert_allclose(result, reference, rtol=1e-5, atol=1e-4)

    def test_fiber_precision_on_a_detector_sized_image(self):
        # single-precision transforms: every pixel within 2e-6 of the image's peak of the exact
        # convolution, on bright spots over a strong background
        rng = np.random.default_rng(6)
        image = rng.exponential(300.0, (512, 480)).astype(np.float32)
        image[rng.integers(0, 512, 200), rng.integers(0, 480, 200)] = 1e5
        kernel = psf_kernel("fiber", 46.0, 0.1, max_radius=511)
        reference = fftconvolve(image.astype(np.float64), kernel, mode="same")
        error = np.abs(apply_psf(image, 0.1, "fiber", 46.0) - reference)
        assert error.max() <= 2e-6 * reference.max()

    def test_gauss_matches_ndimage_for_wide_psf(self):
        # wide compared to a pixel, the pixel integral is close to a sampled Gaussian of variance s^2 + 1/12
        image = np.zeros((101, 101), np.float32)
        image[50, 50] = 1e4
        sigma_px = 1000.0 / (2.0 * math.sqrt(2.0 * math.log(2.0))) / 172.0
        result = apply_psf(image, 0.172, "gauss", 1000.0)
        reference = ndimage.gaussian_filter(image.astype(float), math.sqrt(sigma_px**2 + 1 / 12), mode="constant",
                                            truncate=8.0)
        np.testing.assert_allclose(result, reference, atol=1e-3 * reference.max())

    @pytest.mark.parametrize("kind, fwhm_um, size", [("gauss", 300.0, 41), ("fiber", 20.0, 161)])
    def test_conserves_photons_of_interior_spot(self, kind, fwhm_um, size):
        # the fiber kernel reaches R = 77 pixels for FWHM 20 um on 172 um pixels: the spot is R from every edge
        image = np.zeros((size, size), np.float32)
        image[size // 2, size // 2] = 12345.0
        image[size // 2 - 1, size // 2 + 1] = 678.0
        assert psf_kernel(kind, fwhm_um, 0.172).shape[0] <= size - 2
        result = apply_psf(image, 0.172, kind, fwhm_um)
        assert result.sum(dtype=np.float64) == pytest.approx(12345.0 + 678.0, rel=1e-6)
        assert result.min() >= -1e-3

    @pytest.mark.parametrize("kind", ["gauss", "fiber"])
    def test_photons_spread_off_the_edge_are_lost(self, kind):
        image = np.zeros((30, 30), np.float32)
        image[0, 0] = 1000.0
        result = apply_psf(image, 0.172, kind, 200.0)
        assert 250.0 < result.sum() < 900.0

    def test_same_for_any_thread_count(self):
        image = np.random.default_rng(4).exponential(50.0, (77, 64)).astype(np.float32)
        for kind in ("gauss", "fiber"):
            np.testing.assert_array_equal(apply_psf(image, 0.172, kind, 120.0, n_threads=1),
                                          apply_psf(image, 0.172, kind, 120.0, n_threads=2))

    def test_interior_independent_of_image_size(self):
        image = np.random.default_rng(5).exponential(50.0, (64, 64)).astype(np.float32)
        big = np.zeros((200, 200), np.float32)
        big[:64, :64] = image
        np.testing.assert_allclose(apply_psf(big, 0.172)[:64, :64], apply_psf(image, 0.172), rtol=1e-5, atol=1e-4)

    @pytest.mark.parametrize("kwargs, name", [
        (dict(image=np.full((3, 3), -1.0)), "image"),
        (dict(kind="box"), "kind"),
        (dict(fwhm_um=-1.0), "fwhm_um"),
        (dict(pixel_size_mm=0.0), "pixel_size_mm"),
        (dict(enclosed_fraction=0.0), "enclosed_fraction"),
        (dict(n_threads=-2), "n_threads"),
    ])
    def test_validation(self, kwargs, name):
        args = dict(image=np.ones((3, 3)), pixel_size_mm=0.172)
        args.update(kwargs)
        with pytest.raises(ValueError, match=name):
            apply_psf(**args)


class TestCalibration:
    def test_mean_one_rms_four_percent(self):
        gain = calibration_map((512, 512), 0.04, calibration_seed=3).astype(np.float64)
        n = gain.size
        assert abs(gain.mean() - 1.0) / (0.04 / math.sqrt(n)) < Z_TOL
        assert abs(gain.std() - 0.04) / (0.04 / math.sqrt(2 * n)) < Z_TOL

    def test_fixed_by_seed(self):
        a = calibration_map((64, 64), 0.04, 3)
        np.testing.assert_array_equal(a, calibration_map((64, 64), 0.04, 3))
        other = calibration_map((64, 64), 0.04, 4)
        assert abs(np.corrcoef(a.ravel(), other.ravel())[0, 1]) < 0.1

    def test_tile_matches_whole_map(self):
        whole = calibration_map((50, 60), 0.04, 8)
        np.testing.assert_array_equal(calibration_map((10, 20), 0.04, 8, origin=(30, 35)), whole[30:40, 35:55])

    def test_same_pattern_for_every_image_seed(self):
        expected = np.full((128, 128), 2e4, np.float32)
        ccd = quiet_ccd(calibration_rms=0.04, calibration_seed=5)
        gain = calibration_map((128, 128), 0.04, 5).ravel()
        for seed in (1, 2):
            counts = ccd.apply(expected, 0.172, seed).ravel()
            # Poisson scatter is 0.7 %, the calibration 4 %
            assert np.corrcoef(counts, gain)[0, 1] > 0.95
        other = quiet_ccd(calibration_rms=0.04, calibration_seed=6).apply(expected, 0.172, 1).ravel()
        assert abs(np.corrcoef(other, gain)[0, 1]) < 0.05

    @pytest.mark.parametrize("kwargs, name", [
        (dict(shape=(0, 3)), "shape"),
        (dict(shape=(3,)), "shape"),
        (dict(calibration_rms=-0.1), "calibration_rms"),
        (dict(calibration_seed=-3), "calibration_seed"),
        (dict(origin=(0, -2)), r"origin\[1\]"),
    ])
    def test_validation(self, kwargs, name):
        args = dict(shape=(3, 3), calibration_rms=0.04, calibration_seed=0)
        args.update(kwargs)
        with pytest.raises(ValueError, match=name):
            calibration_map(**args)


class TestCCDResponse:
    def test_all_stages_off_is_poisson(self):
        expected = np.random.default_rng(6).exponential(30.0, (40, 50)).astype(np.float32)
        np.testing.assert_array_equal(quiet_ccd().apply(expected, 0.172, 7), poisson(expected, 7))

    def test_offset_and_readout_noise(self):
        counts = quiet_ccd(readout_rms_photons=3.0, adc_offset=10.0).apply(np.zeros((400, 400)), 0.172, 1)
        n = counts.size
        assert abs(counts.mean() - 10.0) / (3.0 / math.sqrt(n)) < Z_TOL
        # rounding to whole ADU adds 1/12 to the variance
        assert counts.std() == pytest.approx(math.sqrt(9.0 + 1.0 / 12.0), rel=0.01)
        np.testing.assert_array_equal(counts, np.round(counts))
        assert np.all(quiet_ccd(adc_offset=10.0).apply(np.zeros((5, 5)), 0.172, 1) == 10.0)

    def test_clipped_at_65025_and_zero(self):
        ccd = paper_ccd()
        counts = ccd.apply(np.full((32, 32), 1e6, np.float32), 0.172, 2)
        assert counts.max() == 65025.0
        assert np.all(counts[8:-8, 8:-8] == 65025.0)
        low = quiet_ccd(readout_rms_photons=3.0).apply(np.zeros((50, 50)), 0.172, 3)
        assert low.min() == 0.0 and low.max() > 0.0

    def test_masked_pixels_read_zero(self):
        mask = np.zeros((20, 20), bool)
        mask[5:8, 3] = True
        counts = paper_ccd().apply(np.full((20, 20), 100.0), 0.172, 4, mask=mask)
        assert np.all(counts[mask] == 0.0)
        assert counts[~mask].min() > 0.0

    def test_flicker_scales_the_whole_image(self):
        ccd = quiet_ccd(flicker_rms=0.1)
        means = np.array([ccd.apply(np.full((20, 20), 1e4), 0.172, seed).mean() / 1e4 for seed in range(300)])
        assert abs(means.mean() - 1.0) < Z_TOL * 0.1 / math.sqrt(300)
        assert means.std() == pytest.approx(0.1, rel=0.2)
        # with an RMS equal to the mean (the paper's pulses), some pulses are clipped to nothing
        paper = quiet_ccd(flicker_rms=1.0)
        empty = sum(paper.apply(np.full((4, 4), 100.0), 0.172, seed).max() == 0 for seed in range(400))
        assert 0.10 < empty / 400 < 0.23  # P(1 + z < 0) = 0.159

    def test_same_for_any_thread_count(self):
        expected = np.random.default_rng(7).exponential(30.0, (90, 70)).astype(np.float32)
        ccd = paper_ccd()
        np.testing.assert_array_equal(ccd.apply(expected, 0.172, 5, n_threads=1),
                                      ccd.apply(expected, 0.172, 5, n_threads=2))

    def test_tile_matches_whole_image(self):
        expected = np.random.default_rng(8).exponential(30.0, (60, 70)).astype(np.float32)
        ccd = CCDResponse(psf=None)
        whole = ccd.apply(expected, 0.172, 6)
        tile = ccd.apply(expected[20:50, 10:30], 0.172, 6, origin=(20, 10))
        np.testing.assert_array_equal(tile, whole[20:50, 10:30])

    def test_psf_conserves_photons_in_chain(self):
        expected = np.zeros((161, 161), np.float32)
        expected[80, 80] = 5e4
        ccd = quiet_ccd(psf="fiber", psf_fwhm_um=20.0)
        counts = ccd.apply(expected, 0.172, 1)
        raw = poisson(expected, 1)
        assert abs(counts.sum() - raw.sum()) <= counts.size * 0.5  # rounding of each pixel
        assert counts[80, 80] < raw[80, 80]

    def test_timings_returned(self):
        ccd = paper_ccd()
        counts, timings = ccd.apply(np.ones((16, 16)), 0.172, 0, return_timings=True)
        assert set(timings) == {"validate", "poisson", "psf", "readout"}
        assert all(seconds >= 0 for seconds in timings.values())
        np.testing.assert_array_equal(counts, ccd.apply(np.ones((16, 16)), 0.172, 0))
        assert not hasattr(ccd, "last_timings")

    def test_to_dict_round_trip(self):
        ccd = CCDResponse(flicker_rms=0.2, psf="gauss", psf_fwhm_um=50.0, calibration_seed=9)
        data = json.loads(json.dumps(ccd.to_dict()))
        assert data["model"] == "ccd"
        assert CCDResponse.from_dict(data).to_dict() == ccd.to_dict()
        assert "CCDResponse(" in repr(ccd)
        with pytest.raises(ValueError, match="model"):
            CCDResponse.from_dict(PixelArrayResponse().to_dict())
        with pytest.raises(ValueError, match="data"):
            CCDResponse.from_dict([1, 2])

    def test_paper_values(self):
        d = paper_ccd().to_dict()
        assert (d["calibration_rms"], d["readout_rms_photons"], d["adc_offset"], d["saturation"]) == \
            (0.04, 3.0, 10.0, 65025.0)
        assert d["psf"] == "fiber"

    @pytest.mark.parametrize("kwargs, name", [
        (dict(flicker_rms=-0.1), "flicker_rms"),
        (dict(psf="box"), "psf"),
        (dict(psf_fwhm_um=0.0), "psf_fwhm_um"),
        (dict(calibration_rms=-0.04), "calibration_rms"),
        (dict(calibration_seed=-1), "calibration_seed"),
        (dict(readout_rms_photons=-3.0), "readout_rms_photons"),
        (dict(adc_offset=-10.0), "adc_offset"),
        (dict(adc_offset=float("nan")), "adc_offset"),
        (dict(saturation=0.0), "saturation"),
        (dict(saturation=2.0**25), "saturation"),
    ])
    def test_constructor_validation(self, kwargs, name):
        with pytest.raises(ValueError, match=name):
            CCDResponse(**kwargs)

    @pytest.mark.parametrize("kwargs, name", [
        (dict(expected_photons=np.full((3, 3), np.inf)), "expected_photons"),
        (dict(pixel_size_mm=0.0), "pixel_size_mm"),
        (dict(seed=-1), "seed"),
        (dict(mask=np.zeros((4, 3), bool)), "mask"),
        (dict(n_threads=0), "n_threads"),
        (dict(origin=(0, -1)), r"origin\[1\]"),
    ])
    def test_apply_validation(self, kwargs, name):
        args = dict(expected_photons=np.ones((3, 3)), pixel_size_mm=0.172, seed=0)
        args.update(kwargs)
        with pytest.raises(ValueError, match=name):
            paper_ccd().apply(**args)


class TestTo8bit:
    def test_values(self):
        out = to_8bit(np.array([0.0, 4.0, 100.0, 65025.0, 70000.0, -5.0, 2.2]))
        np.testing.assert_array_equal(out, [0, 2, 10, 255, 255, 0, 1])
        assert out.dtype == np.uint8
        assert CCDResponse.to_8bit([[9]]).tolist() == [[3]]

    @pytest.mark.parametrize("mu", [1e3, 1e4, 4e4])
    def test_standard_error_of_large_counts(self, mu):
        counts = poisson(np.full((300, 300), mu), seed=int(mu))
        # sqrt(N) of a Poisson count scatters by 1/2, whatever N (variance stabilisation) ...
        assert np.sqrt(counts.astype(np.float64)).std() == pytest.approx(0.5, abs=0.01)
        # ... and rounding to whole 8-bit levels adds 1/12 to the variance
        assert to_8bit(counts).astype(np.float64).std() == pytest.approx(math.sqrt(0.25 + 1 / 12), abs=0.02)

    def test_validation(self):
        with pytest.raises(ValueError, match="counts"):
            to_8bit([1.0, np.nan])
        with pytest.raises(ValueError, match="counts"):
            to_8bit(["a"])


class TestPixelArrayResponse:
    def test_counts_without_readout_noise(self):
        pad = PixelArrayResponse()
        assert np.all(pad.apply(np.zeros((30, 30)), 0.172, 1) == 0.0)
        expected = np.random.default_rng(9).exponential(30.0, (40, 40))
        np.testing.assert_array_equal(pad.apply(expected, 0.172, 3), poisson(expected, 3))

    def test_saturation(self):
        counts = PixelArrayResponse(saturation=4095).apply(np.full((10, 10), 1e5), 0.172, 2)
        assert np.all(counts == 4095.0)

    def test_module_gaps_read_zero(self):
        pad = PixelArrayResponse(module_shape=(195, 487), gap_px=(17, 7))
        counts = pad.apply(np.full((420, 500), 50.0), 0.172, 5)
        gaps = module_gap_mask((420, 500), (195, 487), (17, 7))
        assert gaps[195:212].all() and gaps[:, 487:494].all() and not gaps[:195, :487].any()
        assert np.all(counts[gaps] == 0.0) and counts[~gaps].min() > 0.0
        tile = pad.apply(np.full((40, 30), 50.0), 0.172, 5, origin=(180, 470))
        np.testing.assert_array_equal(tile, counts[180:220, 470:510])

    def test_dead_time_reduces_the_mean(self):
        n = 1e5
        pad = PixelArrayResponse(dead_time_s=1e-6, exposure_s=1.0)
        counts = pad.apply(np.full((200, 200), n), 0.172, 7)
        assert counts.mean() == pytest.approx(n * math.exp(-0.1), rel=1e-3)

    def test_to_dict(self):
        pad = PixelArrayResponse(module_shape=(195, 487))
        data = json.loads(json.dumps(pad.to_dict()))
        assert data["model"] == "pixel_array"
        assert PixelArrayResponse.from_dict(data).to_dict() == pad.to_dict()

    @pytest.mark.parametrize("kwargs, name", [
        (dict(saturation=-1), "saturation"),
        (dict(module_shape=(0, 10)), "module_shape"),
        (dict(module_shape=(10, 10), gap_px=(-1, 0)), "gap_px"),
        (dict(gap_px=(1, 2, 3)), "gap_px"),
        (dict(dead_time_s=-1e-9), "dead_time_s"),
        (dict(dead_time_s=1e-7), "exposure_s"),
        (dict(exposure_s=0.0), "exposure_s"),
    ])
    def test_validation(self, kwargs, name):
        with pytest.raises(ValueError, match=name):
            PixelArrayResponse(**kwargs)

    def test_apply_validation(self):
        with pytest.raises(ValueError, match="pixel_size_mm"):
            PixelArrayResponse().apply(np.ones((2, 2)), 0.0, 0)
        with pytest.raises(ValueError, match="expected_photons"):
            PixelArrayResponse().apply(np.ones(4), 0.172, 0)
