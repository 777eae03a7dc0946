"""The daemon's side of `queue.backend: celery`: send queued jobs to workers, take their replies in, resend lost ones.

One thread does it all, so replies are recorded one at a time: a second reply
for a job that is already done is ignored (and logged), whichever arrives
first wins. The store stays the source of truth: a job sent but unanswered
for `visibility_timeout_seconds` (worker host gone, broker restarted without
its data) is sent again, and a job claimed while the broker was down is sent
once it is back.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

import structlog
from structlog.contextvars import bound_contextvars

from hwdaemon.daemon.context import ThreadContext
from hwdaemon.daemon.executor import Executor
from hwdaemon.daemon.outcomes import Outcomes
from hwdaemon.distributed.celery_app import READ_TASK, make_app, queue_for, redacted
from hwdaemon.distributed.messages import ReadReply, ReadRequest
from hwdaemon.model import Result
from hwdaemon.store import Job, Store

if TYPE_CHECKING:
    from celery import Celery

log = structlog.get_logger()
BROKER_ERRORS_LOG_EVERY_SECONDS = 30.0
POLL_SECONDS = 0.05
IDLE_POLL_SECONDS = 0.5


def celery_executor(context: ThreadContext, outcomes: Outcomes) -> Executor:
    """One dispatcher thread: jobs go to `hwdaemon worker` processes through the broker."""
    return Executor(lambda number: Dispatcher(context, outcomes), 1, context, outcomes)


class Dispatcher(threading.Thread):
    def __init__(self, context: ThreadContext, outcomes: Outcomes) -> None:
        super().__init__(name="dispatcher", daemon=True)
        self._context = context
        self._outcomes = outcomes
        self.busy_since: float | None = None  # never stalls on one job; kept for the health check
        self.job_in_hand: Job | None = None  # jobs are out with workers, not in this thread's hand
        self._last_broker_error = 0.0
        self._in_flight = 0

    def run(self) -> None:
        config = self._context.runtime.config
        app = make_app(config.queue)
        store = Store(config.state_dir)
        log.info(
            "dispatcher_started", broker=redacted(config.queue.broker_url), max_in_flight=config.queue.max_in_flight
        )
        try:
            while not self._context.stopping.is_set():
                try:
                    busy = self._round(app, store)
                except Exception as exc:  # noqa: BLE001 (broker down: the store keeps everything; try again)
                    self._broker_trouble(exc)
                    busy = False
                    self._context.stopping.wait(2.0)
                if not busy:  # replies are polled: often while jobs are out, rarely when idle
                    self._context.work_available.wait(POLL_SECONDS if self._in_flight else IDLE_POLL_SECONDS)
                    self._context.work_available.clear()
        finally:
            store.close()

    def _round(self, app: Celery, store: Store) -> bool:
        """Collect replies, resend lost jobs, send new ones; True if anything happened."""
        busy = False
        queue = self._context.runtime.config.queue
        now = time.time()
        dispatched = store.dispatch.sent()
        in_flight = len(dispatched)
        for job, task_id, sent_at in dispatched:
            outcome = app.AsyncResult(task_id)
            if outcome.ready():
                self._take_reply(
                    store, job, task_id, outcome.result if outcome.successful() else None, now - sent_at, outcome.state
                )
                outcome.forget()
                in_flight -= 1
                busy = True
            elif now - sent_at > queue.visibility_timeout_seconds:
                log.warning("task_lost_resending", job_id=job.id, task_id=task_id, waited_seconds=round(now - sent_at))
                self._send(app, store, job)
                busy = True
        for job in store.dispatch.claimed_unsent():
            self._send(app, store, job)
            in_flight += 1
            busy = True
        while in_flight < queue.max_in_flight and not self._context.stopping.is_set():
            claimed = store.jobs.claim_next()
            if claimed is None:
                break
            self._send(app, store, claimed)
            in_flight += 1
            busy = True
        self._in_flight = in_flight
        return busy

    def _send(self, app: Celery, store: Store, job: Job) -> None:
        config = self._context.runtime.config
        previews = config.ui.preview_max_side if config.ui.previews else None
        path = job.path
        try:
            with open(path, "rb") as stream:
                size = stream.seek(0, 2)
                content = None
                if size <= config.queue.inline_max_bytes:
                    stream.seek(0)
                    content = stream.read()
        except OSError as exc:
            with bound_contextvars(job_id=job.id, file=job.path):
                self._outcomes.failed(store, job, f"cannot read the file to send it: {exc.strerror}", permanent=True)
            return
        name = path.rsplit("/", 1)[-1]
        if content is not None:
            request = ReadRequest.inline(job.id, job.sha256, job.profile, name, content, previews)
        else:
            request = ReadRequest(job.id, job.sha256, job.profile, name, path=path, previews_max_side=previews)
        task = app.send_task(READ_TASK, kwargs={"request": request.to_dict()}, queue=queue_for(job.profile))
        store.dispatch.mark_sent(job.id, task.id)
        log.info(
            "job_dispatched",
            job_id=job.id,
            task_id=task.id,
            queue=queue_for(job.profile),
            inline=content is not None,
            bytes=size,
        )

    def _take_reply(self, store: Store, job: Job, task_id: str, payload: object, seconds: float, state: str) -> None:
        with bound_contextvars(job_id=job.id, file=job.path, inbox=job.inbox, profile=job.profile, task_id=task_id):
            current = store.jobs.get(job.id)
            if current is None or current.state != "processing":
                log.warning("duplicate_result_ignored", state=current.state if current else None)
                return
            if not isinstance(payload, dict):
                self._outcomes.failed(store, job, f"the worker's task ended {state}: {payload!r}", permanent=False)
                return
            reply = ReadReply.from_dict(payload)
            if reply.job_id != job.id or reply.sha256 != job.sha256:
                log.error("result_rejected", reason="job id or sha256 does not match the store", reply_job=reply.job_id)
                store.jobs.retry_later(job.id, "a worker answered for another job or file", 0)
                return
            store.dispatch.set_worker(job.id, reply.worker)
            if reply.result is not None:
                self._outcomes.succeeded(store, job, Result.from_dict(reply.result), reply.preview_bytes(), seconds)
                return
            if reply.refused:
                log.error("job_refused_by_worker", worker=reply.worker, error=reply.error)
            self._outcomes.failed(store, job, reply.error or "the worker gave no result", permanent=reply.permanent)

    def _broker_trouble(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._last_broker_error > BROKER_ERRORS_LOG_EVERY_SECONDS:
            log.warning("broker_unavailable", error=f"{type(exc).__name__}: {exc}", retry_seconds=2)
            self._last_broker_error = now
