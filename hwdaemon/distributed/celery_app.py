"""The Celery app both sides build from `queue:`: JSON only, late acks, one queue per profile.

A queue per profile routes each job to hosts that have that profile's models;
`acks_late` + `reject_on_worker_lost` give a job back to the broker when its
worker dies, and the broker's visibility timeout hands unacknowledged jobs of
a vanished host to another one.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from hwdaemon.config import QueueConfig
from hwdaemon.redaction import redact_url

READ_TASK = "hwdaemon.read"
QUEUE_PREFIX = "hwdaemon."


def queue_for(profile: str) -> str:
    return QUEUE_PREFIX + profile


def make_app(queue: QueueConfig) -> Celery:
    app = Celery("hwdaemon", broker=queue.broker_url, backend=queue.result_backend or queue.broker_url)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options={"visibility_timeout": queue.visibility_timeout_seconds},
        result_backend_transport_options={"visibility_timeout": queue.visibility_timeout_seconds},
        result_expires=86400,
        broker_connection_retry_on_startup=True,
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1},
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    return app


def redacted(url: str | None) -> str:
    """A broker URL fit for logs: the password (and any query value) replaced by ***."""
    return redact_url(url or "")


def broker_overview(queue: QueueConfig, profiles: list[str], timeout: float = 1.0) -> dict[str, Any]:
    """Messages waiting per profile queue, and the workers answering a ping (for `hwdaemon status`)."""
    app = make_app(queue)
    overview: dict[str, Any] = {"broker": redacted(queue.broker_url), "queues": {}, "workers_online": []}
    try:
        with app.connection_for_read() as connection:
            connection.ensure_connection(max_retries=1)
            channel = connection.default_channel
            for profile in profiles:
                try:
                    overview["queues"][queue_for(profile)] = channel.queue_declare(
                        queue=queue_for(profile), passive=True
                    ).message_count
                except Exception:  # noqa: BLE001 (a queue nobody declared yet is empty)
                    overview["queues"][queue_for(profile)] = 0
        replies = app.control.inspect(timeout=timeout).ping() or {}
        overview["workers_online"] = sorted(replies)
    except Exception as exc:  # noqa: BLE001 (status must still print the store's part)
        overview["error"] = f"broker unreachable: {type(exc).__name__}: {exc}"
    return overview
