"""One total deadline per HTTP attempt, enforced by shutting the attempt's sockets down.

requests' timeouts are per socket operation: a receiver that sends one byte
every two seconds (in the status line, the headers or the body) never trips a
30 s read timeout, and would hold its delivery thread for ever. A timer cannot
interrupt a blocked `recv`, but `shutdown(2)` on the socket can: the blocked
call returns at once and requests raises, which the sink turns into a retry.

How the sockets are found: a requests adapter whose urllib3 connections report
every socket they open to the attempt running on this thread (a thread-local,
because urllib3 builds connections deep inside requests). Each attempt uses a
fresh session, so every connection it uses is one it opened.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.connection import HTTPConnection, HTTPSConnection

_current = threading.local()


class Attempt:
    """The sockets of one HTTP attempt; `abort()` shuts them (and any opened later) down."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.is_aborted = False

    def adopt(self, sock: socket.socket) -> None:
        # A duplicate descriptor: TLS wrapping detaches the original socket object, and
        # shutdown() acts on the connection, whichever descriptor names it.
        duplicate = sock.dup()
        with self._lock:
            self._sockets.append(duplicate)
            if self.is_aborted:
                _shut(duplicate)

    def abort(self) -> None:
        with self._lock:
            self.is_aborted = True
            for sock in self._sockets:
                _shut(sock)

    def close(self) -> None:
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by the peer or by us


@contextmanager
def deadline(seconds: float) -> Iterator[Attempt]:
    """Run one attempt on this thread; after `seconds` its sockets are shut down, whatever it is doing."""
    attempt = Attempt()
    timer = threading.Timer(seconds, attempt.abort)
    timer.daemon = True
    _current.attempt = attempt
    timer.start()
    try:
        yield attempt
    finally:
        timer.cancel()
        _current.attempt = None
        attempt.close()


class _Reporting:
    """Mixed into urllib3's connections: hand each new socket to the current attempt."""

    def _new_conn(self) -> socket.socket:
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        attempt: Attempt | None = getattr(_current, "attempt", None)
        if attempt is not None:
            attempt.adopt(sock)
        return sock


class _HTTPConnection(_Reporting, HTTPConnection):
    pass


class _HTTPSConnection(_Reporting, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class DeadlineAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections (direct, or through an HTTP proxy) report their sockets."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith(
            "socks"
        ):  # SOCKS has pools of its own; there only the per-operation timeouts hold
            manager.pool_classes_by_scheme = _POOLS
        return manager
