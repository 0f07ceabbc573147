"""The install commands of the README and the guide, and the declared dependency bounds, stay true."""

import importlib.metadata
import pathlib
import re
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
GUIDE = (ROOT / "docs" / "guide.md").read_text()

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def pip_installs(text):
    """Every `pip install ...` command of the shell blocks of a markdown text (what a user runs)."""
    blocks = "\n".join(re.findall(r"```bash\n(.*?)```", text, flags=re.S))
    return [c.strip() for c in re.findall(r"pip install ([^\n&|;}]+)", blocks)]


def test_readme_opens_with_the_demo_and_the_test_command():
    blocks = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
    assert "diffranet demo" in blocks[0] and 'pip install ".[dataset]"' in blocks[0]
    marked = re.search(r"<!-- test-command -->\s*```bash\n(.*?)```\s*<!-- /test-command -->", README, re.S)
    assert marked and marked.group(1).strip() == blocks[1].strip() and "pytest" in blocks[1]


@pytest.mark.parametrize("text", [README, GUIDE], ids=["README", "guide"])
def test_torch_is_only_ever_installed_as_the_cpu_build_or_from_a_cuda_index(text):
    for command in pip_installs(text):
        for spec in re.findall(r"\btorch(?:==[^\s\"']+)?", command):
            if "==" in spec:
                assert spec.endswith("+cpu"), command  # torch==X alone resolves to a CUDA build
            else:
                assert "--index-url" in command or "diffranet" in command or '".[' in command, command


@pytest.mark.parametrize("text", [README, GUIDE], ids=["README", "guide"])
def test_every_extra_named_exists(text):
    extras = set(PROJECT["optional-dependencies"])
    for named in re.findall(r"""["']?\.\[([a-z,]+)\]""", text):
        assert set(named.split(",")) <= extras, named


def _requirement_bounds():
    from packaging.requirements import Requirement

    requirements = [Requirement(r) for r in PROJECT["dependencies"]]
    for extra in PROJECT["optional-dependencies"].values():
        requirements += [Requirement(r) for r in extra if not r.startswith("diffranet")]
    return [r for r in requirements if r.marker is None or r.marker.evaluate()]


@pytest.mark.parametrize("requirement", _requirement_bounds(), ids=str)
def test_installed_versions_lie_within_the_declared_bounds(requirement):
    try:
        version = importlib.metadata.version(requirement.name)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"{requirement.name} is not installed (an extra)")
    assert requirement.specifier.contains(version, prereleases=True), f"{requirement.name} {version}"


def test_upper_bounds_on_what_we_rely_on_beyond_the_documented_api():
    bounded = {r.name.lower() for r in _requirement_bounds() if any(s.operator == "<" for s in r.specifier)}
    assert {"numpy", "scikit-learn", "opencv-python-headless", "onnxruntime", "skops"} <= bounded
