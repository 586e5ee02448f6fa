"""The architecture's rules, checked by tools rather than prose: import-linter's contracts
(pyproject.toml), ruff's lint and format, and two readability rules ruff has no check for."""

import ast
import re
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


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(tree: ast.AST, importer: str, modules: set[str]) -> set[str]:
    """The facegan modules a module imports, anywhere in it (a function's own import counts: it runs
    too). `from package import name` means the submodule when `name` is one, else the package."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the importer's package
                package = importer.split(".")[: -node.level] if importer in modules else []
                base = ".".join([*package, base] if base else package)
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return {name for name in found if name in modules} - {importer}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every group of modules that import each other in a circle (Tarjan's strongly connected
    components of more than one module)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_the_cycle_check_finds_a_circle_through_a_function_level_import():
    modules = {"p", "p.a", "p.b", "p.c"}
    trees = {
        "p.a": "from p import b\n",
        "p.b": "import p.c\n",
        "p.c": "def f():\n    from p.a import x\n",
        "p": "",
    }
    graph = {name: imported_modules(ast.parse(code), name, modules) for name, code in trees.items()}
    assert graph["p.a"] == {"p.b"} and graph["p.c"] == {"p.a"}
    assert import_cycles(graph) == [["p.a", "p.b", "p.c"]]
    assert import_cycles({**graph, "p.c": set()}) == []


def test_no_import_circles_in_facegan():
    """Modules that import each other, even through a function's own import, are one module in two
    files: none in facegan (import-linter's layers keep the packages apart; this keeps modules apart)."""
    paths = [p for p in SOURCES if p.is_relative_to(ROOT / "facegan")]
    modules = {module_name(p) for p in paths}
    graph = {module_name(p): imported_modules(ast.parse(p.read_text()), module_name(p), modules) for p in paths}
    assert import_cycles(graph) == []


# The packages are listed once per audience: the README's table (a newcomer), docs/architecture.md's
# (module by module), each package's docstring (its modules: tests/test_docs.py). pyproject.toml's
# import contracts are the rule; these tests keep the tables true to the contracts and the folders.
TOP = "top"  # the top-level modules (facegan/*.py)
BELOW = "everything below"


def packages_on_disk() -> set[str]:
    return {p.parent.name for p in (ROOT / "facegan").glob("*/__init__.py")}


def contracts() -> list[dict]:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def allowed_by_contracts() -> dict[str, set[str]]:
    """Each package's (and cli's) facegan imports that the contracts allow: the layers below it,
    less what a forbidden contract names, and the top-level modules."""
    (layers,) = [c for c in contracts() if c["type"] == "layers"]
    rows = [[name.strip().removeprefix("facegan.") for name in layer.split("|")] for layer in layers["layers"]]
    allowed = {}
    for i, row in enumerate(rows):
        below = {name for lower in rows[i + 1 :] for name in lower}
        for name in row:
            forbidden = {
                f.removeprefix("facegan.")
                for c in contracts()
                if c["type"] == "forbidden" and f"facegan.{name}" in c["source_modules"]
                for f in c["forbidden_modules"]
            }
            allowed[name] = (below - forbidden) | {TOP}
    return allowed


def table_rows(markdown: str) -> dict[str, str]:
    """{package: its "may import" cell} from a `| package | holds | may import |` table; a row
    naming two (`facegan/commands/`, `cli.py`) counts for both."""
    rows = {}
    lines = markdown.splitlines()
    start = lines.index("| package | holds | may import |")
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        first, _, may_import = (cell.strip() for cell in line.strip("|").split("|"))
        for token in re.findall(r"`([^`]+)`", first):
            name = token.removeprefix("facegan/").strip("/").removesuffix(".py")
            rows[name or TOP] = may_import
    return rows


def named_imports(cell: str, known: set[str]) -> set[str] | str:
    """The facegan packages a "may import" cell names (what follows a dash is commentary; words in
    parentheses explain), or BELOW."""
    cell = re.sub(r"\([^)]*\)", "", cell.split("—")[0]).replace("*", "")
    if cell.strip() == BELOW:
        return BELOW
    words = {word.strip() for word in cell.split(",")}
    if "no facegan package" in words:
        return set()
    return {word for word in words if word in known | {TOP}}


def test_the_package_tables_list_every_package_and_agree_with_the_contracts():
    allowed = allowed_by_contracts()
    known = packages_on_disk() | {"cli"}
    assert set(allowed) == known, "pyproject.toml's layers and facegan/'s packages differ"
    everything_below = {name: allowed[name] | {TOP} for name in allowed}
    for doc in ("README.md", "docs/architecture.md"):
        rows = table_rows((ROOT / doc).read_text())
        assert set(rows) == known | {TOP}, f"{doc}: the table lists {sorted(rows)}"
        assert named_imports(rows[TOP], known) == set(), doc
        for name in sorted(known):
            said = named_imports(rows[name], known)
            if said == BELOW:
                said = everything_below[name]
            assert said == allowed[name], (
                f"{doc}: {name} may import {sorted(said)}; the contracts: {sorted(allowed[name])}"
            )


def test_the_top_level_modules_are_the_contracts_and_architecture_md_names_each():
    (contract,) = [c for c in contracts() if "import no facegan package" in c["name"]]
    on_disk = {p.stem for p in (ROOT / "facegan").glob("*.py")} - {"__init__", "cli"}
    assert {m.removeprefix("facegan.") for m in contract["source_modules"]} == on_disk
    top_row = table_rows((ROOT / "docs/architecture.md").read_text())[TOP]
    holds = [
        line for line in (ROOT / "docs/architecture.md").read_text().splitlines() if line.startswith("| `facegan/` ")
    ]
    assert all(f"`{name}.py`" in holds[0] for name in on_disk), holds[0]
    assert top_row


HISTORY = re.compile(
    r"(?i)\bissue #?\d+|(?<![\w&])#\d{2,}\b(?! *[0-9a-f])|\brow \d+[a-z]?:|\b20\d\d-\d\d-\d\d\b|\bseen (twice|once|in CI)\b"
)


def test_the_history_pattern_finds_issue_rows_dates_and_incidents():
    found = [bool(HISTORY.search(t)) for t in ("#38: x", "(issue #26)", "Row 4a: nines", "on 2026-11-30", "seen in CI")]
    assert found == [True] * 5
    assert not any(HISTORY.search(t) for t in ("color #fff", "x[#1]", "a row of faces", "# noqa: E501"))


def test_comments_say_why_not_when():
    """Code comments and docstrings say why the code is as it is now; dates, issue numbers and
    incidents belong to docs/ (performance.md, serving.md), where the measurements are kept."""
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()[:80]}"
        for path in SOURCES
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if HISTORY.search(line) and path.name != "test_architecture.py"
    ]
    assert not found, "\n".join(found)


# Tests of the whole program, not of one package: they stay flat in tests/ (docs/architecture.md).
WHOLE_PROGRAM_TESTS = {
    "test_architecture.py",
    "test_basics.py",  # the small top-level modules: config, seeds, images, fileio
    "test_docs.py",
    "test_extras.py",
    "test_first_run.py",
    "test_notebook.py",
    "test_release.py",
    "test_stopping.py",
}
# Test folders that mirror something other than a package of facegan/.
OTHER_TEST_FOLDERS = {
    "deploy": ROOT / "deploy",  # the Dockerfile, compose file and manifests
    "training/jax": ROOT / "facegan" / "training" / "jax_step.py",  # run on the JAX backend in their own interpreter
}


def test_tests_mirror_facegan():
    tests = ROOT / "tests"
    files = sorted(tests.rglob("test_*.py"))
    assert len(files) > 40
    names = [f.name for f in files]
    assert len(names) == len(set(names)), "two test files share a name (pytest imports them by name)"
    for f in files:
        folder = f.parent.relative_to(tests).as_posix()
        if folder == ".":
            assert f.name in WHOLE_PROGRAM_TESTS, f"{f.name}: move it to the folder that mirrors its module"
        else:
            mirrored = OTHER_TEST_FOLDERS.get(folder, ROOT / "facegan" / folder)
            assert mirrored.exists(), f"tests/{folder}/ mirrors nothing in facegan/"
