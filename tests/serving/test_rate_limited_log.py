"""The request-error log's rate limit: a filter on the logger named REQUESTS_LOG, so every module
that logs there by name shares one window."""

import logging
import time

from facegan.serving.rate_limited_log import REQUESTS_LOG, RateLimit


def test_a_flood_costs_a_few_lines_and_the_next_line_counts_the_rest():
    logger = logging.getLogger("facegan.test.rate_limit")
    seen = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    logger.addHandler(handler)
    logger.propagate = False
    limit = RateLimit(per_window=3, window_s=0.5)
    logger.addFilter(limit)
    try:
        for i in range(10):
            logger.warning("bad request %d", i)
        assert seen == ["bad request 0", "bad request 1", "bad request 2"]
        time.sleep(0.6)  # the window ends: a margin past a fixed window, not a speed
        logger.warning("bad request %d", 10)
        assert seen[-1] == "bad request 10 (7 similar lines suppressed)"
    finally:
        logger.removeFilter(limit)
        logger.removeHandler(handler)


def test_the_requests_logger_has_one_limit_however_often_it_is_looked_up():
    import importlib

    import facegan.serving.rate_limited_log as module

    importlib.reload(module)  # a second import must not add a second window
    filters = [f for f in logging.getLogger(REQUESTS_LOG).filters if type(f).__name__ == "RateLimit"]
    assert len(filters) == 1
