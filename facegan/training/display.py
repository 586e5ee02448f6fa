"""How training shows its progress: the one rule for the `progress` option (no Keras here, so
facegan.train checks it before TensorFlow loads)."""

from __future__ import annotations

import sys

from facegan.errors import UsageError

DISPLAYS = ("auto", "bar", "lines", "notebook")


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (Jupyter, Colab, VS Code): tqdm.autonotebook's test."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def display_mode(verbose: int | str | bool) -> str:
    """How training shows itself: "bar" (a terminal: a live bar per epoch, then its line), "lines"
    (CI, a pipe, a log: one line per epoch) or "notebook" (one tqdm.auto bar for the run and the
    newest preview grid, updated in place). "auto" picks by where it runs; 0/1 mean lines/bar."""
    if verbose == "auto":
        if in_notebook():
            return "notebook"
        return "bar" if sys.stderr.isatty() else "lines"
    if verbose in DISPLAYS:
        return verbose
    if verbose in (0, 1):  # the old verbose=0/1 (bool included)
        return "bar" if verbose else "lines"
    raise UsageError(f"progress must be one of {', '.join(DISPLAYS)}, got {verbose!r}")
