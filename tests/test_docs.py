"""The docs stay true to the code: the README is the short front door, every `facegan …` line the
docs show parses with the real argument parser, every relative link and named repository path
exists, and every package docstring names exactly the modules its package holds."""

import ast
import re
import shlex
from pathlib import Path

import pytest

from facegan.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 300
# a path the docs name in backticks or a link that starts in one of the repository's own folders
REPO_PATH = re.compile(r"^(?:facegan|bench|tests|deploy|docs|scripts|\.ci)/[\w./-]*$")
SHELL_ENDS = {"|", ">", ">>", "&&", "||", ";", "&", "2>&1"}


def fenced_lines(text: str) -> list[str]:
    """The lines inside ``` fences, with backslash continuations joined into one line."""
    lines = []
    inside = False
    pending = ""
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            inside = not inside
            continue
        if not inside:
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    return lines


def facegan_commands(text: str) -> list[list[str]]:
    """The argument lists of the `facegan …` command lines in a page's fenced blocks (a leading
    `$ ` prompt, trailing comments and whatever follows a pipe or a redirection are dropped)."""
    commands = []
    for line in fenced_lines(text):
        stripped = line.strip().removeprefix("$ ")
        if not stripped.startswith("facegan "):
            continue
        words = shlex.split(stripped, comments=True)
        argv = []
        for word in words[1:]:
            if word in SHELL_ENDS:
                break
            argv.append(word)
        commands.append(argv)
    return commands


def links(text: str) -> list[str]:
    return re.findall(r"\]\(([^)\s]+)\)", text)


def github_anchor(heading: str) -> str:
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = page.read_text()
    heads = [line.lstrip("#").strip() for line in text.splitlines() if re.match(r"#{1,6} ", line)]
    return {github_anchor(h) for h in heads}


def test_the_readme_is_the_short_front_door():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; the manual belongs in docs/"
    text = "\n".join(lines)
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert f"(docs/{page.name}" in text, f"README.md does not link docs/{page.name}"


def test_the_command_finder_reads_continuations_prompts_and_pipes():
    text = "```bash\n$ facegan serve --port 1 \\\n  --host h   # comment\nfacegan train --json > r.json\nls\n```\n"
    assert facegan_commands(text) == [["serve", "--port", "1", "--host", "h"], ["train", "--json"]]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_facegan_line_parses(page):
    parser = build_parser()
    commands = facegan_commands(page.read_text())
    for argv in commands:
        try:
            parser.parse_args(argv)
        except SystemExit as e:
            pytest.fail(f"{page.name}: `facegan {' '.join(argv)}` does not parse (exit {e.code})")


# Flags the docs name that belong to other programs (each with the program), not to facegan's
# commands, its bench/ scripts or its scripts/.
EXTERNAL_FLAGS = {
    "--target",  # docker build
    "--build",  # docker compose up
    "--gpus",  # docker run
    "--rm",  # docker run
    "--logdir",  # tensorboard
    "--builtin-schema",  # check-jsonschema
    "--strict",  # mkdocs build
    "--dir",  # saved_model_cli
    "--all",  # saved_model_cli show
    "--xla_force_host_platform_device_count",  # XLA_FLAGS
}


def own_flags() -> set[str]:
    """Every option string of facegan's commands, of the bench/ scripts and of scripts/."""
    parser = build_parser()
    flags = set()
    for action in parser._actions:
        flags.update(action.option_strings)
        if isinstance(action.choices, dict):  # the subcommands
            for sub in action.choices.values():
                for option in sub._actions:
                    flags.update(option.option_strings)
    for path in [*(ROOT / "bench").glob("*.py"), *(ROOT / "scripts").iterdir()]:
        if path.is_file():
            flags.update(re.findall(r"""["'](--[a-z][\w-]*)["']""", path.read_text()))
    return flags


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_flag_the_docs_name_exists(page):
    """A flag named in `code` anywhere in a page (prose included, not only `facegan ...` lines)
    is one of facegan's, its scripts' or a named program's: a renamed flag cannot linger in the
    docs (docs/serving.md once named --rest-timeout-ms, which never existed)."""
    known = own_flags() | EXTERNAL_FLAGS
    unknown = set()
    for span in re.findall(r"`[^`\n]+`", page.read_text()):
        unknown.update(f for f in re.findall(r"(?<![\w-])--[a-z][a-z0-9_-]*", span) if f not in known)
    assert not unknown, f"{page.name} names flags that do not exist: {sorted(unknown)}"


def test_the_docs_show_every_command():
    shown = {argv[0] for page in PAGES for argv in facegan_commands(page.read_text()) if argv}
    from facegan.cli import COMMANDS

    assert set(COMMANDS) <= shown, f"no example in the docs for: {sorted(set(COMMANDS) - shown)}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_links_and_named_paths_exist(page):
    text = page.read_text()
    missing = []
    for target in links(text):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            missing.append(f"link {target}")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            missing.append(f"anchor {target}")
    for named in re.findall(r"`([^`\s]+)`", text):
        if REPO_PATH.match(named) and not (ROOT / named).exists():
            missing.append(f"path {named}")
    assert not missing, f"{page.name}: " + ", ".join(missing)


def package_modules(package: Path) -> set[str]:
    names = {p.stem for p in package.glob("*.py") if p.name != "__init__.py"}
    names |= {p.name for p in package.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    return names


PACKAGES = sorted(p.parent for p in (ROOT / "facegan").rglob("__init__.py"))


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_package_docstrings_name_exactly_their_modules(package):
    doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text())) or ""
    named = set(re.findall(r"`(\w+)\.py`", doc)) | {d.rstrip("/") for d in re.findall(r"`(\w+/)`", doc)}
    there = package_modules(package)
    assert not named - there, f"{package.name}'s docstring names what is not there: {sorted(named - there)}"
    assert not there - named, f"{package.name}'s docstring does not name: {sorted(there - named)}"


def test_every_help_reads_as_words():
    """Every --help reads as words: no argparse-internal names (TRAIN__EPOCHS, DATA__PATH)."""
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a.choices, dict)]
    for name, sub in commands.choices.items():
        text = sub.format_help()
        assert "__" not in text, f"facegan {name} --help shows an internal name"
    assert "(fast32: 560)" in commands.choices["train"].format_help()  # defaults where they help
