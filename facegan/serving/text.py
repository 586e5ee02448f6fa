"""Text that a client supplied, made safe to echo in logs, errors and metric labels."""

from __future__ import annotations

MAX_SHOWN = 64  # characters of a client-supplied name that logs and error messages repeat


def shorten(text: str, limit: int = MAX_SHOWN) -> str:
    """`text` cut to `limit` characters, saying how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"
