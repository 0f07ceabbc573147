"""The disk cache of the default structure factors: one compressed ``.npz`` per (d_min, seed, version)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from ..._atomic import atomic_write
from ._gemmi import gemmi

#: Bump when the default model or its Fcalc changes, so old caches are not reused.
DEFAULT_PROTEIN_VERSION = 1


def cache_path(cache_dir, d_min_A, seed):
    """File of the cached default_protein for (d_min, seed, version)."""
    if cache_dir is None:
        cache_dir = os.environ.get("DIFFRANET_CACHE") or Path.home() / ".cache" / "diffranet"
    elif not isinstance(cache_dir, (str, os.PathLike)):
        raise ValueError(f"cache_dir must be a directory path or None, got {cache_dir!r}")
    name = f"default_protein-v{DEFAULT_PROTEIN_VERSION}-gemmi{gemmi.__version__}-d{d_min_A!r}A-seed{seed}.npz"
    return Path(cache_dir) / name


def cache_key(d_min_A, seed):
    return {"d_min_A": d_min_A, "seed": seed, "version": DEFAULT_PROTEIN_VERSION, "gemmi": gemmi.__version__}


def load_cache(path, key):
    """The cached table, or None if the file is missing, unreadable or for another key."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if any(data[name].item() != value for name, value in key.items()):
                return None
            table = data["table"]
            if table.dtype != np.float32 or table.ndim != 3:
                return None
            return table, tuple(int(v) for v in data["hkl_min"]), tuple(float(v) for v in data["cell"])
    except (OSError, ValueError, KeyError, EOFError):
        return None


def write_cache(path, key, sf):
    """Write atomically, so readers never see a partial file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as fh:
            np.savez_compressed(fh, table=sf.table, hkl_min=np.array(sf.hkl_min), cell=np.array(sf.cell), **key)
    except OSError as exc:
        warnings.warn(f"could not cache default structure factors in {path.parent}: {exc}", RuntimeWarning, stacklevel=3)


# ----------------------------------------------------------------------------
# public class
# ----------------------------------------------------------------------------


