"""The delivery thread: hands stored results to sinks, retrying with backoff, dead-lettering at the end.

Runs apart from the workers, so a slow webhook never holds up recognition.
Delivery is at-least-once; each carries an idempotency key (input sha256 +
sink name, + revision for a reviewer's correction) so receivers can drop duplicates.
"""

from __future__ import annotations

import random
import threading
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from structlog.contextvars import bound_contextvars

from hwdaemon.config import DeliveryConfig
from hwdaemon.daemon.store import Delivery, Store
from hwdaemon.errors import PermanentDeliveryError, RetryableDeliveryError
from hwdaemon.sinks import Artifacts

if TYPE_CHECKING:
    from hwdaemon.daemon.service import Service

log = structlog.get_logger()


def backoff_seconds(attempt: int, policy: DeliveryConfig) -> float:
    """Exponential backoff with full jitter: uniform(0, min(max, base·2^attempt))."""
    ceiling = min(policy.backoff_max_seconds, policy.backoff_base_seconds * 2**attempt)
    return random.uniform(ceiling / 2, ceiling)


class DeliveryThread(threading.Thread):
    def __init__(self, service: Service) -> None:
        super().__init__(name="delivery", daemon=True)
        self._service = service

    def run(self) -> None:
        store = Store(self._service.runtime.config.state_dir)
        try:
            while not self._service.stopping.is_set():
                due = store.due_deliveries()
                for delivery in due:
                    if self._service.stopping.is_set():
                        break
                    self.deliver(store, delivery)
                if not due:
                    self._service.deliveries_available.wait(1.0)
                    self._service.deliveries_available.clear()
        finally:
            store.close()

    def deliver(self, store: Store, delivery: Delivery) -> None:
        runtime = self._service.runtime
        policy = runtime.config.delivery
        with bound_contextvars(job_id=delivery.job_id, sink=delivery.sink, delivery_id=delivery.id):
            sink = runtime.sink(delivery.sink)
            job = store.job(delivery.job_id)
            result = store.result_of(delivery.job_id, delivery.revision)
            if sink is None or job is None or result is None:
                reason = f"sink {delivery.sink!r} is no longer configured" if sink is None else "job result missing"
                store.dead_letter(delivery.id, reason)
                log.error("delivery_dead", error=reason)
                return
            artifacts = Artifacts(idempotency_key=delivery.idempotency_key, original_name=Path(job.path).name)
            try:
                receipt = sink.deliver(result, artifacts)
            except PermanentDeliveryError as exc:
                store.dead_letter(delivery.id, str(exc))
                self._count(delivery.sink, "dead")
                log.error("delivery_dead", error=str(exc), attempts=delivery.attempts + 1)
                return
            except Exception as exc:  # RetryableDeliveryError, or a sink bug: retry, keeping the traceback
                retry_after = exc.retry_after_seconds if isinstance(exc, RetryableDeliveryError) else None
                detail = str(exc) if isinstance(exc, RetryableDeliveryError) else traceback.format_exc(limit=6)
                attempts = delivery.attempts + 1
                too_old = time.time() - delivery.created_at > policy.max_age_seconds
                if attempts >= policy.max_attempts or too_old:
                    store.dead_letter(delivery.id, detail)
                    self._count(delivery.sink, "dead")
                    log.error("delivery_dead", error=str(exc), attempts=attempts)
                    return
                delay = retry_after if retry_after is not None else backoff_seconds(attempts, policy)
                store.schedule_redelivery(delivery.id, detail, delay)
                self._count(delivery.sink, "retry_scheduled")
                log.warning("delivery_retry_scheduled", error=str(exc), attempts=attempts, delay_seconds=round(delay, 2))
                return
            store.mark_delivered(delivery.id, receipt.location)
            self._count(delivery.sink, "delivered")
            log.info("delivered", location=receipt.location)

    def _count(self, sink: str, outcome: str) -> None:
        self._service.metrics.delivery_attempts.labels(sink, outcome).inc()
