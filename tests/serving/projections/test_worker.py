"""The projections' process (ProjectionWorker, running child.py): it loads at the server's priority and
projects at nice 10, and a version unloaded while its process starts tells the waiting call to try
again (UNAVAILABLE) instead of failing it as an internal error."""

import os
import threading

import grpc
import numpy as np
import pytest
from conftest import wait_for

from facegan.client.errors import ServingError
from facegan.serving.projections.cancel import Cancel
from facegan.serving.projections.child import NICE
from facegan.serving.projections.worker import ProjectionWorker


def _call_in_thread(worker: ProjectionWorker, signature: str, inputs: dict) -> tuple[threading.Thread, list]:
    outcome = []

    def call():
        try:
            outcome.append(worker.call(signature, inputs, Cancel()))
        except ServingError as e:
            outcome.append(e)

    thread = threading.Thread(target=call)
    thread.start()
    return thread, outcome


def test_a_version_unloaded_while_its_process_starts_answers_unavailable(tmp_path):
    worker = ProjectionWorker(tmp_path / "1")  # no model: the child would fail after TensorFlow's import
    thread, outcome = _call_in_thread(worker, "project_steps", {})
    wait_for(lambda: worker._starting is not None)
    worker.close()  # the hot swap's unload, seconds before the child could be ready
    thread.join(timeout=30)
    (error,) = outcome
    assert error.code == grpc.StatusCode.UNAVAILABLE and "unloaded" in error.message
    with pytest.raises(ServingError) as again:  # no new process for an unloaded version
        worker.call("project_steps", {}, Cancel())
    assert again.value.code == grpc.StatusCode.UNAVAILABLE


@pytest.mark.slow
def test_the_process_loads_at_the_servers_priority_and_projects_at_nice_10(model_dir):
    worker = ProjectionWorker(model_dir / "1")
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    try:
        image = np.zeros((1, 32, 32, 3), np.uint8)
        thread, outcome = _call_in_thread(worker, "project_steps", {"image": image, "steps": np.int32(2)})
        wait_for(lambda: worker._starting is not None)
        loading = os.getpriority(os.PRIO_PROCESS, worker._starting.pid)  # TensorFlow is still importing
        thread.join(timeout=120)
        (answer,) = outcome
        assert not isinstance(answer, Exception), answer
        assert answer["z"].shape == (1, 100)
        projecting = os.getpriority(os.PRIO_PROCESS, worker._process.pid)
    finally:
        worker.close()
    assert loading == ours and projecting == min(ours + NICE, 19)
