"""Export a generated dataset to the original DiffraNet layout: one image file per shot.

``<dest>/<split>/<k>/<split>-<index>.<ext>`` with ``k`` = label + 1 (1 blank ..
5 strong), as in the published DiffraNet archive; readable by
:func:`diffranet.dataset.loader.load_split`. Files are written atomically and existing
ones are kept, so an interrupted export resumes.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .._validation import check_choice
from ..io import write_image
from .shards import read_shard, shard_paths

__all__ = ["export_dataset", "EXPORT_FORMATS"]

#: Image formats of the folder layout.
EXPORT_FORMATS = ("pgm", "png")


def export_dataset(dataset_dir, dest, format="pgm", progress=False):
    """Write every image of a dataset directory as PGM or PNG in class folders.

    Parameters
    ----------
    dataset_dir : path-like
        A directory made by :func:`diffranet.dataset.generate_dataset`.
    dest : path-like
        Root of the folder layout (may be ``dataset_dir``).
    format : {"pgm", "png"}, default "pgm"
    progress : bool, default False
        Show a progress bar (on stderr).

    Returns
    -------
    int
        Number of files written (existing files are skipped).

    Raises
    ------
    FileNotFoundError
        If ``dataset_dir`` holds no shards.
    """
    from tqdm import tqdm

    format = check_choice("format", format, EXPORT_FORMATS)
    paths = shard_paths(dataset_dir)
    if not paths:
        raise FileNotFoundError(f"{dataset_dir}: no dataset shards (shards/*.h5)")
    dest = Path(dest)
    written = 0
    for path in tqdm(paths, unit="shard", desc=f"export {format}", disable=not progress, file=sys.stderr):
        shard = read_shard(path)
        split = shard["attrs"]["split"]
        for image, row in zip(shard["images"], shard["metadata"]):
            folder = dest / split / str(int(row["label"]) + 1)
            target = folder / f"{split}-{int(row['index']):06d}.{format}"
            if target.exists():
                continue
            folder.mkdir(parents=True, exist_ok=True)
            write_image(target, image)
            written += 1
    return written
