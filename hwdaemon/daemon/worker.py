"""Worker threads: take a queued job, run its profile's pipeline, store the result, file the original.

Threads, not processes: ONNX Runtime (and torch, for EasyOCR profiles) releases the
GIL during inference and already spreads one page over every core, and threads share
the loaded networks (processes would each hold their own copy). `workers: N` starts N threads.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import traceback
from pathlib import Path

import structlog
from structlog.contextvars import bound_contextvars

from hwdaemon.daemon.context import ThreadContext
from hwdaemon.daemon.executor import Executor
from hwdaemon.daemon.filing import filing_root
from hwdaemon.daemon.outcomes import Outcomes
from hwdaemon.daemon.previews import previewed
from hwdaemon.errors import InputFileError
from hwdaemon.inputs import open_document
from hwdaemon.store import Job, Store

log = structlog.get_logger()
STORE_RETRY_SECONDS = 5.0


class Worker(threading.Thread):
    """Claims and reads jobs until the daemon stops; no job and no store error ends the thread."""

    def __init__(self, context: ThreadContext, outcomes: Outcomes, number: int) -> None:
        super().__init__(name=f"worker-{number}", daemon=True)
        self._context = context
        self._outcomes = outcomes
        self.busy_since: float | None = None  # monotonic start of the job in hand
        self.job_in_hand: Job | None = None

    def run(self) -> None:
        context = self._context
        store = Store(context.runtime.config.state_dir)
        try:
            while not context.stopping.is_set():
                try:
                    job = store.jobs.claim_next()
                except sqlite3.Error as exc:
                    context.health.store_failed(exc)
                    context.stopping.wait(STORE_RETRY_SECONDS)
                    continue
                if job is None:
                    context.work_available.wait(0.5)
                    context.work_available.clear()
                    continue
                self.busy_since, self.job_in_hand = time.monotonic(), job
                try:
                    self._run_job(store, job)
                except Exception as exc:
                    # the store is full, the inbox unwritable, a bug: the job goes back, the thread goes on
                    log.error(
                        "job_outcome_not_recorded",
                        job_id=job.id,
                        error=f"{type(exc).__name__}: {exc}",
                        traceback=traceback.format_exc(limit=8),
                    )
                    self._give_back(store, job, exc)
                # left set if the thread dies: the executor gives the job back
                self.busy_since, self.job_in_hand = None, None
        finally:
            store.close()

    def _give_back(self, store: Store, job: Job, exc: Exception) -> None:
        """Queue the job again, trying until the store takes it (a full disk) or the daemon stops."""
        if isinstance(exc, sqlite3.Error):
            self._context.health.store_failed(exc)
        while not self._context.stopping.is_set():
            try:
                store.jobs.give_back(job.id, f"{type(exc).__name__}: {exc}", STORE_RETRY_SECONDS)
                return
            except sqlite3.Error as again:
                self._context.health.store_failed(again)
                self._context.stopping.wait(STORE_RETRY_SECONDS)

    def _run_job(self, store: Store, job: Job) -> None:
        runtime = self._context.runtime
        with bound_contextvars(job_id=job.id, file=job.path, inbox=job.inbox, profile=job.profile):
            started = time.perf_counter()
            log.info("job_started", attempt=job.attempts)
            previews: dict[int, bytes] = {}
            path = Path(job.path)
            try:
                pipeline = runtime.pipeline(job.profile)
                with open_document(
                    path, runtime.config.inputs, inside=_folder_holding(path, job, runtime.config.state_dir)
                ) as document:
                    if runtime.config.ui.previews:
                        document = previewed(document, runtime.config.ui.preview_max_side, previews)
                    result = pipeline.run(document)
            except InputFileError as exc:
                self._outcomes.failed(store, job, exc.reason, permanent=True)
                return
            except Exception as exc:  # out of memory, a worker bug, a plugin crash: maybe transient
                self._outcomes.failed(
                    store, job, f"{type(exc).__name__}: {exc}", permanent=False, trace=traceback.format_exc(limit=8)
                )
                return
            self._outcomes.succeeded(store, job, result, previews, time.perf_counter() - started)


def local_executor(context: ThreadContext, outcomes: Outcomes) -> Executor:
    """`workers: N` threads reading jobs in this process."""
    return Executor(lambda number: Worker(context, outcomes, number), context.runtime.config.workers, context, outcomes)


def _folder_holding(path: Path, job: Job, state_dir: Path) -> Path | None:
    """The inbox (or uploads folder) a job's file must resolve into; None for a file an operator queued from elsewhere (`reprocess`)."""
    folder = filing_root(job.path, job.inbox, state_dir)
    return folder if path.absolute().is_relative_to(folder) else None
