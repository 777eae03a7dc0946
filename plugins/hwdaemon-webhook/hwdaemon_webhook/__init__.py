"""The `webhook` sink: each result is POSTed as JSON, signed per the Standard Webhooks spec.

Headers: `webhook-id` (the delivery's idempotency key: the same on every retry,
so receivers can drop duplicates), `webhook-timestamp`, `webhook-signature`
(`v1,<base64 HMAC-SHA256 of id.timestamp.body>`), and `Idempotency-Key`.
Retry semantics: network errors, 408, 425, 429 (Retry-After honoured), 5xx and
the temporary redirects (302, 303, 307…) are retryable; other 4xx, 301/308 and
TLS failures are permanent. Redirects are never followed, and each attempt
has one total deadline (total_timeout_seconds), so a hostile or broken receiver
costs one bounded attempt, never the daemon.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import requests
from pydantic import Field, HttpUrl, SecretStr, field_validator
from standardwebhooks.webhooks import Webhook

from hwdaemon.plugin_api import (
    Artifacts,
    DeliveryReceipt,
    PermanentDeliveryError,
    Result,
    RetryableDeliveryError,
    Sink,
    SinkOptions,
    hookimpl,
    redact_url,
    redact_urls_in,
    redact_values,
    secrets_of_url,
)
from hwdaemon_webhook.deadline import DeadlineAdapter, deadline

RETRYABLE_STATUS = frozenset({408, 425, 429})
PERMANENT_REDIRECTS = frozenset({301, 308})
ERROR_BODY_BYTES = 4096  # enough for a receiver's error message; the rest is never read
SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 24  # the Standard Webhooks minimum


class WebhookOptions(SinkOptions):
    url: HttpUrl
    secret: SecretStr | None = Field(
        default=None,
        description="whsec_… base64 secret (at least 24 bytes) shared with the receiver; unsigned when absent",
    )
    headers: dict[str, str] = Field(default_factory=dict)
    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    read_timeout_seconds: float = Field(default=30.0, gt=0)
    total_timeout_seconds: float = Field(
        default=60.0, gt=0, description="one attempt, connect to last byte read; a trickling receiver is cut off here"
    )
    verify_tls: bool = True
    ca_bundle: Path | None = Field(default=None, description="PEM file of CAs to trust instead of the system's")

    @field_validator("secret")
    @classmethod
    def _standard_webhooks_secret(cls, secret: SecretStr | None) -> SecretStr | None:
        """Checked at load, never quoted: a short or mistyped secret would otherwise sign every request weakly."""
        if secret is not None:
            check_secret(secret.get_secret_value())
        return secret


def check_secret(value: str) -> None:
    """Raise ValueError unless `value` is `whsec_` + base64 of at least MIN_SECRET_BYTES bytes; the message never quotes it."""
    how = f"generate one with: python -c \"import base64,os; print('{SECRET_PREFIX}' + base64.b64encode(os.urandom(32)).decode())\""
    if not value.startswith(SECRET_PREFIX):
        raise ValueError(f"must be a Standard Webhooks secret: {SECRET_PREFIX} followed by base64; {how}")
    try:
        key = base64.b64decode(value.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"the part after {SECRET_PREFIX} is not valid base64; {how}") from None
    if len(key) < MIN_SECRET_BYTES:
        raise ValueError(f"the secret is {len(key)} bytes; Standard Webhooks needs at least {MIN_SECRET_BYTES}; {how}")


@dataclass(frozen=True, slots=True)
class Answer:
    """What one attempt got back: the status, a redirect's target, Retry-After, and the start of an error body."""

    status: int
    location: str | None
    retry_after_seconds: float | None
    excerpt: str


class WebhookSink(Sink[WebhookOptions]):
    name = "webhook"
    Options = WebhookOptions

    def __init__(self, options: WebhookOptions, instance_name: str) -> None:
        super().__init__(options, instance_name)
        self._signer = Webhook(options.secret.get_secret_value()) if options.secret else None
        self._url = str(options.url)
        self.safe_url = redact_url(self._url)  # the only form of the URL that reaches a message, a log or the store
        self._secrets = [*secrets_of_url(self._url), *options.headers.values()]
        if options.secret:
            self._secrets.append(options.secret.get_secret_value())

    def deliver(self, result: Result, artifacts: Artifacts) -> DeliveryReceipt:
        options = self.options
        body = json.dumps(
            {
                "type": "hwdaemon.result",
                "idempotency_key": artifacts.idempotency_key,
                "original_name": artifacts.original_name,
                "result": result.to_dict(),
            },
            ensure_ascii=False,
        )
        headers = {
            **options.headers,
            "Content-Type": "application/json",
            "Accept-Encoding": "identity",  # an error body is read raw and bounded: nothing to decompress
            "Idempotency-Key": artifacts.idempotency_key,
        }
        if self._signer is not None:
            now = datetime.now(UTC)
            headers["webhook-id"] = artifacts.idempotency_key
            headers["webhook-timestamp"] = str(int(now.timestamp()))
            headers["webhook-signature"] = self._signer.sign(artifacts.idempotency_key, now, body)
        answer = self._post(body.encode(), headers, options)
        status = answer.status
        if 200 <= status < 300:
            return DeliveryReceipt(location=f"{self.safe_url} ({status})")
        if 300 <= status < 400:
            # Never followed: the signature and the configured headers would go to another host,
            # and a 307/308 would re-post the signed body there. Standard Webhooks: 3xx is a failure.
            detail = self._scrub(
                f"POST {self.safe_url} answered {status} redirecting to {answer.location or '(no Location)'}; "
                "redirects are not followed: set url to the final address"
            )
            if status in PERMANENT_REDIRECTS:
                raise PermanentDeliveryError(detail)
            raise RetryableDeliveryError(detail, retry_after_seconds=answer.retry_after_seconds)
        detail = self._scrub(f"POST {self.safe_url} answered {status}: {answer.excerpt[:200]}")
        if status in RETRYABLE_STATUS or status >= 500:
            raise RetryableDeliveryError(detail, retry_after_seconds=answer.retry_after_seconds)
        raise PermanentDeliveryError(detail)

    def _post(self, body: bytes, headers: dict[str, str], options: WebhookOptions) -> Answer:
        """One attempt, connect to last byte, within total_timeout_seconds; redirects not followed; the body read bounded."""
        verify: bool | str = str(options.ca_bundle) if options.ca_bundle else options.verify_tls
        timeout = (min(options.connect_timeout_seconds, options.total_timeout_seconds), options.read_timeout_seconds)
        with deadline(options.total_timeout_seconds) as attempt, requests.Session() as session:
            session.mount("http://", DeadlineAdapter())
            session.mount("https://", DeadlineAdapter())
            try:
                with session.post(
                    self._url,
                    data=body,
                    headers=headers,
                    timeout=timeout,
                    verify=verify,
                    stream=True,
                    allow_redirects=False,
                ) as response:
                    # leaving this block closes the connection: an unread (perhaps endless) body is never drained
                    status = response.status_code
                    return Answer(
                        status,
                        response.headers.get("Location"),
                        retry_after_seconds(response.headers.get("Retry-After")),
                        "" if status < 400 else _excerpt(response),
                    )
            except Exception as exc:  # requests', urllib3's and the socket's own errors alike: this attempt failed
                if attempt.is_aborted:
                    raise RetryableDeliveryError(
                        f"POST {self.safe_url} took longer than total_timeout_seconds={options.total_timeout_seconds:g}; the receiver must answer sooner"
                    ) from exc
                if isinstance(exc, requests.exceptions.SSLError):
                    raise PermanentDeliveryError(
                        self._scrub(
                            f"TLS verification of {self.safe_url} failed: {exc}; fix the certificate or set ca_bundle"
                        )
                    ) from exc
                raise RetryableDeliveryError(
                    self._scrub(f"POST {self.safe_url} failed: {type(exc).__name__}: {exc}")
                ) from exc

    def _scrub(self, message: str) -> str:
        """`message` with the URL's credentials and query values, the header values and the secret masked.

        requests quotes the request target (`/hook?token=…`) without the host in its errors, and a
        receiver may echo a header back: masking the values themselves catches every form.
        """
        return redact_urls_in(redact_values(message, self._secrets))


def _excerpt(response: requests.Response) -> str:
    """At most ERROR_BODY_BYTES of an error answer's body, raw; what cannot be read in time is left unread."""
    try:
        data: bytes = response.raw.read(ERROR_BODY_BYTES, decode_content=False)
    except Exception as exc:  # noqa: BLE001 (cut off, or the deadline shut the socket: the status still counts)
        return f"(body not read: {type(exc).__name__})"
    return data.decode("utf-8", "replace")


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
def hwdaemon_register_sinks() -> list[type[Sink[Any]]]:
    return [WebhookSink]
