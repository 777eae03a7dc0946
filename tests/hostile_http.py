"""A real HTTP receiver that misbehaves on cue: endless bodies, trickled answers, redirects, Retry-After.

Bound on 127.0.0.2 by default, a second loopback address, so a redirect to a
server on 127.0.0.1 is a redirect to another host. Each request is recorded
with its arrival time; `behaviour` decides the answer, one call per request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Behaviour = Callable[["Handler"], None]


@dataclass
class Received:
    at: float
    host: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Hostile:
    """The running server: its URL, what it received, and whether a stream it was writing was cut by the client."""

    server: ThreadingHTTPServer
    stopping: threading.Event
    requests: list[Received] = field(default_factory=list)
    cut_by_client: threading.Event = field(default_factory=threading.Event)
    bytes_sent: int = 0

    def url(self, path: str = "/hook") -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}{path}"


class Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer
    protocol_version = "HTTP/1.1"

    @property
    def hostile(self) -> Hostile:
        return self.server.hostile  # type: ignore[attr-defined,no-any-return]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.hostile.requests.append(
            Received(time.monotonic(), self.headers.get("Host", ""), self.path, dict(self.headers), body)
        )
        try:
            self.server.behaviour(self)  # type: ignore[attr-defined]
        except (BrokenPipeError, ConnectionResetError):
            self.hostile.cut_by_client.set()
        self.close_connection = True

    do_GET = do_POST  # noqa: N815

    def log_message(self, format: str, *args: object) -> None:
        pass

    # behaviours' building blocks ----------------------------------------------

    def answer(self, status: int, body: bytes = b"ok", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def endless(self, status: int) -> None:
        """Headers, then a body that never ends (no length: it runs until the connection closes)."""
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Connection", "close")
        self.end_headers()
        chunk = b"x" * 65536
        while not self.hostile.stopping.is_set():
            self.wfile.write(chunk)
            self.hostile.bytes_sent += len(chunk)

    def trickle(self, every_seconds: float = 2.0) -> None:
        """A status line and headers sent one byte every `every_seconds`, never finishing."""
        for byte in b"HTTP/1.1 200 OK\r\nX-Padding: " + b"a" * 100_000:
            if self.hostile.stopping.wait(every_seconds):
                return
            self.wfile.write(bytes([byte]))
            self.wfile.flush()


@contextmanager
def hostile_server(behaviour: Behaviour, host: str = "127.0.0.2") -> Iterator[Hostile]:
    server = ThreadingHTTPServer((host, 0), Handler)
    server.daemon_threads = True
    hostile = Hostile(server, threading.Event())
    server.hostile = hostile  # type: ignore[attr-defined]
    server.behaviour = behaviour  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield hostile
    finally:
        hostile.stopping.set()
        server.shutdown()
        server.server_close()


def scripted(*behaviours: Behaviour, then: Behaviour | None = None) -> Behaviour:
    """Each request gets the next behaviour in turn, then `then` (a plain 200 by default)."""
    remaining = list(behaviours)

    def behave(handler: Handler) -> None:
        (remaining.pop(0) if remaining else then or (lambda h: h.answer(200)))(handler)

    return behave
