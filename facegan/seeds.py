"""Seeds: the one rule for seeds given to the API (`check_seeds`), and seed lists as StyleGAN's
tools accept them on a command line: "0,1,4-6" -> [0, 1, 4, 5, 6]."""

from __future__ import annotations

import numpy as np

from facegan.errors import UsageError

MAX_SEED = 2**31 - 1  # seeds are int64 in the exported graph; this bound keeps every client happy
MAX_SEEDS_PER_LIST = 4096  # one command never needs more, and a typo like "0-99999999" fails fast
INT64 = np.iinfo(np.int64)  # the from_seed signature's type: what any seed must fit


def check_seeds(seeds) -> np.ndarray:
    """Seeds as FaceClient, RestClient, LocalFaces and Run take them -> int64 [N]: one whole
    number, or a flat sequence (list, tuple, range, 1-D integer array) of them, each within int64
    (what the server's from_seed signature takes; its REST door refuses the rest with a 400).
    Anything else is a UsageError: 1.5 is not rounded, '7' and True are not numbers, [[1, 2]] is
    not flattened, 2**64 does not fit, and an empty list is an error too."""
    if isinstance(seeds, np.ndarray):
        if seeds.ndim > 1:
            raise UsageError(f"seeds must be a flat list, got an array of shape {list(seeds.shape)}")
        if seeds.dtype.kind not in "iu":
            raise UsageError(f"seeds must be whole numbers, got an array of {seeds.dtype}")
        if seeds.dtype.kind == "u" and seeds.size and int(seeds.max()) > INT64.max:
            raise UsageError(f"seed {int(seeds.max())} does not fit int64")
        checked = seeds.astype(np.int64).reshape(-1)
    else:
        checked = _checked_list(seeds)
    if not len(checked):
        raise UsageError("no seeds given")
    return checked


def _checked_list(seeds) -> np.ndarray:
    if _whole(seeds):
        seeds = [seeds]
    elif isinstance(seeds, str | bytes) or not hasattr(seeds, "__iter__"):
        raise UsageError(f"seeds must be whole numbers or a list of them, got {type(seeds).__name__}")
    checked = []
    for seed in seeds:
        if not _whole(seed):
            raise UsageError(f"seeds must be whole numbers, got {seed!r:.40}")
        if not INT64.min <= seed <= INT64.max:
            digits = f"{seed}" if abs(seed) < 10**40 else f"of {seed.bit_length()} bits"
            raise UsageError(f"seed {digits} does not fit int64")
        checked.append(int(seed))
    return np.array(checked, np.int64)


def _whole(value) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


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
        if len(seeds) + (b - a + 1) > MAX_SEEDS_PER_LIST:
            raise ValueError(f"seed list {text!r} has more than {MAX_SEEDS_PER_LIST} seeds")
        seeds.extend(range(a, b + 1))
    return seeds
