"""HDF5 through h5py: NeXus (``/entry/data/data``, NXdata signal), CXI and plain files.

``hdf5plugin`` is imported when available, which registers the Bitshuffle/LZ4
filters that Eiger and JUNGFRAU files (Dectris, Jungfraujoch) are written with.
"""

from __future__ import annotations

import math
import re
from contextlib import contextmanager
from itertools import chain
from pathlib import Path

import numpy as np

from .._validation import check_choice
from ._common import (
    DEFAULT_MAX_FRAME_PIXELS,
    LENGTH_TO_MM,
    WAVELENGTH_TO_A,
    ImageFormat,
    ImageFormatError,
    atomic_path,
    check_pixels,
    check_writable,
    count_stack,
    reading,
    select_frame,
    stack_frame,
)

NEXUS_DATA = "/entry/data/data"
CXI_DATA = "/entry_1/data_1/data"
NEXUS_MASK = "/entry/instrument/detector/pixel_mask"
CXI_MASK = "/entry_1/instrument_1/detector_1/mask"
_MASK_NAMES = ("pixel_mask", "mask")
_DTYPES = (
    np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64, np.float32, np.float64,
)
COMPRESSIONS = ("gzip", "lz4", "bitshuffle", "none")


def _h5py():
    import h5py

    try:
        import hdf5plugin  # noqa: F401  (registers the Bitshuffle/LZ4 HDF5 filters)
    except ImportError:
        pass
    return h5py


def _filters(compression):
    """h5py ``create_dataset`` keywords for one of ``COMPRESSIONS``."""
    check_choice("compression", compression, COMPRESSIONS)
    if compression == "gzip":
        return {"compression": "gzip", "compression_opts": 4, "shuffle": True}
    if compression == "none":
        return {}
    try:
        import hdf5plugin
    except ImportError as exc:
        raise ValueError(f"compression={compression!r} needs the hdf5plugin package (pip install hdf5plugin)") from exc
    if compression == "lz4":
        return dict(hdf5plugin.LZ4())
    return dict(hdf5plugin.Bitshuffle(cname="lz4"))


@contextmanager
def _open(path):
    """The file opened for reading, once no part of it points outside the file.

    External links, external raw storage and virtual datasets name other files
    (any file on the host, a FIFO) that reading would open; they are refused,
    with one exception: a DECTRIS master file's links of its frames
    (``/entry/data/data_NNNNNN`` to ``/entry/data/data`` of a regular file
    beside it, named without any directory), whose datasets are checked in
    turn when they are read (:func:`_eiger_parts`).
    """
    h5py = _h5py()
    with reading(path, "HDF5"), h5py.File(path, "r") as f:
        outside = []

        def visit_link(name):
            link = f.get(name, getlink=True)
            if isinstance(link, h5py.ExternalLink) and not _data_file_link(path, name, link):
                outside.append(f"/{name} is an external link to {link.filename}:{link.path}")

        def visit_object(name, obj):
            if isinstance(obj, h5py.Dataset):
                if obj.external:
                    outside.append(f"/{name} stores its data in external file(s) {[e[0] for e in obj.external]}")
                elif obj.is_virtual:
                    outside.append(f"/{name} is a virtual dataset over other files")

        f.visit_links(visit_link)
        f.visititems(visit_object)
        if outside:
            raise ImageFormatError(
                f"{path}: refers to data outside the file ({'; '.join(outside[:3])}); only self-contained HDF5 "
                "files are read (for a master file, read its data files)"
            )
        yield f, h5py


def _data_file_link(path, name, link):
    """Whether ``link`` (at ``name``) is a DECTRIS master file's link to the frames of a data file beside it."""
    target = str(link.filename)
    group, _, part = name.rpartition("/")
    if group != "entry/data" or not _EIGER_PART.fullmatch(part) or link.path != "/entry/data/data":
        return False
    if not target or target.startswith(".") or "/" in target or "\\" in target:
        return False
    sibling = Path(path).parent / target
    return not sibling.exists() or sibling.is_file()  # a missing file is named when its frames are read


def _text(value):
    """An HDF5 attribute (bytes, str or 1-element array) as str."""
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.item()
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _is_image(obj, h5py):
    return isinstance(obj, h5py.Dataset) and obj.dtype.kind in "uif" and obj.ndim in (2, 3)


def _nxdata_signals(f, h5py):
    """Datasets named by the ``signal`` attribute of NXdata groups."""
    found = []

    def visit(name, obj):
        if isinstance(obj, h5py.Group) and _text(obj.attrs.get("NX_class", "")) == "NXdata":
            signal = obj.attrs.get("signal")
            if signal is not None and _is_image(obj.get(_text(signal)), h5py):
                found.append(f"/{name}/{_text(signal)}")

    f.visititems(visit)
    return found


def _image_datasets(f, h5py):
    """All 2-D/3-D numeric datasets that are not masks."""
    found = []

    def visit(name, obj):
        if _is_image(obj, h5py) and name.rsplit("/", 1)[-1] not in _MASK_NAMES:
            found.append(f"/{name}")

    f.visititems(visit)
    return found


#: A DECTRIS master file's image stack: /entry/data/data_000001, data_000002, ... (external links).
_EIGER_PART = re.compile(r"data_\d{6}")


def _eiger_parts(path, f, h5py):
    """``[(path in this file, dataset), ...]`` of a DECTRIS master file's stack, in order ([] for any other
    file; a linked dataset's own name is its path in its data file)."""
    group = f.get("/entry/data")
    if not isinstance(group, h5py.Group):
        return []
    parts = []
    for name in sorted(n for n in group.keys() if _EIGER_PART.fullmatch(n)):
        try:
            obj = group[name]  # an external link opens the data file here
        except KeyError:
            raise ImageFormatError(f"{path}: /entry/data/{name} links to a data file that is missing") from None
        if not _is_image(obj, h5py) or obj.ndim != 3:
            raise ImageFormatError(f"{path}: /entry/data/{name} is not a 3-D image stack")
        if obj.external or obj.is_virtual:  # the data file must hold its frames itself
            raise ImageFormatError(f"{path}: /entry/data/{name} refers to data outside its data file")
        parts.append((f"/entry/data/{name}", obj))
    if len({obj.shape[1:] for _, obj in parts}) > 1:
        raise ImageFormatError(f"{path}: the data files of /entry/data hold frames of different shapes")
    return parts


def _find_datasets(path, f, dataset, h5py):
    """The image stack as ``[(dataset, n_frames, path in this file), ...]``: a DECTRIS master file's data
    files in order, or the one dataset of :func:`_find_dataset`."""
    if dataset is None and not _is_image(f.get(NEXUS_DATA), h5py):
        parts = _eiger_parts(path, f, h5py)
        if parts:
            return [(part, count_stack(path, part, f"dataset {name!r}"), name) for name, part in parts]
    dset, n_frames = _find_dataset(path, f, dataset, h5py)
    return [(dset, n_frames, dset.name)]


def _find_dataset(path, f, dataset, h5py):
    """The image dataset: ``dataset`` if given, else NeXus, NXdata signal, CXI, the only one."""
    if dataset is not None:
        obj = f.get(dataset)
        if not isinstance(obj, h5py.Dataset):
            raise ImageFormatError(
                f"{path}: no dataset {dataset!r} in the file; image datasets found: "
                f"{_image_datasets(f, h5py) or 'none'}"
            )
    else:
        fixed = [name for name in (NEXUS_DATA,) if _is_image(f.get(name), h5py)]
        cxi = [CXI_DATA] if _is_image(f.get(CXI_DATA), h5py) else []
        preferred = fixed or _nxdata_signals(f, h5py)[:1] or cxi
        candidates = preferred or _image_datasets(f, h5py)
        if not candidates:
            raise ImageFormatError(f"{path}: no 2-D or 3-D numeric image dataset in the HDF5 file")
        if len(candidates) > 1:
            raise ImageFormatError(
                f"{path}: several image datasets {candidates}; pass dataset= to choose one"
            )
        obj = f[candidates[0]]
    return obj, count_stack(path, obj, f"dataset {obj.name!r}")


def _check_stored(path, dset):
    """Refuse a dataset that declares more data than it stores (frames never written).

    A file of a few bytes can declare a billion frames; reading them would give
    a billion fill-value frames. Every chunk (or, unchunked, every byte) a
    dataset declares must be in the file.
    """
    if dset.chunks is None:
        stored, declared, unit = dset.id.get_storage_size(), dset.size * dset.dtype.itemsize, "bytes"
    else:
        stored = dset.id.get_num_chunks()
        declared, unit = math.prod(-(-size // chunk) for size, chunk in zip(dset.shape, dset.chunks)), "chunks"
    if stored < declared:
        raise ImageFormatError(
            f"{path}: dataset {dset.name!r} of shape {dset.shape} stores {stored:,} of its {declared:,} {unit}; "
            "its frames are not all written"
        )


def _checked_stack(path, f, dataset, h5py, max_pixels):
    """``[(dataset, n_frames, path), ...]`` of the image stack, each part's size and storage checked."""
    stack = _find_datasets(path, f, dataset, h5py)
    for dset, _, _ in stack:
        check_pixels(f"{path}: dataset {dset.name!r}", dset.shape, max_pixels)
        _check_stored(path, dset)
    return stack


def count(path, dataset=None):
    """Number of frames of the image dataset (of every data file of a DECTRIS master file)."""
    with _open(path) as (f, h5py):
        return sum(n for _, n, _ in _find_datasets(path, f, dataset, h5py))


def read(path, frame=None, dataset=None, max_pixels=DEFAULT_MAX_FRAME_PIXELS):
    """One frame of the image dataset (its declared size checked against ``max_pixels`` first)."""
    with _open(path) as (f, h5py):
        stack = _checked_stack(path, f, dataset, h5py, max_pixels)
        index = select_frame(path, frame, sum(n for _, n, _ in stack))
        for dset, n_frames, _ in stack:
            if index < n_frames:
                return stack_frame(path, dset, index, max_pixels)
            index -= n_frames
        raise AssertionError("select_frame keeps the index within the stack")  # pragma: no cover


def frames(path, dataset=None, max_pixels=DEFAULT_MAX_FRAME_PIXELS):
    """Find and check the dataset now; then yield its frames one at a time from an open file."""
    with _open(path) as (f, h5py):
        parts = [(name, n_frames) for _, n_frames, name in _checked_stack(path, f, dataset, h5py, max_pixels)]

    def generate():
        with _open(path) as (f, _):
            for name, n_frames in parts:
                dset = f[name]
                for index in range(n_frames):
                    yield stack_frame(path, dset, index, max_pixels)

    return generate()


def mask(path, max_pixels=DEFAULT_MAX_FRAME_PIXELS):
    """The NeXus/CXI pixel mask as bool (nonzero = bad), or None."""
    with _open(path) as (f, h5py):
        names = [name for name in (NEXUS_MASK, CXI_MASK) if isinstance(f.get(name), h5py.Dataset)]
        if not names:
            found = []
            f.visititems(
                lambda name, obj: found.append(f"/{name}")
                if isinstance(obj, h5py.Dataset) and name.rsplit("/", 1)[-1] == "pixel_mask"
                else None
            )
            names = found
        if not names:
            return None
        if len(names) > 1:
            raise ImageFormatError(f"{path}: several pixel masks {names}; cannot tell which one applies")
        dset = f[names[0]]
        if dset.ndim != 2:
            raise ImageFormatError(f"{path}: pixel mask {names[0]!r} has shape {dset.shape}, expected 2-D")
        check_pixels(f"{path}: pixel mask {names[0]!r}", dset.shape, max_pixels)
        return dset[()] != 0


# (key, HDF5 paths tried in order, unit table, unit assumed when the dataset has no "units")
_GEOMETRY_FIELDS = (
    ("pixel_size_mm", ("/entry/instrument/detector/x_pixel_size", "/entry_1/instrument_1/detector_1/x_pixel_size"),
     LENGTH_TO_MM, "m"),
    ("distance_mm", ("/entry/instrument/detector/detector_distance", "/entry/instrument/detector/distance",
                     "/entry_1/instrument_1/detector_1/distance"), LENGTH_TO_MM, "m"),
    ("wavelength_A", ("/entry/instrument/beam/incident_wavelength", "/entry/instrument/monochromator/wavelength",
                      "/entry_1/instrument_1/source_1/wavelength"), WAVELENGTH_TO_A, "angstrom"),
)
_CXI_ENERGY = "/entry_1/instrument_1/source_1/energy"  # joules
# counts; at or above it a pixel is saturated (NXmx, then the DECTRIS master file's count cut-off)
_NEXUS_SATURATION = ("/entry/instrument/detector/saturation_value",
                     "/entry/instrument/detector/detectorSpecific/countrate_correction_count_cutoff")
_HC_J_A = 1.98644586e-15  # h c in J * Angstrom


def _scalar(f, name, h5py):
    obj = f.get(name)
    if not isinstance(obj, h5py.Dataset) or obj.dtype.kind not in "iuf" or obj.size < 1:
        return None
    value = float(obj[(0,) * obj.ndim])  # the first element only, whatever size the dataset claims
    return value if np.isfinite(value) and value > 0 else None


def geometry(path, max_pixels=DEFAULT_MAX_FRAME_PIXELS):
    """Pixel size, distance, wavelength, beam centre and saturation from NeXus (Dectris) or CXI metadata.

    NeXus: ``/entry/instrument/detector/{x_pixel_size, detector_distance,
    beam_center_x, beam_center_y}`` and ``/entry/instrument/beam/incident_wavelength``;
    CXI: ``/entry_1/instrument_1/detector_1/{x_pixel_size, distance}`` and the
    source ``energy`` (J); ``saturation`` (counts) from NeXus
    ``/entry/instrument/detector/saturation_value``. Values are converted from their ``units`` attribute
    (SI when absent); a value the file lacks is left out.
    """
    found = {}
    with _open(path) as (f, h5py):
        for key, names, table, default_unit in _GEOMETRY_FIELDS:
            for name in names:
                value = _scalar(f, name, h5py)
                if value is not None:
                    unit = _text(f[name].attrs.get("units", default_unit)).strip().lower()
                    if unit in table:
                        found[key] = value * table[unit]
                        break
        if "wavelength_A" not in found:
            energy = _scalar(f, _CXI_ENERGY, h5py)
            if energy is not None:
                found["wavelength_A"] = _HC_J_A / energy
        beam = [_scalar(f, f"/entry/instrument/detector/beam_center_{axis}", h5py) for axis in "xy"]
        if None not in beam:
            found["beam_center_px"] = tuple(beam)
        saturation = next((v for v in (_scalar(f, name, h5py) for name in _NEXUS_SATURATION) if v is not None), None)
        if saturation is not None:
            found["saturation"] = saturation
    return found


def _dataset_parts(dataset):
    if not isinstance(dataset, str) or not dataset.strip("/"):
        raise ValueError(f"dataset must be an HDF5 path such as {NEXUS_DATA!r}, got {dataset!r}")
    return [part for part in dataset.split("/") if part]


def _add_nexus_attributes(f, parts):
    """NXentry/NXdata classes and default/signal pointers along ``parts``."""
    if len(parts) >= 2:
        group = f["/" + "/".join(parts[:-1])]
        group.attrs["NX_class"] = "NXdata"
        group.attrs["signal"] = parts[-1]
    if len(parts) >= 3:
        entry = f["/" + parts[0]]
        entry.attrs["NX_class"] = "NXentry"
        entry.attrs["default"] = "/".join(parts[1:-1])
        f.attrs["default"] = parts[0]


def _write_mask(path, f, mask, shape, filters):
    mask = np.asarray(mask)
    if mask.dtype != bool or mask.shape != shape:
        raise ValueError(
            f"{path}: mask must be a bool array of the image shape {shape}, got dtype {mask.dtype}, shape {mask.shape}"
        )
    f.create_dataset(NEXUS_MASK, data=mask.astype(np.uint32), chunks=shape, **filters)
    f["/entry/instrument"].attrs["NX_class"] = "NXinstrument"
    f["/entry/instrument/detector"].attrs["NX_class"] = "NXdetector"


def _set_attributes(path, dset, metadata):
    for key, value in metadata.items():
        try:
            dset.attrs[key] = value
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: metadata {key}={value!r} cannot be stored as an HDF5 attribute") from exc


def _check_frame(path, frame, index, first):
    frame = check_writable(path, frame, "HDF5", _DTYPES)
    if frame.shape != first.shape or frame.dtype != first.dtype:
        raise ValueError(
            f"{path}: frame {index} has dtype {frame.dtype}, shape {frame.shape}; all frames must match "
            f"frame 0 (dtype {first.dtype}, shape {first.shape})"
        )
    return frame


def write_stack(path, frames, dataset=NEXUS_DATA, compression="gzip", mask=None, metadata=None, stack=True):
    """Write frames (array or iterable of 2-D arrays) chunked one frame per chunk.

    With ``stack=False`` the single frame is stored as a 2-D dataset.  For a
    stack the dataset is resizable and grows by one frame per iteration, so an
    iterator is never held in memory.
    """
    h5py = _h5py()
    filters = _filters(compression)
    parts = _dataset_parts(dataset)
    if isinstance(frames, np.ndarray) and frames.ndim != (3 if stack else 2):
        kind = "a 3-D (frames, rows, columns) stack" if stack else "a 2-D image"
        raise ValueError(f"{path}: HDF5 needs {kind}, got dtype {frames.dtype}, shape {frames.shape}")
    iterator = iter(frames) if stack else iter([frames])
    first = next(iterator, None)
    if first is None:
        raise ValueError(f"{path}: no frames to write")
    first = check_writable(path, first, "HDF5", _DTYPES)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        if stack:
            dset = f.create_dataset(
                dataset, shape=(0, *first.shape), maxshape=(None, *first.shape), chunks=(1, *first.shape),
                dtype=first.dtype, **filters,
            )
            for index, frame in enumerate(chain([first], iterator)):
                dset.resize(index + 1, axis=0)
                dset[index] = _check_frame(path, frame, index, first)
        else:
            dset = f.create_dataset(dataset, data=first, chunks=first.shape, **filters)
        _add_nexus_attributes(f, parts)
        _set_attributes(path, dset, metadata or {})
        if mask is not None:
            _write_mask(path, f, mask, first.shape, filters)


def write(path, image, compression=None, mask=None, metadata=None):
    """Write one 2-D image as ``/entry/data/data`` (gzip unless told otherwise)."""
    write_stack(
        path, image, NEXUS_DATA, "gzip" if compression is None else compression, mask, metadata, stack=False
    )


FORMAT = ImageFormat(
    name="HDF5", read=read, write=write, count=count, frames=frames, mask=mask,
    has_datasets=True, writes_mask=True, write_frames=write_stack, geometry=geometry,
)
