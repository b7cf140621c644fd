"""The structure rules of docs/design.md, measured over ``src/bptt``.

    python tools/structure.py          # the report; exit 1 when a rule is broken

Rules: no module over 400 lines, no function over 60 lines, no cyclomatic complexity over 15
(radon's count), no import of another module's private name, and at most 10 ``isinstance`` checks
on concrete layer classes outside the module that defines the class (the rest of the package asks
the layer, through the ``Layer`` protocol). ``tests/test_structure.py`` holds the package to them.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path

from radon.complexity import cc_visit

SRC = Path(__file__).resolve().parents[1] / "src" / "bptt"
MAX_MODULE_LINES, MAX_FUNCTION_LINES, MAX_COMPLEXITY, MAX_ISINSTANCE = 400, 60, 15, 10
# The protocol and its abstract bases: asking "is this a layer?" or "does it carry a recurrent
# state?" is a question to the protocol, not a switch on concrete types.
LAYER_BASES = {"Layer", "Recurrent", "Elementwise", "Weighted"}


@dataclass
class Report:
    long_modules: list[tuple[str, int]] = field(default_factory=list)
    long_functions: list[tuple[str, int]] = field(default_factory=list)
    complex_functions: list[tuple[str, int]] = field(default_factory=list)
    private_imports: list[str] = field(default_factory=list)
    isinstance_checks: list[str] = field(default_factory=list)

    def broken(self) -> list[str]:
        return [
            name
            for name, items, limit in (
                ("modules over 400 lines", self.long_modules, 0),
                ("functions over 60 lines", self.long_functions, 0),
                ("functions of complexity over 15", self.complex_functions, 0),
                ("imports of private names", self.private_imports, 0),
                ("isinstance checks on layer classes elsewhere", self.isinstance_checks, MAX_ISINSTANCE),
            )
            if len(items) > limit
        ]


def _layer_classes(trees: dict[str, ast.Module]) -> dict[str, str]:
    """Every class deriving (transitively) from ``Layer``, with the module that defines it."""
    bases = {
        node.name: (module, [b.id for b in node.bases if isinstance(b, ast.Name)])
        for module, tree in trees.items()
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
    }
    found: dict[str, str] = {}
    changed = True
    while changed:
        changed = False
        for name, (module, parents) in bases.items():
            if (
                name not in found
                and name not in LAYER_BASES
                and any(p in LAYER_BASES or p in found for p in parents)
            ):
                found[name], changed = module, True
    return found


def measure(src: Path = SRC) -> Report:
    files = sorted(src.rglob("*.py"))
    texts = {str(f.relative_to(src.parent)): f.read_text() for f in files}
    trees = {name: ast.parse(text) for name, text in texts.items()}
    layers = _layer_classes(trees)
    modules = {f.stem for f in files} | {f.name for f in src.rglob("*") if f.is_dir()}
    report = Report()
    for module, text in texts.items():
        lines = text.count("\n")
        if lines > MAX_MODULE_LINES:
            report.long_modules.append((module, lines))
        for block in cc_visit(text):
            where = f"{module}:{block.lineno} {block.fullname}"
            if block.complexity > MAX_COMPLEXITY:
                report.complex_functions.append((where, block.complexity))
        for node in ast.walk(trees[module]):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    report.long_functions.append((f"{module}:{node.lineno} {node.name}", length))
            elif isinstance(node, ast.ImportFrom) and node.level > 0:
                for alias in node.names:
                    private = alias.name.startswith("_") and not alias.name.startswith("__")
                    if private and alias.name not in modules:  # a private module is fine to import
                        report.private_imports.append(f"{module}:{node.lineno} {alias.name}")
            elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "isinstance":
                kinds = node.args[1] if len(node.args) == 2 else None
                names = kinds.elts if isinstance(kinds, ast.Tuple) else [kinds]
                classes = [getattr(n, "id", None) for n in names]
                foreign = [c for c in classes if c in layers and layers[c] != module]
                if foreign:
                    report.isinstance_checks.append(f"{module}:{node.lineno} {', '.join(foreign)}")
    return report


def main() -> int:
    report = measure()
    for title, items in (
        ("modules over 400 lines", report.long_modules),
        ("functions over 60 lines", report.long_functions),
        ("functions of complexity over 15", report.complex_functions),
        ("imports of another module's private name", report.private_imports),
        ("isinstance checks on concrete layer classes outside their module", report.isinstance_checks),
    ):
        print(f"{title}: {len(items)}")
        for item in items:
            print(f"    {item}")
    broken = report.broken()
    print("all rules hold" if not broken else "broken: " + "; ".join(broken))
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
