"""Run the real daemon as a subprocess, as systemd would, and wait on what it writes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml


def wait_for(
    condition: Callable[[], Any], timeout: float = 120.0, interval: float = 0.1, what: str = "condition"
) -> Any:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def install_test_plugins(site: Path, *names: str) -> Path:
    """pip-install plugin packages from tests/plugins into `site`; put it on PYTHONPATH to use them."""
    root = Path(__file__).resolve().parent / "plugins"
    for name in names:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(site), str(root / name)],
            check=True,
        )  # fmt: skip
    return site


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def write_config(folder: Path, **overrides: Any) -> Path:
    """A daemon config under `folder` with fast settle times; `overrides` replace top-level keys."""
    config: dict[str, Any] = {
        "state_dir": str(folder / "state"),
        "rescan_interval_seconds": 30,
        "log": {"level": "debug", "format": "json"},
        "inboxes": [{"path": str(folder / "inbox"), "settle_seconds": 0.5, "sinks": ["outbox"]}],
        "sinks": {"outbox": {"type": "file", "path": str(folder / "outbox"), "formats": ["txt", "json"]}},
    }
    config.update(overrides)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


class Daemon:
    """`hwdaemon run --config …` in its own process; its JSON log lines are kept in a file."""

    def __init__(self, config: Path, env: dict[str, str] | None = None, prefix: list[str] | None = None) -> None:
        self.config = config
        self.log_path = config.parent / "daemon.log"
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.prefix = prefix or []  # e.g. setpriv, to run without some capabilities
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, wait_ready: bool = True) -> Daemon:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [*self.prefix, sys.executable, "-m", "hwdaemon", "run", "--config", str(self.config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
        )
        log.close()
        if wait_ready:
            self.wait_event("daemon_ready", count=self.count("daemon_ready") + 1)
        return self

    def events(self) -> list[dict[str, Any]]:
        if not self.log_path.exists():
            return []
        events = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    events.append(json.loads(line))
                except json.JSONDecodeError:
                    pass  # a line cut by kill -9
        return events

    def count(self, event: str) -> int:
        return sum(1 for item in self.events() if item.get("event") == event)

    def wait_event(self, event: str, count: int = 1, timeout: float = 90.0) -> None:
        def seen() -> bool:
            assert self.process is not None
            if self.process.poll() is not None and self.count(event) < count:
                raise AssertionError(
                    f"daemon exited ({self.process.returncode}) before {event}:\n{self.log_path.read_text()[-3000:]}"
                )
            return self.count(event) >= count

        wait_for(seen, timeout, what=f"{count}× {event}")

    def signal(self, number: int) -> None:
        assert self.process is not None
        self.process.send_signal(number)

    def stop(self, timeout: float = 60.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)
