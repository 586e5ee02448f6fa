"""The architecture's rules, checked by tools rather than prose: import-linter's contracts
(pyproject.toml), ruff's lint and format, and two readability rules ruff has no check for."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SOURCES = sorted(p for folder in ("facegan", "bench", "tests") for p in (ROOT / folder).rglob("*.py"))


def run_tool(name, *args):
    return subprocess.run([str(BIN / name), *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_import_contracts_hold():
    res = run_tool("lint-imports", "--no-cache")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    assert "0 broken" in res.stdout


@pytest.mark.parametrize("args", [("check", "."), ("format", "--check", ".")])
def test_ruff_is_clean(args):
    res = run_tool("ruff", *args)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr


def dense_spots(tree: ast.AST) -> list[tuple[int, str]]:
    """Statements that are a conditional expression used for its side effect, and assignments that
    pack values into several attributes or items at once (self.a, self.b = x, y): each field
    deserves its own line. Unpacking a call's result (a, b = f()) is fine."""
    spots = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.IfExp):
            spots.append((node.lineno, "conditional expression as a statement"))
        packs = isinstance(node, ast.Assign) and isinstance(node.value, ast.Tuple)
        fields = [e for t in getattr(node, "targets", []) if isinstance(t, ast.Tuple) for e in t.elts]
        if packs and any(isinstance(e, ast.Attribute | ast.Subscript) for e in fields):
            spots.append((node.lineno, "tuple-packed assignment"))
    return spots


def test_the_dense_spots_rule_catches_both_forms():
    code = "x.a, x.b = 1, 2\nf() if c else g()\na, b = f()\nd[0], y = 1, 2\n"
    assert [line for line, _ in dense_spots(ast.parse(code))] == [1, 2, 4]


def test_no_dense_spots():
    found = [
        f"{path.relative_to(ROOT)}:{line}: {what}"
        for path in SOURCES
        for line, what in dense_spots(ast.parse(path.read_text()))
    ]
    assert not found, "\n".join(found)


MAX_FUNCTION_LINES = 80  # a function longer than this is doing more than one thing


def long_functions(tree: ast.AST, limit: int = MAX_FUNCTION_LINES) -> list[tuple[int, str, int]]:
    """(line, name, length) of every function or method longer than `limit` lines, decorators and
    docstring included."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            start = min([d.lineno for d in node.decorator_list] + [node.lineno])
            length = node.end_lineno - start + 1
            if length > limit:
                found.append((start, node.name, length))
    return found


def test_the_length_rule_counts_decorators_and_nested_functions():
    inner_body = "\n".join(f"        x{i} = {i}" for i in range(4))
    outer_body = "\n".join(f"    y{i} = {i}" for i in range(4))
    code = f"@d\ndef outer():\n    def inner():\n{inner_body}\n        pass\n{outer_body}\n"
    assert long_functions(ast.parse(code), limit=6) == [(1, "outer", 12)]  # inner has 6: not over


def test_no_function_in_facegan_is_longer_than_80_lines():
    found = [
        f"{path.relative_to(ROOT)}:{line}: {name} has {length} lines"
        for path in SOURCES
        if path.is_relative_to(ROOT / "facegan")
        for line, name, length in long_functions(ast.parse(path.read_text()))
    ]
    assert not found, "\n".join(found)
