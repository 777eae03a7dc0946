"""Per-request callbacks: an upload's `callback_url` gets its result like a sink, through the same delivery rows.

A callback is a delivery row whose sink is CALLBACK_SINK, added beside the
inbox's sinks when the job is read (Outcomes.succeeded), so it is retried
with backoff, dead-lettered and idempotent exactly as a sink is. It is posted
by the `webhook` sink class (the hwdaemon-webhook plugin) with the job's URL
and `api.callback_secret`: signed per Standard Webhooks, with the same retry
rules, deadline and redaction as a configured webhook.
"""

from __future__ import annotations

from typing import Any

from hwdaemon.config import PieceConfig
from hwdaemon.daemon.runtime import Runtime
from hwdaemon.errors import HwdaemonError, PermanentDeliveryError
from hwdaemon.sinks import Sink

CALLBACK_SINK = "api-callback"


def callback_sink(runtime: Runtime, url: str | None) -> Sink[Any]:
    """A webhook sink for one job's callback URL; PermanentDeliveryError when it cannot be made as configured now."""
    secret = runtime.config.api.callback_secret
    if url is None:
        raise PermanentDeliveryError("the job has no callback_url (it was forgotten, or never uploaded with one)")
    if secret is None:
        raise PermanentDeliveryError("api.callback_secret is no longer set: callbacks are off")
    piece = PieceConfig(type="webhook", options={"url": url, "secret": secret.get_secret_value()})
    try:
        sink: Sink[Any] = runtime.registry.create("sink", piece, CALLBACK_SINK)
    except (HwdaemonError, ValueError) as exc:  # the webhook plugin is not installed; a URL it refuses
        raise PermanentDeliveryError(f"cannot post callbacks: {exc}") from exc
    return sink
