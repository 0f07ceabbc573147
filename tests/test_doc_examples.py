"""The documentation's Python examples run as written.

Every ```python block of docs/*.md runs, the blocks of one page in order and in one namespace,
in a fresh working directory. A block that needs something the test suite does not have (a
generated dataset, a GPU, files of a real experiment) is preceded by a line
``<!-- skip-test: what it needs -->``. The README's example runs in tests/test_readme.py.
"""

import pathlib
import re
import signal

import pytest

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs"
BLOCK = re.compile(r"^(?P<marker>[ \t]*<!-- skip-test: (?P<reason>.*?) -->\n)?(?P<indent>[ \t]*)```python\n"
                   r"(?P<code>.*?)^(?P=indent)```", re.S | re.M)


def python_blocks(text):
    """(code, skip reason or None) of every python block, indentation removed."""
    blocks = []
    for match in BLOCK.finditer(text):
        indent = match["indent"]
        code = "".join(line[len(indent):] if line.startswith(indent) else line
                       for line in match["code"].splitlines(keepends=True))
        blocks.append((code, match["reason"]))
    return blocks


PAGES = sorted(DOCS.glob("*.md"))

#: A page's examples are small; one that waits for a service would hang the suite.
EXAMPLE_SECONDS = 300


def test_block_parser():
    text = "a\n```python\nx = 1\n```\n<!-- skip-test: needs data -->\n  ```python\n  y = 2\n  ```\n"
    assert python_blocks(text) == [("x = 1\n", None), ("y = 2\n", "needs data")]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_python_blocks_run(page, tmp_path, monkeypatch):
    blocks = python_blocks(page.read_text())
    if not blocks:
        pytest.skip("no python examples")
    runnable = [code for code, reason in blocks if reason is None]
    if not runnable:
        pytest.skip("every example needs data or hardware: " + "; ".join(reason for _, reason in blocks))
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": f"docs.{page.stem}"}

    def too_long(signum, frame):
        raise TimeoutError(f"{page.name}: an example ran for more than {EXAMPLE_SECONDS} s; "
                           "mark it <!-- skip-test: ... --> if it needs a service or long work")

    previous = signal.signal(signal.SIGALRM, too_long)
    signal.alarm(EXAMPLE_SECONDS)
    try:
        for code in runnable:
            exec(compile(code, str(page), "exec"), namespace)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
