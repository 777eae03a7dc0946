"""Delivery: hands stored results to sinks, retrying with backoff, dead-lettering at the end.

Runs apart from the workers, so a slow webhook never holds up recognition, and
one lane (thread and queue) per sink, so a slow sink never holds up another:
the dispatcher (`DeliveryThread`) finds due deliveries and hands each to its
sink's lane; a lane delivers its sink's results one at a time, in order.
Delivery is at-least-once; each carries an idempotency key (input sha256 +
sink name, + revision for a reviewer's correction) so receivers can drop duplicates.

Every exception in a delivery ends as a retry or a dead letter; one that
escapes even that (the store failing) is logged, and the delivery is taken
again later. A lane that dies anyway is restarted by the dispatcher.
"""

from __future__ import annotations

import queue
import random
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import structlog
from structlog.contextvars import bound_contextvars

from hwdaemon.config import DeliveryConfig
from hwdaemon.daemon.callbacks import CALLBACK_SINK, callback_sink
from hwdaemon.daemon.context import ThreadContext
from hwdaemon.errors import PermanentDeliveryError, RetryableDeliveryError
from hwdaemon.redaction import redact_urls_in
from hwdaemon.sinks import Artifacts, DeliveryReceipt
from hwdaemon.store import Delivery, Job, Store

log = structlog.get_logger()

BATCH = 50  # due deliveries taken per look at the store, beyond those already handed to lanes
PAUSE_AFTER_CRASH_SECONDS = 5.0  # a lane whose store fails does not retry in a tight loop


def backoff_seconds(attempt: int, policy: DeliveryConfig) -> float:
    """Exponential backoff with jitter: uniform(ceiling/2, ceiling), ceiling = min(max, base·2^attempt)."""
    ceiling = min(policy.backoff_max_seconds, policy.backoff_base_seconds * 2**attempt)
    return random.uniform(ceiling / 2, ceiling)


def retry_delay_seconds(attempt: int, retry_after_seconds: float | None, policy: DeliveryConfig) -> float:
    """The server's Retry-After when it gave one, but never past backoff_max_seconds (a receiver cannot park a delivery for years)."""
    if retry_after_seconds is None:
        return backoff_seconds(attempt, policy)
    return min(max(0.0, retry_after_seconds), policy.backoff_max_seconds)


class DeliveryThread(threading.Thread):
    """The dispatcher. `is_alive()` is its own; `is_healthy()` also needs every sink's lane alive."""

    def __init__(self, context: ThreadContext) -> None:
        super().__init__(name="delivery", daemon=True)
        self._context = context
        self._lanes: dict[str, SinkLane] = {}
        self._claimed: dict[int, str] = {}  # delivery id → sink, from hand-off until its lane is done with it
        self._lock = threading.Lock()

    def run(self) -> None:
        store = Store(self._context.runtime.config.state_dir)
        try:
            while not self._context.stopping.is_set():
                try:
                    self._restart_dead_lanes()
                    handed = self._dispatch(store)
                except Exception:  # noqa: BLE001 (a locked or full store: look again shortly)
                    log.exception("delivery_dispatch_failed")
                    handed = 0
                if not handed:
                    self._context.deliveries_available.wait(1.0)
                    self._context.deliveries_available.clear()
        finally:
            for lane in self._lanes.values():
                lane.stop()  # a dispatcher started in this one's place hands out the same deliveries
            store.close()

    def _dispatch(self, store: Store) -> int:
        with self._lock:
            claimed = len(self._claimed)
        # Claimed deliveries stay due in the store until their lane records the outcome, so ask
        # for BATCH beyond them: a sink with a long backlog cannot crowd the others out of the page.
        handed = 0
        for delivery in store.deliveries.due(limit=BATCH + claimed):
            with self._lock:
                if delivery.id in self._claimed:
                    continue
                self._claimed[delivery.id] = delivery.sink
            self._lane(delivery.sink).queue.put(delivery)
            handed += 1
        return handed

    def _lane(self, sink: str) -> SinkLane:
        lane = self._lanes.get(sink)
        if lane is None:
            lane = self._lanes[sink] = SinkLane(self._context, sink, self._release)
            lane.start()
        return lane

    def _restart_dead_lanes(self) -> None:
        for sink, lane in list(self._lanes.items()):
            if not lane.is_alive():
                self._context.health.thread_restarted(lane.name)
                with self._lock:  # what it held goes back to the store's due list
                    self._claimed = {key: value for key, value in self._claimed.items() if value != sink}
                del self._lanes[sink]
                self._lane(sink)

    def _release(self, delivery_id: int) -> None:
        with self._lock:
            self._claimed.pop(delivery_id, None)

    def is_healthy(self) -> bool:
        """The dispatcher and every sink lane alive (a dead lane is restarted within a second)."""
        return self.is_alive() and all(lane.is_alive() for lane in list(self._lanes.values()))

    def join(self, timeout: float | None = None) -> None:
        """Wait for the dispatcher, then the lanes, within `timeout` seconds in all."""
        deadline = None if timeout is None else time.monotonic() + timeout
        super().join(timeout)
        for lane in list(self._lanes.values()):
            lane.join(None if deadline is None else max(0.0, deadline - time.monotonic()))


class SinkLane(threading.Thread):
    """Delivers one sink's results in turn from its queue; `None` in the queue ends it."""

    def __init__(self, context: ThreadContext, sink: str, release: Callable[[int], None]) -> None:
        super().__init__(name=f"delivery-{sink}", daemon=True)
        self._context = context
        self._release = release
        self.queue: queue.Queue[Delivery | None] = queue.Queue()
        self._stopped = threading.Event()

    def stop(self) -> None:
        """End after the delivery in hand; what is still queued stays due in the store."""
        self._stopped.set()
        self.queue.put(None)

    def run(self) -> None:
        store = Store(self._context.runtime.config.state_dir)
        try:
            while (delivery := self.queue.get()) is not None and not (
                self._stopped.is_set() or self._context.stopping.is_set()
            ):
                try:
                    deliver(self._context, store, delivery)
                except Exception:  # noqa: BLE001 (the store failed recording the outcome: the delivery stays due)
                    log.exception("delivery_not_recorded", delivery_id=delivery.id, sink=delivery.sink)
                    self._context.stopping.wait(PAUSE_AFTER_CRASH_SECONDS)
                finally:
                    self._release(delivery.id)
        finally:
            store.close()


def deliver(context: ThreadContext, store: Store, delivery: Delivery) -> None:
    """One attempt at one delivery; its outcome (delivered, retry, dead letter) is written to the store."""
    policy = context.runtime.config.delivery
    with bound_contextvars(job_id=delivery.job_id, sink=delivery.sink, delivery_id=delivery.id):
        attempts = delivery.attempts + 1
        try:
            receipt = _attempt(context, store, delivery)
        except PermanentDeliveryError as exc:
            error = redact_urls_in(str(exc))
            store.deliveries.dead_letter(delivery.id, error)
            _count(context, delivery.sink, "dead")
            log.error("delivery_dead", error=error, attempts=attempts)
            return
        except Exception as exc:  # RetryableDeliveryError, or a sink bug: retry, keeping the traceback
            retry_after = exc.retry_after_seconds if isinstance(exc, RetryableDeliveryError) else None
            detail = redact_urls_in(
                str(exc) if isinstance(exc, RetryableDeliveryError) else traceback.format_exc(limit=6)
            )
            error = redact_urls_in(str(exc))
            too_old = time.time() - delivery.created_at > policy.max_age_seconds
            if attempts >= policy.max_attempts or too_old:
                store.deliveries.dead_letter(delivery.id, detail)
                _count(context, delivery.sink, "dead")
                log.error("delivery_dead", error=error, attempts=attempts)
                return
            delay = retry_delay_seconds(attempts, retry_after, policy)
            store.deliveries.retry_later(delivery.id, detail, delay)
            _count(context, delivery.sink, "retry_scheduled")
            log.warning(
                "delivery_retry_scheduled",
                error=error,
                attempts=attempts,
                delay_seconds=round(delay, 2),
                retry_after_seconds=retry_after,
            )
            return
        location = redact_urls_in(receipt.location)
        store.deliveries.mark_delivered(delivery.id, location)
        _count(context, delivery.sink, "delivered")
        log.info("delivered", location=location)


def _attempt(context: ThreadContext, store: Store, delivery: Delivery) -> DeliveryReceipt:
    if delivery.sink == CALLBACK_SINK:  # an upload's own callback_url: a webhook made for this job
        upload = store.uploads.of_job(delivery.job_id)
        sink = callback_sink(context.runtime, upload.callback_url if upload else None)
    else:
        configured = context.runtime.sink(delivery.sink)
        if configured is None:
            raise PermanentDeliveryError(f"sink {delivery.sink!r} is no longer configured")
        sink = configured
    job = store.jobs.get(delivery.job_id)
    result = store.jobs.result_of(delivery.job_id, delivery.revision)
    if job is None or result is None:
        raise PermanentDeliveryError("job result missing")
    artifacts = Artifacts(
        idempotency_key=delivery.idempotency_key, original_name=Path(job.path).name, original_path=_original_of(job)
    )
    try:
        return sink.deliver(result, artifacts)
    finally:
        if delivery.sink == CALLBACK_SINK:
            sink.close()


def _original_of(job: Job) -> Path | None:
    """Where the scan lies now: in processed/ once filed, else where it was read; None once deleted or moved away."""
    for candidate in (job.final_path, job.path):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def _count(context: ThreadContext, sink: str, outcome: str) -> None:
    context.metrics.delivery_attempts.labels(sink, outcome).inc()
