"""facegan.serving.manager: unloading one version never stalls requests to the others."""

import threading
import time

from facegan.client.protocol import ModelState
from facegan.serving.manager import ModelManager
from facegan.serving.model_config import ModelSource
from facegan.serving.request import ModelRef

HANG_S = 60  # a bound on a hang, never a speed: every phase below is ended by the test's own events


class FakeServable:
    """Answers at once, like a loaded version between requests."""

    def __init__(self, name, version):
        self.name = name
        self.version = version

    def predict(self):
        return (self.name, self.version)


def request(manager, name, version=None):
    """What a Predict does with the manager: resolve, pin, call."""
    with manager.pin(ModelRef(name, version)) as servable:
        return servable.predict()


def test_unloading_a_version_leaves_other_models_and_versions_answering(tmp_path):
    for model, versions in (("a", (1, 2)), ("b", (1,))):
        for v in versions:
            (tmp_path / model / str(v)).mkdir(parents=True)
    releasing = threading.Event()
    release = threading.Event()
    released = threading.Event()

    def slow_unload(name, version, servable):  # joining batcher threads, malloc_trim: seconds on a busy host
        releasing.set()
        release.wait(HANG_S)  # until the test has made its requests
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
            finish.wait(HANG_S)

    holder = threading.Thread(target=slow_request)
    holder.start()
    in_flight.wait(HANG_S)
    # a/1 leaves the policy; reconfigure returns only once a/1 is gone, so it runs beside the requests
    only_a2 = [ModelSource("a", tmp_path / "a", policy="specific", versions=(2,)), sources[1]]
    unloader = threading.Thread(target=manager.reconfigure, args=(only_a2,))
    unloader.start()
    answers = {}
    try:
        while manager.status("a")[1].state != ModelState.UNLOADING:
            time.sleep(0.01)
        phases = {"draining": [], "releasing": []}
        # Requests to the other versions are answered while a/1 waits for its in-flight request
        # (which only the test ends), and then while a/1 is being released (which only the test
        # lets finish): had they waited for either, they would never be answered.
        for _ in range(5):
            phases["draining"] += [request(manager, "b"), request(manager, "a", 2), request(manager, "a")]
        assert manager.status("a")[1].state == ModelState.UNLOADING and holder.is_alive()
        finish.set()
        assert releasing.wait(HANG_S)
        for _ in range(5):
            phases["releasing"] += [request(manager, "b"), request(manager, "a", 2), request(manager, "a")]
        assert not released.is_set()
        release.set()
        answers = phases
    finally:
        finish.set()
        release.set()
        holder.join(HANG_S)
        unloader.join(HANG_S)
    for phase, results in answers.items():
        assert set(results) == {("a", 2), ("b", 1)}, phase
    assert released.is_set()
    assert manager.available() == {"a": [2], "b": [1]}
