"""facegan.serving.manager: unloading one version never stalls requests to the others."""

import threading
import time

from facegan.client.protocol import ModelState
from facegan.serving.manager import ModelManager, ModelRef
from facegan.serving.model_config import ModelSource

SLOW_S = 1.0  # how long the in-flight request and the release of the old version each take
FAST_S = 0.1  # what a request to any other version may take meanwhile


class FakeServable:
    """Answers at once, like a loaded version between requests."""

    def __init__(self, name, version):
        self.name = name
        self.version = version

    def predict(self):
        return (self.name, self.version)


def request(manager, name, version=None):
    """What a Predict does with the manager: resolve, pin, call; returns (answer, seconds)."""
    started = time.perf_counter()
    with manager.pin(ModelRef(name, version)) as servable:
        answer = servable.predict()
    return answer, time.perf_counter() - started


def test_unloading_a_version_leaves_other_models_and_versions_answering(tmp_path):
    for model, versions in (("a", (1, 2)), ("b", (1,))):
        for v in versions:
            (tmp_path / model / str(v)).mkdir(parents=True)
    released = threading.Event()

    def slow_unload(name, version, servable):  # joining batcher threads, malloc_trim: seconds on a busy host
        time.sleep(SLOW_S)
        released.set()

    sources = [ModelSource("a", tmp_path / "a", policy="all"), ModelSource("b", tmp_path / "b")]
    manager = ModelManager(sources, load=lambda name, version, path: FakeServable(name, version), unload=slow_unload)
    manager.poll()
    assert manager.available() == {"a": [1, 2], "b": [1]}

    in_flight = threading.Event()
    finish = threading.Event()

    def slow_request():  # a request to a/1 that is still running when a/1 is told to go
        with manager.pin(ModelRef("a", 1)):
            in_flight.set()
            finish.wait(10)

    holder = threading.Thread(target=slow_request)
    holder.start()
    in_flight.wait(5)
    # a/1 leaves the policy; reconfigure returns only once a/1 is gone, so it runs beside the requests
    only_a2 = [ModelSource("a", tmp_path / "a", policy="specific", versions=(2,)), sources[1]]
    unloader = threading.Thread(target=manager.reconfigure, args=(only_a2,))
    unloader.start()
    answers = {}
    try:
        while manager.status("a")[1].state != ModelState.UNLOADING:
            time.sleep(0.01)
        phases = {"draining": [], "releasing": []}
        for _ in range(5):  # while a/1 waits for its in-flight request
            phases["draining"] += [request(manager, "b"), request(manager, "a", 2), request(manager, "a")]
            time.sleep(0.05)
        assert manager.status("a")[1].state == ModelState.UNLOADING
        finish.set()
        deadline = time.perf_counter() + SLOW_S * 0.8
        while time.perf_counter() < deadline and not released.is_set():  # while a/1 is being released
            phases["releasing"] += [request(manager, "b"), request(manager, "a", 2)]
            time.sleep(0.05)
        answers = phases
    finally:
        finish.set()
        holder.join(10)
        unloader.join(10)
    assert answers["draining"] and answers["releasing"]
    for phase, results in answers.items():
        slowest = max(seconds for _, seconds in results)
        assert slowest < FAST_S, f"a request waited {slowest:.3f} s while a/1 was {phase}"
        assert {answer for answer, _ in results} <= {("a", 2), ("b", 1)}
    released.wait(5)
    assert manager.available() == {"a": [2], "b": [1]}
