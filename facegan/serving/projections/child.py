"""The projection process's program (`python -m facegan.serving.projections.child VERSION_DIR`):
load the version, lower its priority, say ready, then run calls one at a time until stdin closes.
The protocol and why it is a process: worker.py.

A second thread reads the pipe, so a "cancel" stops the running call through TensorFlow's
CancellationManager (checked between ops: a projection stops within a step). The child's stdout
is moved to stderr first, so nothing else can write into the protocol.
"""

from __future__ import annotations

import os
import pickle
import queue
import signal
import sys
import threading
from dataclasses import dataclass, field

from facegan.serving.graph_errors import graph_error

# Generation in the server's process comes first: at nice 10 the scheduler gives the child about a
# tenth of a contended core (its weight 110 against 1024), all of an idle one; nice 19 (weight 15)
# starved projections outright while generation saturated both cores.
NICE = 10


@dataclass
class Calls:
    """Which call runs now, shared by the calling thread and the pipe's reader (under `lock`)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    running: int | None = None  # the id of the call running now
    manager: object | None = None  # its CancellationManager
    newest: int = 0  # the newest call id begun: a cancel for an older one is stale
    # A cancel can overtake its call: the parent sends it right behind "run" when the deadline
    # passed while this process was still loading. Such a call is answered "cancelled" unrun.
    early_cancels: set[int] = field(default_factory=set)

    def cancel(self, call_id: int) -> None:
        with self.lock:
            if self.running == call_id:
                self.manager.start_cancel()
            elif call_id > self.newest:  # not begun yet (older ids are stale: ignored)
                self.early_cancels.add(call_id)

    def begin(self, call_id: int, manager) -> bool:
        """Mark `call_id` running; False when it was cancelled before it began."""
        with self.lock:
            self.running = call_id
            self.manager = manager
            self.newest = call_id
            cancelled = call_id in self.early_cancels
            self.early_cancels.difference_update([i for i in self.early_cancels if i <= call_id])
            return not cancelled

    def end(self) -> None:
        with self.lock:
            self.running = None
            self.manager = None


def main(path: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C sent to it by hand: the server decides when it ends
    protocol_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # print() and native logs go to stderr, never into the protocol
    sys.stdout = sys.stderr
    protocol_in = sys.stdin.buffer

    import tensorflow as tf
    from tensorflow.python.eager.cancellation import CancellationManager, CancellationManagerContext

    module = tf.saved_model.load(path, tags=["serve"])
    waiting: queue.Queue = queue.Queue()
    calls = Calls()

    def read() -> None:
        while True:
            try:
                message = pickle.load(protocol_in)
            except (EOFError, OSError, pickle.UnpicklingError):
                waiting.put(None)
                return
            if message[0] == "cancel":
                calls.cancel(message[1])
            else:
                waiting.put(message)

    def answer(message) -> None:
        pickle.dump(message, protocol_out)
        protocol_out.flush()

    # Loading (TensorFlow's import, the SavedModel) runs at the server's own priority: at nice 10
    # under saturating generation it can take long enough that frequent hot swaps stop each
    # version's process before it is ready. The projections themselves, the long part, run at nice 10.
    os.nice(NICE)
    threading.Thread(target=read, daemon=True).start()
    answer(("ready",))
    while (message := waiting.get()) is not None:
        _, call_id, signature, inputs = message
        manager = CancellationManager()
        if not calls.begin(call_id, manager):
            answer(("cancelled",))
            calls.end()
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
            calls.end()


if __name__ == "__main__":
    main(sys.argv[1])
