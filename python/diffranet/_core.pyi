"""Type stubs of the compiled core ``diffranet._core`` (pybind11).

Private: the Python layer (``diffranet.simulation``, ``diffranet.features``) validates every
argument and calls these; the kernels check nothing. Signatures as pybind11 reports them.
"""

import typing

import numpy
import numpy.typing


def calibration_map(rows: typing.SupportsInt | typing.SupportsIndex, cols: typing.SupportsInt | typing.SupportsIndex, calibration_rms: typing.SupportsFloat | typing.SupportsIndex, calibration_seed: typing.SupportsInt | typing.SupportsIndex, row0: typing.SupportsInt | typing.SupportsIndex, col0: typing.SupportsInt | typing.SupportsIndex, n_threads: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float32]:
    """Per-pixel gain factors 1 + calibration_rms z (float32 rows x cols)."""

def ccd_readout(counts: object, gain: object, readout_rms: typing.SupportsFloat | typing.SupportsIndex, adc_offset: typing.SupportsFloat | typing.SupportsIndex, saturation: typing.SupportsFloat | typing.SupportsIndex, seed: typing.SupportsInt | typing.SupportsIndex, row0: typing.SupportsInt | typing.SupportsIndex, col0: typing.SupportsInt | typing.SupportsIndex, mask: object, n_threads: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float32]:
    """Gain map, read-out noise, offset, digitise, clip: a new float32 array (counts is not modified)."""

def clip_counts(counts: object, saturation: typing.SupportsFloat | typing.SupportsIndex, mask: object, n_threads: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float32]:
    """Counts clipped to [0, saturation], 0 where masked: a new float32 array (counts is not modified)."""

def convolve_separable(image: object, kernel_half: object, n_threads: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float32]:
    """Convolution with a symmetric separable kernel given as float64 weights at offsets 0..radius."""

def flicker_factor(seed: typing.SupportsInt | typing.SupportsIndex, rms: typing.SupportsFloat | typing.SupportsIndex) -> float:
    """Shot-to-shot fluence factor max(0, 1 + rms z) of image `seed`."""

def glcm_features(images: object, offsets: object, levels: typing.SupportsInt | typing.SupportsIndex, symmetric: bool, out: object, n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """Haralick features of uint8 images (n_images, rows, cols) with grey levels below `levels`, written into `out`, a float64 C-contiguous array (n_images, n_offsets, 6)."""

def mosaic_rotations(n_domains: typing.SupportsInt | typing.SupportsIndex, spread_rad: typing.SupportsFloat | typing.SupportsIndex, distribution: typing.SupportsInt | typing.SupportsIndex, seed: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float64]:
    """Lab-frame rotation matrices (n, 3, 3) of the mosaic domains."""

def poisson(expected: object, scale: typing.SupportsFloat | typing.SupportsIndex, seed: typing.SupportsInt | typing.SupportsIndex, row0: typing.SupportsInt | typing.SupportsIndex, col0: typing.SupportsInt | typing.SupportsIndex, mask: object, n_threads: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float32]:
    """Poisson deviates of scale * expected (float32 rows x cols, finite, >= 0), 0 where masked (uint8 mask)."""

def render_background(rows: typing.SupportsInt | typing.SupportsIndex, cols: typing.SupportsInt | typing.SupportsIndex, pixel_size_mm: typing.SupportsFloat | typing.SupportsIndex, origin_mm: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], fast_axis: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], slow_axis: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], normal: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], oversample: typing.SupportsInt | typing.SupportsIndex, source_directions: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], source_wavelengths_A: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], source_weights: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], fluence: typing.SupportsFloat | typing.SupportsIndex, polarization_fraction: typing.SupportsFloat | typing.SupportsIndex, polarization_axis: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], material_stol_per_A: collections.abc.Sequence[typing.Annotated[numpy.typing.ArrayLike, numpy.float64]], material_F: collections.abc.Sequence[typing.Annotated[numpy.typing.ArrayLike, numpy.float64]], material_incoherent: collections.abc.Sequence[typing.Annotated[numpy.typing.ArrayLike, numpy.float64]], material_molecules: collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex], n_threads: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float32]:
    """Expected amorphous-background photons per pixel (float32 rows x cols); no validation."""

def render_bragg(rows: typing.SupportsInt | typing.SupportsIndex, cols: typing.SupportsInt | typing.SupportsIndex, pixel_size_mm: typing.SupportsFloat | typing.SupportsIndex, origin_mm: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], fast_axis: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], slow_axis: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], normal: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], oversample: typing.SupportsInt | typing.SupportsIndex, source_directions: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], source_wavelengths_A: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], source_weights: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], fluence: typing.SupportsFloat | typing.SupportsIndex, polarization_fraction: typing.SupportsFloat | typing.SupportsIndex, polarization_axis: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], real_basis_A: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], ncells: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], shape: typing.SupportsInt | typing.SupportsIndex, domain_rotations: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], sf_table: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], sf_hkl_min: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], default_F: typing.SupportsFloat | typing.SupportsIndex, method: str, n_threads: typing.SupportsInt | typing.SupportsIndex, directions: typing.Annotated[numpy.typing.ArrayLike, numpy.float64] | None = None) -> tuple:
    """Expected Bragg photons per pixel (float32 rows x cols) and renderer statistics."""

def subpixel_directions(rows: typing.SupportsInt | typing.SupportsIndex, cols: typing.SupportsInt | typing.SupportsIndex, pixel_size_mm: typing.SupportsFloat | typing.SupportsIndex, origin_mm: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], fast_axis: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], slow_axis: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], normal: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], oversample: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float64]:
    """Unit vectors from the sample to every subpixel centre, shape (rows*n, cols*n, 3)."""
