"""How a running projection is stopped: `Cancel` fires once (its deadline, or its client gone) and
runs what the call registered; the child process answers a stopped call with `CancelledCall`."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Cancel:
    """Fired once (deadline, or the client gone) unless the call finished first; callbacks
    registered after it fired run at once."""

    def __init__(self):
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []
        self._fired = False
        self._finished = False

    def register(self, callback: Callable[[], None]) -> None:
        with self._lock:
            fired = self._fired
            if not fired:
                self._callbacks.append(callback)
        if fired:
            callback()

    @property
    def fired(self) -> bool:
        with self._lock:
            return self._fired

    def fire(self) -> None:
        with self._lock:
            if self._fired or self._finished:
                return
            self._fired = True
            callbacks = list(self._callbacks)
        for callback in callbacks:
            callback()

    def finish(self) -> None:
        with self._lock:
            self._finished = True


class CancelledCall(Exception):
    """The child stopped the call on a "cancel"; the queue names why (deadline or client gone)."""
