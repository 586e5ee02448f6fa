"""A log that a flood of bad requests cannot fill: a few lines per window, the rest counted.

The request errors of both doors and of the HTTP guard go to the logger named REQUESTS_LOG
(`logging.getLogger(REQUESTS_LOG)`); the rate limit is a filter on that logger, so one window is
shared by every module that logs there, and none of them holds a shared object."""

from __future__ import annotations

import logging
import threading
import time

REQUESTS_LOG = "facegan.serve.requests"  # client errors, rate-limited
PER_WINDOW = 20  # lines let through per window
WINDOW_S = 10.0


class RateLimit(logging.Filter):
    """At most `per_window` records per `window_s` seconds; the rest are counted and the count is
    added to the next record let through, so a flood of bad requests costs a few lines."""

    def __init__(self, per_window: int = PER_WINDOW, window_s: float = WINDOW_S):
        super().__init__()
        self.per_window = per_window
        self.window_s = window_s
        self._lock = threading.Lock()
        self._window_start = 0.0
        self._count = 0
        self._suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            now = time.monotonic()
            if now - self._window_start >= self.window_s:
                self._window_start = now
                self._count = 0
            self._count += 1
            if self._count > self.per_window:
                self._suppressed += 1
                return False
            suppressed = self._suppressed
            self._suppressed = 0
        if suppressed:
            record.msg = f"{record.msg} ({suppressed} similar lines suppressed)"
        return True


def _install() -> None:
    logger = logging.getLogger(REQUESTS_LOG)
    if not any(type(f).__name__ == RateLimit.__name__ for f in logger.filters):  # a reload too
        logger.addFilter(RateLimit())


_install()  # on first import: every module that logs there imports REQUESTS_LOG from here
