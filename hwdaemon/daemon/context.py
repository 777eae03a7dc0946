"""What the daemon's threads share, and nothing more: the current runtime, the events that pace them, metrics, health.

Workers, the Celery dispatcher and the delivery threads get this object, not
the Service, so none of them can reach into the lifecycle (observers, intake,
reload). The Service swaps `runtime` whole on SIGHUP; a thread reads it once
per job or delivery, so a reload never changes the rules halfway through one.
"""

from __future__ import annotations

import threading
import time

import structlog

from hwdaemon.daemon.runtime import Runtime
from hwdaemon.metrics import Metrics

log = structlog.get_logger()
STORE_TROUBLE_SECONDS = 30.0  # how long health reports a store failure after the last one


class ThreadContext:
    def __init__(self, runtime: Runtime, metrics: Metrics) -> None:
        self.runtime = runtime
        self.metrics = metrics
        self.health = HealthBoard(metrics)
        self.stopping = threading.Event()
        self.work_available = threading.Event()
        self.deliveries_available = threading.Event()


class HealthBoard:
    """Conditions a thread reports and /healthz and the systemd watchdog read: store failures, thread restarts."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._lock = threading.Lock()
        self._store_trouble: tuple[float, str] | None = None  # (monotonic time, error) of the last store failure
        self.thread_restarts = 0

    def store_failed(self, exc: Exception) -> None:
        """A thread could not read or write the store (disk full, I/O error): logged once, reported until it clears.

        The thread that saw it keeps its job and tries again; health shows the
        condition for STORE_TROUBLE_SECONDS after the last failure.
        """
        with self._lock:
            is_new = self._store_trouble is None or time.monotonic() - self._store_trouble[0] >= STORE_TROUBLE_SECONDS
            self._store_trouble = (time.monotonic(), f"{type(exc).__name__}: {exc}")
        if is_new:
            log.error("store_unavailable", error=str(exc))

    def store_error(self) -> str | None:
        trouble = self._store_trouble
        return trouble[1] if trouble is not None and time.monotonic() - trouble[0] < STORE_TROUBLE_SECONDS else None

    def thread_restarted(self, name: str, **details: object) -> None:
        """A thread that died anyway (a plugin's SystemExit, a bug) is being replaced."""
        log.error("thread_restarted", thread=name, **details)
        with self._lock:
            self.thread_restarts += 1
        self._metrics.thread_restarts.labels(name).inc()
