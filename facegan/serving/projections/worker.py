"""`ProjectionWorker`: the server's handle on one version's projection process, a child that loads
the version's SavedModel again, lowers its CPU priority (nice 10) and runs the signatures that
cannot be batched (its program: child.py).

Why a process: a projection is hundreds of model steps in one TensorFlow call, and TensorFlow's
thread pools are per process, so in the server's process it competed with generation as an
equal. In a nice-10 child the operating system's scheduler does the isolation (measurements:
docs/serving.md, "Projections beside generation").

The child starts at a version's first projection (~3 s: TensorFlow's import and the load, at the
server's priority) and ends with the version, or after IDLE_STOP_S without a projection. A version
unloaded while its child starts (a hot swap) answers the waiting call UNAVAILABLE: the client's
retry reaches the new version. It runs one call at a time; a "cancel" stops the running call
within a model step. Messages are pickles over the child's stdin/stdout, a private pipe between
the server and its own child:

    parent -> child: ("run", call id, signature, {alias: array}) | ("cancel", call id)
    child -> parent: ("ready",) once | ("ok", {alias: array}) | ("cancelled",) | ("error", code, message)

A cancel names its call, so one that arrives late (a gRPC callback fires when its RPC ends, which
can be after the answer) never stops the next call.
"""

from __future__ import annotations

import pickle
import queue
import subprocess
import sys
import threading
from pathlib import Path

import grpc

from facegan.client.errors import ServingError
from facegan.serving.projections.cancel import Cancel, CancelledCall

START_TIMEOUT_S = 120.0  # TensorFlow's import and the SavedModel's load, on a slow, busy machine
# The child holds TensorFlow and a second copy of the model (1.1 GB RSS with the 32 px model on
# the 2-core VM): it ends after this long without a projection and starts again at the next.
IDLE_STOP_S = 120.0


class ProjectionWorker:
    """The server's handle on one version's child process (started at the first call)."""

    def __init__(self, path: Path):
        self.path = path
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()  # one call at a time
        self._send_lock = threading.Lock()  # a cancel may be sent while a call waits for its answer
        self._calls = 0  # ids for calls, so a cancel names the call it means
        self._idle: threading.Timer | None = None  # ends the child after IDLE_STOP_S without a call
        self._starting: subprocess.Popen | None = None  # a child not yet ready
        self._closed = False  # the version is unloaded: no new child

    def call(self, signature: str, inputs: dict, cancel: Cancel) -> dict:
        """Run `signature` in the child; when `cancel` fires, the child stops it and this raises
        CancelledCall for the queue to name (deadline or client gone)."""
        with self._lock:
            if self._idle is not None:
                self._idle.cancel()
            process = self._started()
            self._calls += 1
            call_id = self._calls
            self._send(("run", call_id, signature, inputs))
            cancel.register(lambda: self._send(("cancel", call_id)))
            try:
                answer = pickle.load(process.stdout)
            except (EOFError, pickle.UnpicklingError, OSError):
                self._stop()
                raise ServingError(grpc.StatusCode.INTERNAL, "the projection process ended unexpectedly") from None
            self._idle = threading.Timer(IDLE_STOP_S, self._stop_if_idle)
            self._idle.daemon = True
            self._idle.start()
        if answer[0] == "ok":
            return answer[1]
        if answer[0] == "cancelled":
            raise CancelledCall()
        raise ServingError(grpc.StatusCode[answer[1]], answer[2])

    def _started(self) -> subprocess.Popen:
        if self._process is not None and self._process.poll() is None:
            return self._process
        if self._closed:
            raise ServingError(grpc.StatusCode.UNAVAILABLE, "the model version was unloaded; try again")
        # Its own process group: a terminal's Ctrl-C goes to the server's group, and the server
        # decides (it drains, then closes this child). The child ends when its stdin closes, so it
        # never outlives the server, however the server ends.
        process = subprocess.Popen(
            [sys.executable, "-m", "facegan.serving.projections.child", str(self.path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            process_group=0,
        )
        with self._send_lock:
            self._starting = process  # close() kills it too
        ready = queue.Queue()
        threading.Thread(target=lambda: ready.put(_load_or_none(process.stdout)), daemon=True).start()
        try:
            first = ready.get(timeout=START_TIMEOUT_S)
        except queue.Empty:
            first = None
        with self._send_lock:
            closed = self._closed
            self._starting = None
            if first == ("ready",) and not closed:
                self._process = process
                return process
        process.kill()
        process.wait()
        if closed:  # the version was unloaded (a hot swap) while its process started: the next one serves
            raise ServingError(grpc.StatusCode.UNAVAILABLE, "the model version was unloaded; try again")
        raise ServingError(grpc.StatusCode.INTERNAL, f"the projection process did not start: {first!r}"[:300])

    def _stop_if_idle(self) -> None:
        if self._lock.acquire(blocking=False):  # a call in progress keeps it
            try:
                with self._send_lock:
                    self._stop()
            finally:
                self._lock.release()

    def _send(self, message) -> None:
        with self._send_lock:
            if self._process is None:
                return
            try:
                pickle.dump(message, self._process.stdin)
                self._process.stdin.flush()
            except (BrokenPipeError, OSError):
                pass  # the child is gone: the reader sees it

    def _stop(self) -> None:
        process = self._process
        self._process = None
        if process is not None:
            process.kill()
            process.wait()

    def close(self) -> None:
        """End the child (a running call's reader then gets EOF)."""
        if self._idle is not None:
            self._idle.cancel()
        with self._send_lock:
            self._closed = True
            self._stop()
            if self._starting is not None:
                self._starting.kill()  # its reader gets EOF; the waiting call answers UNAVAILABLE


def _load_or_none(stream):
    try:
        return pickle.load(stream)
    except Exception as e:
        return ("failed", f"{type(e).__name__}: {e}")
