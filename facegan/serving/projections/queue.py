"""`ProjectionQueue`: the admission, deadlines and cancellation of projections, so that a burst of
them never starves generation.

- They run in a child process per version at the lowest CPU priority (worker.py, child.py): the
  operating system gives generation the cores first.
- A few run at a time (`running`, server-wide: every loaded version shares one queue), a few wait
  for their turn (`waiting`); any more are refused at once with UNAVAILABLE (REST: 503). Waiters
  and runners hold a handler thread each, so at most running + waiting of the handler threads
  (gRPC's 32, waitress's 8) are ever busy with projections; the rest serve generation.
- A call waits at most until its deadline (or MAX_WAIT_S), and one whose deadline has passed
  never starts; one whose client is gone leaves the queue at once.
- A running call stops when its client is gone or its deadline passes (MAX_RUN_S without one).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

import grpc

from facegan.client.errors import ServingError
from facegan.serving.projections.cancel import Cancel, CancelledCall
from facegan.serving.request import Request

T = TypeVar("T")

MAX_RUNNING = 1  # projections computing at once: each already uses every core the scheduler gives it
MAX_WAITING = 2  # projections queued for their turn; any more are refused at once
MAX_WAIT_S = 30.0  # the longest a projection waits for its turn (less if its deadline is sooner)
MAX_RUN_S = 60.0  # a projection with no deadline is stopped after this (project_steps(500) takes ~9 s)


class ProjectionQueue:
    """Projections one at a time (or `running` at a time), `waiting` more in line, the rest refused."""

    def __init__(self, running: int = MAX_RUNNING, waiting: int = MAX_WAITING):
        self.running = running
        self.waiting = waiting
        self._cond = threading.Condition()
        self._busy = 0  # calls running now
        self._queued = 0  # calls waiting for a turn

    def counts(self) -> tuple[int, int]:
        """(running, waiting) now: for metrics and tests."""
        with self._cond:
            return self._busy, self._queued

    def take_turn(self, request: Request, work: Callable[[Cancel], T]) -> T:
        """`work(cancel)` when it is this request's turn. The work registers on `cancel` how to stop
        itself; `cancel` fires at the request's deadline (or MAX_RUN_S) or when its client is gone.
        A request whose client is gone while it waits leaves the queue and never starts."""
        cancel = Cancel()
        if request.on_client_gone is not None:
            request.on_client_gone(cancel.fire)
        cancel.register(self._wake_waiters)
        self._enter(request, cancel)
        try:
            return self._cancellable(work, request.deadline, cancel)
        finally:
            with self._cond:
                self._busy -= 1
                self._cond.notify_all()  # all: a waiter that wakes to find its client gone passes on no turn

    def _wake_waiters(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _enter(self, request: Request, cancel: Cancel) -> None:
        signature, deadline = request.signature, request.deadline
        wait_until = time.monotonic() + MAX_WAIT_S
        if deadline is not None:
            wait_until = min(wait_until, deadline)
        with self._cond:
            if self._busy >= self.running and self._queued >= self.waiting:
                raise ServingError(
                    grpc.StatusCode.UNAVAILABLE,
                    f"signature {signature!r} is busy ({self._busy} running, {self._queued} waiting); try again later",
                )
            self._queued += 1
            try:
                while self._busy >= self.running:
                    if cancel.fired:
                        raise ServingError(grpc.StatusCode.CANCELLED, "the client went away before its turn")
                    left = wait_until - time.monotonic()
                    if left <= 0 and deadline is None:
                        message = f"signature {signature!r} is busy: no turn within {MAX_WAIT_S:.0f} s"
                        raise ServingError(grpc.StatusCode.UNAVAILABLE, message)
                    if left <= 0:
                        message = f"signature {signature!r} is busy: no turn before the deadline"
                        raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED, message)
                    self._cond.wait(left)
            finally:
                self._queued -= 1
            if cancel.fired:
                raise ServingError(grpc.StatusCode.CANCELLED, "the client went away before its turn")
            self._busy += 1

    @staticmethod
    def _cancellable(work: Callable[[Cancel], T], deadline: float | None, cancel: Cancel) -> T:
        ends = time.monotonic() + MAX_RUN_S if deadline is None else deadline
        timer = threading.Timer(max(0.0, ends - time.monotonic()), cancel.fire)
        timer.daemon = True
        timer.start()
        try:
            return work(cancel)
        except CancelledCall:
            if time.monotonic() >= ends:
                raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded: stopped") from None
            raise ServingError(grpc.StatusCode.CANCELLED, "the client went away: stopped") from None
        finally:
            cancel.finish()
            timer.cancel()
