"""What the documentation names exists: links, anchors, repository paths and command-line flags.

Over README.md and docs/*.md:

- a link ``[text](target)`` to a local file resolves (relative to the page) and its ``#anchor``
  is a heading of the target page, by GitHub's slug rule; http(s) links are not followed;
- a repository path in inline code or a code block (under benchmarks/, scripts/, docs/, tests/,
  python/diffranet/ or csrc/) exists;
- ``diffranet COMMAND ... --flag`` on one command line names a command of ``build_parser()`` and
  an option of that command;
- ``python scripts/X.py ... --flag`` (and benchmarks/, docs/scripts/): the script declares
  ``add_argument("--flag"``. Scripts are read as text, never imported: some need torch or data.

Pages are read as text; nothing they describe runs. Running the examples is test_doc_examples.py.
"""

import argparse
import pathlib
import re
import unicodedata
import urllib.parse

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))

FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})(.*)$")
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
# a code span ends on the same run of backticks and never crosses a blank line
CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)((?:(?!\n[ \t]*\n).)+?)(?<!`)\1(?!`)", re.S)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>\n]*>|[^\s()]+)(?:\s+\"[^\"]*\")?\s*\)")
REPO_PATH = re.compile(r"(?<![\w./-])(?:benchmarks|scripts|docs|tests|python/diffranet|csrc)"
                       r"/[^\s`'\"()\[\]{},;]*")
FLAG = re.compile(r"(?<![\w-])--[A-Za-z0-9][\w-]*")
DIFFRANET = re.compile(r"(?<![\w./-])(?<!install )diffranet(?=[ \t\n])")
SCRIPT = re.compile(r"(?<![\w./-])python3?[ \t]+((?:docs/scripts|scripts|benchmarks)/[\w./-]+\.py)(?![\w./-])")


def _line(text, offset, first=1):
    return first + text.count("\n", 0, offset)


# --- reading a page -------------------------------------------------------------------------------

def split_page(text):
    """(prose, blocks): prose is the page with fenced code blanked (line numbers kept);
    blocks are (first line of code, lines of code)."""
    prose, blocks, fence, block = [], [], None, None
    for number, line in enumerate(text.split("\n"), 1):
        match = FENCE.match(line)
        if fence is None and match:
            fence, block = match.group(1), (number + 1, [])
            prose.append("")
        elif fence is not None:
            if match and match.group(1).startswith(fence) and not match.group(2).strip():
                blocks.append(block)
                fence = None
            else:
                block[1].append(line)
            prose.append("")
        else:
            prose.append(line)
    return "\n".join(prose), blocks


def code_spans(prose):
    """(line, content) of every inline code span; content keeps its line breaks."""
    return [(_line(prose, m.start(2)), m.group(2)) for m in CODE_SPAN.finditer(prose)]


def _without_code_spans(prose):
    return CODE_SPAN.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), prose)


def links(prose):
    """(line, target) of every markdown link and image outside code."""
    prose = _without_code_spans(prose)
    return [(_line(prose, m.start()), m.group(1).strip("<>")) for m in LINK.finditer(prose)]


def slug(heading):
    """GitHub's anchor for a heading's text: markup dropped, lowercase, letters, digits, ``-`` and
    ``_`` kept, other punctuation removed, each space a hyphen."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)   # a link reads as its text
    text = re.sub(r"<[^>]+>", "", text).lower()
    return "".join("-" if c == " " else c for c in text
                   if c in " -_" or unicodedata.category(c)[0] in "LNM")


def anchors(text):
    """The anchors of a page's headings; a repeated slug gets -1, -2, ... as on GitHub."""
    seen = {}
    for line in split_page(text)[0].split("\n"):
        match = HEADING.match(line)
        if match:
            base = anchor = slug(match.group(2))
            while anchor in seen:
                seen[base] += 1
                anchor = f"{base}-{seen[base]}"
            seen[anchor] = 0
    return set(seen)


def repo_paths(snippet):
    """(offset, path) of repository paths in a code snippet; ``::test`` ids, ``:line`` and trailing
    punctuation removed; paths with a placeholder (``*``, ``<...>``, ``...``, an upper-case folder
    such as ``WORK/``) are left out."""
    found = []
    for match in REPO_PATH.finditer(snippet):
        path = match.group(0).split(":")[0].rstrip(".")
        parts = path.rstrip("/").split("/")
        if (any(c in path for c in "*<>$") or "..." in path
                or any(re.fullmatch(r"[A-Z][A-Z_0-9]+", p) for p in parts)):
            continue
        found.append((match.start(), path))
    return found


def command_lines(text):
    """(line, command) from code blocks (a trailing backslash continues a command) and from code
    spans; a command keeps its line breaks so a flag's line can be told."""
    prose, blocks = split_page(text)
    commands = []
    for first, lines in blocks:
        start = 0
        while start < len(lines):
            end = start
            while lines[end].rstrip().endswith("\\") and end + 1 < len(lines):
                end += 1
            commands.append((first + start, "\n".join(lines[start:end + 1])))
            start = end + 1
    return commands + code_spans(prose)


def segments(command):
    """(offset, text) of the parts of a command line: split at ``&&``, ``||``, a spaced ``|``, ``;``
    and a ``#`` comment, but not inside ``[...]``: in a usage line ``[A | B]`` and ``glcm|lbp`` mean 'or'."""
    parts, start, depth = [], 0, 0
    for match in re.finditer(r"\[|\]|&&|\|\||(?<=\s)\|(?=\s)|;|(?:(?<=\s)|^)#", command):
        token = match.group(0)
        if token in "[]":
            depth = max(0, depth + (1 if token == "[" else -1))
        elif depth == 0:
            parts.append((start, command[start:match.start()]))
            start = match.end()
    return parts + [(start, command[start:])]


# --- what the code offers -------------------------------------------------------------------------

def _subcommands(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices
    return {}


def diffranet_calls(command, parser):
    """(offset of the call, words after ``diffranet``, their parser or None, [(offset, flag)]) for
    each ``diffranet ...`` that passes a ``--flag``; None when a word names no command. A call whose
    command is a placeholder (``diffranet COMMAND --help``) is left out."""
    calls = []
    for base, part in segments(command):
        match = DIFFRANET.search(part)  # only the first: a later one is a value (``--preset diffranet``)
        flags = [(base + m.start(), m.group(0)) for m in FLAG.finditer(part, match.end())] if match else []
        if not flags:
            continue
        current, words, placeholder = parser, [], False
        for word in part[match.end():].split():
            if current is None or word.startswith(("-", "[")) or not _subcommands(current):
                break
            if re.fullmatch(r"[A-Z][A-Z_]*", word):
                placeholder = True
                break
            words.append(word)
            current = _subcommands(current).get(word)
        if not placeholder:
            calls.append((base + match.start(), words, current, flags))
    return calls


def script_calls(command):
    """(script, [(offset, flag)]) for each ``python scripts/X.py ...`` (or benchmarks/, docs/scripts/)."""
    calls = []
    for base, part in segments(command):
        for match in SCRIPT.finditer(part):
            calls.append((match.group(1), [(base + m.start(), m.group(0)) for m in FLAG.finditer(part, match.end())]))
    return calls


def declares(source, flag):
    """Whether a script's source has ``add_argument("--flag"`` (after an optional short option)."""
    pattern = r"add_argument\(\s*(?:[\"']-\w[\"']\s*,\s*)?[\"']" + re.escape(flag) + r"[\"']"
    return re.search(pattern, source) is not None


# --- the checks: each returns "page:line: what is wrong" ------------------------------------------

def _name(page):
    return page.relative_to(ROOT).as_posix() if page.is_relative_to(ROOT) else page.name


def check_links(page, text):
    problems = []
    for line, target in links(split_page(text)[0]):
        if re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", target):
            continue  # http(s), mailto: not followed
        path, _, anchor = target.partition("#")
        resolved = (page.parent / urllib.parse.unquote(path)).resolve() if path else page
        where = f"{_name(page)}:{line}: link {target}"
        if not resolved.is_relative_to(ROOT):
            problems.append(f"{where}: points outside the repository")
        elif path and not resolved.exists():
            problems.append(f"{where}: {path} does not exist")
        elif anchor and resolved.suffix == ".md":
            target_text = text if resolved == page else resolved.read_text()
            if anchor not in anchors(target_text):
                problems.append(f"{where}: no heading of {_name(resolved)} has the anchor #{anchor}")
        elif anchor and not re.fullmatch(r"L\d+(-L\d+)?", anchor):
            problems.append(f"{where}: #{anchor} is not a line anchor of a non-markdown file")
    return problems


def check_paths(page, text):
    prose, blocks = split_page(text)
    snippets = code_spans(prose) + [(first, "\n".join(lines)) for first, lines in blocks]
    return [f"{_name(page)}:{_line(snippet, offset, line)}: repository path {path} does not exist"
            for line, snippet in snippets for offset, path in repo_paths(snippet)
            if not (ROOT / path).exists()]


def check_commands(page, text, parser):
    problems = []
    for line, command in command_lines(text):
        for start, words, sub, flags in diffranet_calls(command, parser):
            named = " ".join(["diffranet"] + words)
            where = f"{_name(page)}:{_line(command, start, line)}: `{named}`"
            unknown = [(offset, flag) for offset, flag in flags if sub and flag not in sub._option_string_actions]
            if sub is None:
                problems.append(f"{where} is not a command (commands: {', '.join(_known(parser, words))})")
            elif unknown and _subcommands(sub):
                problems.append(f"{where} needs a command ({', '.join(_subcommands(sub))})")
            else:
                problems += [f"{_name(page)}:{_line(command, offset, line)}: `{named}` has no option {flag}"
                             for offset, flag in unknown]
    return problems


def _known(parser, words):
    """The commands offered where ``words`` first names none."""
    for word in words:
        if word not in _subcommands(parser):
            break
        parser = _subcommands(parser)[word]
    return _subcommands(parser)


def check_scripts(page, text):
    problems = []
    for line, command in command_lines(text):
        for script, flags in script_calls(command):
            source = ROOT / script
            if not source.is_file():
                problems.append(f"{_name(page)}:{line}: script {script} does not exist")
                continue
            code = source.read_text()
            problems += [f"{_name(page)}:{_line(command, offset, line)}: {script} declares no option {flag}"
                         for offset, flag in flags if not declares(code, flag)]
    return problems


@pytest.fixture(scope="module")
def parser():
    from diffranet.cli import build_parser

    return build_parser()


# --- the pages ------------------------------------------------------------------------------------

def _report(problems):
    return "\n" + "\n".join(problems)


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_links_and_anchors_resolve(page):
    problems = check_links(page, page.read_text())
    assert not problems, _report(problems)


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_repository_paths_exist(page):
    problems = check_paths(page, page.read_text())
    assert not problems, _report(problems)


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_commands_and_options_exist(page, parser):
    problems = check_commands(page, page.read_text(), parser)
    assert not problems, _report(problems)


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_script_options_exist(page):
    problems = check_scripts(page, page.read_text())
    assert not problems, _report(problems)


def test_the_pages_are_read(parser):
    """Each extractor finds plenty on the real pages: one that found nothing would pass every page."""
    found = {"links": 0, "anchors": 0, "paths": 0, "commands": 0, "scripts": 0}
    for page in PAGES:
        text = page.read_text()
        prose, blocks = split_page(text)
        found["links"] += len(links(prose))
        found["anchors"] += len(anchors(text))
        snippets = [s for _, s in code_spans(prose)] + ["\n".join(b) for _, b in blocks]
        found["paths"] += sum(len(repo_paths(s)) for s in snippets)
        for _, command in command_lines(text):
            found["commands"] += len(diffranet_calls(command, parser))
            found["scripts"] += len(script_calls(command))
    assert found["links"] >= 50 and found["anchors"] >= 100 and found["paths"] >= 30, found
    assert found["commands"] >= 50 and found["scripts"] >= 3, found


# --- the checker itself ---------------------------------------------------------------------------

@pytest.mark.parametrize("heading, expected", [
    ("1. Install on CPU or GPU", "1-install-on-cpu-or-gpu"),
    ("7. Evaluate: `diffranet evaluate`", "7-evaluate-diffranet-evaluate"),
    ("Search (`diffranet.search`)", "search-diffranetsearch"),
    ("Training regimes (`--preset regimes`)", "training-regimes---preset-regimes"),
    ("Spot figures: `n_peaks` and `d_min_A`", "spot-figures-n_peaks-and-d_min_a"),
    ("The `cpu` recipe on the paper's set alone (the model shipped before)",
     "the-cpu-recipe-on-the-papers-set-alone-the-model-shipped-before"),
    ("Full-scale reproduction (98.51% on the synthetic test set)",
     "full-scale-reproduction-9851-on-the-synthetic-test-set"),
    ("See [the guide](guide.md) **now**", "see-the-guide-now"),
    ("Ångström × 2", "ångström--2"),
])
def test_slug(heading, expected):
    assert slug(heading) == expected


def test_anchors_number_repeats_and_skip_code():
    text = "# Speed\n## Speed\n```bash\n# Speed\n```\n### Speed\n## Speed-1 \n"
    assert anchors(text) == {"speed", "speed-1", "speed-2", "speed-1-1"}


def test_extractors():
    text = ("See [a](a.md#x) and ![b](images/b.png \"t\"), not `[c](c.md)`.\n"
            "```bash\n[d](d.md) `tests/in_block.py`\n```\n"
            "Run `diffranet classify\n--model M` then `tests/x.py::test_y`, `tests/y.py:12`, `scripts/WORK/z.py`.\n")
    prose, blocks = split_page(text)
    assert links(prose) == [(1, "a.md#x"), (1, "images/b.png")]
    assert blocks == [(3, ["[d](d.md) `tests/in_block.py`"])]
    assert code_spans(prose) == [(1, "[c](c.md)"), (5, "diffranet classify\n--model M"), (6, "tests/x.py::test_y"),
                                 (6, "tests/y.py:12"), (6, "scripts/WORK/z.py")]
    assert [p for _, s in code_spans(prose) for _, p in repo_paths(s)] == ["tests/x.py", "tests/y.py"]
    assert repo_paths("ls docs/scripts/a.py, tests/ python/diffranet/_core*.so <DIR>/tests/b.py") == [
        (3, "docs/scripts/a.py"), (22, "tests/")]
    assert command_lines("```sh\na \\\n  --b\nc\n```\n") == [(2, "a \\\n  --b"), (4, "c")]


def test_segments_split_commands_but_not_alternatives():
    command = "diffranet dataset --out D|E [--workers N | --scheduler S] && diffranet x --y | jq # --z"
    assert [s.strip() for _, s in segments(command)] == [
        "diffranet dataset --out D|E [--workers N | --scheduler S]", "diffranet x --y", "jq", "--z"]


def test_calls(parser):
    command = "python -m diffranet search classic --data D [--resume]; diffranet COMMAND --help"
    assert [(words, flags) for _, words, _, flags in diffranet_calls(command, parser)] == [
        (["search", "classic"], [(35, "--data"), (45, "--resume")])]
    assert diffranet_calls("pip install diffranet --upgrade; import diffranet", parser) == []
    assert script_calls("python benchmarks/native_detectors.py default --cache DIR --split=val") == [
        ("benchmarks/native_detectors.py", [(46, "--cache"), (58, "--split")])]
    assert declares('p.add_argument("-w", "--work", default=1)', "--work")
    assert not declares('p.add_argument("--workers")', "--work")


def test_a_broken_page_fails_with_page_line_and_what(parser):
    page = ROOT / "docs" / "broken.md"
    text = "\n".join([
        "# Title",
        "[ok](guide.md#1-install-on-cpu-or-gpu) [same page](#title) [web](https://example.org/x.md)",
        "[gone](nowhere.md) [bad anchor](guide.md#no-such-heading) [out](../../etc/passwd)",
        "Tested in `tests/test_layers.py` and `tests/test_nothing.py::test_x`.",
        "```bash",
        "diffranet classify --model M --no-such-flag \\",
        "    --trust frames/",
        "diffranet nosuch --out X",
        "diffranet search --data D",
        "python scripts/make_default_model.py --work W --no-such-option",
        "python scripts/missing.py --x",
        "```",
    ])
    assert check_links(page, text) == [
        "docs/broken.md:3: link nowhere.md: nowhere.md does not exist",
        ("docs/broken.md:3: link guide.md#no-such-heading: "
         "no heading of docs/guide.md has the anchor #no-such-heading"),
        "docs/broken.md:3: link ../../etc/passwd: points outside the repository",
    ]
    assert check_paths(page, text) == ["docs/broken.md:4: repository path tests/test_nothing.py does not exist",
                                       "docs/broken.md:11: repository path scripts/missing.py does not exist"]
    problems = check_commands(page, text, parser)
    assert problems[0] == "docs/broken.md:6: `diffranet classify` has no option --no-such-flag"
    assert problems[1].startswith("docs/broken.md:8: `diffranet nosuch` is not a command (commands: demo, ")
    assert problems[2] == "docs/broken.md:9: `diffranet search` needs a command (classic, deepfreak)"
    assert len(problems) == 3
    assert check_scripts(page, text) == [
        "docs/broken.md:10: scripts/make_default_model.py declares no option --no-such-option",
        "docs/broken.md:11: script scripts/missing.py does not exist",
    ]
