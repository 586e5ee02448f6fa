"""A log that a flood of bad requests cannot fill: a few lines per window, the rest counted."""

from __future__ import annotations

import logging
import threading
import time


class RateLimitedLog:
    """At most `per_window` lines per `window_s` seconds through `logger`; the rest are counted and
    the count is logged with the next line let through, so a flood of bad requests costs a few lines."""

    def __init__(self, logger: logging.Logger, per_window: int = 20, window_s: float = 10.0):
        self.logger = logger
        self.per_window = per_window
        self.window_s = window_s
        self._lock = threading.Lock()
        self._window_start = 0.0
        self._count = 0
        self._suppressed = 0

    def log(self, level: int, message: str, *args) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._window_start >= self.window_s:
                self._window_start = now
                self._count = 0
            self._count += 1
            if self._count > self.per_window:
                self._suppressed += 1
                return
            suppressed = self._suppressed
            self._suppressed = 0
        if suppressed:
            message += f" ({suppressed} similar lines suppressed)"
        self.logger.log(level, message, *args)
