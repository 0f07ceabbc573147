"""gemmi, imported when first used: classifying frames never needs it (it is in ``diffranet[dataset]``)."""

import importlib

__all__ = ["gemmi", "p1"]


class _Gemmi:
    """Stands for the ``gemmi`` module; the first attribute looked up imports it."""

    def __getattr__(self, name):
        try:
            module = importlib.import_module("gemmi")
        except ImportError as exc:
            raise ImportError("structure factors from files, atomic models and the built-in protein need "
                              "gemmi: pip install 'diffranet[dataset]'") from exc
        return getattr(module, name)


gemmi = _Gemmi()


def p1():
    """The space group P 1."""
    return gemmi.SpaceGroup("P 1")
