"""A job's outcome, recorded in one place: success, failure, retry, refusal at intake — store, files, deliveries, metrics, hooks.

Local worker threads and the Celery dispatcher both end every job here, so a
result read on another host is filed, delivered and counted exactly as one
read in this process.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import structlog

from hwdaemon.config import InboxConfig
from hwdaemon.daemon.callbacks import CALLBACK_SINK
from hwdaemon.daemon.context import ThreadContext
from hwdaemon.daemon.filing import file_done, file_failed, filing_root
from hwdaemon.daemon.previews import save_previews
from hwdaemon.daemon.runtime import inbox_key_of
from hwdaemon.hookspecs import FailedJob
from hwdaemon.model import Result
from hwdaemon.store import Job, Store

log = structlog.get_logger()


class Outcomes:
    def __init__(self, context: ThreadContext) -> None:
        self._context = context

    def succeeded(self, store: Store, job: Job, result: Result, previews: dict[int, bytes], seconds: float) -> None:
        """A job's result is in (read here or by a remote worker): store it with its deliveries, file the original."""
        runtime = self._context.runtime
        inbox = runtime.inbox_for(job.inbox)
        sinks = inbox.sinks if inbox else []
        upload = store.uploads.of_job(job.id)
        if upload is not None and upload.callback_url:
            sinks = [*sinks, CALLBACK_SINK]
        if previews:
            save_previews(previews, runtime.config.state_dir, job.id)
        review_below = runtime.config.review_below(job.profile)
        needs_review = any(line.confidence < review_below for line in result.lines)
        store.jobs.finish(
            job.id, result, sinks, needs_review=needs_review, hold=inbox is not None and inbox.review == "required"
        )
        root = filing_root(job.path, job.inbox, runtime.config.state_dir)
        final = file_done(Path(job.path), inbox.after if inbox else "keep", root)
        if final is not None:
            store.jobs.set_final_path(job.id, str(final))
        self._context.deliveries_available.set()  # after filing: a delivery that needs the original finds it
        metrics = self._context.metrics
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
        self.call_hook("hwdaemon_job_done", result=result)

    def failed(self, store: Store, job: Job, error: str, permanent: bool, trace: str | None = None) -> None:
        """A job failed: retry a transient failure later (up to max_attempts), else file the original in failed/ with its report."""
        if not permanent and job.attempts < self._context.runtime.config.max_attempts:
            delay = min(300.0, 5.0 * 2 ** (job.attempts - 1)) * random.uniform(0.8, 1.2)
            store.jobs.retry_later(job.id, error, delay)
            self._context.metrics.jobs_finished.labels("retry_scheduled").inc()
            log.warning("job_retry_scheduled", error=error, delay_seconds=round(delay, 1))
            return
        store.jobs.fail(job.id, error)
        final = file_failed(
            Path(job.path),
            filing_root(job.path, job.inbox, self._context.runtime.config.state_dir),
            error,
            job.attempts,
            {"job_id": job.id, "permanent": permanent, "traceback": trace},
        )
        if final is not None:
            store.jobs.set_final_path(job.id, str(final))
        self._context.metrics.jobs_finished.labels("failed").inc()
        log.error("job_failed", error=error, attempts=job.attempts, moved_to=str(final) if final else None)
        public = FailedJob(
            id=job.id,
            path=job.path,
            inbox=job.inbox,
            profile=job.profile,
            sha256=job.sha256,
            attempts=job.attempts,
            error=error,
        )
        self.call_hook("hwdaemon_job_failed", job=public, error=error)

    def refused(self, store: Store, inbox: InboxConfig, path: Path, reason: str, info: os.stat_result | None) -> None:
        """A file that cannot become a job: a failed job, and the file in failed/ with its report where it can be moved.

        One that cannot be moved either stays where it is, failed in the store (`status`
        shows it) and recorded with its size and mtime, so it is not taken again until it changes.
        """
        size, mtime_ns = (info.st_size, info.st_mtime_ns) if info else (0, 0)
        key = inbox_key_of(inbox)
        job = store.jobs.add(str(path), key, inbox.profile, "", size, mtime_ns, "failed", reason)
        self._context.metrics.files_seen.labels(key, "refused").inc()
        try:
            final = file_failed(
                path, Path(key), reason, 0, {"job_id": job.id, "permanent": True, "original_name": path.name}
            )
        except OSError as exc:
            log.error(
                "file_refused",
                job_id=job.id,
                error=reason,
                moved_to=None,
                move_error=f"{exc.strerror} (errno {exc.errno})",
            )
            return
        if final is not None:
            store.jobs.set_final_path(job.id, str(final))
        log.error("file_refused", job_id=job.id, error=reason, moved_to=str(final) if final else None)

    def fail_jobs_that_crashed_the_process(self, store: Store) -> None:
        """At start-up: a job in hand when the process died counted as an attempt; past max_attempts it is failed.

        Without this a file that gets the daemon killed (by the kernel, for memory)
        is taken again at every start, forever.
        """
        limit = self._context.runtime.config.max_attempts
        for job in store.jobs.in_hand():
            if job.attempts >= limit:
                error = f"the daemon stopped while reading this file, {job.attempts} times (killed for memory, or a crash); it is not read again"
                self.failed(store, job, error, permanent=True)

    def call_hook(self, name: str, **kwargs: Any) -> None:
        """Event hooks are for observers: a failing one is logged, never fatal."""
        try:
            getattr(self._context.runtime.registry.manager.hook, name)(**kwargs)
        except Exception as exc:
            log.warning("hook_failed", hook=name, error=f"{type(exc).__name__}: {exc}")
