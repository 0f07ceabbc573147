"""What the simulator's parameter objects share: immutable, validated values.

Every parameter object (:class:`~diffranet.simulation.geometry.Detector`,
:class:`~diffranet.simulation.geometry.Beam`,
:class:`~diffranet.simulation.crystal.Crystal`, the backgrounds and the
detector responses) is a frozen dataclass checked once, in ``__post_init__``.
Setting an attribute raises :class:`dataclasses.FrozenInstanceError`; a
changed copy comes from :meth:`Params.with_` (or :func:`dataclasses.replace`),
which validates again and recomputes every derived value, so nothing can go
stale. Arrays held by a parameter object are read-only copies.
"""

from __future__ import annotations

import dataclasses
import importlib
import json

import numpy as np

__all__ = ["Params", "frozen_array", "component_to_dict", "component_from_dict"]


def frozen_array(values, dtype=float):
    """A read-only copy of ``values`` as an ndarray of ``dtype``."""
    arr = np.array(values, dtype=dtype)
    arr.flags.writeable = False
    return arr


class Params:
    """Mix-in of the frozen parameter dataclasses: ``with_``, equality and hashing by value.

    Subclasses define ``to_dict()`` (JSON-serialisable parameters); two objects
    are equal when they are of the same class and their ``to_dict()`` agree.
    """

    def _set(self, name, value):
        """Store a normalised or derived value during ``__post_init__``."""
        object.__setattr__(self, name, value)

    def with_(self, **changes):
        """A copy with ``changes`` applied, validated like a new object.

        Examples
        --------
        >>> from diffranet import Detector
        >>> near = Detector((8, 8), distance_mm=80.0).with_(distance_mm=40.0)
        >>> near.distance_mm, float(near.origin_mm[0])
        (40.0, 40.0)
        """
        return dataclasses.replace(self, **changes)

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self):
        return hash((type(self).__qualname__, json.dumps(self.to_dict(), sort_keys=True)))


def component_to_dict(component):
    """``{"class": ..., "params": to_dict()}`` of a parameter object (None stays None): the one
    serialiser of set-ups (simulator metadata, dataset presets)."""
    if component is None:
        return None
    cls = type(component)
    return {"class": f"{cls.__module__}.{cls.__qualname__}", "params": component.to_dict()}


def component_from_dict(spec):
    """The parameter object of :func:`component_to_dict` output; a class outside diffranet is refused."""
    if spec is None:
        return None
    if not isinstance(spec, dict) or not isinstance(spec.get("class"), str) or "params" not in spec:
        raise ValueError(f"a component must be {{'class': ..., 'params': ...}}, got {spec!r:.200}")
    module, _, name = spec["class"].rpartition(".")
    if not module.startswith("diffranet."):
        raise ValueError(f"metadata names a class outside diffranet: {spec['class']!r}")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"metadata names an unknown class {spec['class']!r}") from exc
    return cls.from_dict(spec["params"]) if hasattr(cls, "from_dict") else cls(**spec["params"])
