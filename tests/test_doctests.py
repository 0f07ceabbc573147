"""The examples in the package's docstrings run as written.

They are run from the installed package (``pip install .`` or an editable
install alike), one test per module, with the standard ``doctest`` rules
(``# doctest: +SKIP`` marks an example that needs data or hardware).
"""

import doctest
import importlib
import pkgutil

import pytest

import diffranet

# ``diffranet.__main__`` runs the command line when imported.
MODULES = sorted(m.name for m in pkgutil.walk_packages(diffranet.__path__, "diffranet.")
                 if not m.name.endswith("__main__")) + ["diffranet"]


def test_modules_found():
    assert {"diffranet.simulation.simulator", "diffranet.classes", "diffranet.io"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in doctest.DocTestFinder().find(module, name) if t.examples]
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed (output above)"
