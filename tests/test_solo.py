"""SoloGate's admission rules, with plain functions as the work (no model, no sockets): one runs,
two wait, the rest are refused at once; a waiter whose client is gone leaves without starting."""

import threading
import time

import grpc
import pytest
from conftest import wait_for

from facegan.client.errors import ServingError
from facegan.serving.solo import SoloGate
from facegan.serving.solo_worker import CancelledCall


class Door:
    """What a gRPC door hands the gate: `add_callback`, called when the RPC ends."""

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

    def work(on_cancel):
        started.append(time.monotonic())
        cancelled = threading.Event()

        def stop():
            cancelled.set()
            release.set()

        on_cancel(stop)
        release.wait(30)
        if cancelled.is_set():
            raise CancelledCall()
        return "done"

    return work


def run_in_thread(gate, work, door=None, deadline=None):
    outcome = {}

    def target():
        try:
            outcome["result"] = gate.run("project_steps", work, deadline, door.add_callback if door else None)
        except ServingError as e:
            outcome["error"] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, outcome


def test_one_runs_two_wait_the_rest_are_refused_at_once():
    gate = SoloGate()
    release = threading.Event()
    started = []
    threads = [run_in_thread(gate, blocking_work(release, started)) for _ in range(3)]
    wait_for(lambda: gate.counts() == (1, 2), timeout=5)
    with pytest.raises(ServingError) as e:
        gate.run("project_steps", blocking_work(release, started), None)
    assert e.value.code == grpc.StatusCode.UNAVAILABLE
    assert "busy (1 running, 2 waiting)" in e.value.message
    release.set()
    for thread, outcome in threads:
        thread.join(5)
        assert outcome == {"result": "done"}
    assert len(started) == 3 and gate.counts() == (0, 0)


def test_a_waiter_whose_client_went_away_leaves_at_once_and_never_starts():
    gate = SoloGate()
    release = threading.Event()
    started = []
    runner = run_in_thread(gate, blocking_work(release, started))
    wait_for(lambda: gate.counts() == (1, 0), timeout=5)
    door = Door()
    waiter_thread, waiter = run_in_thread(gate, blocking_work(threading.Event(), started), door)
    wait_for(lambda: gate.counts() == (1, 1), timeout=5)
    door.end()  # the client cancels while its call waits
    waiter_thread.join(5)
    assert waiter["error"].code == grpc.StatusCode.CANCELLED
    assert gate.counts() == (1, 0) and len(started) == 1  # left the queue; the runner is untouched
    release.set()
    runner[0].join(5)
    assert runner[1] == {"result": "done"} and len(started) == 1


def test_a_call_whose_rpc_had_already_ended_never_starts():
    gate = SoloGate()
    started = []
    with pytest.raises(ServingError) as e:
        gate.run("project_steps", blocking_work(threading.Event(), started), None, Door(ended=True).add_callback)
    assert e.value.code == grpc.StatusCode.CANCELLED and started == []
    assert gate.counts() == (0, 0)


def test_a_running_call_is_stopped_at_its_deadline():
    gate = SoloGate()
    started = []
    with pytest.raises(ServingError) as e:
        gate.run("project_steps", blocking_work(threading.Event(), started), time.monotonic() + 1.0)
    assert e.value.code == grpc.StatusCode.DEADLINE_EXCEEDED and len(started) == 1
    assert gate.counts() == (0, 0)
