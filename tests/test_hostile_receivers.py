"""Hostile webhook receivers against the real daemon: endless bodies, trickles, redirects, Retry-After, leaked credentials.

The receiver is a real HTTP server on 127.0.0.2 (tests/hostile_http.py); a
redirect points at a second one on 127.0.0.1, another host. The daemon runs as
a subprocess, as systemd runs it. The rule under test: one peer never stops the
daemon or another sink, and every delivery ends as a retry or a dead letter.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from daemon_harness import Daemon, wait_for, write_config
from hostile_http import Handler, hostile_server, scripted
from hwdaemon.cli import cli
from rendering import render_lines, save
from test_delivery import FAST_RETRIES, SECRET, webhook_secret  # noqa: F401 (an autouse fixture, shared)

pytestmark = pytest.mark.slow


def config_for(
    folder: Path, url: str, sinks: list[str] | None = None, delivery: dict[str, object] | None = None, **hook: object
) -> Path:
    return write_config(
        folder,
        delivery={**FAST_RETRIES, **(delivery or {})},
        inboxes=[{"path": str(folder / "inbox"), "settle_seconds": 0.5, "sinks": sinks or ["hook"]}],
        sinks={
            "hook": {"type": "webhook", "url": url, "secret": "${TEST_WEBHOOK_SECRET}", **hook},
            "outbox": {"type": "file", "path": str(folder / "outbox"), "formats": ["txt"]},
        },
    )


def deliveries(folder: Path) -> dict[str, tuple[str, int, str | None, str | None]]:
    """sink → (state, attempts, last_error, location) of the first delivery to it."""
    path = folder / "state" / "hwdaemon.sqlite3"
    if not path.exists():
        return {}
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT sink, state, attempts, last_error, location FROM deliveries ORDER BY id DESC"
        ).fetchall()
    return {sink: (state, attempts, error, location) for sink, state, attempts, error, location in rows}


def drop_scan(folder: Path, name: str = "note.png") -> None:
    save(render_lines([f"Hostile receivers {name}"]), folder / "inbox" / name)  # distinct content: no duplicate


def webhook_state(folder: Path) -> tuple[str, int, str | None, str | None] | None:
    return deliveries(folder).get("hook")


@pytest.mark.parametrize("status", [200, 503])
def test_endless_body_is_cut_off_and_the_daemon_lives(tmp_path: Path, status: int) -> None:
    """Before: `response.text` read the endless body until the kernel killed the daemon."""
    with hostile_server(scripted(lambda h: h.endless(status))) as receiver:
        daemon = Daemon(config_for(tmp_path, receiver.url())).start()
        try:
            drop_scan(tmp_path)
            if status == 200:
                wait_for(
                    lambda: (webhook_state(tmp_path) or ("",))[0] == "delivered",
                    timeout=60,
                    what="delivered despite the endless body",
                )
            else:  # the 503 counts as a failed attempt; the retry gets the scripted plain 200
                wait_for(
                    lambda: (webhook_state(tmp_path) or ("",))[0] == "delivered",
                    timeout=60,
                    what="retried and delivered",
                )
                assert "answered 503: xxxx" in daemon.log_path.read_text()
            assert receiver.cut_by_client.wait(10), "the daemon must close the connection, not keep reading"
            assert receiver.bytes_sent < 2**30
            assert daemon.process is not None and daemon.process.poll() is None
        finally:
            assert daemon.stop() == 0


def test_trickling_receiver_hits_the_total_deadline(tmp_path: Path) -> None:
    """One byte every 2 s never trips the 30 s read timeout; total_timeout_seconds ends the attempt."""
    with hostile_server(lambda h: h.trickle(every_seconds=2.0)) as receiver:
        config = config_for(tmp_path, receiver.url(), delivery={"backoff_base_seconds": 30, "backoff_max_seconds": 30},
                            read_timeout_seconds=30, total_timeout_seconds=3)  # fmt: skip
        daemon = Daemon(config).start()
        try:
            drop_scan(tmp_path)
            wait_for(lambda: receiver.requests, timeout=60, what="the webhook attempt to start")
            wait_for(
                lambda: (webhook_state(tmp_path) or ("", 0))[1] >= 1, timeout=30, what="the deadline to end the attempt"
            )
            cut_after = time.monotonic() - receiver.requests[0].at
            state, _, error, _ = webhook_state(tmp_path)  # type: ignore[misc]
            assert state == "pending" and "took longer than total_timeout_seconds=3" in (error or "")
            assert 2 < cut_after < 15  # the 3 s deadline, with room for a loaded machine; the trickle would take hours
            assert daemon.process is not None and daemon.process.poll() is None
        finally:
            assert daemon.stop() == 0


def test_a_slow_webhook_does_not_hold_up_the_file_sink(tmp_path: Path) -> None:
    """Before: one delivery thread, in order; the file sink waited behind the trickling webhook."""
    with hostile_server(lambda h: h.trickle(every_seconds=2.0)) as receiver:
        config = config_for(tmp_path, receiver.url(), sinks=["hook", "outbox"], total_timeout_seconds=30)
        daemon = Daemon(config).start()
        try:
            drop_scan(tmp_path, "first.png")
            wait_for(lambda: receiver.requests, timeout=60, what="the webhook attempt to start")
            wait_for(
                lambda: (tmp_path / "outbox" / "first.txt").exists(),
                timeout=20,
                what="the file sink, while the webhook trickles",
            )
            assert webhook_state(tmp_path)[:2] == ("pending", 0)  # type: ignore[index]  # its attempt still in flight
            drop_scan(tmp_path, "second.png")
            wait_for(lambda: (tmp_path / "outbox" / "second.txt").exists(), timeout=20, what="a later scan's file, too")
            assert len(receiver.requests) == 1 and webhook_state(tmp_path)[1] == 0  # type: ignore[index]
        finally:
            daemon.kill()  # a clean stop would wait for the 30 s attempt to be cut off


@pytest.mark.parametrize(("status", "state"), [(302, "pending"), (307, "pending"), (308, "dead")])
def test_redirect_to_another_host_is_not_followed(tmp_path: Path, status: int, state: str) -> None:
    """Before: a 302 took the signature and the API key to 127.0.0.1 and counted as delivered; a 307 re-posted the body there."""
    with hostile_server(lambda h: h.answer(200), host="127.0.0.1") as elsewhere:
        steal = elsewhere.url("/steal")
        with hostile_server(lambda h: h.answer(status, b"moved", {"Location": steal})) as receiver:
            config = config_for(tmp_path, receiver.url(), delivery={"backoff_base_seconds": 30, "backoff_max_seconds": 30},
                                headers={"Authorization": "Bearer api-key-0123456789"})  # fmt: skip
            daemon = Daemon(config).start()
            try:
                drop_scan(tmp_path)
                wait_for(
                    lambda: (webhook_state(tmp_path) or ("", 0))[1] >= 1, timeout=60, what="first attempt recorded"
                )
            finally:
                assert daemon.stop() == 0
        assert elsewhere.requests == []
        assert (
            receiver.requests[0].headers["Authorization"] == "Bearer api-key-0123456789"
        )  # the configured host did get it
    got_state, attempts, error, _ = webhook_state(tmp_path)  # type: ignore[misc]
    assert (got_state, attempts) == (state, 1)
    assert f"answered {status} redirecting to http://127.0.0.1:" in (error or "") and "not followed" in (error or "")


def test_huge_retry_after_is_capped_at_the_backoff_maximum(tmp_path: Path) -> None:
    """Before: Retry-After: 999999999 parked the delivery for 31 years."""
    with hostile_server(scripted(*[lambda h: h.answer(429, b"later", {"Retry-After": "999999999"})] * 2)) as receiver:
        daemon = Daemon(config_for(tmp_path, receiver.url(), delivery={"backoff_max_seconds": 1.0})).start()
        try:
            drop_scan(tmp_path)
            wait_for(
                lambda: (webhook_state(tmp_path) or ("",))[0] == "delivered",
                timeout=60,
                what="delivered after two capped waits",
            )
        finally:
            assert daemon.stop() == 0
    assert len(receiver.requests) == 3
    gaps = [later.at - earlier.at for earlier, later in zip(receiver.requests, receiver.requests[1:], strict=False)]
    assert all(gap < 10 for gap in gaps), gaps  # 1 s cap (+ the dispatcher's 1 s look); years without the cap
    assert webhook_state(tmp_path)[1] == 3  # type: ignore[index]  # each 429 counted as an attempt


def test_retry_after_forever_still_ends_in_a_dead_letter(tmp_path: Path) -> None:
    with hostile_server(lambda h: h.answer(429, b"later", {"Retry-After": "999999999"})) as receiver:
        daemon = Daemon(
            config_for(tmp_path, receiver.url(), delivery={"max_attempts": 3, "backoff_max_seconds": 0.5})
        ).start()
        try:
            drop_scan(tmp_path)
            wait_for(
                lambda: (webhook_state(tmp_path) or ("",))[0] == "dead",
                timeout=60,
                what="dead letter after max_attempts",
            )
        finally:
            assert daemon.stop() == 0
    assert webhook_state(tmp_path)[1] == 3 and len(receiver.requests) == 3  # type: ignore[index]


PASSWORD, TOKEN, API_KEY = "hunter2-password", "tok-0123456789abcdef", "key-fedcba9876543210"


def test_credentials_in_the_url_and_headers_never_reach_logs_store_or_cli(tmp_path: Path) -> None:
    def fail_then_succeed(handler: Handler) -> None:
        count = len(handler.hostile.requests)
        if count == 1:
            handler.answer(500, f"server echoes {API_KEY}".encode())
        else:
            handler.answer(200)

    with hostile_server(fail_then_succeed) as receiver:
        url = receiver.url(f"/hook?token={TOKEN}&tenant=office-2").replace("http://", f"http://scanner:{PASSWORD}@")
        config = config_for(tmp_path, url, headers={"X-Api-Key": API_KEY})
        daemon = Daemon(config).start()
        try:
            drop_scan(tmp_path)
            wait_for(
                lambda: (webhook_state(tmp_path) or ("",))[0] == "delivered", timeout=60, what="delivered after a 500"
            )
        finally:
            assert daemon.stop() == 0
        assert receiver.requests[0].path == f"/hook?token={TOKEN}&tenant=office-2"  # the receiver still gets them
    listing = CliRunner().invoke(cli, ["deliveries", "--config", str(config)]).stdout
    state = deliveries(tmp_path)["hook"]
    everything = "\n".join([daemon.log_path.read_text(), listing, repr(state)])
    for secret in (PASSWORD, TOKEN, API_KEY):
        assert secret not in everything
    assert state[3] is not None and "scanner:***@127.0.0.2" in state[3] and "token=***&tenant=***" in state[3]
    assert "token=***" in listing and "answered 500: server echoes ***" in daemon.log_path.read_text()


def test_connection_error_message_is_masked_too(tmp_path: Path) -> None:
    """requests puts the request target (`/hook?token=…`) in its ConnectionError text."""
    with hostile_server(lambda h: h.answer(200)) as probe:
        url = probe.url(f"/hook?token={TOKEN}")
    # the server is gone now: the port refuses
    daemon = Daemon(config_for(tmp_path, url)).start()
    try:
        drop_scan(tmp_path)
        wait_for(lambda: (webhook_state(tmp_path) or ("", 0))[1] >= 1, timeout=60, what="a failed attempt")
    finally:
        assert daemon.stop() == 0
    error = webhook_state(tmp_path)[2] or ""  # type: ignore[index]
    assert "ConnectionError" in error and "token=***" in error
    assert TOKEN not in error and TOKEN not in daemon.log_path.read_text()


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_ followed by base64"),
        ("whsec_c2hvcnQtc2VjcmV0", "is 12 bytes; Standard Webhooks needs at least 24"),
        ("whsec_not*base64!!", "not valid base64"),
    ],
)
def test_weak_or_malformed_secret_is_refused_at_config_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secret: str, why: str
) -> None:
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", secret)
    outcome = CliRunner().invoke(cli, ["check-config", str(config_for(tmp_path, "http://127.0.0.2:9/hook"))])
    assert outcome.exit_code == 78, outcome.output
    assert "sinks.hook.secret" in outcome.stderr and why in outcome.stderr
    assert secret not in outcome.output and secret.removeprefix("whsec_") not in outcome.output


def test_a_24_byte_whsec_secret_is_accepted(tmp_path: Path) -> None:
    outcome = CliRunner().invoke(cli, ["check-config", str(config_for(tmp_path, "http://127.0.0.2:9/hook"))])
    assert "sinks.hook.secret" not in outcome.output
