"""The review page against a hostile browser and a hostile peer, over real HTTP to the real server.

DNS rebinding (a foreign Host header reaching loopback), request bodies meant to
exhaust memory (declared, chunked, many fields, big fields, files), and CSRF
tokens that were chosen by the attacker or issued to another session. The
in-process tests run uvicorn on a real socket (`UiServer`); the last one runs
the daemon itself with `ui.enabled: true` and watches its memory.
"""

from __future__ import annotations

import http.client
import re
import select
import socket
import sqlite3
import stat
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest

from daemon_harness import Daemon, write_config
from hwdaemon.config import Config
from hwdaemon.errors import ConfigError
from hwdaemon.plugins import Registry
from hwdaemon.store import Store
from hwdaemon.ui.security import CSRF_COOKIE, SECRET_NAME
from hwdaemon.ui.server import UiServer
from test_review import TOKEN, add_done_job, make_config, sample_result

MiB = 1024 * 1024
EVIL_HOSTS = (
    "evil.example",
    "evil.example:8765",
    "127.0.0.1.evil.example",
    "localhost.evil.example",
    "[::2]",
    "",
    "a b",
    "::1",
)


class Browser:
    """One browser's view of the server: its cookies, and whatever Host header it sends (a rebinding page sends its own)."""

    def __init__(self, url: str, host: str | None = None) -> None:
        parts = urlsplit(url)
        self.address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.host = host if host is not None else parts.netloc
        self.cookies: dict[str, str] = {}

    def request(
        self, method: str, path: str, form: dict[str, str] | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], str]:
        connection = http.client.HTTPConnection(*self.address, timeout=30)
        sent = {"Host": self.host, **(headers or {})}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            text = response.read().decode(errors="replace")
            for header, value in response.getheaders():
                if header.lower() == "set-cookie":
                    name, _, rest = value.partition("=")
                    self.cookies[name] = rest.split(";", 1)[0]
            return response.status, {k.lower(): v for k, v in response.getheaders()}, text
        finally:
            connection.close()

    def csrf_token(self, path: str) -> str:
        status, _, text = self.request("GET", path)
        assert status == 200, text[:500]
        match = re.search(r'name="csrf_token" value="([^"]+)"', text)
        assert match, text[:500]
        return match.group(1)


def send_raw(
    address: tuple[str, int], head: bytes, chunks: Iterator[bytes], timeout: float = 30.0
) -> tuple[bytes, int]:
    """Send `head` and then `chunks` until the server answers (or stops reading); return its reply and the body bytes sent.

    The server may answer 413 and close while we are still sending: a reset or
    broken pipe then is the expected end, not an error.
    """
    sock = socket.create_connection(address, timeout=timeout)
    sent = 0
    reply = b""
    try:
        sock.sendall(head)
        deadline = time.monotonic() + timeout
        for chunk in chunks:
            readable, writable, _ = select.select([sock], [sock], [], max(0.0, deadline - time.monotonic()))
            if readable or not writable:
                break  # an answer (or a stalled reader): stop sending
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        sock.settimeout(timeout)
        try:
            while b"\r\n\r\n" not in reply:
                data = sock.recv(65536)
                if not data:
                    break
                reply += data
        except ConnectionResetError:
            pass
    finally:
        sock.close()
    return reply, sent


def status_of(reply: bytes) -> int:
    match = re.match(rb"HTTP/1\.[01] (\d{3})", reply)
    assert match, reply[:200]
    return int(match.group(1))


def multipart_chunks(boundary: str, fields: int, field_bytes: int) -> Iterator[bytes]:
    """The body the issue used: `fields` form fields of `field_bytes` each, made as it is sent (never whole in memory)."""
    filler = b"x" * 65536
    for number in range(fields):
        yield f'--{boundary}\r\nContent-Disposition: form-data; name="f{number}"\r\n\r\n'.encode()
        left = field_bytes
        while left > 0:
            yield filler[: min(left, len(filler))]
            left -= len(filler)
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode()


def chunked(chunks: Iterator[bytes]) -> Iterator[bytes]:
    for chunk in chunks:
        yield f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    yield b"0\r\n\r\n"


def post_head(path: str, host: str, content_type: str, length: int | None = None) -> bytes:
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n{framing}\r\n\r\n".encode()


@pytest.fixture
def served(tmp_path: Path, registry: Registry) -> Iterator[tuple[Config, Store, str]]:
    config = make_config(tmp_path, registry)
    store = Store(config.state_dir)
    server = UiServer(lambda: config, port=0)
    server.start()
    try:
        yield config, store, server.url
    finally:
        server.stop()
        store.close()


def test_a_foreign_host_header_is_refused_on_every_route(served: tuple[Config, Store, str]) -> None:
    """DNS rebinding: evil.example re-pointed at 127.0.0.1 gets 400 everywhere, so it can neither read a token nor save or approve."""
    config, store, url = served
    job_id = add_done_job(store, config, sample_result())
    port = urlsplit(url).port
    for host in ("127.0.0.1", f"127.0.0.1:{port}", f"localhost:{port}", "LOCALHOST", f"[::1]:{port}"):
        assert Browser(url, host).request("GET", "/jobs")[0] == 200, host

    victim = Browser(url)
    token = victim.csrf_token(f"/jobs/{job_id}")
    for host in EVIL_HOSTS:
        attacker = Browser(url, host)
        attacker.cookies = dict(victim.cookies)  # even holding a real session's cookie and token
        for method, path in (("GET", "/"), ("GET", "/jobs"), ("GET", f"/jobs/{job_id}"), ("GET", f"/jobs/{job_id}/pages/1.jpg"),
                             ("GET", "/static/review.js"), ("GET", "/login"), ("GET", "/nowhere")):  # fmt: skip
            status, _, text = attacker.request(method, path)
            assert status == 400 and "csrf_token" not in text, (host, path, status)
        for action in ("save", "approve", "words"):
            form = {"csrf_token": token, "page": "1", "line-1": "rebound", "word": "Rebound"}
            assert attacker.request("POST", f"/jobs/{job_id}/{action}", form)[0] == 400, (host, action)
        assert attacker.request("POST", "/login", {"csrf_token": token, "token": "x" * 20})[0] == 400
    assert store.review.revisions(job_id) == [] and store.review.row(job_id).approved_revision is None  # type: ignore[union-attr]
    assert not (config.state_dir.parent / "words.txt").exists()

    reply, _ = send_raw(("127.0.0.1", port), b"GET /jobs HTTP/1.0\r\n\r\n", iter(()))  # type: ignore[arg-type]
    assert status_of(reply) == 400  # no Host at all

    saved = victim.request(
        "POST", f"/jobs/{job_id}/save", {"csrf_token": token, "page": "1", "line-1": "the rose garden"}
    )
    assert saved[0] == 303 and len(store.review.revisions(job_id)) == 1


def test_allowed_hosts_adds_the_proxys_name(tmp_path: Path, registry: Registry) -> None:
    config = make_config(tmp_path, registry)
    config = config.model_copy(
        update={"ui": config.ui.model_copy(update={"allowed_hosts": ["review.example.org", "*.corp.example"]})}
    )
    server = UiServer(lambda: config, port=0)
    server.start()
    try:
        for host, expected in (("review.example.org", 200), ("review.example.org:443", 200), ("a.corp.example", 200),
                               ("corp.example.evil", 400), ("evil.example", 400), ("localhost", 200)):  # fmt: skip
            assert Browser(server.url, host).request("GET", "/jobs")[0] == expected, host
    finally:
        server.stop()


@pytest.mark.parametrize(
    "bad", ["https://review.example.org", "review.example.org:8443", "::1", "re*view.org", "*example.org", ""]
)
def test_allowed_hosts_are_checked_at_load(tmp_path: Path, registry: Registry, bad: str) -> None:
    config_text = f"state_dir: {tmp_path}\nui:\n  allowed_hosts: ['{bad}']\n"
    from hwdaemon.config import parse_config

    with pytest.raises(ConfigError, match=r"config\.yaml:\d+.*ui\.allowed_hosts"):
        parse_config(config_text, str(tmp_path / "config.yaml"), registry)


def test_oversized_bodies_are_refused_before_they_are_read(served: tuple[Config, Store, str]) -> None:
    """Declared, chunked, many fields, a big field, a file: each 413, on open and guarded routes; the server still answers."""
    config, store, url = served
    job_id = add_done_job(store, config, sample_result())
    address = ("127.0.0.1", urlsplit(url).port or 0)
    host = urlsplit(url).netloc
    boundary = "hwdaemontestboundary"
    multipart = f"multipart/form-data; boundary={boundary}"
    for path, chunked_status in (
        ("/login", 413),
        (f"/jobs/{job_id}/save", 413),
        ("/jobs", 405),
    ):  # /jobs takes no POST: refused unread
        started = time.monotonic()
        reply, sent = send_raw(
            address, post_head(path, host, multipart, 900 * MiB), multipart_chunks(boundary, 900, MiB - 1024)
        )
        assert status_of(reply) == 413 and sent < 64 * MiB, (path, sent)
        reply, sent = send_raw(
            address, post_head(path, host, multipart), chunked(multipart_chunks(boundary, 900, MiB - 1024))
        )
        assert status_of(reply) == chunked_status and sent < 64 * MiB, (path, sent)
        assert time.monotonic() - started < 20

    browser = Browser(url)
    token = browser.csrf_token(f"/jobs/{job_id}")
    many = {
        "csrf_token": token,
        "page": "1",
        **{f"line-{n}": "x" for n in range(3000)},
    }  # about 30 KB, far below the body limit
    assert browser.request("POST", f"/jobs/{job_id}/save", many)[0] == 413
    big = {"csrf_token": token, "page": "1", "line-1": "y" * 100_000}
    assert browser.request("POST", f"/jobs/{job_id}/save", big)[0] == 413
    small_parts = b"".join(multipart_chunks(boundary, 3000, 1))
    reply, _ = send_raw(address, post_head("/login", host, multipart, len(small_parts)), iter([small_parts]))
    assert status_of(reply) == 413
    upload = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"token\"; filename=\"a.txt\"\r\n"
              f"Content-Type: text/plain\r\n\r\nhello\r\n--{boundary}--\r\n").encode()  # fmt: skip
    reply, _ = send_raw(address, post_head("/login", host, multipart, len(upload)), iter([upload]))
    assert status_of(reply) == 413

    assert store.review.revisions(job_id) == []
    assert browser.request("GET", "/jobs")[0] == 200
    ok = browser.request(
        "POST", f"/jobs/{job_id}/save", {"csrf_token": token, "page": "1", "line-1": "the rose garden"}
    )
    assert ok[0] == 303 and len(store.review.revisions(job_id)) == 1


def test_csrf_token_is_bound_to_the_session(served: tuple[Config, Store, str]) -> None:
    config, store, url = served
    job_id = add_done_job(store, config, sample_result())
    form = {"page": "1", "line-1": "forged"}

    planted = Browser(url)  # a cookie the attacker chose (set from a sibling site) and the same value in the field
    planted.cookies[CSRF_COOKIE] = "A" * 43
    assert planted.request("POST", f"/jobs/{job_id}/save", {**form, "csrf_token": "A" * 43})[0] == 403
    assert planted.request("POST", f"/jobs/{job_id}/approve", {**form, "csrf_token": "A" * 43})[0] == 403

    alice, mallory = Browser(url), Browser(url)
    alice_token = alice.csrf_token(f"/jobs/{job_id}")
    mallory_token = mallory.csrf_token(f"/jobs/{job_id}")
    assert alice_token != mallory_token and alice.cookies[CSRF_COOKIE] != mallory.cookies[CSRF_COOKIE]
    assert alice_token not in (alice.cookies[CSRF_COOKIE], mallory.cookies[CSRF_COOKIE])
    assert mallory.request("POST", f"/jobs/{job_id}/save", {**form, "csrf_token": alice_token})[0] == 403
    mallory.cookies[CSRF_COOKIE] = "B" * 43  # her own session id, but the token of another
    assert mallory.request("POST", f"/jobs/{job_id}/approve", {**form, "csrf_token": mallory_token})[0] == 403
    assert store.review.revisions(job_id) == [] and store.review.row(job_id).approved_revision is None  # type: ignore[union-attr]

    assert alice.request("POST", f"/jobs/{job_id}/save", {**form, "csrf_token": alice_token})[0] == 303
    assert alice.request("POST", f"/jobs/{job_id}/approve", {"page": "1", "csrf_token": alice_token})[0] == 303
    assert store.review.row(job_id).approved_revision == 1  # type: ignore[union-attr]

    secret = config.state_dir / SECRET_NAME
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600 and len(secret.read_bytes()) >= 32
    secret.chmod(0o644)
    restarted = UiServer(lambda: config, port=0)  # the same secret after a restart: open pages keep working
    restarted.start()
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    try:
        again = Browser(restarted.url)
        again.cookies = dict(alice.cookies)
        assert (
            again.request("POST", f"/jobs/{job_id}/save", {"page": "1", "line-1": "again", "csrf_token": alice_token})[
                0
            ]
            == 303
        )
    finally:
        restarted.stop()


def test_signing_in_voids_a_token_fetched_before(tmp_path: Path, registry: Registry) -> None:
    config = make_config(tmp_path, registry, token=TOKEN)
    store = Store(config.state_dir)
    job_id = add_done_job(store, config, sample_result())
    server = UiServer(lambda: config, port=0)
    server.start()
    try:
        browser = Browser(server.url)
        before = browser.csrf_token("/login")
        status, headers, _ = browser.request("POST", "/login", {"csrf_token": before, "token": TOKEN})
        assert status == 303 and headers["location"] == "/jobs"
        assert (
            browser.request("POST", f"/jobs/{job_id}/save", {"csrf_token": before, "page": "1", "line-1": "x"})[0]
            == 403
        )
        after = browser.csrf_token(f"/jobs/{job_id}")
        assert after != before
        assert (
            browser.request("POST", f"/jobs/{job_id}/save", {"csrf_token": after, "page": "1", "line-1": "x"})[0] == 303
        )
    finally:
        server.stop()
        store.close()


def test_a_save_waiting_on_the_store_does_not_stall_the_page(served: tuple[Config, Store, str]) -> None:
    """A post blocked on SQLite's write lock (the daemon writing) waits on a worker thread; the event loop answers others meanwhile."""
    config, store, url = served
    job_id = add_done_job(store, config, sample_result())
    browser = Browser(url)
    token = browser.csrf_token(f"/jobs/{job_id}")
    writer = sqlite3.connect(store.path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # as the daemon does while it writes a result
    replies: list[int] = []
    save = threading.Thread(
        target=lambda: replies.append(
            browser.request(
                "POST", f"/jobs/{job_id}/save", {"csrf_token": token, "page": "1", "line-1": "the rose garden"}
            )[0]
        )
    )
    save.start()
    try:
        deadline = time.monotonic() + 20
        while (waiting := _threads_in("add_revision")) == [] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert waiting and "ui" not in waiting, waiting  # blocked off the event loop's thread ("ui")
        started = time.monotonic()
        assert Browser(url).request("GET", "/login")[0] == 200 and time.monotonic() - started < 5
        assert save.is_alive() and store.review.revisions(job_id) == []
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        save.join(timeout=30)
    assert replies == [303] and len(store.review.revisions(job_id)) == 1


def _threads_in(function: str) -> list[str]:
    """Names of the threads whose Python stack is inside `function` now."""
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    found = []
    for ident, frame in sys._current_frames().items():
        stack = frame
        while stack is not None and stack.f_code.co_name != function:
            stack = stack.f_back
        if stack is not None:
            found.append(names.get(ident, str(ident)))
    return found


def test_the_daemon_with_ui_enabled_survives_rebinding_and_memory_bombs(tmp_path: Path) -> None:
    """The issue's attack on the real daemon: four 900 × 1 MiB forms at once, and a rebinding page; it stays small and answers."""
    from rendering import render_lines, save

    (tmp_path / "inbox").mkdir()
    config = write_config(
        tmp_path, ui={"enabled": True, "port": 0}, metrics={"enabled": True, "host": "0.0.0.0", "port": 0}
    )
    save(render_lines(["Meet me at noon"]), tmp_path / "inbox" / "note.png")
    daemon = Daemon(config).start()
    try:
        daemon.wait_event("job_done")
        assert any(
            event.get("event") == "metrics_off_loopback" and event.get("level") == "warning"
            for event in daemon.events()
        )
        url = next(event["url"] for event in daemon.events() if event.get("event") == "ui_listening")
        address, host = ("127.0.0.1", urlsplit(url).port or 0), urlsplit(url).netloc
        assert daemon.process is not None
        rss_before = resident_bytes(daemon.process.pid)

        rebinding = Browser(url, "evil.example")
        assert rebinding.request("GET", "/jobs/1")[0] == 400
        assert rebinding.request("POST", "/jobs/1/approve", {"csrf_token": "A" * 43, "page": "1"})[0] == 400
        rebinding.cookies[CSRF_COOKIE] = "A" * 43
        assert (
            rebinding.request("POST", "/jobs/1/save", {"csrf_token": "A" * 43, "page": "1", "line-0": "rebound"})[0]
            == 400
        )

        boundary = "hwdaemontestboundary"
        replies: list[bytes] = []

        def bomb(length: int | None) -> None:
            chunks = multipart_chunks(boundary, 900, MiB - 1024)
            head = post_head("/login", host, f"multipart/form-data; boundary={boundary}", length)
            replies.append(send_raw(address, head, chunks if length else chunked(chunks))[0])

        peak = rss_before
        threads = [threading.Thread(target=bomb, args=(length,)) for length in (900 * MiB, None, 900 * MiB, None)]
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            peak = max(peak, resident_bytes(daemon.process.pid))
            time.sleep(0.05)
        assert [status_of(reply) for reply in replies] == [413] * 4
        assert peak - rss_before < 100 * MiB, f"the daemon grew by {(peak - rss_before) / MiB:.0f} MiB"

        browser = Browser(url)
        token = browser.csrf_token("/jobs/1")
        assert (
            browser.request("POST", "/jobs/1/save", {"csrf_token": token, "page": "1", "line-0": "Meet me at one"})[0]
            == 303
        )
        assert [revision.number for revision in Store(tmp_path / "state").review.revisions(1)] == [1]
        assert daemon.process.poll() is None
        assert not any(event.get("event") == "ui_off_loopback" for event in daemon.events())
    finally:
        assert daemon.stop() == 0


def resident_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def test_metrics_off_loopback_warns(tmp_path: Path) -> None:
    from structlog.testing import capture_logs

    from hwdaemon.metrics import Metrics, MetricsServer

    metrics = Metrics(lambda: Store(tmp_path / "state"))
    for host, warned in (("127.0.0.1", False), ("0.0.0.0", True)):
        server = MetricsServer(metrics, lambda: (True, {}), host, 0)
        with capture_logs() as logs:
            server.start()
        server.stop()
        assert (
            any(entry["event"] == "metrics_off_loopback" and entry["log_level"] == "warning" for entry in logs)
            is warned
        ), host


def test_ui_off_loopback_warns_and_names_the_hosts_it_answers(
    tmp_path: Path, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from structlog.testing import capture_logs

    monkeypatch.setenv("HWDAEMON_UI_TOKEN", TOKEN)
    config = make_config(tmp_path, registry, host="0.0.0.0")
    with capture_logs() as logs:
        UiServer(lambda: config, port=0)
        UiServer(lambda: config, host="127.0.0.1", port=0)
    warnings = [entry for entry in logs if entry["event"] == "ui_off_loopback"]
    assert len(warnings) == 1 and warnings[0]["log_level"] == "warning" and "allowed_hosts" in warnings[0]["hint"]
    assert warnings[0]["allowed_hosts"] == ["localhost", "127.0.0.1", "[::1]"]  # 0.0.0.0 is no name a browser sends
