"""The `webhook` sink: each result is POSTed as JSON, signed per the Standard Webhooks spec.

Headers: `webhook-id` (the delivery's idempotency key: the same on every retry,
so receivers can drop duplicates), `webhook-timestamp`, `webhook-signature`
(`v1,<base64 HMAC-SHA256 of id.timestamp.body>`), and `Idempotency-Key`.
Retry semantics: network errors, 408, 429 (Retry-After honoured) and 5xx are
retryable; other 4xx and TLS failures are permanent.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path

import requests
from pydantic import Field, HttpUrl, SecretStr
from standardwebhooks.webhooks import Webhook

from hwdaemon.errors import PermanentDeliveryError, RetryableDeliveryError
from hwdaemon.hookspecs import hookimpl
from hwdaemon.model import Result
from hwdaemon.sinks import Artifacts, DeliveryReceipt, Sink, SinkOptions

RETRYABLE_STATUS = frozenset({408, 425, 429})


class WebhookOptions(SinkOptions):
    url: HttpUrl
    secret: SecretStr | None = Field(default=None, description="whsec_… base64 secret shared with the receiver; unsigned when absent")
    headers: dict[str, str] = Field(default_factory=dict)
    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    read_timeout_seconds: float = Field(default=30.0, gt=0)
    verify_tls: bool = True
    ca_bundle: Path | None = Field(default=None, description="PEM file of CAs to trust instead of the system's")


class WebhookSink(Sink):
    name = "webhook"
    Options = WebhookOptions

    def __init__(self, options: WebhookOptions, instance_name: str) -> None:  # type: ignore[override]
        super().__init__(options, instance_name)
        self._session = requests.Session()
        self._signer = Webhook(options.secret.get_secret_value()) if options.secret else None

    def deliver(self, result: Result, artifacts: Artifacts) -> DeliveryReceipt:
        options: WebhookOptions = self.options  # type: ignore[assignment]
        body = json.dumps(
            {"type": "hwdaemon.result", "idempotency_key": artifacts.idempotency_key, "original_name": artifacts.original_name, "result": result.to_dict()},
            ensure_ascii=False,
        )
        headers = {**options.headers, "Content-Type": "application/json", "Idempotency-Key": artifacts.idempotency_key}
        if self._signer is not None:
            now = datetime.now(timezone.utc)
            headers["webhook-id"] = artifacts.idempotency_key
            headers["webhook-timestamp"] = str(int(now.timestamp()))
            headers["webhook-signature"] = self._signer.sign(artifacts.idempotency_key, now, body)
        url = str(options.url)
        verify: bool | str = str(options.ca_bundle) if options.ca_bundle else options.verify_tls
        try:
            response = self._session.post(
                url, data=body.encode(), headers=headers, timeout=(options.connect_timeout_seconds, options.read_timeout_seconds), verify=verify
            )
        except requests.exceptions.SSLError as exc:
            raise PermanentDeliveryError(f"TLS verification of {url} failed: {exc}; fix the certificate or set ca_bundle") from exc
        except requests.RequestException as exc:
            raise RetryableDeliveryError(f"POST {url} failed: {type(exc).__name__}: {exc}") from exc
        status = response.status_code
        if 200 <= status < 300:
            return DeliveryReceipt(location=f"{url} ({status})")
        detail = f"POST {url} answered {status}: {response.text[:200]}"
        if status in RETRYABLE_STATUS or status >= 500:
            raise RetryableDeliveryError(detail, retry_after_seconds=retry_after_seconds(response.headers.get("Retry-After")))
        raise PermanentDeliveryError(detail)

    def close(self) -> None:
        self._session.close()


def retry_after_seconds(header: str | None) -> float | None:
    """Retry-After as seconds: either a number of seconds or an HTTP date."""
    if not header:
        return None
    header = header.strip()
    if header.isdigit():
        return float(header)
    try:
        return max(0.0, parsedate_to_datetime(header).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


@hookimpl
def hwdaemon_register_sinks() -> list[type[Sink]]:
    return [WebhookSink]
