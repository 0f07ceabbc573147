"""Compatibility name: the data loaders live in :mod:`diffranet.dataset.loader`."""

from .dataset.loader import IMAGE_EXTENSIONS, has_split, load_split

__all__ = ["IMAGE_EXTENSIONS", "has_split", "load_split"]
