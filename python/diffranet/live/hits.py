"""The veto's product: hit frames written to HDF5 files that CrystFEL and DIALS read, and an event list.

A :class:`HitWriter` takes the frames whose verdict is a hit and stacks them
into HDF5 files, each readable three ways:

* **NeXus NXmx** (DIALS, XDS via Durin, ``diffranet classify``):
  ``/entry/data/data`` ``(n, rows, cols)``, the pixel mask at
  ``/entry/instrument/detector/pixel_mask`` (bit 0 set = do not use), and
  when the frames' geometry is known the beam
  (``/entry/instrument/beam/incident_wavelength``) and the detector as NXmx
  describes it: a ``det_z`` translation by the distance, one
  ``NXdetector_module`` whose fast and slow pixel directions run along -x and
  -y (McStas axes) from the corner of pixel (0, 0) placed so that the beam
  hits ``beam_center_x / _y``, and a sample with no goniometer (stills).
* **CXI** (CrystFEL, Cheetah tools): ``/entry_1/data_1/data`` and
  ``/entry_1/data_1/mask`` (links to the same datasets),
  ``/entry_1/instrument_1/detector_1/{distance, x_pixel_size,
  y_pixel_size}`` (m) and ``/entry_1/instrument_1/source_1/energy`` (J).
  Beside each file with a known geometry a CrystFEL geometry file of the same
  name (``.geom``) describes its layout (``dim0 = %``), mask and geometry.
* **The verdicts**: ``/entry/diffranet/verdict``, the JSON record of each
  frame, in event order.

All frames of a file share shape, dtype, mask, geometry and saturation; a
change of any of them (a new series) starts a new file, as do
``frames_per_file`` frames or ``file_seconds`` seconds since the file's first
frame. A file is written under a hidden temporary name and renamed when it is
complete (:mod:`diffranet._atomic`): a file under its final name is always
complete (a frame that could not be written, e.g. corrupt compressed pixels, keeps
its slot filled with zeros and its verdict says ``write_error``). The run's CrystFEL event list (``<run>.lst``, one
``/path/file.cxi //N`` line per hit) is rewritten atomically after each
completed file and lists only complete files. :meth:`HitWriter.close`
completes the open file, so a service stopped by SIGINT / SIGTERM loses no
hit; a killed process leaves only a hidden ``.part`` file.

Threads: :meth:`~HitWriter.add`, :meth:`~HitWriter.tick` and
:meth:`~HitWriter.close` are called by one thread (the record writer); the
HDF5 writing happens on the hit writer's own thread, behind a queue of at most
``max_queued`` frames and ``max_queued_bytes`` bytes of pixels (``add`` waits
while either is reached).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import json
import logging
import os
import queue
import socket
import threading
import time
from pathlib import Path

import numpy as np

from .._atomic import atomic_path, atomic_write
from .._validation import check_choice, check_int, check_positive
from .compression import CompressedArray, expanded
from .frames import json_line

__all__ = ["HitWriter", "COMPRESSIONS", "crystfel_geometry"]

#: HDF5 compression of the hit frames: Bitshuffle + LZ4 (as DECTRIS files; needs hdf5plugin), gzip, none.
COMPRESSIONS = ("bitshuffle", "gzip", "none")

#: Sensor material and thickness written for DIALS, which needs them for its parallax correction; the
#: stream does not say them: silicon, 0.45 mm (EIGER2 / PILATUS4 default sensors).
NOMINAL_SENSOR = ("Si", 0.45)

_HC_J_A = 1.98644586e-15  # h c in J * Angstrom
_MASK_BAD = 1  # NXmx pixel_mask bit 0
_FINALIZE = "finalize"
_STOP = "stop"

log = logging.getLogger("diffranet.live")


def _filters(compression):
    if compression == "gzip":
        return {"compression": "gzip", "compression_opts": 1, "shuffle": True}
    if compression == "bitshuffle":
        try:
            import hdf5plugin
        except ImportError as exc:
            raise ValueError("compression='bitshuffle' needs the hdf5plugin package; use 'gzip'") from exc
        return dict(hdf5plugin.Bitshuffle(cname="lz4"))
    return {}


def _held_bytes(data):
    """Bytes a frame's pixels take while queued (compressed payloads as they are)."""
    return len(data.payload) if isinstance(data, CompressedArray) else int(data.nbytes)


def _utc_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclasses.dataclass(frozen=True)
class _FileKey:
    """What every frame of one file shares."""

    shape: tuple
    dtype: str
    mask_digest: str
    geometry: object
    saturation: float


@dataclasses.dataclass
class _OpenFile:
    """A file the producer assigns frames to."""

    number: int
    key: _FileKey
    opened: float
    count: int = 0


@dataclasses.dataclass
class _Writing:
    """A file the writing thread has open (under its temporary name)."""

    number: int
    exits: contextlib.ExitStack
    file: object
    data: object
    geometry: object
    has_mask: bool
    records: list = dataclasses.field(default_factory=list)


def crystfel_geometry(shape, geometry, *, mask=True, data="/entry_1/data_1/data",
                      mask_data="/entry_1/data_1/mask"):
    """The text of a CrystFEL geometry file for a stack of frames of one flat detector normal to the beam.

    Parameters
    ----------
    shape : (rows, cols)
    geometry : FrameGeometry
        Pixel size, distance, wavelength; the beam centre (pixels from the
        corner of pixel (0, 0); the frame centre when unset).
    mask : bool
        Whether the file holds a mask at ``mask_data`` (bit 0 set = bad).
    data, mask_data : str
        HDF5 paths of the ``(n, rows, cols)`` frames and the mask.

    Returns
    -------
    str

    Examples
    --------
    >>> from diffranet.inference import FrameGeometry
    >>> text = crystfel_geometry((100, 200), FrameGeometry(0.075, 150.0, 1.0, (90.0, 40.0)), mask=False)
    >>> [line for line in text.splitlines() if line.startswith(("clen", "res", "p0/corner"))]
    ['clen = 0.15 m', 'res = 13333.333333   ; pixels per metre', 'p0/corner_x = 90.0', 'p0/corner_y = 40.0']
    """
    rows, cols = shape
    bx, by = geometry.center_px(shape)
    lines = [
        "; CrystFEL geometry of hit frames written by diffranet: one flat panel normal to the beam",
        f"wavelength = {geometry.wavelength_A:.6g} A",
        f"clen = {geometry.distance_mm * 1e-3:.6g} m",
        f"res = {1e3 / geometry.pixel_size_mm:.6f}   ; pixels per metre",
        "adu_per_photon = 1",
        "dim0 = %",
        "dim1 = ss",
        "dim2 = fs",
        f"data = {data}",
    ]
    if mask:
        lines += [f"mask0_data = {mask_data}", "mask0_goodbits = 0x0", f"mask0_badbits = {_MASK_BAD:#x}"]
    # fast and slow scan along -x and -y, as the NXmx module of the same file: the beam at (bx, by) pixels
    lines += ["p0/min_fs = 0", f"p0/max_fs = {cols - 1}", "p0/min_ss = 0", f"p0/max_ss = {rows - 1}",
              f"p0/corner_x = {bx}", f"p0/corner_y = {by}", "p0/fs = -x", "p0/ss = -y", ""]
    return "\n".join(lines)


class HitWriter:
    """Write hit frames to NXmx / CXI HDF5 files plus a CrystFEL event list, on a thread of its own.

    Parameters
    ----------
    directory : str or path
        Where the files go (created if missing).
    prefix : str, default "hits"
        Start of the file names: ``<prefix>-<UTC time>-<host>-<pid>-<NNNNN>.cxi``
        (unique per process, so several services can share a directory),
        the event list ``<prefix>-<UTC time>-<host>-<pid>.lst``.
    frames_per_file : int, default 1000
    file_seconds : float, default 60.0
        A file is completed at most this long after its first frame (checked
        by :meth:`tick`), so that hits reach the disk while a run goes on.
    compression : {"bitshuffle", "gzip", "none"}, default "bitshuffle"
    max_queued : int, default 64
        Most frames waiting for the writing thread.
    max_queued_bytes : int, default 512 MiB
        Most bytes of pixels (as held: compressed or not) waiting for it; a
        single larger frame is still taken, alone.
    """

    def __init__(self, directory, *, prefix="hits", frames_per_file=1000, file_seconds=60.0,
                 compression="bitshuffle", max_queued=64, max_queued_bytes=512 << 20):
        self.directory = Path(directory)
        self.frames_per_file = check_int("frames_per_file", frames_per_file, minimum=1)
        self.file_seconds = check_positive("file_seconds", file_seconds)
        self.compression = check_choice("compression", compression, COMPRESSIONS)
        self._filters = _filters(self.compression)
        if not isinstance(prefix, str) or not prefix or os.sep in prefix or prefix.startswith("."):
            raise ValueError(f"prefix must be a plain file-name start, got {prefix!r}")
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S")
        self.run_name = f"{prefix}-{stamp}-{socket.gethostname()}-{os.getpid()}"
        self.event_list = (self.directory / f"{self.run_name}.lst").resolve()
        self.max_queued = check_int("max_queued", max_queued, minimum=1)
        self.max_queued_bytes = check_int("max_queued_bytes", max_queued_bytes, minimum=1)
        self._queue = queue.SimpleQueue()
        self._room = threading.Condition()
        self._queued = [0, 0]  # frames, bytes waiting for the writing thread
        self._current = None
        self._next_number = 0
        self._digests = {}  # id(mask) -> (mask, digest); the mask kept so that its id stays its own
        self._events = []  # event-list lines of the completed files
        self._thread = threading.Thread(target=self._run, name="diffranet-hit-writer", daemon=True)
        self.files_written = 0
        self.frames_written = 0
        self.failures = 0

    def path(self, number):
        """The final path of file ``number``."""
        return (self.directory / f"{self.run_name}-{number:05d}.cxi").resolve()

    def start(self):
        """Start the writing thread."""
        self._thread.start()
        return self

    # ------------------------------------------------------------------ producer side (one thread)

    def _mask_digest(self, mask):
        if mask is None:
            return None
        known = self._digests.get(id(mask))
        if known is not None and known[0] is mask:
            return known[1]
        pixels = np.ascontiguousarray(mask, dtype=bool)
        digest = hashlib.blake2b(np.packbits(pixels).tobytes() + repr(pixels.shape).encode(),
                                 digest_size=12).hexdigest()
        if len(self._digests) >= 8:
            self._digests.pop(next(iter(self._digests)))
        self._digests[id(mask)] = (mask, digest)
        return digest

    def _finish_current(self):
        if self._current is not None:
            self._queue.put((_FINALIZE, self._current.number))
            self._current = None

    def add(self, record, frame):
        """Queue a hit frame; return where it will be: ``{"hit_file": path, "hit_event": index}``.

        Parameters
        ----------
        record : dict
            Its verdict record (stored in the file as JSON).
        frame : Frame
            Its pixels (expanded on the writing thread if compressed), mask,
            geometry and saturation.
        """
        data = frame.data
        saturation = None if frame.saturation is None else float(frame.saturation)
        key = _FileKey(tuple(data.shape), np.dtype(data.dtype).str, self._mask_digest(frame.mask), frame.geometry,
                       saturation)
        now = time.monotonic()
        current = self._current
        if current is None or current.key != key or current.count >= self.frames_per_file:
            self._finish_current()
            self._current = current = _OpenFile(self._next_number, key, now)
            self._next_number += 1
        event = current.count
        current.count += 1
        size = _held_bytes(data)
        with self._room:
            self._room.wait_for(lambda: self._queued[0] == 0 or (
                self._queued[0] < self.max_queued and self._queued[1] + size <= self.max_queued_bytes))
            self._queued[0] += 1
            self._queued[1] += size
        self._queue.put((current.number, event, json_line(record), frame))
        return {"hit_file": str(self.path(current.number)), "hit_event": event}

    def tick(self):
        """Complete the open file if it is ``file_seconds`` old (call it regularly)."""
        if self._current is not None and time.monotonic() - self._current.opened >= self.file_seconds:
            self._finish_current()

    def close(self, timeout=120.0):
        """Complete the open file, write the event list, stop the thread."""
        if self._thread.ident is None:  # never started: nothing was written
            return
        self._finish_current()
        self._queue.put((_STOP, None))
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("hit writer: files still being written after %.0f s", timeout)

    # ------------------------------------------------------------------ writing thread

    def _run(self):
        writing = None  # the _Writing file
        while True:
            item = self._queue.get()
            kind = item[0]
            if kind == _STOP:
                break
            if kind == _FINALIZE:
                if writing is not None and writing.number == item[1]:
                    self._complete(writing)
                    writing = None
                continue
            number, event, record, frame = item
            if writing is not None and writing.number != number:  # never expected: a finalize comes first
                self._complete(writing)
                writing = None
            try:
                if writing is None:
                    writing = self._open(number, frame)
                self._append(writing, event, record, frame)
            except Exception as exc:  # disk full, a frame HDF5 cannot hold: log it, keep serving
                self.failures += 1
                log.warning("hit writer: frame %s of %s not written: %s", event, self.path(number).name, exc)
            with self._room:
                self._queued[0] -= 1
                self._queued[1] -= _held_bytes(frame.data)
                self._room.notify_all()
        if writing is not None:
            self._complete(writing)

    def _open(self, number, frame):
        import h5py

        with contextlib.ExitStack() as exits:
            tmp = exits.enter_context(atomic_path(self.path(number)))
            f = exits.enter_context(h5py.File(tmp, "x"))
            self._write_layout(f, frame)
            writing = _Writing(number, exits.pop_all(), f, f["/entry/data/data"], frame.geometry,
                               frame.mask is not None)
        return writing

    def _write_layout(self, f, frame):
        data = frame.data  # shape and dtype only: the pixels may still be compressed
        rows, cols = data.shape
        f.attrs["default"] = "entry"
        f.attrs["creator"] = "diffranet"
        f.create_dataset("cxi_version", data=150)
        entry = f.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        entry.attrs["default"] = "data"
        entry["definition"] = "NXmx"
        entry["start_time"] = _utc_now()
        group = entry.create_group("data")
        group.attrs["NX_class"] = "NXdata"
        group.attrs["signal"] = "data"
        dset = group.create_dataset("data", shape=(0, rows, cols), maxshape=(None, rows, cols),
                                    chunks=(1, rows, cols), dtype=data.dtype, **self._filters)
        instrument = entry.create_group("instrument")
        instrument.attrs["NX_class"] = "NXinstrument"
        detector = instrument.create_group("detector")
        detector.attrs["NX_class"] = "NXdetector"
        detector["description"] = "hit frames of a diffranet stream"
        cxi_data = f.create_group("entry_1/data_1")
        cxi_data["data"] = dset  # a hard link: one dataset, two names
        if frame.mask is not None:
            mask = np.where(np.asarray(frame.mask, dtype=bool), _MASK_BAD, 0).astype(np.uint32)
            detector.create_dataset("pixel_mask", data=mask, chunks=mask.shape, **self._filters)
            cxi_data["mask"] = detector["pixel_mask"]
        if frame.saturation is not None and data.dtype.kind in "ui":
            detector["saturation_value"] = int(frame.saturation) - 1  # the largest valid value
        sample = entry.create_group("sample")
        sample.attrs["NX_class"] = "NXsample"
        sample["depends_on"] = "."  # no goniometer: stills
        if frame.geometry is not None:
            self._write_geometry(f, detector, instrument, frame.geometry, data.shape)
        f.create_group("entry/diffranet").attrs["NX_class"] = "NXcollection"

    @staticmethod
    def _write_geometry(f, detector, instrument, geometry, shape):
        def field(group, name, value, units, **attrs):
            dset = group.create_dataset(name, data=value)
            dset.attrs["units"] = units
            for key, attr in attrs.items():
                dset.attrs[key] = attr
            return dset

        bx, by = geometry.center_px(shape)
        pixel_m = geometry.pixel_size_mm * 1e-3
        beam = instrument.create_group("beam")
        beam.attrs["NX_class"] = "NXbeam"
        field(beam, "incident_wavelength", geometry.wavelength_A, "angstrom")
        field(detector, "x_pixel_size", pixel_m, "m")
        field(detector, "y_pixel_size", pixel_m, "m")
        field(detector, "detector_distance", geometry.distance_mm * 1e-3, "m")
        field(detector, "distance", geometry.distance_mm * 1e-3, "m")
        field(detector, "beam_center_x", bx, "pixels")
        field(detector, "beam_center_y", by, "pixels")
        detector["sensor_material"] = NOMINAL_SENSOR[0]
        field(detector, "sensor_thickness", NOMINAL_SENSOR[1], "mm")
        transformations = detector.create_group("transformations")
        transformations.attrs["NX_class"] = "NXtransformations"
        det_z = field(transformations, "det_z", geometry.distance_mm, "mm", transformation_type="translation",
                      vector=[0.0, 0.0, 1.0], depends_on=".")
        detector["depends_on"] = det_z.name
        module = detector.create_group("module")
        module.attrs["NX_class"] = "NXdetector_module"
        module["data_origin"] = np.array([0, 0], dtype=np.int64)
        module["data_size"] = np.array(shape, dtype=np.int64)
        offset = field(module, "module_offset", 0.0, "mm", transformation_type="translation",
                       vector=[1.0, 0.0, 0.0], depends_on=det_z.name,
                       offset=[bx * geometry.pixel_size_mm, by * geometry.pixel_size_mm, 0.0], offset_units="mm")
        for name, vector in (("fast_pixel_direction", [-1.0, 0.0, 0.0]), ("slow_pixel_direction", [0.0, -1.0, 0.0])):
            field(module, name, geometry.pixel_size_mm, "mm", transformation_type="translation", vector=vector,
                  depends_on=offset.name, offset=[0.0, 0.0, 0.0])
        detector_1 = f.create_group("entry_1/instrument_1/detector_1")
        field(detector_1, "distance", geometry.distance_mm * 1e-3, "m")
        field(detector_1, "x_pixel_size", pixel_m, "m")
        field(detector_1, "y_pixel_size", pixel_m, "m")
        source_1 = f.create_group("entry_1/instrument_1/source_1")
        field(source_1, "energy", _HC_J_A / geometry.wavelength_A, "J")

    def _append(self, writing, event, record, frame):
        # every event number gets its slot, also after a failed frame, so that hit_event stays true
        dset = writing.data
        dset.resize(max(dset.shape[0], event + 1), axis=0)
        while len(writing.records) < event:
            writing.records.append(json.dumps({"write_error": "frame not written"}))
        data = frame.data
        try:
            if self.compression == "bitshuffle" and isinstance(data, CompressedArray) and data.algorithm == "bslz4":
                # a Stream V2 bslz4 payload is a chunk of the Bitshuffle HDF5 filter, byte for byte: stored as
                # received, never expanded here
                dset.id.write_direct_chunk((event, 0, 0), bytes(data.payload))
            else:
                dset[event] = expanded(data)
        except Exception as exc:  # the slot keeps zeros; its verdict says why
            writing.records.append(json.dumps({**json.loads(record), "write_error": str(exc)}))
            raise
        writing.records.append(record)

    def _complete(self, writing):
        import h5py

        path = self.path(writing.number)
        try:
            with writing.exits:  # closes the HDF5 file, then flushes and renames it: it appears complete
                f = writing.file
                f["entry/end_time"] = _utc_now()
                f.create_dataset("entry/diffranet/verdict", data=writing.records, dtype=h5py.string_dtype())
                shape, n_frames = writing.data.shape[1:], writing.data.shape[0]
        except Exception as exc:  # the temporary file is removed
            self.failures += 1
            log.warning("hit writer: %s not completed: %s", path.name, exc)
            return
        self.files_written += 1
        self.frames_written += n_frames
        self._events += [f"{path} //{event}\n" for event in range(n_frames)]
        try:
            if writing.geometry is not None:
                with atomic_write(path.with_suffix(".geom"), "w", encoding="utf-8") as fh:
                    fh.write(crystfel_geometry(shape, writing.geometry, mask=writing.has_mask))
            with atomic_write(self.event_list, "w", encoding="utf-8") as fh:
                fh.writelines(self._events)
        except OSError as exc:  # the HDF5 file is there; the next completed file rewrites the list
            self.failures += 1
            log.warning("hit writer: event list or geometry of %s not written: %s", path.name, exc)
