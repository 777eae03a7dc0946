"""A real redis-server and real `hwdaemon worker` processes for the Celery tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from daemon_harness import wait_for

REDIS_SERVER = shutil.which("redis-server")
PASSWORD = "s3cret-broker-password"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Redis:
    """redis-server on 127.0.0.1 with a password and no persistence: a stop loses every message, as a crash would."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://:${{REDIS_PASSWORD}}@127.0.0.1:{self.port}/0"

    def start(self) -> Redis:
        assert REDIS_SERVER is not None
        log = (self.folder / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--requirepass", PASSWORD, "--save", "", "--appendonly", "no", "--dir", str(self.folder)],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_for(self._answers, timeout=15, what="redis-server to listen")
        return self

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as connection:
                connection.sendall(f"AUTH {PASSWORD}\r\nPING\r\n".encode())
                received = b""
                while b"PONG" not in received:
                    chunk = connection.recv(100)
                    if not chunk:
                        return False
                    received += chunk
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


class Worker:
    """`hwdaemon worker` in its own process group, so kill -9 takes its pool children too."""

    def __init__(self, config: Path, name: str, env: dict[str, str], threads: int | None = 1) -> None:
        """`threads=1` by default: tests run several workers on one small host."""
        self.config, self.name, self.threads = config, name, threads
        self.log_path = config.parent / f"worker-{name}.log"
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hwdaemon", "worker", "--config", str(self.config), "--name", self.name,
             *(["--threads", str(self.threads)] if self.threads else [])],
            stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True,
        )  # fmt: skip
        wait_for(lambda: self._log_has("models_loaded") or self._exited(), timeout=90, what=f"worker {self.name} ready")
        assert not self._exited(), self.log_path.read_text()[-3000:]
        return self

    def _log_has(self, text: str) -> bool:
        return self.log_path.exists() and text in self.log_path.read_text(errors="replace")

    def _exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_quietly(seconds: float) -> None:
    time.sleep(seconds)
