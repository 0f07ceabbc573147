"""Type declarations of the compiled core ``diffranet._core`` (pybind11), for editors and type checkers.

Private: the Python layer (``diffranet.simulation``, ``diffranet.features``) validates every
argument and calls these; the kernels check nothing. Signatures as pybind11 reports them.
"""

import collections.abc
import typing

import numpy
import numpy.typing

class BackgroundSamples:
    """Per-subpixel weights and scattering angles of the background sum for one detector and beam geometry (the beam's wavelengths and fluence are not part of them)."""
    def __init__(self, rows: typing.SupportsInt | typing.SupportsIndex, cols: typing.SupportsInt | typing.SupportsIndex, pixel_size_mm: typing.SupportsFloat | typing.SupportsIndex, origin_mm: object, fast_axis: object, slow_axis: object, normal: object, oversample: typing.SupportsInt | typing.SupportsIndex, source_directions: object, source_wavelengths_A: object, source_weights: object, fluence: typing.SupportsFloat | typing.SupportsIndex, polarization_fraction: typing.SupportsFloat | typing.SupportsIndex, polarization_axis: object) -> None: ...
    @property
    def nbytes(self) -> int:
        """Bytes held."""

class DirectionGrid:
    """Unit vectors from the sample to every subpixel centre of one detector geometry."""
    def __init__(self, rows: typing.SupportsInt | typing.SupportsIndex, cols: typing.SupportsInt | typing.SupportsIndex, pixel_size_mm: typing.SupportsFloat | typing.SupportsIndex, origin_mm: object, fast_axis: object, slow_axis: object, normal: object, oversample: typing.SupportsInt | typing.SupportsIndex) -> None: ...
    @property
    def values(self) -> numpy.typing.NDArray[numpy.float64]:
        """Read-only array (rows*n, cols*n, 3)."""

class FrameMap:
    """A training-detector map of frames of one shape (CSR: starts, sources, weights), the training pixels' expected areas and ring-and-sector cells; checked once."""
    def __init__(self, rows: typing.SupportsInt | typing.SupportsIndex, cols: typing.SupportsInt | typing.SupportsIndex, starts: object, sources: object, weights: object, expected: object, cells: object, order: object, cell_starts: object, n_rings: typing.SupportsInt | typing.SupportsIndex, n_sectors: typing.SupportsInt | typing.SupportsIndex, min_coverage: typing.SupportsFloat | typing.SupportsIndex) -> None: ...
    def bslz4_to_8bit(self, payload: collections.abc.Buffer, offset: typing.SupportsInt | typing.SupportsIndex, dtype: numpy.dtype, block_elements: typing.SupportsInt | typing.SupportsIndex, mask: object, saturation: object, adc_offset: typing.SupportsFloat | typing.SupportsIndex, out: object, n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
        """to_8bit of a frame still bslz4-compressed (payload[offset:] past the 12-byte header): only the blocks the map reads are expanded."""
    def gather(self, frame: object, mask: object, saturation: object, sums: object, covered: object, n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
        """Photons and valid area received by each training pixel, written into sums and covered (float64)."""
    def to_8bit(self, frame: object, mask: object, saturation: object, adc_offset: typing.SupportsFloat | typing.SupportsIndex, out: object, n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
        """The 8-bit model input of a frame, written into out (uint8, the training shape)."""

class RingLayout:
    """Ring membership of the pixels of one detector shape, beam centre (pixel centres at integers) and mask (uint8, nonzero: record nothing; or None)."""
    def __init__(self, rows: typing.SupportsInt | typing.SupportsIndex, cols: typing.SupportsInt | typing.SupportsIndex, beam_center_x: typing.SupportsFloat | typing.SupportsIndex, beam_center_y: typing.SupportsFloat | typing.SupportsIndex, mask: object) -> None: ...
    @property
    def cols(self) -> int: ...
    @property
    def rows(self) -> int: ...

class StructureFactorTable:
    """|F| table (float32, 3-D, finite, >= 0) checked and copied once, for render_bragg."""
    def __init__(self, sf_table: object, sf_hkl_min: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], default_F: typing.SupportsFloat | typing.SupportsIndex) -> None: ...

def _inject_failure(kernel: str) -> None:
    """Testing only: every parallel task of `kernel` (e.g. 'poisson', 'bragg_reflection', 'background') throws std::bad_alloc until called again with ''."""

def calibration_map(rows: typing.SupportsInt | typing.SupportsIndex, cols: typing.SupportsInt | typing.SupportsIndex, calibration_rms: typing.SupportsFloat | typing.SupportsIndex, calibration_seed: typing.SupportsInt | typing.SupportsIndex, row0: typing.SupportsInt | typing.SupportsIndex, col0: typing.SupportsInt | typing.SupportsIndex, n_threads: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float32]:
    """Per-pixel gain factors 1 + calibration_rms z (float32 rows x cols)."""

def ccd_readout(counts: object, gain: object, readout_rms: typing.SupportsFloat | typing.SupportsIndex, adc_offset: typing.SupportsFloat | typing.SupportsIndex, saturation: typing.SupportsFloat | typing.SupportsIndex, seed: typing.SupportsInt | typing.SupportsIndex, row0: typing.SupportsInt | typing.SupportsIndex, col0: typing.SupportsInt | typing.SupportsIndex, mask: object, n_threads: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float32]:
    """Gain map, read-out noise, offset, digitise, clip: a new float32 array (counts is not modified)."""

def clip_counts(counts: object, saturation: typing.SupportsFloat | typing.SupportsIndex, mask: object, n_threads: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float32]:
    """Counts clipped to [0, saturation], 0 where masked: a new float32 array (counts is not modified)."""

def convolve_separable(image: object, kernel_half: object, n_threads: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float32]:
    """Convolution with a symmetric separable kernel given as float64 weights at offsets 0..radius."""

def count_nonfinite(frame: object, mask: object, n_threads: typing.SupportsInt | typing.SupportsIndex) -> int:
    """How many pixels of a float32 / float64 frame (2-D, C-contiguous) are NaN or infinite where mask (uint8, the frame's shape, or None) is 0."""

def decode_bslz4(payload: collections.abc.Buffer, offset: typing.SupportsInt | typing.SupportsIndex, n_elements: typing.SupportsInt | typing.SupportsIndex, elem_size: typing.SupportsInt | typing.SupportsIndex, block_elements: typing.SupportsInt | typing.SupportsIndex, out: object, n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """Expand n_elements bit-shuffled elements of elem_size bytes in framed LZ4 blocks of block_elements elements from payload[offset:] into out (uint8, n_elements * elem_size bytes)."""

def decode_framed_lz4(payload: collections.abc.Buffer, offset: typing.SupportsInt | typing.SupportsIndex, total: typing.SupportsInt | typing.SupportsIndex, block_bytes: typing.SupportsInt | typing.SupportsIndex, out: object, n_threads: typing.SupportsInt | typing.SupportsIndex) -> int:
    """Decode total bytes of framed LZ4 blocks from payload[offset:] into out (uint8); returns the offset after the last block."""

def find_peaks(images: object, layout: RingLayout, level_values: object, min_snr: typing.SupportsFloat | typing.SupportsIndex, adc_threshold: typing.SupportsFloat | typing.SupportsIndex, min_pixels: typing.SupportsInt | typing.SupportsIndex, max_pixels: typing.SupportsInt | typing.SupportsIndex, local_bg_radius: typing.SupportsInt | typing.SupportsIndex, iterations: typing.SupportsInt | typing.SupportsIndex, min_radius_px: typing.SupportsFloat | typing.SupportsIndex, max_radius_px: typing.SupportsFloat | typing.SupportsIndex, n_threads: typing.SupportsInt | typing.SupportsIndex) -> dict:
    """peakfinder8-style peaks of float32 images (n, rows, cols), or of uint8 images whose level l has the value level_values[l] (float32, 256 entries; None for float32 images)."""

def flicker_factor(seed: typing.SupportsInt | typing.SupportsIndex, rms: typing.SupportsFloat | typing.SupportsIndex) -> float:
    """Shot-to-shot fluence factor max(0, 1 + rms z) of image `seed`."""

def glcm_features(images: object, offsets: object, levels: typing.SupportsInt | typing.SupportsIndex, symmetric: bool, out: object, n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """Haralick features of uint8 images (n_images, rows, cols) with grey levels below `levels`, written into `out`, a float64 C-contiguous array (n_images, n_offsets, 6)."""

def kth_smallest_per_group(labels: object, values: object, n_groups: typing.SupportsInt | typing.SupportsIndex, k: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float64]:
    """out[g - 1]: the k-th smallest of values where labels == g (g = 1 .. n_groups; inf for fewer than k values). labels int32 (n,) in [0, n_groups], 0 for none; values float64 (n,), no NaN."""

def lookup_u8(table: object, image: object) -> numpy.typing.NDArray[numpy.uint8]:
    """table[image]: a new uint8 array of the image's shape. image: uint8 or uint16, 2-D, C-contiguous; table: uint8 of 256 or 65536 entries (one per possible value)."""

def mosaic_rotations(n_domains: typing.SupportsInt | typing.SupportsIndex, spread_rad: typing.SupportsFloat | typing.SupportsIndex, distribution: typing.SupportsInt | typing.SupportsIndex, seed: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float64]:
    """Lab-frame rotation matrices (n, 3, 3) of the mosaic domains (distribution: 0 tophat, 1 gauss)."""

def poisson(expected: object, scale: typing.SupportsFloat | typing.SupportsIndex, seed: typing.SupportsInt | typing.SupportsIndex, row0: typing.SupportsInt | typing.SupportsIndex, col0: typing.SupportsInt | typing.SupportsIndex, mask: object, n_threads: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float32]:
    """Poisson deviates of scale * expected (float32 rows x cols, finite, >= 0), 0 where masked (uint8 mask)."""

def render_background(rows: typing.SupportsInt | typing.SupportsIndex, cols: typing.SupportsInt | typing.SupportsIndex, pixel_size_mm: typing.SupportsFloat | typing.SupportsIndex, origin_mm: object, fast_axis: object, slow_axis: object, normal: object, oversample: typing.SupportsInt | typing.SupportsIndex, source_directions: object, source_wavelengths_A: object, source_weights: object, fluence: typing.SupportsFloat | typing.SupportsIndex, polarization_fraction: typing.SupportsFloat | typing.SupportsIndex, polarization_axis: object, material_stol_per_A: collections.abc.Sequence[object], material_F: collections.abc.Sequence[object], material_incoherent: collections.abc.Sequence[object], material_molecules: collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex], n_threads: typing.SupportsInt | typing.SupportsIndex, samples: BackgroundSamples | None = None) -> numpy.typing.NDArray[numpy.float32]:
    """Expected amorphous-background photons per pixel (float32 rows x cols). Tables: float64 1-D, finite, >= 0, stol strictly increasing; samples: BackgroundSamples of this detector and beam geometry, or None; a bad argument raises ValueError naming it."""

def render_bragg(rows: typing.SupportsInt | typing.SupportsIndex, cols: typing.SupportsInt | typing.SupportsIndex, pixel_size_mm: typing.SupportsFloat | typing.SupportsIndex, origin_mm: object, fast_axis: object, slow_axis: object, normal: object, oversample: typing.SupportsInt | typing.SupportsIndex, source_directions: object, source_wavelengths_A: object, source_weights: object, fluence: typing.SupportsFloat | typing.SupportsIndex, polarization_fraction: typing.SupportsFloat | typing.SupportsIndex, polarization_axis: object, real_basis_A: object, ncells: object, shape: typing.SupportsInt | typing.SupportsIndex, domain_rotations: object, structure_factors: StructureFactorTable, method: str, n_threads: typing.SupportsInt | typing.SupportsIndex, directions: DirectionGrid | None = None) -> tuple:
    """Expected Bragg photons per pixel (float32 rows x cols) and renderer statistics. Arrays: float64 C-contiguous, never cast; a bad argument raises ValueError naming it."""

def ring_statistics(image: object, layout: RingLayout, min_snr: typing.SupportsFloat | typing.SupportsIndex, adc_threshold: typing.SupportsFloat | typing.SupportsIndex, iterations: typing.SupportsInt | typing.SupportsIndex, n_threads: typing.SupportsInt | typing.SupportsIndex) -> dict:
    """Sigma-clipped mean, sigma and threshold per ring of a float32 image (rows, cols)."""
def significance_map(images: object, block_px: typing.SupportsInt | typing.SupportsIndex, cell_px: typing.SupportsInt | typing.SupportsIndex, lower_share: typing.SupportsFloat | typing.SupportsIndex, mean_shift: typing.SupportsFloat | typing.SupportsIndex, std_factor: typing.SupportsFloat | typing.SupportsIndex, noise_floor: typing.SupportsFloat | typing.SupportsIndex, clip_low: typing.SupportsFloat | typing.SupportsIndex, clip_high: typing.SupportsFloat | typing.SupportsIndex, second: bool, n_threads: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float32]:
    """Local significance of the block maxima of uint8 images (n, rows, cols), C-contiguous: a new float32 array (n, rows / block_px, cols / block_px); with second, (n, 2, ...): the maxima, then each block's second-largest value. See diffranet.features.significance."""

