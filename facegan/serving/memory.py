"""glibc's heap under a month of hot swaps: fewer malloc arenas, and freed heap handed back.

A server that loads and unloads SavedModels from dozens of threads (gRPC's 32 handlers, REST's
8, TensorFlow's pools) leaves glibc with up to 8 arenas per core, each holding fragments of
freed models; two arenas let memory after each swap grow about a quarter as fast, at the same
request rates and latencies (bench/soak.py; the figures: docs/serving.md, "A long run"). Both
are no-ops without glibc.
"""

from __future__ import annotations

import contextlib
import ctypes
import os

M_ARENA_MAX = -8  # mallopt's parameter number (glibc's malloc.h)
ARENAS = 2  # the arenas `facegan serve` allows unless MALLOC_ARENA_MAX says otherwise


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas for the rest of the process, unless the operator set
    MALLOC_ARENA_MAX (which glibc then read at start). Call it before threads start allocating."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    with contextlib.suppress(OSError, AttributeError):
        return bool(ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, arenas))
    return False


def release_free_heap() -> None:
    """Hand the heap that an unloaded SavedModel freed back to the OS (glibc keeps it otherwise).
    Measured: 8 MB less RSS after 20 hot swaps of the 32 px model."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
