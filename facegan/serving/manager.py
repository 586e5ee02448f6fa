"""Which versions of which models are loaded: version policies, polling, hot swaps, unloading.

Like TF Serving's file-system source and availability-preserving policy: a new version is
loaded and warmed up while the old one keeps serving, and becomes the default only when ready;
the old one leaves the lookup table at once but is released only when its last request is done.
A version that fails to load is marked END with its error and skipped by the policy, so the
newest good version keeps serving.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc

from facegan.client.errors import ServingError
from facegan.client.protocol import ModelState
from facegan.serving.model_config import ModelSource

log = logging.getLogger("facegan.serve")


@dataclass
class VersionState:
    state: int
    servable: object = None
    error: str = ""
    in_flight: int = 0


class ModelManager:
    def __init__(
        self,
        sources: list[ModelSource],
        load: Callable[[str, int, Path], object],
        on_change: Callable[[], None] = lambda: None,
    ):
        self.sources = {s.name: s for s in sources}
        self._load = load  # (name, version, path) -> a warmed-up servable, or raises
        self._on_change = on_change
        self._versions: dict[str, dict[int, VersionState]] = {s.name: {} for s in sources}
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- lookup -------------------------------------------------------------------------
    def resolve(self, name: str, version: int | None = None, label: str = "") -> int:
        """The version a request means: pinned, labelled, or the highest available."""
        with self._lock:
            if name not in self._versions:
                raise ServingError(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Latest({name})")
            if label:
                if label not in self.sources[name].labels:
                    raise ServingError(
                        grpc.StatusCode.INVALID_ARGUMENT, f"Unrecognized servable version label: {label}"
                    )
                version = self.sources[name].labels[label]
            if version is not None:
                st = self._versions[name].get(version)
                if st is None or st.state != ModelState.AVAILABLE:
                    raise ServingError(
                        grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Specific({name}, {version})"
                    )
                return version
            ready = [v for v, st in self._versions[name].items() if st.state == ModelState.AVAILABLE]
            if not ready:
                raise ServingError(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Latest({name})")
            return max(ready)

    @contextlib.contextmanager
    def pin(self, name: str, version: int | None = None, label: str = ""):
        """Hold a version for one request; unloading waits for it."""
        with self._lock:
            v = self.resolve(name, version, label)
            st = self._versions[name][v]
            st.in_flight += 1
        try:
            yield st.servable
        finally:
            with self._lock:
                st.in_flight -= 1
                self._lock.notify_all()

    def status(self, name: str) -> dict[int, VersionState]:
        with self._lock:
            if name not in self._versions:
                raise ServingError(grpc.StatusCode.NOT_FOUND, f"Could not find any versions of model {name}")
            return {v: VersionState(st.state, None, st.error) for v, st in self._versions[name].items()}

    def available(self) -> dict[str, list[int]]:
        with self._lock:
            return {
                n: sorted(v for v, st in vs.items() if st.state == ModelState.AVAILABLE)
                for n, vs in self._versions.items()
            }

    # ---- polling ------------------------------------------------------------------------
    def poll(self) -> None:
        """Load what the policies want from disk, then unload what they no longer want."""
        for source in self.sources.values():
            on_disk = _version_dirs(source.base_path)
            known = self._versions[source.name]
            with self._lock:
                for v in [v for v, st in known.items() if st.state == ModelState.END and v not in on_disk]:
                    del known[v]  # a failed version that was removed: forget it
            while True:  # a version that fails drops out of the policy, so the next one is tried at once
                with self._lock:
                    failed = {v for v, st in known.items() if st.state == ModelState.END}
                wanted = source.aspired([v for v in on_disk if v not in failed])
                new = sorted(wanted - set(known))
                if not new:
                    break
                for v in new:
                    self._load_version(source, v)
            with self._lock:
                unwanted = [v for v, st in known.items() if st.state == ModelState.AVAILABLE and v not in wanted]
            for v in unwanted:
                self._unload_version(source.name, v)

    def _load_version(self, source: ModelSource, version: int) -> None:
        with self._lock:
            st = self._versions[source.name][version] = VersionState(ModelState.LOADING)
        self._on_change()
        path = source.base_path / str(version)
        log.info("loading %s version %d from %s", source.name, version, path)
        try:
            servable = self._load(source.name, version, path)
        except Exception as e:  # any failure: log, mark END, keep serving the rest
            with self._lock:
                st.state = ModelState.END
                st.error = f"{type(e).__name__}: {e}".splitlines()[0]
            log.error("failed to load %s version %d: %s", source.name, version, st.error)
        else:
            with self._lock:
                st.servable = servable
                st.state = ModelState.AVAILABLE
            log.info("%s version %d is available", source.name, version)
        self._on_change()

    def _unload_version(self, name: str, version: int) -> None:
        with self._lock:
            st = self._versions[name][version]
            st.state = ModelState.UNLOADING  # no new requests from here on
            self._on_change()
            while st.in_flight:
                self._lock.wait()
            st.servable.close()
            st.servable = None
            st.state = ModelState.END
            del self._versions[name][version]
        log.info("unloaded %s version %d", name, version)
        self._on_change()

    def start_polling(self, interval_s: float) -> None:
        def loop():
            while not self._stop.wait(interval_s):
                try:
                    self.poll()
                except Exception as e:  # e.g. base path briefly unreadable: try again next time
                    log.error("polling failed: %s", e)

        if interval_s > 0:
            self._thread = threading.Thread(target=loop, name="facegan-poll", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for name, versions in self._versions.items():
            for v in [v for v, st in versions.items() if st.state == ModelState.AVAILABLE]:
                self._unload_version(name, v)


def _version_dirs(base_path: Path) -> list[int]:
    """Numbered sub-folders; staging folders such as `.export-3-xyz` are not numbers."""
    try:
        return sorted(int(p.name) for p in base_path.iterdir() if p.name.isdigit() and p.is_dir() and int(p.name) > 0)
    except OSError:
        return []
