"""Layers only import downward, and the packages do not import each other in a loop.

The floors are the table under "## Layers" in docs/architecture.md: the test reads that
table, so the documentation and the rule cannot drift apart. Every ``import`` statement of
every module counts, the ones inside functions included: an import that runs late is still
an import.
"""

import ast
import functools
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "python" / "diffranet"
ARCHITECTURE = ROOT / "docs" / "architecture.md"


def read_floors(markdown):
    """{name: floor} from the rows ``| floor | `name`, `name` ... |`` of the "## Layers" section.

    Names are relative to ``diffranet``; `` `diffranet` `` stands for the root package itself.
    """
    section = re.search(r"^## Layers\n(.*?)(?=^## |\Z)", markdown, re.S | re.M)
    if section is None:
        raise ValueError("no '## Layers' section")
    floors = {}
    for floor, names in re.findall(r"^\|\s*(\d+)\s*\|([^|\n]*)\|", section.group(1), re.M):
        for name in re.findall(r"`([\w.]+)`", names):
            if name in floors:
                raise ValueError(f"{name} is on two floors")
            floors[name] = int(floor)
    if not floors:
        raise ValueError("the '## Layers' section has no floor table")
    return floors


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
# the compiled core has no Python source but is imported like a module
KNOWN = set(MODULES) | {"diffranet._core"}


def imports(name, source, known=KNOWN):
    """(imported module, line, inside a function) for every import of a diffranet module in ``source``."""
    is_package = name in MODULES and MODULES[name].name == "__init__.py"
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend((alias.name, child.lineno, in_function) for alias in child.names
                             if alias.name.split(".")[0] == "diffranet")
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = name.split(".")[: len(name.split(".")) - child.level + (1 if is_package else 0)]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                if target.split(".")[0] == "diffranet":
                    for alias in child.names:
                        # ``from diffranet import io`` imports the module diffranet.io
                        sub = f"{target}.{alias.name}"
                        found.append((sub if sub in known else target, child.lineno, in_function))
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(ast.parse(source), False)
    return found


def floor_of(module, floors):
    """The floor of the longest table name that ``module`` is or lies inside, or None."""
    relative = module[len("diffranet."):] if module.startswith("diffranet.") else None
    if module == "diffranet":
        return floors.get("diffranet")
    best = None
    for name, floor in floors.items():
        if name != "diffranet" and (relative == name or relative.startswith(name + ".")):
            if best is None or len(name) > len(best[0]):
                best = (name, floor)
    return None if best is None else best[1]


def upward_imports(name, found, floors):
    """Messages for every import in ``found`` (:func:`imports` of module ``name``) of a module on a higher floor."""
    own = floor_of(name, floors)
    messages = []
    for target, line, in_function in found:
        floor = floor_of(target, floors)
        if floor is not None and floor > own:
            where = "inside a function" if in_function else "at module level"
            messages.append(f"{name}:{line} (floor {own}) imports {target} (floor {floor}) {where}")
    return messages


FLOORS = read_floors(ARCHITECTURE.read_text())


@functools.lru_cache(maxsize=None)
def module_imports(name):
    """:func:`imports` of the package's module ``name`` (parsed once per test run)."""
    return imports(name, MODULES[name].read_text())


class TestTheChecker:
    TABLE = "## Layers\n\n| floor | modules |\n| --- | --- |\n| 0 | `_low`, `diffranet` |\n| 1 | `high` |\n"

    def test_reads_the_table(self):
        assert read_floors(self.TABLE + "\n## Next\n| 5 | `other` |\n") == {"_low": 0, "diffranet": 0, "high": 1}
        with pytest.raises(ValueError, match="two floors"):
            read_floors(self.TABLE + "| 2 | `high` |\n")
        with pytest.raises(ValueError, match="Layers"):
            read_floors("# Architecture\n")

    def test_finds_an_upward_import_inside_a_function(self):
        floors = read_floors(self.TABLE)
        known = {"diffranet._low", "diffranet.high", "diffranet.high.part"}
        source = "from . import high\n\ndef f():\n    from .high.part import g\n    import diffranet.high\n"
        messages = upward_imports("diffranet._low", imports("diffranet._low", source, known), floors)
        assert len(messages) == 3 and "inside a function" in messages[1] and ":4 " in messages[1]
        below = imports("diffranet.high.part", "from .._low import x\nfrom . import part\n", known)
        assert upward_imports("diffranet.high.part", below, floors) == []

    def test_resolves_relative_imports_of_a_package(self):
        found = imports("diffranet.dataset", "from .presets import Preset\nfrom .. import _core\n")
        assert [target for target, _, _ in found] == ["diffranet.dataset.presets", "diffranet._core"]


def test_every_module_has_a_floor():
    assert [name for name in MODULES if floor_of(name, FLOORS) is None] == []


def test_no_layer_imports_a_higher_one():
    messages = [m for name in MODULES for m in upward_imports(name, module_imports(name), FLOORS)]
    assert messages == [], "\n".join(messages)


def _packages_graph():
    """{top-level unit: units it imports}, e.g. 'inference' -> {'models', 'detectors', ...}."""
    def unit(module):
        return module.split(".")[1] if "." in module else "diffranet"

    graph = {}
    for name in MODULES:
        targets = graph.setdefault(unit(name), set())
        targets.update(unit(t) for t, _, _ in module_imports(name) if unit(t) != unit(name))
    return graph


def find_loop(graph):
    """A list of nodes that import each other in a circle (first node repeated last), or None."""
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, path + [nxt])
                if found:
                    return found
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            loop = visit(start, [start])
            if loop:
                return loop
    return None


def test_find_loop():
    assert find_loop({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_loop({"cli": {"dataset"}, "dataset": {"inference"}, "inference": {"dataset"}}) == [
        "dataset", "inference", "dataset"]


def test_packages_do_not_import_each_other_in_a_loop():
    loop = find_loop(_packages_graph())
    assert loop is None, " -> ".join(loop)


def _in_import_block(text):
    """True for a line of an import block: an import, a comment or a blank line."""
    stripped = text.strip()
    return not stripped or stripped.startswith(("from ", "import ", "#"))


def test_function_local_imports_say_why():
    """An import inside a function is kept only to avoid loading a heavy or optional library; a comment says so."""
    silent = []
    for name, path in MODULES.items():
        lines = path.read_text().splitlines()
        for _, line, in_function in module_imports(name):
            if not in_function:
                continue
            above = line - 2  # index of the line above the import
            said = False
            while above >= 0 and _in_import_block(lines[above]):
                said = said or lines[above].lstrip().startswith("#")
                above -= 1
            if not said:
                silent.append(f"{name}:{line}")
    assert silent == [], "function-local imports without a comment saying why: " + ", ".join(silent)
