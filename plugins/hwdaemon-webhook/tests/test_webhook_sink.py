"""The webhook sink against a real HTTP server on 127.0.0.1 (pytest-httpserver)."""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Iterator

import pytest
import trustme
from pytest_httpserver import HTTPServer
from standardwebhooks.webhooks import Webhook
from werkzeug import Request, Response

from hwdaemon.plugin_api import Artifacts, Box, Line, PageResult, PermanentDeliveryError, Result, RetryableDeliveryError
from hwdaemon.plugins import build_registry
from hwdaemon_webhook import WebhookOptions, WebhookSink, retry_after_seconds

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
RESULT = Result(
    "inbox/note.png",
    "ab" * 32,
    "default",
    (PageResult(1, 100, 50, (Line("Buy milk", 0.8, Box(1, 2, 30, 10).polygon),)),),
)
ARTIFACTS = Artifacts(idempotency_key=f"{'ab' * 32}:crm", original_name="note.png")


def make_sink(url: str, **options: object) -> WebhookSink:
    return WebhookSink(WebhookOptions(url=url, secret=SECRET, **options), "crm")  # type: ignore[arg-type]


def test_registered_through_the_entry_point() -> None:
    assert build_registry().get("sink", "webhook") is WebhookSink


def test_signature_verifies_with_the_receivers_own_check(httpserver: HTTPServer) -> None:
    received: list[Request] = []

    def handler(request: Request) -> Response:
        received.append(request)
        return Response("ok", 200)

    httpserver.expect_request("/hook", method="POST").respond_with_handler(handler)
    receipt = make_sink(httpserver.url_for("/hook"), headers={"X-Tenant": "office-2"}).deliver(RESULT, ARTIFACTS)
    assert "200" in receipt.location
    request = received[0]
    payload = Webhook(SECRET).verify(request.get_data(), dict(request.headers))
    assert payload["result"]["pages"][0]["lines"][0]["text"] == "Buy milk"
    assert request.headers["webhook-id"] == ARTIFACTS.idempotency_key == request.headers["Idempotency-Key"]
    assert request.headers["X-Tenant"] == "office-2"


def test_tampered_body_fails_verification(httpserver: HTTPServer) -> None:
    received: list[Request] = []
    httpserver.expect_request("/hook").respond_with_handler(lambda request: received.append(request) or Response("ok"))
    make_sink(httpserver.url_for("/hook")).deliver(RESULT, ARTIFACTS)
    body = received[0].get_data().replace(b"Buy milk", b"Buy beer")
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(SECRET).verify(body, dict(received[0].headers))


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, RetryableDeliveryError),
        (503, RetryableDeliveryError),
        (408, RetryableDeliveryError),
        (400, PermanentDeliveryError),
        (404, PermanentDeliveryError),
    ],
)
def test_status_codes_map_to_retry_or_dead_letter(httpserver: HTTPServer, status: int, error: type[Exception]) -> None:
    httpserver.expect_request("/hook").respond_with_data("nope", status=status)
    with pytest.raises(error, match=f"answered {status}"):
        make_sink(httpserver.url_for("/hook")).deliver(RESULT, ARTIFACTS)


def test_429_carries_retry_after(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/hook").respond_with_data("slow down", status=429, headers={"Retry-After": "7"})
    with pytest.raises(RetryableDeliveryError) as caught:
        make_sink(httpserver.url_for("/hook")).deliver(RESULT, ARTIFACTS)
    assert caught.value.retry_after_seconds == 7


def test_retry_after_accepts_an_http_date() -> None:
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None


def test_receiver_down_is_retryable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(RetryableDeliveryError, match="ConnectionError"):
        make_sink(f"http://127.0.0.1:{port}/hook").deliver(RESULT, ARTIFACTS)


@pytest.fixture
def tls_server() -> Iterator[tuple[HTTPServer, trustme.CA]]:
    authority = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    authority.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    server = HTTPServer(host="127.0.0.1", ssl_context=context)
    server.start()
    try:
        yield server, authority
    finally:
        server.clear()
        server.stop()


def test_tls_is_verified_by_default(tls_server: tuple[HTTPServer, trustme.CA], tmp_path) -> None:  # type: ignore[no-untyped-def]
    server, authority = tls_server
    server.expect_request("/hook").respond_with_data("ok")
    url = server.url_for("/hook")
    assert url.startswith("https://")
    with pytest.raises(PermanentDeliveryError, match="TLS verification"):
        make_sink(url).deliver(RESULT, ARTIFACTS)
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    assert "200" in make_sink(url, ca_bundle=bundle).deliver(RESULT, ARTIFACTS).location


def test_body_is_the_json_result(httpserver: HTTPServer) -> None:
    bodies: list[bytes] = []
    httpserver.expect_request("/hook").respond_with_handler(
        lambda request: bodies.append(request.get_data()) or Response("ok")
    )
    make_sink(httpserver.url_for("/hook")).deliver(RESULT, ARTIFACTS)
    document = json.loads(bodies[0])
    assert document["type"] == "hwdaemon.result" and Result.from_dict(document["result"]) == RESULT
