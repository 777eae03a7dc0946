"""Durable delivery through a running daemon: retries, Retry-After, dead letters, plugins from pip."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from pytest_httpserver import HTTPServer
from standardwebhooks.webhooks import Webhook
from werkzeug import Request, Response

from conftest import REPO_ROOT
from daemon_harness import Daemon, install_test_plugins, wait_for, write_config
from hwdaemon.cli import cli
from hwdaemon.config import DeliveryConfig
from hwdaemon.daemon.delivery import retry_delay_seconds
from rendering import render_lines, save

pytestmark = pytest.mark.slow
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
FAST_RETRIES = {"max_attempts": 6, "backoff_base_seconds": 0.2, "backoff_max_seconds": 1.0}


@pytest.fixture(autouse=True)
def webhook_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """The config reads the secret from the environment, in the daemon and in CLI calls alike."""
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", SECRET)


def webhook_config(folder: Path, url: str, **delivery: object) -> Path:
    return write_config(
        folder,
        delivery={**FAST_RETRIES, **delivery},
        inboxes=[{"path": str(folder / "inbox"), "settle_seconds": 0.5, "sinks": ["hook"]}],
        sinks={"hook": {"type": "webhook", "url": url, "secret": "${TEST_WEBHOOK_SECRET}"}},
    )


def deliveries(folder: Path) -> list[tuple[str, int, str | None]]:
    with sqlite3.connect(folder / "state" / "hwdaemon.sqlite3") as db:
        return list(db.execute("SELECT state, attempts, last_error FROM deliveries ORDER BY id"))


class Receiver:
    """Answers with the scripted statuses in turn (then 200), recording each request and its time."""

    def __init__(self, statuses: list[int], headers: dict[str, str] | None = None) -> None:
        self.statuses = list(statuses)
        self.headers = headers or {}
        self.requests: list[tuple[float, Request]] = []

    def __call__(self, request: Request) -> Response:
        self.requests.append((time.monotonic(), request))
        status = self.statuses.pop(0) if self.statuses else 200
        return Response("scripted", status=status, headers=self.headers if status != 200 else {})


def run_daemon(config: Path) -> Daemon:
    return Daemon(config).start()


def test_500_then_200_is_delivered_once_after_a_retry(httpserver: HTTPServer, tmp_path: Path) -> None:
    receiver = Receiver([500])
    httpserver.expect_request("/hook", method="POST").respond_with_handler(receiver)
    daemon = run_daemon(webhook_config(tmp_path, httpserver.url_for("/hook")))
    try:
        save(render_lines(["Invoice 4711 paid"]), tmp_path / "inbox" / "invoice.png")
        wait_for(lambda: deliveries(tmp_path) and deliveries(tmp_path)[0][0] == "delivered", what="delivered")
    finally:
        daemon.stop()
    assert deliveries(tmp_path)[0][:2] == ("delivered", 2)
    assert len(receiver.requests) == 2
    first, second = (request for _, request in receiver.requests)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]  # same key: receiver can dedupe
    payload = Webhook(SECRET).verify(second.get_data(), dict(second.headers))
    assert payload["original_name"] == "invoice.png"


def test_429_retry_after_is_honoured(httpserver: HTTPServer, tmp_path: Path) -> None:
    receiver = Receiver([429], headers={"Retry-After": "3"})
    httpserver.expect_request("/hook").respond_with_handler(receiver)
    daemon = run_daemon(
        webhook_config(tmp_path, httpserver.url_for("/hook"), backoff_max_seconds=5.0)
    )  # Retry-After is capped here
    try:
        save(render_lines(["Slow receiver"]), tmp_path / "inbox" / "slow.png")
        wait_for(lambda: len(receiver.requests) == 2, what="second attempt")
    finally:
        daemon.stop()
    (first, _), (second, _) = receiver.requests
    assert second - first >= 2.9  # not the 0.2 s backoff: the server's 3 s


def test_400_is_dead_lettered_at_once_and_redeliver_brings_it_back(httpserver: HTTPServer, tmp_path: Path) -> None:
    receiver = Receiver([400])
    httpserver.expect_request("/hook").respond_with_handler(receiver)
    config = webhook_config(tmp_path, httpserver.url_for("/hook"))
    daemon = run_daemon(config)
    try:
        save(render_lines(["Bad request"]), tmp_path / "inbox" / "bad.png")
        wait_for(lambda: deliveries(tmp_path) and deliveries(tmp_path)[0][0] == "dead", what="dead letter")
        _state, attempts, error = deliveries(tmp_path)[0]
        assert attempts == 1 and "answered 400" in (error or "")
        listing = CliRunner().invoke(cli, ["deliveries", "--failed", "--config", str(config)])
        assert "dead" in listing.stdout and "answered 400" in listing.stdout
        assert CliRunner().invoke(cli, ["redeliver", "--failed", "--config", str(config)]).exit_code == 0
        wait_for(lambda: deliveries(tmp_path)[0][0] == "delivered", what="redelivered")
    finally:
        daemon.stop()
    assert len(receiver.requests) == 2


def test_receiver_down_for_a_while_then_up_gets_the_result(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    daemon = run_daemon(webhook_config(tmp_path, f"http://127.0.0.1:{port}/hook", max_attempts=50))
    server = HTTPServer(host="127.0.0.1", port=port)
    try:
        save(render_lines(["While you were out"]), tmp_path / "inbox" / "memo.png")
        wait_for(lambda: deliveries(tmp_path) and deliveries(tmp_path)[0][1] >= 3, what="three failed attempts")
        assert "ConnectionError" in (deliveries(tmp_path)[0][2] or "")
        receiver = Receiver([])
        server.expect_request("/hook").respond_with_handler(receiver)
        server.start()
        wait_for(lambda: deliveries(tmp_path)[0][0] == "delivered", what="delivered once the receiver is up")
    finally:
        daemon.stop()
        if server.is_running():
            server.stop()
    assert len(receiver.requests) == 1


def test_pending_delivery_resumes_after_restart(httpserver: HTTPServer, tmp_path: Path) -> None:
    receiver = Receiver([503] * 3)
    httpserver.expect_request("/hook").respond_with_handler(receiver)
    config = webhook_config(tmp_path, httpserver.url_for("/hook"), backoff_base_seconds=3.0, backoff_max_seconds=3.0)
    daemon = run_daemon(config)
    save(render_lines(["Survives a restart"]), tmp_path / "inbox" / "restart.png")
    wait_for(lambda: len(receiver.requests) >= 1, what="first attempt")
    daemon.kill()
    daemon = run_daemon(config)
    try:
        wait_for(lambda: deliveries(tmp_path)[0][0] == "delivered", what="delivered after restart")
    finally:
        daemon.stop()


@pytest.fixture(scope="module")
def third_party_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plugins, pip-installed from their folders into a private site directory."""
    return install_test_plugins(tmp_path_factory.mktemp("site"), "hwdaemon-jsonl", "hwdaemon-broken")


def test_third_party_sink_installed_with_pip_receives_results(third_party_site: Path, tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        inboxes=[{"path": str(tmp_path / "inbox"), "settle_seconds": 0.5, "sinks": ["outbox", "lines"]}],
        sinks={
            "outbox": {"type": "file", "path": str(tmp_path / "outbox"), "formats": ["txt"]},
            "lines": {"type": "jsonl", "path": str(tmp_path / "results.jsonl")},
        },
    )
    env = {"PYTHONPATH": os.pathsep.join([str(third_party_site), os.environ.get("PYTHONPATH", "")])}
    daemon = Daemon(config, env=env).start()
    try:
        save(render_lines(["Third party"]), tmp_path / "inbox" / "third.png")
        wait_for(
            lambda: (tmp_path / "results.jsonl").exists() and (tmp_path / "outbox" / "third.txt").exists(),
            what="both sinks",
        )
    finally:
        daemon.stop()
    record = json.loads((tmp_path / "results.jsonl").read_text().splitlines()[0])
    assert record["key"].endswith(":lines") and record["text"] == (
        tmp_path / "outbox" / "third.txt"
    ).read_text().rstrip("\n")
    listing = subprocess.run(
        [sys.executable, "-m", "hwdaemon", "plugins"], capture_output=True, text=True, env={**os.environ, **env}
    )
    assert "jsonl (version 0.0.1)" in listing.stdout
    assert "broken (BROKEN): ModuleNotFoundError" in listing.stdout  # reported, and the others still load


def test_unknown_sink_type_names_the_installed_ones(tmp_path: Path) -> None:
    config = write_config(tmp_path, sinks={"outbox": {"type": "ftp", "host": "x"}})
    outcome = CliRunner().invoke(cli, ["check-config", str(config)])
    assert outcome.exit_code == 78
    assert "no sink named 'ftp' is installed; installed: file, s3, webhook" in outcome.stderr


def test_sink_options_are_validated_at_config_load(tmp_path: Path) -> None:
    config = write_config(tmp_path, sinks={"outbox": {"type": "webhook", "url": "not a url"}})
    outcome = CliRunner().invoke(cli, ["check-config", str(config)])
    assert outcome.exit_code == 78 and "sinks.outbox.url" in outcome.stderr


def test_one_scan_reaches_file_webhook_and_s3(httpserver: HTTPServer, tmp_path: Path) -> None:
    """The service end to end: inbox → OCR → file sink, signed webhook and an S3 bucket (Swift)."""
    sys.path.insert(0, str(REPO_ROOT / "plugins" / "hwdaemon-s3" / "tests"))
    from swift_server import ACCESS_KEY, REGION, SECRET_KEY, SwiftServer, missing_binaries

    if missing_binaries():
        if os.environ.get("CI"):
            pytest.fail(f"Swift not installed: {missing_binaries()}")
        pytest.skip(f"Swift not installed: {missing_binaries()}")
    import boto3
    from botocore.config import Config

    with SwiftServer(tmp_path / "swift") as swift:
        s3 = boto3.client("s3", endpoint_url=swift.endpoint, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                          region_name=REGION, config=Config(s3={"addressing_style": "path"}))  # fmt: skip
        s3.create_bucket(Bucket="scans")
        receiver = Receiver([])
        httpserver.expect_request("/hook").respond_with_handler(receiver)
        config = write_config(
            tmp_path,
            delivery=FAST_RETRIES,
            inboxes=[{"path": str(tmp_path / "inbox"), "settle_seconds": 0.5, "sinks": ["outbox", "hook", "archive"]}],
            sinks={
                "outbox": {"type": "file", "path": str(tmp_path / "outbox"), "formats": ["txt", "json"]},
                "hook": {"type": "webhook", "url": httpserver.url_for("/hook"), "secret": "${TEST_WEBHOOK_SECRET}"},
                "archive": {"type": "s3", "bucket": "scans", "endpoint_url": swift.endpoint, "region": REGION, "addressing_style": "path",
                            "access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY, "key_template": "{stem}.{ext}"},
            },
        )  # fmt: skip
        daemon = Daemon(config).start()
        try:
            save(render_lines(["Everything everywhere"]), tmp_path / "inbox" / "all.png")
            wait_for(
                lambda: len(deliveries(tmp_path)) == 3 and all(row[0] == "delivered" for row in deliveries(tmp_path)),
                what="three sinks",
            )
        finally:
            daemon.stop()
        stored = s3.get_object(Bucket="scans", Key="all.json")["Body"].read().decode()
    exported = (tmp_path / "outbox" / "all.json").read_text()
    assert stored == exported
    _, request = receiver.requests[0]
    assert (
        Webhook(SECRET).verify(request.get_data(), dict(request.headers))["result"]["text"]
        == json.loads(exported)["text"]
    )


def test_retry_after_is_capped_at_backoff_max_and_backoff_used_without_it() -> None:
    policy = DeliveryConfig(backoff_base_seconds=1.0, backoff_max_seconds=60.0)
    assert retry_delay_seconds(1, 999_999_999.0, policy) == 60.0  # 31 years asked, the policy's maximum given
    assert retry_delay_seconds(1, 7.0, policy) == 7.0 and retry_delay_seconds(1, -5.0, policy) == 0.0
    assert 1.0 <= retry_delay_seconds(1, None, policy) <= 2.0  # base·2^1 with jitter
