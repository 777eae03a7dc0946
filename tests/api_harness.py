"""Shared by the API tests: a config with API tokens, the server on a real socket, tiny valid scans, raw HTTP."""

from __future__ import annotations

import io
import socket
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from PIL import Image

from hwdaemon.config import Config, parse_config
from hwdaemon.plugins import Registry
from hwdaemon.ui.server import UiServer

SUBMIT = "submit-token-0123456789"
READ = "read-token-0123456789ab"
ADMIN = "admin-token-0123456789a"
CALLBACK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def api_settings(**overrides: Any) -> dict[str, Any]:
    """The `api:` section the tests use: three tokens with different scopes."""
    settings: dict[str, Any] = {
        "tokens": [
            {"name": "scanner", "token": SUBMIT, "scopes": ["submit", "read"]},
            {"name": "dashboard", "token": READ, "scopes": ["read"]},
            {"name": "operator", "token": ADMIN, "scopes": ["admin"]},
        ]
    }
    settings.update(overrides)
    return settings


def api_config(folder: Path, registry: Registry, **api: Any) -> Config:
    """A config over `folder` (state, inbox, outbox) with the test tokens; `api` overrides keys of the api section."""
    document = {
        "state_dir": str(folder / "state"),
        "inboxes": [{"path": str(folder / "inbox"), "sinks": ["outbox"]}],
        "sinks": {"outbox": {"type": "file", "path": str(folder / "outbox"), "formats": ["txt"]}},
        "api": api_settings(**api),
    }
    return parse_config(yaml.safe_dump(document), str(folder / "config.yaml"), registry)


@contextmanager
def serving(config: Config) -> Iterator[str]:
    """The review page and API on a free loopback port (real uvicorn, on a thread); yields its base URL."""
    server = UiServer(lambda: config, port=0)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def tiny_png(number: int) -> bytes:
    """A small valid PNG, different for every number (so no two are duplicates)."""
    image = Image.new("L", (16, 8), 255)
    image.putpixel((number % 16, (number // 16) % 8), 0)
    image.putpixel((0, 0), number % 256)
    image.putpixel((1, 0), (number // 256) % 256)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def jobs_of(state_dir: Path) -> list[tuple[int, str, str, str]]:
    """(id, path, state, sha256) of every job."""
    database = state_dir / "hwdaemon.sqlite3"
    if not database.exists():
        return []
    with sqlite3.connect(database) as db:
        return list(db.execute("SELECT id, path, state, sha256 FROM jobs ORDER BY id"))


def files_under(folder: Path) -> list[str]:
    """Every file below `folder`, relative, sorted (hidden spool files included)."""
    if not folder.exists():
        return []
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def raw_request(url: str, head: bytes, body: bytes = b"", close_early: bool = False) -> bytes:
    """Send `head` and `body` on a fresh socket and read the answer (or close after the body: a client gone away)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(head + body)
        if close_early:
            return b""
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
        return answer
