"""`--variant NAME="FLAGS"`, shared by bench/quality.py and bench/time_to_quality.py: each preset
trained again with extra `facegan train` flags, paired with its plain runs by seed."""

from __future__ import annotations

import argparse
import shlex


def parse(parser: argparse.ArgumentParser, texts: list[str]) -> list[tuple[str, list[str]]]:
    """[("", []), ("+NAME", [flag, ...]), ...]: the plain runs first. A malformed one ends the
    bench with the parser's one-line usage error (exit 2)."""
    variants = [("", [])]
    for text in texts:
        name, sep, flags = text.partition("=")
        if not sep or not name:
            parser.error(f'--variant needs NAME="FLAGS", got {text!r}')
        variants.append((f"+{name}", shlex.split(flags)))
    return variants
