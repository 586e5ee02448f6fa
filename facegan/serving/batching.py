"""Server-side batching, configured like TF Serving's `--enable_batching`.

Concurrent requests for one model version and signature queue up; a batch closes when it holds
`max_batch_size` rows, or `batch_timeout_micros` after its first request arrived, or at once
if the queue has nothing more and the timeout is 0. While every batch thread is busy, the next
batch keeps filling, which is where the throughput comes from. Outputs are split back per request.
"""

from __future__ import annotations

import collections
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

import grpc
import numpy as np

from facegan.client.errors import ServingError

ACTED_ON = ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads")


@dataclass(frozen=True)
class BatchingOptions:
    max_batch_size: int = 1000  # rows per model call (TF Serving's default)
    batch_timeout_micros: int = 0  # how long a batch may wait to fill up
    max_enqueued_batches: int = 10  # queue bound, in batches; beyond it requests get UNAVAILABLE
    num_batch_threads: int = os.cpu_count() or 1  # model calls running at once
    allowed_batch_sizes: tuple[int, ...] = ()  # pad each batch up to the next of these sizes
    ignored: tuple[str, ...] = ()  # fields of the parameters file that facegan parses but does not act on

    def validate(self) -> BatchingOptions:
        for name in ("max_batch_size", "max_enqueued_batches", "num_batch_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"batching parameter {name} must be >= 1")
        if self.batch_timeout_micros < 0:
            raise ValueError("batching parameter batch_timeout_micros must be >= 0")
        sizes = list(self.allowed_batch_sizes)
        if sizes and (sizes != sorted(set(sizes)) or sizes[-1] != self.max_batch_size):
            raise ValueError("allowed_batch_sizes must increase and end with max_batch_size")
        return self


def parse_batching_parameters(text: str) -> BatchingOptions:
    """TF Serving's --batching_parameters_file text format -> options (ValueError if invalid).
    Every field TF Serving accepts parses; those facegan does not act on are listed in `ignored`."""
    from google.protobuf import text_format

    from facegan.serving.config_files import config_message

    try:
        params = text_format.Parse(text, config_message("BatchingParameters")())
    except text_format.ParseError as e:
        raise ValueError(f"batching parameters: {e}") from None
    given = {name: getattr(params, name).value for name in ACTED_ON if params.HasField(name)}
    ignored = tuple(
        field.name for field, _ in params.ListFields() if field.name not in (*ACTED_ON, "allowed_batch_sizes")
    )
    return BatchingOptions(**given, allowed_batch_sizes=tuple(params.allowed_batch_sizes), ignored=ignored).validate()


@dataclass
class _Task:
    inputs: dict[str, np.ndarray]
    rows: int
    deadline: float | None  # time.monotonic() after which nobody waits for the answer
    enqueued: float
    future: Future


class Batcher:
    """Merges concurrent calls of `run(inputs) -> outputs` along axis 0."""

    def __init__(self, run: Callable[[dict], dict], options: BatchingOptions, name: str = "batcher"):
        self._run = run
        self.options = options
        self._queue: collections.deque[_Task] = collections.deque()
        self._rows = 0
        self._cond = threading.Condition()
        self._free = threading.Semaphore(options.num_batch_threads)
        self._closed = False
        self._former = threading.Thread(target=self._form_batches, name=f"{name}-former", daemon=True)
        self._former.start()

    def submit(self, inputs: dict[str, np.ndarray], deadline: float | None = None) -> dict[str, np.ndarray]:
        rows = len(next(iter(inputs.values())))
        if rows > self.options.max_batch_size:
            raise ServingError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Task size {rows} is larger than maximum batch size {self.options.max_batch_size}",
            )
        task = _Task(inputs, rows, deadline, time.monotonic(), Future())
        with self._cond:
            if self._closed:
                raise ServingError(grpc.StatusCode.UNAVAILABLE, "the model version is being unloaded")
            if self._rows + rows > self.options.max_enqueued_batches * self.options.max_batch_size:
                raise ServingError(grpc.StatusCode.UNAVAILABLE, "The batch scheduling queue is full")
            self._queue.append(task)
            self._rows += rows
            self._cond.notify_all()
        return task.future.result()

    def _form_batches(self) -> None:
        timeout = self.options.batch_timeout_micros / 1e6
        while True:
            self._free.acquire()  # wait for a free thread first, so the batch fills meanwhile
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:  # closed and drained
                    self._free.release()
                    return
                while self._rows < self.options.max_batch_size and not self._closed:
                    left = self._queue[0].enqueued + timeout - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                batch, rows = [], 0
                while self._queue and rows + self._queue[0].rows <= self.options.max_batch_size:
                    task = self._queue.popleft()
                    self._rows -= task.rows
                    if task.deadline is not None and task.deadline < time.monotonic():
                        task.future.set_exception(
                            ServingError(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline passed while queued for batching")
                        )
                        continue
                    batch.append(task)
                    rows += task.rows
            if batch:
                threading.Thread(target=self._process, args=(batch, rows), daemon=True).start()
            else:
                self._free.release()

    def _process(self, batch: list[_Task], rows: int) -> None:
        try:
            padded = next((s for s in self.options.allowed_batch_sizes if s >= rows), rows)
            merged = {k: np.concatenate([t.inputs[k] for t in batch]) for k in batch[0].inputs}
            if padded > rows:  # repeat the first row, as TF Serving pads
                merged = {k: np.concatenate([v, np.repeat(v[:1], padded - rows, axis=0)]) for k, v in merged.items()}
            outputs = self._run(merged)
            start = 0
            for task in batch:
                task.future.set_result({k: v[start : start + task.rows] for k, v in outputs.items()})
                start += task.rows
        except BaseException as e:  # every waiting request gets the failure
            for task in batch:
                if not task.future.done():
                    task.future.set_exception(e)
        finally:
            self._free.release()

    def close(self) -> None:
        """Finish what is queued, then stop."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._former.join()
        for _ in range(self.options.num_batch_threads):  # wait for running batches
            self._free.acquire()
