"""The README's two commands stay true: the test command is the one CI runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _bash_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def test_readme_test_command_is_what_ci_runs() -> None:
    """The second command block of the README appears verbatim in .ci/run."""
    blocks = _bash_blocks((ROOT / "README.md").read_text())
    assert len(blocks) >= 2
    assert "pytest" in blocks[1]
    assert blocks[1] in (ROOT / ".ci" / "run").read_text()


def test_readme_main_command_trains() -> None:
    """The first command block creates a venv, installs bptt and runs `bptt train`."""
    first = _bash_blocks((ROOT / "README.md").read_text())[0]
    assert first.startswith("python3 -m venv .venv")
    assert first.endswith("bptt train")


def test_readme_python_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ```python block in the README runs as written."""
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    assert len(blocks) >= 2
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
