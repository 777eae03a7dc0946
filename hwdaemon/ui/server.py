"""Serve the review app with uvicorn: on a thread inside the daemon, or alone for `hwdaemon ui`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog
import uvicorn

from hwdaemon.config import Config
from hwdaemon.ui.app import create_app
from hwdaemon.ui.hosts import allowed_hosts, is_loopback, is_wildcard

log = structlog.get_logger()


class UiServer:
    """uvicorn on its own daemon thread (it installs no signal handlers off the main thread)."""

    def __init__(
        self,
        config_of: Callable[[], Config],
        host: str | None = None,
        port: int | None = None,
        on_job_queued: Callable[[], None] | None = None,
    ) -> None:
        """`on_job_queued` is called when an API upload queued a job (the daemon wakes a worker; alone, nothing)."""
        config = config_of()
        host = host or config.ui.host
        app = create_app(config_of, host, on_job_queued)  # raises ConfigError before anything listens
        if not is_loopback(host):
            log.warning(
                "ui_off_loopback",
                host=host,
                allowed_hosts=allowed_hosts(host, config.ui.allowed_hosts),
                hint="reachable from the network (a token is required); put it behind a TLS proxy"
                + (
                    "; only the names in allowed_hosts are answered: add the ones browsers use to ui.allowed_hosts"
                    if is_wildcard(host)
                    else ""
                ),
            )
        settings = uvicorn.Config(
            app,
            host=host,
            port=config.ui.port if port is None else port,
            log_config=None,
            access_log=False,
            lifespan="off",
        )
        self._server = uvicorn.Server(settings)
        self._thread = threading.Thread(target=self._server.run, name="ui", daemon=True)

    def start(self, timeout: float = 15.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise OSError(
                    f"the review page could not listen on {self._server.config.host}:{self._server.config.port}"
                )
            time.sleep(0.02)
        log.info("ui_listening", url=self.url)

    @property
    def url(self) -> str:
        host, port = self._server.servers[0].sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    def serve_forever(self) -> None:
        """For `hwdaemon ui`: run on the calling thread until Ctrl-C / SIGTERM."""
        self._server.run()

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
