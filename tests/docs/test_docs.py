"""The docs cannot drift: every shell command shown in README.md and docs/*.md is run.

The convention (stated for writers in docs/index.md, "Commands in these docs"):

- Shell commands appear only in fenced ``console`` blocks. A command line starts with ``$ ``; a
  line ending in a backslash continues on the next line; every other line is sample output.
  Commands elsewhere (sh/bash fences, plain fences, indented code) are flagged, except on the
  pages listed in ``NOT_YET_CONVERTED``.
- Each console block runs on its own, as one bash script (``set -eo pipefail``), in a fresh
  temporary directory that holds a copy of ``examples/`` and the files the page wrote so far
  (see ``file``), with this repository's virtual environment first on PATH.
- The generated checks run at the ``quick`` budget (``PYTEST_ADDOPTS=--asm-profile=quick``)
  unless the block sets ``--asm-profile`` itself or its sample output mentions a profile (the
  run's header, a replay command): a block proves that its commands work and print what is
  shown; the budget's depth is the job of the conformance runs in ``.ci/run`` and ``tests/``.
- An HTML comment right above a fenced block tunes the check; directives are separated by ``;``
  (``skip`` takes the rest of the comment as its reason, so it comes last):

  ``<!-- docs-test: skip REASON -->``
      do not run this block (it installs packages, needs a server, or is illustrative);
  ``<!-- docs-test: exit N -->``
      the block must exit with status N (the failing command comes last), default 0;
  ``<!-- docs-test: output -->``
      every sample output line must appear in the real output, in order (numbers may differ,
      ``...`` within a line stands for any text, a line ``...`` for lines left out);
  ``<!-- docs-test: file PATH -->``
      above a block of any language: write its text to PATH for the page's later blocks; a
      PATH under ``examples/`` must hold exactly that text in the repository, so a page that
      shows an example's file cannot drift from it.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
VENV_BIN = Path(sys.executable).parent

FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
DIRECTIVE = re.compile(r"^\s*<!--\s*docs-test:(?P<body>.*?)-->\s*$")
SHELL_LANGUAGES = {"sh", "bash", "shell", "zsh", "shell-session", "shellsession"}
#: A line that looks like a shell command, outside a console block.
COMMAND_LIKE = re.compile(
    r"^\s*(\$ |(pip|pytest|python3?|tox|cd|export|git|asm-contract-compare)\s)"
)
#: Pages that still show commands outside console blocks (so they are not run yet). Remove a
#: page from this set once its commands follow the convention; every page does at present.
NOT_YET_CONVERTED: set[str] = set()
BLOCK_TIMEOUT_S = 600


@dataclasses.dataclass
class Block:
    doc: Path
    line: int  # 1-based line of the opening fence
    language: str
    text: str
    directives: dict[str, str]

    @property
    def label(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"


def parse_directives(body: str) -> dict[str, str]:
    """``exit 1; output`` -> {"exit": "1", "output": ""}; ``skip`` takes the rest as its reason."""
    found = {}
    rest = body.strip()
    while rest:
        if rest.startswith("skip"):
            found["skip"] = rest[4:].strip()
            break
        part, _, rest = rest.partition(";")
        name, _, value = part.strip().partition(" ")
        rest = rest.strip()
        if name not in {"exit", "output", "file"}:
            found["unknown"] = name
        found[name] = value.strip()
    return found


def blocks_of(doc: Path) -> list[Block]:
    lines = doc.read_text().splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        fence = opening["fence"]
        language = opening["info"].strip().split(" ")[0].lower()
        body: list[str] = []
        end = index + 1
        while end < len(lines) and not (
            lines[end].strip().startswith(fence) and lines[end].strip().strip(fence[0]) == ""
        ):
            body.append(lines[end][len(opening["indent"]) :])
            end += 1
        above = index - 1
        while above >= 0 and not lines[above].strip():
            above -= 1
        marker = DIRECTIVE.match(lines[above]) if above >= 0 else None
        directives = parse_directives(marker["body"]) if marker else {}
        blocks.append(Block(doc, index + 1, language, "\n".join(body) + "\n", directives))
        index = end + 1
    return blocks


def commands_and_output(block: Block) -> tuple[list[str], list[str]]:
    """The commands of a console block, and its sample output lines."""
    commands: list[str] = []
    output: list[str] = []
    continuing = False
    for line in block.text.splitlines():
        if continuing:
            commands[-1] += "\n" + line
        elif line.startswith("$ "):
            commands.append(line[2:])
        else:
            output.append(line)
            continue
        continuing = line.endswith("\\")
    return commands, output


ALL_BLOCKS = [block for doc in DOCS for block in blocks_of(doc)]
CONSOLE_BLOCKS = [block for block in ALL_BLOCKS if block.language == "console"]


def _indented_commands(doc: Path) -> list[int]:
    """Lines of indented (not fenced) code blocks that look like shell commands."""
    found, fenced, previous = [], False, ""
    for number, line in enumerate(doc.read_text().splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
        elif (
            not fenced
            and line.startswith("    ")
            and (not previous.strip() or previous.startswith("    "))
            and COMMAND_LIKE.match(line)
        ):
            found.append(number)
        previous = line
    return found


def _commands_outside_console_blocks() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for block in ALL_BLOCKS:
        if block.language in SHELL_LANGUAGES:
            found.setdefault(str(block.doc.relative_to(ROOT)), []).append(
                f"{block.label}: a ```{block.language} block"
            )
        elif block.language not in {"console", "python", "toml", "ini", "yaml", "json"} and any(
            COMMAND_LIKE.match(line) for line in block.text.splitlines()
        ):
            found.setdefault(str(block.doc.relative_to(ROOT)), []).append(
                f"{block.label}: commands in a ```{block.language or '(plain)'} block"
            )
    for doc in DOCS:
        for line in _indented_commands(doc):
            name = str(doc.relative_to(ROOT))
            found.setdefault(name, []).append(f"{name}:{line}: a command in an indented block")
    return found


def test_shell_commands_are_in_console_blocks() -> None:
    found = _commands_outside_console_blocks()
    problems = [
        item for doc, items in found.items() if doc not in NOT_YET_CONVERTED for item in items
    ]
    assert not problems, (
        "shell commands go in ```console blocks, one `$ ` line per command, so that "
        "tests/docs/test_docs.py runs them:\n  " + "\n  ".join(problems)
    )
    converted = sorted(NOT_YET_CONVERTED - set(found))
    assert not converted, (
        f"{converted} follow the convention now: remove them from NOT_YET_CONVERTED"
    )


def test_console_blocks_and_directives_are_well_formed() -> None:
    problems = []
    for block in ALL_BLOCKS:
        if block.language == "console" and not commands_and_output(block)[0]:
            problems.append(f"{block.label}: a console block without a `$ ` command line")
        if "unknown" in block.directives:
            problems.append(
                f"{block.label}: unknown docs-test directive {block.directives['unknown']!r}"
            )
        if "file" in block.directives and not block.directives["file"]:
            problems.append(f"{block.label}: `file` needs a path")
    assert not problems, "\n".join(problems)


def test_the_docs_show_commands() -> None:
    assert len(CONSOLE_BLOCKS) >= 10, [b.label for b in CONSOLE_BLOCKS]


def _normalise(line: str) -> str:
    """Compare lines without regard to numbers, spacing, or the length of separator runs."""
    line = re.sub(r"([=_-])\1{2,}", r"\1\1\1", " ".join(line.split()))
    return re.sub(r"\d+", "0", line)


def _check_output(shown: list[str], actual: str) -> list[str]:
    """Shown lines missing from ``actual``, in order; ``...`` in a line stands for any text."""
    real = [_normalise(line) for line in actual.splitlines()]
    position, missing = 0, []
    for line in shown:
        wanted = _normalise(line)
        if not wanted or wanted == "...":
            continue
        pattern = re.compile(".*".join(re.escape(part) for part in wanted.split("...")))
        for index in range(position, len(real)):
            if pattern.fullmatch(real[index]):
                position = index + 1
                break
        else:
            missing.append(line)
    return missing


def _environment() -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST_", "PYTHONPATH", "COV_CORE_"))
    }
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(VENV_BIN.parent)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["COLUMNS"] = "100"
    return env


def _prepare(block: Block, directory: Path) -> None:
    shutil.copytree(
        ROOT / "examples",
        directory / "examples",
        ignore=shutil.ignore_patterns(
            "__pycache__", ".hypothesis", ".pytest_cache", ".tox", "reports", "*.egg-info"
        ),
    )
    for earlier in ALL_BLOCKS:
        if earlier.doc != block.doc or earlier.line >= block.line:
            continue
        if "file" in earlier.directives:
            target = directory / earlier.directives["file"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(earlier.text)


@pytest.mark.parametrize("block", CONSOLE_BLOCKS, ids=[b.label for b in CONSOLE_BLOCKS])
def test_console_block_runs(block: Block, tmp_path: Path) -> None:
    if "skip" in block.directives:
        pytest.skip(block.directives["skip"] or "marked skip in the docs")
    commands, shown = commands_and_output(block)
    _prepare(block, tmp_path)
    script = "set -eo pipefail\n" + "\n".join(commands) + "\n"
    env = _environment()
    if "--asm-profile" not in script and not any("profile" in line for line in shown):
        env["PYTEST_ADDOPTS"] = "--asm-profile=quick"
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT_S,
        check=False,
    )
    output = done.stdout + done.stderr
    expected = int(block.directives.get("exit") or 0)
    assert done.returncode == expected, (
        f"{block.label}: exit status {done.returncode}, expected {expected}\n"
        f"$ {script}\n{output[-6000:]}"
    )
    if "output" in block.directives:
        missing = _check_output(shown, output)
        assert not missing, (
            f"{block.label}: the docs show output the command no longer prints:\n  "
            + "\n  ".join(missing)
            + f"\n--- real output (end) ---\n{output[-6000:]}"
        )


def test_relative_links_point_at_files() -> None:
    broken = []
    for doc in DOCS:
        text = doc.read_text()
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if re.match(r"^[a-z]+:", target):
                continue
            if not (doc.parent / target).exists():
                broken.append(f"{doc.relative_to(ROOT)}: {target}")
    assert not broken, "links to files that do not exist:\n  " + "\n  ".join(broken)


def test_files_shown_from_the_examples_match_them() -> None:
    drifted = []
    for block in ALL_BLOCKS:
        target = block.directives.get("file", "")
        if target.startswith("examples/") and (ROOT / target).read_text() != block.text:
            drifted.append(f"{block.label}: differs from {target}")
    assert not drifted, "\n".join(drifted)
