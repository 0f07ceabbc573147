"""Per-detector TOML files: a beamline's detector in a few lines.

A detector file describes one detector at one set-up::

    name = "pilatus6m"
    kind = "pixel_array"              # or "ccd"
    shape = [2527, 2463]              # rows, columns
    pixel_size_mm = 0.172
    distance_mm = 300.0
    wavelength_A = 1.0
    beam_center_px = [1231.5, 1263.5] # x (columns), y (rows); default the centre
    saturation = 1048575              # values at or above it are ignored
    module_shape = [195, 487]         # optional: module rows, columns ...
    gap_px = [17, 7]                  # ... and the dead rows, columns between them

The same file serves both ways of applying a model to a beamline:
:meth:`DetectorSpec.geometry` is the geometry of its frames for
:func:`~diffranet.inference.preprocess`, and
:func:`diffranet.dataset.training_preset` makes a dataset preset that renders
a training set on it.
Files for the paper's detector, a PILATUS 6M and an EIGER 16M ship with
diffranet and are found by name (:data:`SHIPPED`).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import numpy as np

from .._validation import check_choice, check_int, check_positive
from .masks import module_gap_mask
from .frame_geometry import FrameGeometry, _check_pair, _from_dict

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python < 3.11
    import tomli as tomllib

__all__ = ["DetectorSpec", "load_detector", "SHIPPED"]

_FOLDER = Path(__file__).parent

#: Names of the detector files shipped with diffranet.
SHIPPED = tuple(sorted(p.stem for p in _FOLDER.glob("*.toml")))

DETECTOR_KINDS = ("ccd", "pixel_array")


def _int_pair(name, value, minimum):
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value, value)
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{name} must be two integers, got {value!r}")
    return (check_int(f"{name}[0]", value[0], minimum=minimum), check_int(f"{name}[1]", value[1], minimum=minimum))


@dataclasses.dataclass(frozen=True)
class DetectorSpec:
    """A detector at one set-up, as a detector TOML file describes it.

    Parameters
    ----------
    name : str
    kind : {"ccd", "pixel_array"}
        Fiber-coupled CCD (the paper's detector response) or photon-counting
        pixel array (PILATUS, EIGER, JUNGFRAU).
    shape : tuple of int
        ``(rows, cols)``.
    pixel_size_mm, distance_mm, wavelength_A : float
    beam_center_px : tuple of float, optional
        ``(x, y)`` in pixels from the outer corner of pixel (0, 0); default
        the centre.
    saturation : float, optional
        Values at or above it are saturated or flagged, and ignored.
    module_shape : tuple of int, optional
        ``(rows, cols)`` of one module; with ``gap_px`` the dead pixels between
        modules.
    gap_px : tuple of int, default (0, 0)
        Dead rows and columns between modules.
    origin_px : tuple of int, default (0, 0)
        ``(row, col)`` of the first pixel in the whole detector, for a window
        of it (:meth:`cropped`): places the module gaps.
    """

    name: str
    kind: str
    shape: tuple
    pixel_size_mm: float
    distance_mm: float
    wavelength_A: float
    beam_center_px: tuple = None
    saturation: float = None
    module_shape: tuple = None
    gap_px: tuple = (0, 0)
    origin_px: tuple = (0, 0)

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "name", str(self.name))
        check_choice("kind", self.kind, DETECTOR_KINDS)
        set_(self, "shape", _int_pair("shape", self.shape, 1))
        if self.module_shape is not None:
            set_(self, "module_shape", _int_pair("module_shape", self.module_shape, 1))
        set_(self, "gap_px", _int_pair("gap_px", self.gap_px, 0))
        if not isinstance(self.origin_px, (tuple, list)) or len(self.origin_px) != 2:
            raise ValueError(f"origin_px must be (row, col), got {self.origin_px!r}")
        set_(self, "origin_px", (check_int("origin_px[0]", self.origin_px[0]),
                                 check_int("origin_px[1]", self.origin_px[1])))
        if self.saturation is not None:
            set_(self, "saturation", check_positive("saturation", self.saturation))
        if self.beam_center_px is not None:
            set_(self, "beam_center_px", _check_pair("beam_center_px", self.beam_center_px))
        self.geometry()  # validates pixel size, distance and wavelength

    def geometry(self):
        """The :class:`FrameGeometry` of this detector's frames."""
        return FrameGeometry(self.pixel_size_mm, self.distance_mm, self.wavelength_A,
                             self.beam_center_px if self.beam_center_px is not None
                             else (self.shape[1] / 2.0, self.shape[0] / 2.0))

    def gap_mask(self):
        """Bool mask of the pixels between modules (all False without ``module_shape``)."""
        if self.module_shape is None:
            return np.zeros(self.shape, dtype=bool)
        return module_gap_mask(self.shape, self.module_shape, self.gap_px, origin=self.origin_px)

    def cropped(self, shape, name=None):
        """The same detector cut to a ``shape`` window around the beam centre.

        The window keeps the module layout and the beam position of the full
        detector (pixels outside it are simply absent), so a small training
        set renders quickly for tests.
        """
        rows, cols = _int_pair("shape", shape, 1)
        bx, by = self.geometry().beam_center_px
        top, left = int(round(by - rows / 2.0)), int(round(bx - cols / 2.0))
        return dataclasses.replace(
            self, name=name or f"{self.name}-{rows}x{cols}", shape=(rows, cols), beam_center_px=(bx - left, by - top),
            origin_px=(self.origin_px[0] + top, self.origin_px[1] + left),
        )

    def to_dict(self):
        """JSON-serialisable parameters."""
        data = dataclasses.asdict(self)
        for key in ("shape", "beam_center_px", "module_shape", "gap_px", "origin_px"):
            if data[key] is not None:
                data[key] = list(data[key])
        return data

    @classmethod
    def from_dict(cls, data):
        """Rebuild from :meth:`to_dict` (or a parsed TOML file); unknown keys raise ValueError."""
        data = {k: tuple(v) if isinstance(v, list) else v for k, v in dict(data).items()}
        return _from_dict(cls, data)


def load_detector(name_or_path):
    """A :class:`DetectorSpec` from a shipped name (:data:`SHIPPED`) or a TOML file.

    Parameters
    ----------
    name_or_path : str or path-like
        ``"paper"``, ``"pilatus6m"``, ``"eiger16m"``, or a ``.toml`` file.

    Raises
    ------
    FileNotFoundError
        If neither a shipped name nor an existing file.
    ValueError
        If the file is not valid TOML or not a detector description.

    Examples
    --------
    >>> spec = load_detector("pilatus6m")
    >>> spec.shape, spec.kind
    ((2527, 2463), 'pixel_array')
    """
    text = os.fspath(name_or_path)
    path = _FOLDER / f"{text}.toml" if text in SHIPPED else Path(text)
    if not path.is_file():
        raise FileNotFoundError(2, f"No such detector file (shipped detectors: {', '.join(SHIPPED)})", str(path))
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"detector file {path}: not valid TOML ({exc})") from exc
    data.setdefault("name", path.stem)
    missing = [key for key in ("kind", "shape", "pixel_size_mm", "distance_mm", "wavelength_A") if key not in data]
    if missing:
        raise ValueError(f"detector file {path}: missing {missing}")
    try:
        return DetectorSpec.from_dict(data)
    except ValueError as exc:
        raise ValueError(f"detector file {path}: {exc}") from exc
