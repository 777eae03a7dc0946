"""Worker threads: take a queued job, run its profile's pipeline, store the result, file the original.

Threads, not processes: ONNX Runtime (and torch, for EasyOCR profiles) releases the
GIL during inference and already spreads one page over every core, and threads share
the loaded networks (processes would each hold their own copy). `workers: N` starts N threads.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from structlog.contextvars import bound_contextvars

from hwdaemon.daemon.files import move_into, write_error_report
from hwdaemon.daemon.filters import FAILED_FOLDER, PROCESSED_FOLDER
from hwdaemon.daemon.previews import previewed, save_previews
from hwdaemon.store import Job, Store
from hwdaemon.errors import HwdaemonError, InputFileError
from hwdaemon.inputs import open_document
from hwdaemon.model import Result

if TYPE_CHECKING:
    from hwdaemon.daemon.service import Service

log = structlog.get_logger()
STORE_RETRY_SECONDS = 5.0


class Worker(threading.Thread):
    """Claims and reads jobs until the service stops; no job and no store error ends the thread."""

    def __init__(self, service: Service, number: int) -> None:
        super().__init__(name=f"worker-{number}", daemon=True)
        self._service = service
        self.busy_since: float | None = None  # monotonic start of the job in hand
        self.job_in_hand: Job | None = None

    def run(self) -> None:
        store = Store(self._service.runtime.config.state_dir)
        try:
            while not self._service.stopping.is_set():
                try:
                    job = store.jobs.claim_next()
                except sqlite3.Error as exc:
                    self._service.store_trouble(exc)
                    self._service.stopping.wait(STORE_RETRY_SECONDS)
                    continue
                if job is None:
                    self._service.work_available.wait(0.5)
                    self._service.work_available.clear()
                    continue
                self.busy_since, self.job_in_hand = time.monotonic(), job
                try:
                    self._run_job(store, job)
                except Exception as exc:  # the store is full, the inbox unwritable, a bug: the job goes back, the thread goes on
                    log.error("job_outcome_not_recorded", job_id=job.id, error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(limit=8))
                    self._give_back(store, job, exc)
                self.busy_since, self.job_in_hand = None, None  # left set if the thread dies: the service gives the job back
        finally:
            store.close()

    def _give_back(self, store: Store, job: Job, exc: Exception) -> None:
        """Queue the job again, trying until the store takes it (a full disk) or the service stops."""
        if isinstance(exc, sqlite3.Error):
            self._service.store_trouble(exc)
        while not self._service.stopping.is_set():
            try:
                store.jobs.give_back(job.id, f"{type(exc).__name__}: {exc}", STORE_RETRY_SECONDS)
                return
            except sqlite3.Error as again:
                self._service.store_trouble(again)
                self._service.stopping.wait(STORE_RETRY_SECONDS)

    def _run_job(self, store: Store, job: Job) -> None:
        runtime = self._service.runtime
        with bound_contextvars(job_id=job.id, file=job.path, inbox=job.inbox, profile=job.profile):
            started = time.perf_counter()
            log.info("job_started", attempt=job.attempts)
            previews: dict[int, bytes] = {}
            path = Path(job.path)
            try:
                pipeline = runtime.pipeline(job.profile)
                with open_document(path, runtime.config.inputs, inside=_inbox_holding(path, job.inbox)) as document:
                    if runtime.config.ui.previews:
                        document = previewed(document, runtime.config.ui.preview_max_side, previews)
                    result = pipeline.run(document)
            except InputFileError as exc:
                record_failure(self._service, store, job, exc.reason, permanent=True)
                return
            except (HwdaemonError, Exception) as exc:  # out of memory, a worker bug, a plugin crash: maybe transient
                record_failure(self._service, store, job, f"{type(exc).__name__}: {exc}", permanent=False, trace=traceback.format_exc(limit=8))
                return
            record_success(self._service, store, job, result, previews, time.perf_counter() - started)


def _inbox_holding(path: Path, inbox: str) -> Path | None:
    """The inbox a job's file must resolve into; None for a file an operator queued from elsewhere (`reprocess`)."""
    return Path(inbox) if path.absolute().is_relative_to(inbox) else None


def record_success(service: Service, store: Store, job: Job, result: Result, previews: dict[int, bytes], seconds: float) -> None:
    """A job's result is in (read here or by a remote worker): store it with its deliveries, file the original."""
    runtime = service.runtime
    inbox = runtime.inbox_for(job.inbox)
    sinks = inbox.sinks if inbox else []
    if previews:
        save_previews(previews, runtime.config.state_dir, job.id)
    review_below = runtime.config.review_below(job.profile)
    needs_review = any(line.confidence < review_below for line in result.lines)
    store.jobs.finish(job.id, result, sinks, needs_review=needs_review, hold=inbox is not None and inbox.review == "required")
    service.deliveries_available.set()
    final = _file_original(Path(job.path), inbox.after if inbox else "keep", Path(job.inbox) / PROCESSED_FOLDER)
    if final is not None:
        store.jobs.set_final_path(job.id, str(final))
    metrics = service.metrics
    metrics.jobs_finished.labels("done").inc()
    metrics.job_seconds.observe(seconds)
    for stage, stage_seconds in result.timings.items():
        metrics.stage_seconds.labels(stage).observe(stage_seconds)
    log.info(
        "job_done",
        seconds=round(seconds, 3),
        pipeline_seconds=round(sum(result.timings.values()), 3),
        pages=len(result.pages),
        lines=len(result.lines),
        mean_confidence=result.mean_confidence,
        sinks=sinks,
    )
    service.call_hook("hwdaemon_job_done", result=result)


def record_failure(service: Service, store: Store, job: Job, error: str, permanent: bool, trace: str | None = None) -> None:
    """A job failed: retry a transient failure later (up to max_attempts), else move the file to failed/ with its report."""
    if not permanent and job.attempts < service.runtime.config.max_attempts:
        delay = min(300.0, 5.0 * 2 ** (job.attempts - 1)) * random.uniform(0.8, 1.2)
        store.jobs.retry_later(job.id, error, delay)
        service.metrics.jobs_finished.labels("retry_scheduled").inc()
        log.warning("job_retry_scheduled", error=error, delay_seconds=round(delay, 1))
        return
    store.jobs.fail(job.id, error)
    path = Path(job.path)
    final = None
    if path.exists() or path.is_symlink():
        final = move_into(path, Path(job.inbox) / FAILED_FOLDER, with_report=True)
        write_error_report(final, error, job.attempts, {"job_id": job.id, "permanent": permanent, "traceback": trace})
        store.jobs.set_final_path(job.id, str(final))
    service.metrics.jobs_finished.labels("failed").inc()
    log.error("job_failed", error=error, attempts=job.attempts, moved_to=str(final) if final else None)
    service.call_hook("hwdaemon_job_failed", job=job, error=error)


def _file_original(path: Path, after: str, processed: Path) -> Path | None:
    if after == "move" and path.exists():
        if path.absolute().parent == processed.absolute():
            return path  # reprocessed from processed/: already filed
        return move_into(path, processed)
    if after == "delete":
        path.unlink(missing_ok=True)
    return None
