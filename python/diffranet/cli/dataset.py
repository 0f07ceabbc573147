"""``diffranet dataset``: generate a dataset, or summarise one with ``--info``."""

from __future__ import annotations

from pathlib import Path

from ..dataset.generate import generate_dataset
from ..dataset.info import dataset_info, format_info, write_gallery

__all__ = ["run_dataset_command"]


def run_dataset_command(args):
    """Run the ``dataset`` command from parsed arguments (see ``diffranet dataset --help``)."""
    if (args.out is None) == (args.info is None):
        raise ValueError("give either --out DIR (generate) or --info DIR (summarise)")
    if args.info is not None:
        print(format_info(dataset_info(args.info)))
        gallery = write_gallery(args.info, Path(args.info) / "gallery.png")
        print(f"gallery: {gallery}")
        return
    preset = args.preset
    if getattr(args, "detector", None) is not None:
        from ..inference.detector_files import load_detector

        preset = load_detector(args.detector).training_preset(preset)
    index = generate_dataset(args.out, preset=preset, n_train=args.n_train, n_val=args.n_val,
                             n_test=args.n_test, seed=args.seed, workers=args.workers, scheduler=args.scheduler,
                             format=args.format, shard_size=args.shard_size, quiet=args.quiet)
    total = sum(entry["n_images"] for entry in index["splits"].values())
    print(f"diffranet dataset: {total} images in {args.out}")
