"""ProjectionQueue's admission rules, with plain functions as the work (no model, no sockets): one
runs, two wait, the rest are refused at once; a waiter whose client is gone leaves without starting."""

import threading
import time

import grpc
import pytest
from conftest import wait_for

from facegan.client.errors import ServingError
from facegan.serving.projections.cancel import CancelledCall
from facegan.serving.projections.queue import ProjectionQueue
from facegan.serving.request import ModelRef, Request, grpc_client_gone_hook


class Door:
    """A gRPC context's `add_callback`, called when the RPC ends (the door turns it into the
    request's on_client_gone: request.grpc_client_gone_hook)."""

    def __init__(self, ended: bool = False):
        self.ended = ended
        self.callbacks = []

    def add_callback(self, callback) -> bool:
        if self.ended:
            return False  # as grpc's ServicerContext.add_callback once the RPC has terminated
        self.callbacks.append(callback)
        return True

    def end(self) -> None:
        self.ended = True
        for callback in self.callbacks:
            callback()


def blocking_work(release: threading.Event, started: list):
    """Work that runs until `release` is set, or raises CancelledCall when cancelled first, as the
    projection process does."""

    def work(cancel):
        started.append(time.monotonic())
        cancelled = threading.Event()

        def stop():
            cancelled.set()
            release.set()

        cancel.register(stop)
        release.wait(30)
        if cancelled.is_set():
            raise CancelledCall()
        return "done"

    return work


def projection(door: Door | None = None, deadline: float | None = None) -> Request:
    hook = grpc_client_gone_hook(door) if door else None
    return Request(ModelRef("facegan"), "project_steps", deadline=deadline, on_client_gone=hook)


def run_in_thread(gate, work, door=None, deadline=None):
    outcome = {}

    def target():
        try:
            outcome["result"] = gate.take_turn(projection(door, deadline), work)
        except ServingError as e:
            outcome["error"] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, outcome


def test_one_runs_two_wait_the_rest_are_refused_at_once():
    gate = ProjectionQueue()
    release = threading.Event()
    started = []
    threads = [run_in_thread(gate, blocking_work(release, started)) for _ in range(3)]
    wait_for(lambda: gate.counts() == (1, 2), timeout=60)
    with pytest.raises(ServingError) as e:
        gate.take_turn(projection(), blocking_work(release, started))
    assert e.value.code == grpc.StatusCode.UNAVAILABLE
    assert "busy (1 running, 2 waiting)" in e.value.message
    release.set()
    for thread, outcome in threads:
        thread.join(60)
        assert outcome == {"result": "done"}
    assert len(started) == 3 and gate.counts() == (0, 0)


def test_a_waiter_whose_client_went_away_leaves_at_once_and_never_starts():
    gate = ProjectionQueue()
    release = threading.Event()
    started = []
    runner = run_in_thread(gate, blocking_work(release, started))
    wait_for(lambda: gate.counts() == (1, 0) and len(started) == 1, timeout=60)  # admitted, then begun
    door = Door()
    waiter_thread, waiter = run_in_thread(gate, blocking_work(threading.Event(), started), door)
    wait_for(lambda: gate.counts() == (1, 1), timeout=60)
    door.end()  # the client cancels while its call waits
    waiter_thread.join(60)
    assert waiter["error"].code == grpc.StatusCode.CANCELLED
    assert gate.counts() == (1, 0) and len(started) == 1  # left the queue; the runner is untouched
    release.set()
    runner[0].join(60)
    assert runner[1] == {"result": "done"} and len(started) == 1


def test_a_call_whose_rpc_had_already_ended_never_starts():
    gate = ProjectionQueue()
    started = []
    with pytest.raises(ServingError) as e:
        gate.take_turn(projection(Door(ended=True)), blocking_work(threading.Event(), started))
    assert e.value.code == grpc.StatusCode.CANCELLED and started == []
    assert gate.counts() == (0, 0)


def test_a_running_call_is_stopped_at_its_deadline():
    gate = ProjectionQueue()
    started = []
    with pytest.raises(ServingError) as e:
        gate.take_turn(projection(deadline=time.monotonic() + 1.0), blocking_work(threading.Event(), started))
    assert e.value.code == grpc.StatusCode.DEADLINE_EXCEEDED and len(started) == 1
    assert gate.counts() == (0, 0)
