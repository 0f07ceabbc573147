"""Type stubs of the compiled core ``diffranet._core`` (pybind11).

Private: the Python layer (``diffranet.simulation``, ``diffranet.features``) validates every
argument and calls these; the kernels check nothing. Signatures as pybind11 reports them.
"""

import typing

import numpy
import numpy.typing


def calibration_map(rows: typing.SupportsInt | typing.SupportsIndex, cols: typing.SupportsInt | typing.SupportsIndex, calibration_rms: typing.SupportsFloat | typing.SupportsIndex, calibration_seed: typing.SupportsInt | typing.SupportsIndex, row0: typing.SupportsInt | typing.SupportsIndex, col0: typing.SupportsInt | typing.SupportsIndex, n_threads: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float32]:
    """Per-pixel gain factors 1 + calibration_rms z (float32 rows x cols)."""

def ccd_readout(counts: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], gain: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None, readout_rms: typing.SupportsFloat | typing.SupportsIndex, adc_offset: typing.SupportsFloat | typing.SupportsIndex, saturation: typing.SupportsFloat | typing.SupportsIndex, seed: typing.SupportsInt | typing.SupportsIndex, row0: typing.SupportsInt | typing.SupportsIndex, col0: typing.SupportsInt | typing.SupportsIndex, mask: typing.Annotated[numpy.typing.ArrayLike, numpy.uint8] | None, n_threads: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float32]:
    """Gain map, read-out noise, offset, digitise, clip (in place when counts is float32 C-contiguous)."""

def clip_counts(counts: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], saturation: typing.SupportsFloat | typing.SupportsIndex, mask: typing.Annotated[numpy.typing.ArrayLike, numpy.uint8] | None, n_threads: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float32]:
    """Clip to [0, saturation], 0 where masked (in place when counts is float32 C-contiguous)."""

def convolve_fft(image: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], spectrum: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], n_threads: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float32]:
    """Zero-padded FFT convolution with a kernel given by its real half-spectrum."""

def convolve_separable(image: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], kernel_half: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], n_threads: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float32]:
    """Convolution with a symmetric separable kernel given as weights at offsets 0..radius."""

def flicker_factor(seed: typing.SupportsInt | typing.SupportsIndex, rms: typing.SupportsFloat | typing.SupportsIndex) -> float:
    """Shot-to-shot fluence factor max(0, 1 + rms z) of image `seed`."""

def glcm_features(images: typing.Annotated[numpy.typing.ArrayLike, numpy.uint8], offsets: typing.Annotated[numpy.typing.ArrayLike, numpy.int64], levels: typing.SupportsInt | typing.SupportsIndex, symmetric: bool, out: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """Haralick features (n_images, n_offsets, 6) of uint8 images; no validation."""

def kernel_spectrum(kernel: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], mrows: typing.SupportsInt | typing.SupportsIndex, mcols: typing.SupportsInt | typing.SupportsIndex, n_threads: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float64]:
    """Real half-spectrum of an even (2ry+1, 2rx+1) kernel on an mrows x mcols grid."""

def mosaic_rotations(n_domains: typing.SupportsInt | typing.SupportsIndex, spread_rad: typing.SupportsFloat | typing.SupportsIndex, distribution: typing.SupportsInt | typing.SupportsIndex, seed: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float64]:
    """Lab-frame rotation matrices (n, 3, 3) of the mosaic domains."""

def poisson(expected: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], scale: typing.SupportsFloat | typing.SupportsIndex, seed: typing.SupportsInt | typing.SupportsIndex, row0: typing.SupportsInt | typing.SupportsIndex, col0: typing.SupportsInt | typing.SupportsIndex, mask: typing.Annotated[numpy.typing.ArrayLike, numpy.uint8] | None, n_threads: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float32]:
    """Poisson deviates of scale * expected (float32 rows x cols), 0 where masked."""

def render_background(rows: typing.SupportsInt | typing.SupportsIndex, cols: typing.SupportsInt | typing.SupportsIndex, pixel_size_mm: typing.SupportsFloat | typing.SupportsIndex, origin_mm: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], fast_axis: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], slow_axis: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], normal: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], oversample: typing.SupportsInt | typing.SupportsIndex, source_directions: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], source_wavelengths_A: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], source_weights: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], fluence: typing.SupportsFloat | typing.SupportsIndex, polarization_fraction: typing.SupportsFloat | typing.SupportsIndex, polarization_axis: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], material_stol_per_A: collections.abc.Sequence[typing.Annotated[numpy.typing.ArrayLike, numpy.float64]], material_F: collections.abc.Sequence[typing.Annotated[numpy.typing.ArrayLike, numpy.float64]], material_incoherent: collections.abc.Sequence[typing.Annotated[numpy.typing.ArrayLike, numpy.float64]], material_molecules: collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex], n_threads: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float32]:
    """Expected amorphous-background photons per pixel (float32 rows x cols); no validation."""

def render_bragg(rows: typing.SupportsInt | typing.SupportsIndex, cols: typing.SupportsInt | typing.SupportsIndex, pixel_size_mm: typing.SupportsFloat | typing.SupportsIndex, origin_mm: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], fast_axis: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], slow_axis: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], normal: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], oversample: typing.SupportsInt | typing.SupportsIndex, source_directions: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], source_wavelengths_A: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], source_weights: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], fluence: typing.SupportsFloat | typing.SupportsIndex, polarization_fraction: typing.SupportsFloat | typing.SupportsIndex, polarization_axis: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], real_basis_A: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], ncells: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], shape: typing.SupportsInt | typing.SupportsIndex, domain_rotations: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], sf_table: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], sf_hkl_min: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], default_F: typing.SupportsFloat | typing.SupportsIndex, method: str, n_threads: typing.SupportsInt | typing.SupportsIndex, directions: typing.Annotated[numpy.typing.ArrayLike, numpy.float64] | None = None) -> tuple:
    """Expected Bragg photons per pixel (float32 rows x cols) and renderer statistics."""

def subpixel_directions(rows: typing.SupportsInt | typing.SupportsIndex, cols: typing.SupportsInt | typing.SupportsIndex, pixel_size_mm: typing.SupportsFloat | typing.SupportsIndex, origin_mm: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], fast_axis: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], slow_axis: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], normal: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], oversample: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float64]:
    """Unit vectors from the sample to every subpixel centre, shape (rows*n, cols*n, 3)."""
