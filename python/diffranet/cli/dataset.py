"""``diffranet dataset``: generate a dataset, or summarise one with ``--info``."""

from __future__ import annotations

import sys
from pathlib import Path

from .._allocator import keep_freed_memory
from ..dataset.generate import generate_dataset, split_sizes
from ..dataset.info import dataset_info, format_info, write_gallery

__all__ = ["run_dataset_command"]


def run_dataset_command(args):
    """Run the ``dataset`` command from parsed arguments (see ``diffranet dataset --help``)."""
    if args.out is None and args.info is None:
        raise ValueError("give either --out DIR (generate) or --info DIR [--out PICTURE] (summarise)")
    if args.info is not None:
        print(format_info(dataset_info(args.info)))
        gallery = write_gallery(args.info, Path(args.info) / "gallery.png" if args.out is None else args.out)
        print(f"gallery: {gallery}")
        return
    sizes = split_sizes(args.n_train, args.n_val, args.n_test)
    if not args.quiet:
        given = [f"--n-{s}" for s, n in zip(("train", "val", "test"), (args.n_train, args.n_val, args.n_test))
                 if n is not None]
        rule = "" if len(given) in (0, 3) else f" (unspecified sizes follow {given[0]} in the paper's proportions)"
        print(f"diffranet dataset: train {sizes['train']}, val {sizes['val']}, test {sizes['test']} images{rule}",
              file=sys.stderr)
    preset = args.preset
    if getattr(args, "detector", None) is not None:
        from ..inference.detector_files import load_detector

        preset = load_detector(args.detector).training_preset(preset)
    # this process collects every image into shards: freed buffers are reused, not faulted in anew
    keep_freed_memory()
    index = generate_dataset(args.out, preset=preset, n_train=sizes["train"], n_val=sizes["val"],
                             n_test=sizes["test"], seed=args.seed, workers=args.workers, scheduler=args.scheduler,
                             format=args.format, shard_size=args.shard_size, quiet=args.quiet)
    total = sum(entry["n_images"] for entry in index["splits"].values())
    print(f"diffranet dataset: {total} images in {args.out}")
