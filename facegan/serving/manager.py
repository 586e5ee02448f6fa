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
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import grpc

from facegan.client.errors import ServingError
from facegan.client.protocol import ModelState
from facegan.serving.model_config import ModelSource
from facegan.serving.options import LoadRetries
from facegan.serving.request import ModelRef
from facegan.serving.text import shorten
from facegan.versions import MAX_VERSION, VersionScan, scan_versions

log = logging.getLogger("facegan.serve")
NOT_FOUND = grpc.StatusCode.NOT_FOUND
MAX_WARNED_NAMES = 1000  # per model: a base path filling up with junk cannot grow the server's memory


@dataclass
class VersionState:
    state: int
    servable: object = None
    error: str = ""
    in_flight: int = 0
    failures: int = 0  # failed loads so far (a failed version is retried, as TF Serving does)
    retry_at: float = 0.0  # time.monotonic() after which a failed version may be loaded again


class ModelManager:
    def __init__(
        self,
        sources: list[ModelSource],
        load: Callable[[str, int, Path], object],
        unload: Callable[[str, int, object], None] = lambda name, version, servable: servable.close(),
        on_change: Callable[[], None] = lambda: None,
        retries: LoadRetries = LoadRetries(),
    ):
        self.sources = {s.name: s for s in sources}
        self._load = load  # (name, version, path) -> a warmed-up servable, or raises
        self._unload = unload  # (name, version, servable): release it once its last request is done
        self._on_change = on_change
        self.retries = retries
        self._versions: dict[str, dict[int, VersionState]] = {s.name: {} for s in sources}
        self._lock = threading.Condition()
        self._polling = threading.Lock()  # one poll (or reconfiguration) at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned: dict[str, set[str]] = {}  # model -> folder names already warned about

    # ---- lookup -------------------------------------------------------------------------
    def resolve(self, ref: ModelRef) -> int:
        """The version a request means: pinned, labelled, or the highest available."""
        name = ref.name
        version = ref.version
        label = ref.label
        with self._lock:
            if name not in self.sources:
                raise ServingError(NOT_FOUND, f"Servable not found for request: Latest({shorten(name)})")
            if label:
                if label not in self.sources[name].labels:
                    raise ServingError(
                        grpc.StatusCode.INVALID_ARGUMENT, f"Unrecognized servable version label: {shorten(label)}"
                    )
                version = self.sources[name].labels[label]
            if version is not None:
                st = self._versions[name].get(version)
                if st is None or st.state != ModelState.AVAILABLE:
                    raise ServingError(
                        NOT_FOUND, f"Servable not found for request: Specific({shorten(name)}, {version})"
                    )
                return version
            ready = [v for v, st in self._versions[name].items() if st.state == ModelState.AVAILABLE]
            if not ready:
                raise ServingError(NOT_FOUND, f"Servable not found for request: Latest({shorten(name)})")
            return max(ready)

    @contextlib.contextmanager
    def pin(self, ref: ModelRef):
        """Hold a version for one request; unloading waits for it."""
        with self._lock:
            v = self.resolve(ref)
            st = self._versions[ref.name][v]
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
                raise ServingError(grpc.StatusCode.NOT_FOUND, f"Could not find any versions of model {shorten(name)}")
            return {v: VersionState(st.state, None, st.error) for v, st in self._versions[name].items()}

    def available(self) -> dict[str, list[int]]:
        """Per served model, its versions that can answer (a model being removed is not listed)."""
        with self._lock:
            return {
                n: sorted(v for v, st in self._versions[n].items() if st.state == ModelState.AVAILABLE)
                for n in self.sources
            }

    # ---- polling ------------------------------------------------------------------------
    def poll(self) -> None:
        """Load what the policies want from disk, then unload what they no longer want."""
        with self._polling:
            self._poll()

    def reconfigure(self, sources: list[ModelSource]) -> None:
        """A re-read model config: models added load, models removed unload, version policies and
        labels change, all while the rest keeps serving. A label is moved only once the version it
        names is available; if one is not, every label stays as it was and ValueError says why
        (TF Serving also refuses labels for versions that are not loaded)."""
        with self._polling:
            new = {s.name: s for s in sources}
            with self._lock:
                old = self.sources
                removed = [name for name in old if name not in new]
                # policies first, with the labels that are known to work
                self.sources = {
                    name: replace(s, labels=old[name].labels if name in old else {}) for name, s in new.items()
                }
                for name in new:
                    self._versions.setdefault(name, {})
            self._on_change()
            for name in removed:
                for v in [v for v, st in self._versions[name].items() if st.state == ModelState.AVAILABLE]:
                    self._unload_version(name, v)
                with self._lock:
                    del self._versions[name]
                    self._warned.pop(name, None)
            self._poll()
            with self._lock:
                missing = [
                    f"{name} label {label!r} -> version {version}"
                    for name, s in new.items()
                    for label, version in s.labels.items()
                    if getattr(self._versions[name].get(version), "state", None) != ModelState.AVAILABLE
                ]
                if not missing:
                    self.sources = new
            self._on_change()
            if missing:
                raise ValueError(f"labels kept as they were: not available: {', '.join(missing)}")

    def _poll(self) -> None:
        for source in list(self.sources.values()):
            scan = scan_versions(source.base_path)
            self._warn_once(source, scan)
            on_disk = scan.paths
            known = self._versions[source.name]
            with self._lock:
                for v in [v for v, st in known.items() if st.state == ModelState.END and v not in on_disk]:
                    del known[v]  # a failed version that was removed: forget it
            while True:  # a version that fails drops out of the policy, so the next one is tried at once
                with self._lock:
                    failed = {v for v, st in known.items() if st.state == ModelState.END and not self._due(st)}
                    due = {v: st.failures for v, st in known.items() if st.state == ModelState.END and self._due(st)}
                wanted = source.aspired([v for v in on_disk if v not in failed])
                new = sorted(v for v in wanted if v not in known or v in due)
                if not new:
                    break
                for v in new:
                    self._load_version(source, v, on_disk[v], due.get(v, 0))
            with self._lock:
                unwanted = [v for v, st in known.items() if st.state == ModelState.AVAILABLE and v not in wanted]
            for v in unwanted:
                self._unload_version(source.name, v)

    def _warn_once(self, source: ModelSource, scan: VersionScan) -> None:
        """One warning per folder name that is not a version, however often it is polled."""
        warned = self._warned.setdefault(source.name, set())
        for name in [*scan.ignored, *scan.duplicates]:
            if name in warned or len(warned) > MAX_WARNED_NAMES:
                continue
            warned.add(name)
            if len(warned) > MAX_WARNED_NAMES:
                log.warning("model %s: more folders that are not versions; no longer naming them", source.name)
            elif name in scan.duplicates:
                log.warning("model %s: ignoring folder %r: another folder holds the same version", source.name, name)
            else:
                log.warning(
                    "model %s: ignoring folder %r: a version is a decimal number from 1 to %d",
                    source.name,
                    shorten(name),
                    MAX_VERSION,
                )

    def _due(self, st: VersionState) -> bool:
        """A failed version whose next try has come (and that has tries left)."""
        return st.failures <= self.retries.max_retries and time.monotonic() >= st.retry_at

    def _load_version(self, source: ModelSource, version: int, path: Path, failures: int = 0) -> None:
        with self._lock:
            st = self._versions[source.name][version] = VersionState(ModelState.LOADING, failures=failures)
        self._on_change()
        log.info("loading %s version %d from %s", source.name, version, path)
        try:
            servable = self._load(source.name, version, path)
        except Exception as e:  # any failure: log, mark END, keep serving the rest
            with self._lock:
                st.state = ModelState.END
                st.error = load_failure(e, version, path)
                st.failures += 1
                st.retry_at = time.monotonic() + self.retries.interval_s
            left = self.retries.max_retries - st.failures + 1
            again = f"; trying again in {self.retries.interval_s:g} s ({left} left)" if left > 0 else ""
            log.error("failed to load %s version %d from %s: %s%s", source.name, version, path, st.error, again)
        else:
            with self._lock:
                st.servable = servable
                st.state = ModelState.AVAILABLE
            log.info("%s version %d is available", source.name, version)
        self._on_change()

    def _unload_version(self, name: str, version: int) -> None:
        """Drain and release one version. The lock every request's `resolve()` takes is held only
        to change the version's state: waiting for its in-flight requests (Condition.wait releases
        the lock) and releasing it (joining batcher threads, malloc_trim) happen outside it, so
        other models and versions answer meanwhile. Only the poller (one at a time) unloads."""
        with self._lock:
            st = self._versions[name][version]
            st.state = ModelState.UNLOADING  # resolve() no longer picks it: no new requests from here on
        self._on_change()
        with self._lock:
            while st.in_flight:
                self._lock.wait()
        self._unload(name, version, st.servable)
        with self._lock:
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


def load_failure(error: Exception, version: int, path: Path) -> str:
    """Why a version failed to load, for clients (GetModelStatus): the version's folder is named
    as `<version N>`, so the server's file system layout is not shown to them."""
    message = f"{type(error).__name__}: {error}".splitlines()[0]
    for shown in sorted({str(path.resolve()), str(path.absolute()), str(path)}, key=len, reverse=True):
        message = message.replace(shown, f"<version {version}>")
    return shorten(message, 300)
