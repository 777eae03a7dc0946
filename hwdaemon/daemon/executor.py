"""Who runs queued jobs: threads of one kind — local worker threads, or the Celery dispatcher — kept alive.

The Service knows only this class. `worker.local_executor` and
`distributed.coordinator.celery_executor` build the two kinds; the composition
in `compose.py` picks one from `queue.backend`. A thread that dies anyway is
replaced here, and the job it held is given back as a counted attempt.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any, Protocol

import structlog

from hwdaemon.daemon.context import ThreadContext
from hwdaemon.daemon.outcomes import Outcomes
from hwdaemon.store import Job, Store

log = structlog.get_logger()


class JobThread(Protocol):
    """A thread that takes jobs from the store; `busy_since` and `job_in_hand` are read by health and supervision."""

    name: str
    busy_since: float | None
    job_in_hand: Job | None

    def start(self) -> None: ...
    def is_alive(self) -> bool: ...
    def join(self, timeout: float | None = None) -> None: ...


class Executor:
    def __init__(
        self, make_thread: Callable[[int], JobThread], count: int, context: ThreadContext, outcomes: Outcomes
    ) -> None:
        self._make_thread = make_thread
        self._context = context
        self._outcomes = outcomes
        self._threads = [make_thread(number) for number in range(1, count + 1)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def join(self, timeout: float) -> None:
        for thread in self._threads:
            thread.join(timeout=timeout)

    def supervise(self, store: Store) -> None:
        """Replace a thread that died (a plugin's SystemExit, a bug); its job counts the attempt and fails past max_attempts."""
        for index, thread in enumerate(self._threads):
            if thread.is_alive():
                continue
            job = thread.job_in_hand
            self._context.health.thread_restarted(thread.name, job_id=job.id if job else None)
            if job is not None:
                try:
                    self._outcomes.failed(
                        store,
                        job,
                        f"the thread reading this file ({thread.name}) ended without an outcome",
                        permanent=False,
                    )
                except (sqlite3.Error, OSError) as exc:
                    log.error("job_outcome_not_recorded", job_id=job.id, error=str(exc))
            self._threads[index] = self._make_thread(index + 1)
            self._threads[index].start()

    def health(self, job_timeout_seconds: float) -> list[dict[str, Any]]:
        """Each thread: alive, and how long its job has run (stalled past job_timeout_seconds)."""
        now = time.monotonic()
        report = []
        for thread in self._threads:
            busy_since = thread.busy_since
            busy_seconds = None if busy_since is None else round(now - busy_since, 1)
            stalled = busy_seconds is not None and busy_seconds > job_timeout_seconds
            report.append(
                {"name": thread.name, "alive": thread.is_alive(), "busy_seconds": busy_seconds, "stalled": stalled}
            )
        return report
