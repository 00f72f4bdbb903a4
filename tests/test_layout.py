"""The package's shape: the compile path never imports the learning side, the learning
side's modules and packages import each other in one direction, and every step the
Makefile runs is a command of its package (`python -m mlcc.learn.<package> STEP`)."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
MLCC = ROOT / "mlcc"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in MLCC.rglob("*.py")}


def _imports(path: Path) -> dict[str, bool]:
    """The mlcc modules `path` imports, each with whether it does so at module level."""
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    found: dict[str, bool] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        else:
            continue
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name.startswith("mlcc"):
                found[name] = found.get(name, False) or id(node) in top
    return found


IMPORTS = {name: _imports(path) for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_compile_path_never_imports_the_learning_side_at_module_level():
    offenders = [f"{m} -> {t}" for m, targets in IMPORTS.items() if not m.startswith("mlcc.learn")
                 for t, module_level in targets.items() if t.startswith("mlcc.learn") and module_level]
    assert offenders == []


def test_the_learning_side_has_no_import_circles_between_modules_or_packages():
    learn = {m: {t for t in targets if t.startswith("mlcc.learn") and t != m}
             for m, targets in IMPORTS.items() if m.startswith("mlcc.learn")}
    assert _cycles(learn) == []

    def package(name: str) -> str:
        return ".".join(name.split(".")[:3])
    packages: dict[str, set[str]] = {}
    for m, targets in learn.items():
        packages.setdefault(package(m), set()).update(
            package(t) for t in targets if package(t) not in (package(m), "mlcc.learn"))
    assert _cycles(packages) == []


def test_the_learning_side_never_imports_the_tests():
    for name, path in MODULES.items():
        assert not re.search(r"^\s*(from|import) (tests|conftest)\b|tests\.projects", path.read_text(), re.M), name


MAKE_STEPS = sorted(set(re.findall(r"-m (mlcc\.learn\.\w+) ([\w-]+)", (ROOT / "Makefile").read_text())))


@pytest.mark.parametrize("package, step", MAKE_STEPS)
def test_every_step_the_makefile_runs_is_a_command_of_its_package(package: str, step: str):
    main = importlib.import_module(f"{package}.__main__").main
    result = CliRunner().invoke(main, [step, "--help"])
    assert result.exit_code == 0, result.output
