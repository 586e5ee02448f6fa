"""Seed lists as StyleGAN's tools accept them: "0,1,4-6" -> [0, 1, 4, 5, 6]."""

from __future__ import annotations

MAX_SEED = 2**31 - 1  # seeds are int64 in the exported graph; this bound keeps every client happy
MAX_SEEDS = 4096  # one command never needs more, and a typo like "0-99999999" fails fast


def parse_seeds(text: str) -> list[int]:
    """Parse a comma-separated list of seeds and inclusive ranges. Raises ValueError."""
    seeds: list[int] = []
    for part in str(text).replace(" ", "").split(","):
        if not part:
            raise ValueError(f"empty item in seed list {text!r}")
        lo, sep, hi = part.partition("-")
        try:
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError:
            raise ValueError(f"seed list {text!r}: {part!r} is not an integer or a range like 4-6") from None
        if b < a:
            raise ValueError(f"seed list {text!r}: range {part!r} runs backwards")
        if b > MAX_SEED:
            raise ValueError(f"seed list {text!r}: seeds must be in 0..{MAX_SEED}")
        if len(seeds) + (b - a + 1) > MAX_SEEDS:
            raise ValueError(f"seed list {text!r} has more than {MAX_SEEDS} seeds")
        seeds.extend(range(a, b + 1))
    return seeds
