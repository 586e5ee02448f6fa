"""The projections' own process: one version's SavedModel, loaded again in a child process that
then lowers its CPU priority (nice 10), runs the signatures that cannot be batched.

Why a process: a projection is hundreds of model steps in one TensorFlow call, and TensorFlow's
thread pools are per process, so in the server's process it competed with generation as an
equal. On 2 cores one running projection took generation's p99 from 12.7 to 52.6 ms; in a
nice-10 child, with 8 gRPC and 8 REST clients projecting, it went from 14.3 to 21.1 ms (gRPC)
and 16.2 to 23.0 ms (REST) (tests/test_hardening.py). The operating system's scheduler does
the isolation.

The child starts at a version's first projection (~3 s: TensorFlow's import and the load, at the
server's priority) and ends with the version, or after IDLE_STOP_S without a projection. A version
unloaded while its child starts (a hot swap) answers the waiting call UNAVAILABLE: the client's
retry reaches the new version. It runs one call at a time;
a second thread in it reads the pipe, so a "cancel" stops the running call through
TensorFlow's CancellationManager (checked between ops: a projection stops within a step).
Messages are pickles over the child's stdin/stdout, a private pipe between the server and its
own child; the child's stdout is moved to stderr first, so nothing else can write into the
protocol.

    parent -> child: ("run", call id, signature, {alias: array}) | ("cancel", call id)
    child -> parent: ("ready",) once | ("ok", {alias: array}) | ("cancelled",) | ("error", code, message)

A cancel names its call, so one that arrives late (a gRPC callback fires when its RPC ends, which
can be after the answer) never stops the next call.
"""

from __future__ import annotations

import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import grpc

from facegan.client.errors import ServingError

START_TIMEOUT_S = 120.0  # TensorFlow's import and the SavedModel's load, on a slow, busy machine
# The child holds TensorFlow and a second copy of the model (1.1 GB RSS with the 32 px model on
# the 2-core VM): it ends after this long without a projection and starts again at the next.
IDLE_STOP_S = 120.0
# Generation in the server's process comes first: at nice 10 the scheduler gives the child about a
# tenth of a contended core (its weight 110 against 1024), all of an idle one. (Nice 19, weight 15,
# starved projections outright while generation saturated both cores.)
NICE = 10


class SoloWorker:
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

    def call(self, signature: str, inputs: dict, on_cancel: Callable[[Callable[[], None]], None]) -> dict:
        """Run `signature` in the child. `on_cancel(callback)` registers what stops it; a stopped
        call raises tf-free CancelledCall for the caller to name (deadline or client gone)."""
        with self._lock:
            if self._idle is not None:
                self._idle.cancel()
            process = self._started()
            self._calls += 1
            call_id = self._calls
            self._send(("run", call_id, signature, inputs))
            on_cancel(lambda: self._send(("cancel", call_id)))
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
            [sys.executable, "-m", "facegan.serving.solo_worker", str(self.path)],
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


class CancelledCall(Exception):
    """The child stopped the call on a "cancel"."""


def _load_or_none(stream):
    try:
        return pickle.load(stream)
    except Exception as e:
        return ("failed", f"{type(e).__name__}: {e}")


def main(path: str) -> None:
    """The child: load, lower its priority, say ready, then run calls one at a time until stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C sent to it by hand: the server decides when it ends
    protocol_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # print() and native logs go to stderr, never into the protocol
    sys.stdout = sys.stderr
    protocol_in = sys.stdin.buffer

    import tensorflow as tf
    from tensorflow.python.eager.cancellation import CancellationManager, CancellationManagerContext

    from facegan.serving.servable import graph_error

    module = tf.saved_model.load(path, tags=["serve"])
    calls: queue.Queue = queue.Queue()
    current = {"id": None, "manager": None, "started": 0}  # "started": the newest call id begun
    # A cancel can overtake its call: the parent sends it right behind "run" when the deadline
    # passed while this process was still loading. Such a call is answered "cancelled" unrun.
    early_cancels: set[int] = set()
    guard = threading.Lock()

    def read() -> None:
        while True:
            try:
                message = pickle.load(protocol_in)
            except (EOFError, OSError, pickle.UnpicklingError):
                calls.put(None)
                return
            if message[0] == "cancel":
                with guard:
                    if current["id"] == message[1]:
                        current["manager"].start_cancel()
                    elif message[1] > current["started"]:  # not begun yet (older ids are stale: ignored)
                        early_cancels.add(message[1])
            else:
                calls.put(message)

    def answer(message) -> None:
        pickle.dump(message, protocol_out)
        protocol_out.flush()

    # Loading (TensorFlow's import, the SavedModel) runs at the server's own priority: at nice 10
    # under saturating generation it took over a minute, so a hot swap every minute could stop
    # each version's projection process before it was ready. The projections themselves, the
    # long part, run at nice 10.
    os.nice(NICE)
    threading.Thread(target=read, daemon=True).start()
    answer(("ready",))
    while (message := calls.get()) is not None:
        _, call_id, signature, inputs = message
        manager = CancellationManager()
        with guard:
            current["id"] = call_id
            current["manager"] = manager
            current["started"] = call_id
            cancelled_early = call_id in early_cancels
            early_cancels.difference_update([i for i in early_cancels if i <= call_id])
        if cancelled_early:
            answer(("cancelled",))
            with guard:
                current["id"] = None
                current["manager"] = None
            continue
        try:
            with CancellationManagerContext(manager):  # this process has one calling thread
                outputs = module.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})
            answer(("ok", {k: v.numpy() for k, v in outputs.items()}))
        except tf.errors.CancelledError:
            answer(("cancelled",))
        except tf.errors.InvalidArgumentError as e:
            answer(("error", "INVALID_ARGUMENT", graph_error(e.message)))
        except Exception as e:  # a failing model: INTERNAL for this call, the process goes on
            answer(("error", "INTERNAL", f"{type(e).__name__}: {e}"[:300]))
        finally:
            with guard:
                current["id"] = None
                current["manager"] = None


if __name__ == "__main__":
    main(sys.argv[1])
