"""Public names imported on first use (PEP 562 module ``__getattr__``).

A package maps each public name to the submodule that defines it; the
submodule, and the libraries it needs (the compiled core, scikit-learn,
torch), load only when the name is first asked for, and the value is then
kept on the package.
"""

from __future__ import annotations

import importlib
import sys

__all__ = ["lazy_exports"]


def lazy_exports(package, public, names):
    """``(__getattr__, __dir__)`` for a package.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    public : dict of str to str
        Public name -> submodule (relative to the package, dotted) that defines it.
    names : list of str
        What ``dir(package)`` lists (its ``__all__``).
    """

    def __getattr__(name):
        module = public.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__():
        return names

    return __getattr__, __dir__
