"""The structure rules of docs/design.md hold across ``src/bptt`` (``tools/structure.py`` measures them)."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("structure", ROOT / "tools" / "structure.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["structure"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


structure = _tool()


def test_the_package_keeps_every_structure_rule() -> None:
    """No module over 400 lines, no function over 60, no complexity over 15, no private-name
    imports, and at most 10 isinstance checks on concrete layer classes outside their module."""
    report = structure.measure()
    assert report.broken() == [], report


@pytest.mark.parametrize(
    ("source", "field"),
    [
        ("x = 1\n" * 401, "long_modules"),
        ("def f():\n" + "    x = 1\n" * 60, "long_functions"),
        (
            "def f(a):\n" + "".join(f"    if a == {i}:\n        return {i}\n" for i in range(16)),
            "complex_functions",
        ),
        ("from .other import _hidden\n", "private_imports"),
    ],
)
def test_each_rule_can_fail(tmp_path: Path, source: str, field: str) -> None:
    """A package that breaks one rule is reported under that rule (the measure is not vacuous)."""
    pkg = tmp_path / "bptt"
    pkg.mkdir()
    (pkg / "bad.py").write_text(source)
    assert getattr(structure.measure(pkg), field), field


def test_isinstance_on_a_layer_class_elsewhere_is_counted(tmp_path: Path) -> None:
    """``isinstance(x, Dense)`` outside Dense's module counts; on the abstract protocol it does not."""
    pkg = tmp_path / "bptt"
    pkg.mkdir()
    (pkg / "layers.py").write_text("class Layer: ...\nclass Recurrent(Layer): ...\nclass Dense(Layer): ...\n")
    (pkg / "user.py").write_text(
        textwrap.dedent(
            """
            from .layers import Dense, Recurrent
            def f(x):
                return isinstance(x, Dense), isinstance(x, Recurrent)
            """
        )
    )
    assert structure.measure(pkg).isinstance_checks == ["bptt/user.py:4 Dense"]
