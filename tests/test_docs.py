"""The Markdown docs: code fences that pair up, a README short enough to read, and no reference
to a file, test, module or make target that is not there.

Fast and self-contained (no pipeline, no TensorFlow). The files checked: every `*.md` in the
repository outside hidden folders (`.venv*`, `.git`, `.pytest_cache`) and `outputs/`.
"""
from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README_MAX_LINES = 300
_SKIPPED_DIRS = {"outputs", "node_modules", "__pycache__"}


def markdown_files(root: Path = REPO) -> list[Path]:
    """Every Markdown file of the repository, hidden folders and outputs/ left out."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIPPED_DIRS
                         and not d.endswith(".egg-info"))
        found += [Path(folder) / f for f in sorted(files) if f.endswith(".md")]
    return found


# ---- code fences ------------------------------------------------------------------------------
_FENCE = re.compile(r"^[ \t]*(`{3,})(.*)$")


def fence_errors(text: str) -> list[str]:
    """What is wrong with the text's ``` code fences, one message per problem (empty: fine).

    A fence line starts with three or more backticks after optional indentation. An opening
    fence may carry an info string (without backticks: GitHub would read the line as inline
    code); a closing fence has at least as many backticks as its opening one and nothing after
    them: text after a closing fence makes GitHub keep the block open, so every heading below
    renders as code."""
    errors = []
    opened: tuple[int, int] | None = None  # (line number, backtick count) of the open fence
    for number, line in enumerate(text.splitlines(), start=1):
        match = _FENCE.match(line)
        if not match:
            continue
        ticks, rest = len(match.group(1)), match.group(2)
        if opened is None:
            if "`" in rest:
                errors.append(f"line {number}: an opening fence's info string holds a backtick "
                              f"(GitHub reads it as inline code): {line.strip()!r}")
            opened = (number, ticks)
        elif ticks >= opened[1]:
            if rest.strip():
                errors.append(f"line {number}: text after the closing fence of the block opened "
                              f"at line {opened[0]}: {line.strip()!r}")
            opened = None
    if opened is not None:
        errors.append(f"line {opened[0]}: a code fence that is never closed")
    return errors


_BROKEN_SAMPLES = {
    "text after a closing fence (the old README's contract example)":
        "A label that collapsed stops the run:\n\n```\nerror: data contract broken\n"
        "``` `make expectations DATASET=<name>` drafts a suite\n\n## Settings\n",
    "never closed": "## Run\n\n```sh\nmake pipeline\n\n## Settings\n",
    "closing fence shorter than the opening one": "````md\n```\ninside\n```\n",
    "backtick in an opening fence's info string": "``` `make test` runs\ncode\n```\n",
}
_GOOD_SAMPLES = {
    "info string and bare close": "```sh\nmake pipeline\n```\n",
    "indented in a list item": "- item:\n\n  ```sh\n  curl ...\n  ```\n",
    "longer fence holding a shorter one": "````md\n```\ninside\n```\n````\n",
    "closing fence with trailing spaces": "```\nx\n```   \n",
    "inline code is no fence": "Run `make test` and ``a `b` c``.\n",
}


@pytest.mark.parametrize("name", sorted(_BROKEN_SAMPLES))
def test_fence_check_finds_broken_fences(name):
    assert fence_errors(_BROKEN_SAMPLES[name])


@pytest.mark.parametrize("name", sorted(_GOOD_SAMPLES))
def test_fence_check_accepts_good_fences(name):
    assert fence_errors(_GOOD_SAMPLES[name]) == []


def test_markdown_files_are_found():
    names = {p.relative_to(REPO).as_posix() for p in markdown_files()}
    assert "README.md" in names
    assert any(name.startswith("docs/") for name in names)
    assert not any(name.startswith((".venv", "outputs/")) for name in names)


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_code_fences_pair_up(path):
    assert fence_errors(path.read_text(encoding="utf-8")) == []


def test_readme_is_short():
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines (at most {README_MAX_LINES}): move details to docs/")


# ---- links and named paths --------------------------------------------------------------------
def prose(text: str) -> str:
    """The text without its fenced code blocks (their lines blanked, so numbers stay)."""
    out, inside = [], None
    for line in text.splitlines():
        match = _FENCE.match(line)
        if inside is None and match:
            inside = len(match.group(1))
            out.append("")
        elif inside is not None:
            if match and len(match.group(1)) >= inside:
                inside = None
            out.append("")
        else:
            out.append(line)
    return "\n".join(out)


_INLINE_CODE = re.compile(r"(`+)(.+?)\1")
_LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE)


def links(text: str) -> list[str]:
    """The targets of the text's Markdown links (inline and reference), code left out."""
    text = _INLINE_CODE.sub("", prose(text))
    return _LINK.findall(text) + _REFERENCE.findall(text)


def heading_anchors(text: str) -> set[str]:
    """GitHub's anchors for the text's headings: lower case, punctuation dropped, spaces to
    dashes, a repeated anchor numbered -1, -2, ..."""
    anchors: set[str] = set()
    for line in prose(text).splitlines():
        match = re.match(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        title = _INLINE_CODE.sub(lambda m: m.group(2), match.group(1))
        title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title).lower()
        slug = "".join(c for c in title if c in " -_" or unicodedata.category(c)[0] in "LNM")
        slug = slug.replace(" ", "-")
        anchor, n = slug, 0
        while anchor in anchors:
            n += 1
            anchor = f"{slug}-{n}"
        anchors.add(anchor)
    return anchors


def link_errors(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    errors = []
    for target in links(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # http:, mailto:, ...
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            errors.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in heading_anchors(
                linked.read_text(encoding="utf-8")):
            errors.append(f"{target}: no heading with that anchor in {linked.name}")
    return errors


def test_link_check_finds_a_broken_link(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A title\n\n## Spaces, `code` & more\n")
    page = tmp_path / "README.md"
    page.write_text("[ok](docs/a.md) [ok](docs/a.md#spaces-code--more) [web](https://x.org)\n"
                    "[gone](docs/b.md) [bad anchor](docs/a.md#nothing)\n"
                    "`[not a link](nowhere.md)`\n\n```\n[in code](nowhere.md)\n```\n")
    assert link_errors(page) == ["docs/b.md: no such file",
                                 "docs/a.md#nothing: no heading with that anchor in a.md"]


def _docs() -> list[Path]:
    return [p for p in markdown_files() if p.parent == REPO or p.parent == REPO / "docs"]


@pytest.mark.parametrize("path", _docs(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_relative_links_resolve(path):
    assert link_errors(path) == []


# Paths and dotted module names in inline code that name something in this repository.
_ROOTS = ("components", "pipeline", "tests", "data", "docs", "requirements", "scripts")
_PATH = re.compile(r"^(?:%s)(?:/[\w.\-]+)+/?(?:::[\w.\[\]\-]+)?$" % "|".join(_ROOTS))
_DOTTED = re.compile(r"^(?:components|pipeline)(?:\.\w+)+$")
_MAKE = re.compile(r"^make ([a-z][\w-]*)\b")


def _make_targets() -> set[str]:
    makefile = (REPO / "Makefile").read_text()
    return set(re.findall(r"^([a-z][\w-]*):", makefile, re.MULTILINE))


def _defines(path: Path, name: str) -> bool:
    """Whether the file defines `name` (a def, a class, a module-level assignment, or a name its
    module-level __getattr__ hands out)."""
    text = path.read_text(encoding="utf-8")
    if re.search(rf"^\s*(?:async\s+def|def|class)\s+{re.escape(name)}\b|^{re.escape(name)}\s*=",
                 text, re.MULTILINE):
        return True
    return bool(re.search(r"^def __getattr__\(", text, re.MULTILINE)) and f'"{name}"' in text


def named_path_errors(text: str, root: Path = REPO) -> list[str]:
    """Repository paths (`components/x.py`, `tests/a.py::test_b`), dotted modules
    (`components.x.y`, a trailing attribute allowed) and make targets (`make x`) named in inline
    code that do not exist. Names holding `<`, `*` or `…` are patterns, not paths."""
    errors = []
    targets = _make_targets()
    for _, code in _INLINE_CODE.findall(prose(text)):
        code = code.strip()
        make = _MAKE.match(code)
        if make and make.group(1) not in targets:
            errors.append(f"`{code}`: no make target {make.group(1)!r}")
        if any(c in code for c in "<*…{ "):
            continue
        if _PATH.match(code):
            file_part, _, function = code.partition("::")
            target = root / file_part
            if not target.exists():
                errors.append(f"`{code}`: no such file or folder")
            elif function and not all(_defines(target, name)
                                      for name in function.split("[")[0].split(".")):
                errors.append(f"`{code}`: {file_part} defines no {function!r}")
        elif _DOTTED.match(code):
            parts = code.split(".")
            # The module is the longest prefix that is a file or package; at most one name
            # (a function, a class) may follow it, and that file must define it.
            for n in range(len(parts), 0, -1):
                base = root.joinpath(*parts[:n])
                module = base.with_suffix(".py") if base.with_suffix(".py").exists() else (
                    base / "__init__.py" if base.is_dir() else None)
                if module is not None:
                    rest = parts[n:]
                    if len(rest) > 1 or (rest and not (module.exists()
                                                       and _defines(module, rest[0]))):
                        errors.append(f"`{code}`: {module.relative_to(root)} defines no "
                                      f"{'.'.join(rest)!r}")
                    break
            else:
                errors.append(f"`{code}`: no such module")
    return errors


def test_named_path_check_finds_missing_names():
    text = ("`components/train/model.py` `components/training.py` `make test` `make nothing` "
            "`components.train.model.build_model` `components.training.run_fn` "
            "`components.train.model.no_such_fn` `outputs/<dataset>/x` "
            "`tests/test_docs.py::test_readme_is_short` `tests/test_docs.py::test_gone` "
            "`pipeline/console/stage_summary.py::StageReporter.emit` "
            "`pipeline/console/stage_summary.py::StageReporter.gone`\n"
            "```\n`components/in_code_block.py`\n```\n")
    assert named_path_errors(text) == [
        "`components/training.py`: no such file or folder",
        "`make nothing`: no make target 'nothing'",
        "`components.training.run_fn`: components/__init__.py defines no 'training.run_fn'",
        "`components.train.model.no_such_fn`: components/train/model.py defines no 'no_such_fn'",
        "`tests/test_docs.py::test_gone`: tests/test_docs.py defines no 'test_gone'",
        "`pipeline/console/stage_summary.py::StageReporter.gone`: "
        "pipeline/console/stage_summary.py defines no 'StageReporter.gone'",
    ]


@pytest.mark.parametrize("path", _docs(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_named_paths_exist(path):
    assert named_path_errors(path.read_text(encoding="utf-8")) == []
