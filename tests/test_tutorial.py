"""docs/tutorial.md and docs/doctor.md stay true: every command in them runs and prints what the page shows.

In a ```console block, a line starting with "$ " is a command and the lines after it are its
output. The shown lines must appear in the real output in order; a line "..." skips any number
of lines, and "…" inside a line matches any text (timings). docs/doctor.md's ```python blocks
run too, in order, in one namespace, from the repository's root (they name examples/ by path).
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from bptt.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _commands(text: str) -> list[tuple[str, list[str]]]:
    out: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```console\n(.*?)```", text, flags=re.S):
        for line in block.rstrip("\n").split("\n"):
            if line.startswith("$ "):
                out.append((line[2:], []))
            else:
                out[-1][1].append(line.rstrip())
    return out


def _shown_in(expected: list[str], actual: list[str]) -> bool:
    """Whether the expected lines appear in order ("..." skips lines, "…" matches any text)."""
    i = 0
    skipping = False
    for want in expected:
        if want == "...":
            skipping = True
            continue
        pattern = re.compile(".*".join(re.escape(part) for part in want.split("…")) + r"\Z")
        while i < len(actual) and not pattern.match(actual[i].rstrip()):
            if not skipping:
                return False
            i += 1
        if i == len(actual):
            return False
        i += 1
        skipping = False
    return True


def test_shown_in_can_fail() -> None:
    """The matcher rejects missing, reordered and altered lines."""
    assert _shown_in(["a", "...", "c …"], ["a", "b", "c 12 ms"])
    assert not _shown_in(["a", "c"], ["a", "b", "c"])
    assert not _shown_in(["b", "a"], ["a", "b"])
    assert not _shown_in(["a 1"], ["a 2"])


def _run_shown(command: str, expected: list[str], status_due: int = 0) -> None:
    """Run one `$ bptt ...` line: it exits with ``status_due`` and prints the lines shown under it."""
    argv = shlex.split(command)
    assert argv[0] == "bptt", command
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv[1:])
    assert status == status_due, f"{command}: exit {status}\n{out.getvalue()}\n{err.getvalue()}"
    actual = (out.getvalue() + err.getvalue()).splitlines()
    assert _shown_in(expected, actual), f"{command} printed:\n" + "\n".join(actual)


def test_tutorial_commands_print_what_the_page_shows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each `$ bptt ...` in the tutorial exits 0 and prints the lines shown under it."""
    monkeypatch.chdir(tmp_path)
    commands = _commands((DOCS / "tutorial.md").read_text())
    assert len(commands) >= 6
    for command, expected in commands:
        _run_shown(command, expected)


def test_doctor_chapter_commands_print_what_the_page_shows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each `$ bptt doctor ...` in docs/doctor.md prints the lines shown under it, and exits 0 where
    the page shows a clean bill of health ("healthy: ..."), 1 where it shows a mistake found."""
    monkeypatch.chdir(ROOT)
    commands = _commands((DOCS / "doctor.md").read_text())
    assert len(commands) >= 3
    for command, expected in commands:
        healthy = any(line.startswith("healthy:") for line in expected)
        _run_shown(command, expected, 0 if healthy else 1)


def test_doctor_chapter_python_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/doctor.md's ```python blocks run as written (their asserts hold)."""
    monkeypatch.chdir(ROOT)
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / "doctor.md").read_text(), flags=re.S)
    assert len(blocks) >= 2
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, "docs/doctor.md", "exec"), namespace)


@pytest.mark.parametrize("name", ["hidden", "pca", "gradnorm", "history"])
def test_tutorial_pictures_exist(name: str) -> None:
    """The pictures the tutorial shows are committed PNGs."""
    assert (DOCS / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
