"""The daemon's lifecycle: start, watch, take settled files in, reload on SIGHUP, drain on SIGTERM.

Signal handlers only set events (as uvicorn does); the main loop acts on them.
Start-up: recover jobs a crash left `processing`, start workers and the
delivery thread, scan every inbox, start the observers, then tell systemd
READY=1. WATCHDOG=1 is sent only while every thread shows progress.
"""

from __future__ import annotations

import os
import queue
import signal
import sqlite3
import stat
import threading
import time
import traceback
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

import structlog
from watchdog.observers.api import BaseObserver

from hwdaemon.config import Config, InboxConfig
from hwdaemon.daemon.context import ThreadContext
from hwdaemon.daemon.delivery import DeliveryThread
from hwdaemon.daemon.executor import Executor
from hwdaemon.daemon.filing import file_done, is_utf8_name, with_utf8_name
from hwdaemon.daemon.filters import is_candidate
from hwdaemon.daemon.intake import admit
from hwdaemon.daemon.notify import Notifier, watchdog_interval_seconds
from hwdaemon.daemon.outcomes import Outcomes
from hwdaemon.daemon.runtime import Runtime, inbox_key_of
from hwdaemon.daemon.watcher import Seen, SettleTracker, scan_inbox, start_observers
from hwdaemon.errors import ConfigError, HwdaemonError, InputFileError
from hwdaemon.store import Store

log = structlog.get_logger()
LOOP_SECONDS = 0.2


class SideServer(Protocol):
    """An HTTP server beside the daemon (metrics, the review page), started after the models are loaded."""

    def start(self) -> None: ...
    def stop(self) -> None: ...


class Service:
    """The lifecycle and intake; the threads' work is the executor's and the delivery thread's (built in compose.py)."""

    def __init__(
        self,
        config_path: Path | None,
        context: ThreadContext,
        outcomes: Outcomes,
        executor: Executor,
        side_servers: list[SideServer],
        notifier: Notifier | None = None,
    ) -> None:
        self.config_path = config_path
        self.context = context
        self._outcomes = outcomes
        self._executor = executor
        self._side_servers = side_servers
        self.notifier = notifier or Notifier()
        self._reload_requested = threading.Event()
        self._seen: queue.Queue[Seen] = queue.Queue()
        self._tracker = SettleTracker(lambda index: self.runtime.config.inboxes[index].settle_seconds)
        self._observers: list[BaseObserver] = []
        self._delivery: DeliveryThread | None = None
        self._store: Store | None = None

    @property
    def runtime(self) -> Runtime:
        return self.context.runtime

    # signals ----------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGHUP, self._on_reload_signal)

    def _on_stop_signal(self, signum: int, frame: FrameType | None) -> None:
        self.context.stopping.set()

    def _on_reload_signal(self, signum: int, frame: FrameType | None) -> None:
        self._reload_requested.set()

    # lifecycle --------------------------------------------------------------

    def run(self) -> None:
        """Run until SIGTERM/SIGINT; returns after draining."""
        config = self.runtime.config
        self._store = Store(config.state_dir)
        self._outcomes.fail_jobs_that_crashed_the_process(self._store)
        recovered = self._store.jobs.recover()
        log.info(
            "daemon_starting",
            pid=os.getpid(),
            config=config.source,
            recovered_jobs=recovered,
            inboxes=[str(i.path) for i in config.inboxes],
        )
        if config.queue.backend == "local":
            self._load_models()
        for server in self._side_servers:
            server.start()
        self._executor.start()
        self._delivery = DeliveryThread(self.context)
        self._delivery.start()
        self._start_watching()
        self.notifier.ready(self._status_line())
        log.info("daemon_ready", workers=config.workers)
        try:
            self._loop()
        finally:
            self._shutdown()

    def _load_models(self) -> None:
        """Load each inbox profile's models before READY=1, so the first scan is not slow."""
        for profile in sorted({inbox.profile for inbox in self.runtime.config.inboxes}):
            started = time.perf_counter()
            self.runtime.pipeline(profile).load()
            seconds = time.perf_counter() - started
            self.context.metrics.model_load_seconds.labels(profile).set(seconds)
            log.info("models_loaded", profile=profile, seconds=round(seconds, 2))

    def _start_watching(self) -> None:
        self._observers = start_observers(self.runtime.config.inboxes, self._seen)
        self._rescan()

    def _stop_watching(self) -> None:
        for observer in self._observers:
            observer.stop()
        for observer in self._observers:
            observer.join(timeout=5)
        self._observers = []

    def _loop(self) -> None:
        watchdog_every = watchdog_interval_seconds()
        last_rescan = last_watchdog = last_status = time.monotonic()
        while not self.context.stopping.wait(LOOP_SECONDS):
            if self._reload_requested.is_set():
                self._reload_requested.clear()
                self._reload()
            self._supervise()
            self._drain_events()
            for inbox_index, path in self._tracker.settled():
                self._take_in_guarded(inbox_index, path)
            now = time.monotonic()
            if now - last_rescan >= self.runtime.config.rescan_interval_seconds:
                self._rescan()
                last_rescan = now
            if watchdog_every and now - last_watchdog >= watchdog_every and self.is_healthy():
                self.notifier.watchdog()
                last_watchdog = now
            if now - last_status >= 2:
                self.notifier.status(self._status_line())
                last_status = now

    def _shutdown(self) -> None:
        self.notifier.stopping()
        log.info("daemon_stopping")
        self.context.stopping.set()
        self.context.work_available.set()
        self.context.deliveries_available.set()
        self._stop_watching()
        self._executor.join(timeout=self.runtime.config.job_timeout_seconds)
        if self._delivery:
            self._delivery.join(timeout=30)
        self.runtime.close()
        for server in self._side_servers:
            server.stop()
        if self._store:
            self._store.close()
        log.info("daemon_stopped")

    def is_healthy(self) -> bool:
        return self.health()[0]

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Healthy while the watchers and threads are alive, no job has run past job_timeout_seconds and the store answers.

        Called by the main loop (watchdog) and by /healthz on the metrics thread.
        """
        limit = self.runtime.config.job_timeout_seconds
        workers = self._executor.health(limit)
        watchers_alive = all(observer.is_alive() for observer in self._observers)
        delivery_alive = self._delivery is not None and self._delivery.is_healthy()
        store_error = self.context.health.store_error()
        is_healthy = (
            watchers_alive
            and delivery_alive
            and store_error is None
            and all(w["alive"] and not w["stalled"] for w in workers)
        )
        try:
            queue_depth = self._store.reporting.queue_depth() if self._store else None
        except sqlite3.Error as exc:
            queue_depth, store_error, is_healthy = None, store_error or str(exc), False
        return is_healthy, {
            "watchers_alive": watchers_alive,
            "delivery_alive": delivery_alive,
            "workers": workers,
            "thread_restarts": self.context.health.thread_restarts,
            "store_error": store_error,
            "job_timeout_seconds": limit,
            "queue_depth": queue_depth,
        }

    def _supervise(self) -> None:
        """Threads that died anyway are replaced (the executor gives their jobs back)."""
        if self.context.stopping.is_set() or self._store is None:
            return
        self._executor.supervise(self._store)
        if self._delivery is not None and not self._delivery.is_alive():
            self.context.health.thread_restarted(self._delivery.name)
            self._delivery = DeliveryThread(self.context)
            self._delivery.start()

    def _status_line(self) -> str:
        depth = self._store.reporting.queue_depth() if self._store else 0
        return f"watching {len(self.runtime.config.inboxes)} inbox(es), {depth} job(s) queued, {len(self._tracker)} settling"

    # reload -----------------------------------------------------------------

    def _reload(self) -> None:
        from hwdaemon.config import load_config
        from hwdaemon.pipeline import check_profiles_ready

        self.notifier.reloading()
        try:
            config = load_config(self.config_path, self.runtime.registry)
            if config.queue.backend == "local":
                check_profiles_ready(config, self.runtime.registry)  # what check-config and start-up require
            _check_reloadable(self.runtime.config, config)
        except Exception as exc:  # a ConfigError, a missing model, a plugin failing to build: the old config stays
            error = str(exc) if isinstance(exc, HwdaemonError) else f"{type(exc).__name__}: {exc}"
            log.error("config_reload_refused", error=error, kept=self.runtime.config.source)
            self.notifier.ready(self._status_line())
            return
        old = self.runtime
        self._stop_watching()
        self.context.runtime = Runtime(config=config, registry=old.registry)
        old.close()
        self._start_watching()
        log.info("config_reloaded", config=config.source, inboxes=[str(i.path) for i in config.inboxes])
        self.notifier.ready(self._status_line())

    # intake -----------------------------------------------------------------

    def _drain_events(self) -> None:
        while True:
            try:
                inbox_index, path = self._seen.get_nowait()
            except queue.Empty:
                return
            if inbox_index < len(self.runtime.config.inboxes):
                self._tracker.touch(inbox_index, path)

    def _rescan(self) -> None:
        for index, inbox in enumerate(self.runtime.config.inboxes):
            for path in scan_inbox(inbox):
                self._tracker.touch(index, path)

    def _take_in_guarded(self, inbox_index: int, path: Path) -> None:
        """Intake never stops the main loop: a store failure is reported and the next rescan sees the file again."""
        try:
            self._take_in(inbox_index, path)
        except sqlite3.Error as exc:
            self.context.health.store_failed(exc)
        except Exception as exc:  # a bug must cost one file's intake, not the daemon
            log.error(
                "intake_failed",
                file=str(path),
                error=f"{type(exc).__name__}: {exc}",
                traceback=traceback.format_exc(limit=8),
            )

    def _take_in(self, inbox_index: int, path: Path) -> None:
        """A settled file becomes a job — unless it is not a candidate, already known, or a duplicate."""
        assert self._store is not None
        inbox = self.runtime.config.inboxes[inbox_index]
        root = Path(inbox.path).absolute()
        path = path.absolute()
        try:
            relative = path.relative_to(root)
        except ValueError:
            return
        if not is_candidate(relative, inbox.patterns, inbox.ignore, inbox.recursive):
            return
        if not is_utf8_name(path):
            try:
                renamed = with_utf8_name(path)
            except OSError as exc:
                log.error(
                    "file_not_renamed", file=os.fsencode(path).decode("utf-8", "backslashreplace"), error=exc.strerror
                )
                return
            log.warning("file_renamed", file=str(renamed), reason="its name was not UTF-8; read as Latin-1")
            return  # the new name is seen (event, rescan) and settles like any new file
        with structlog.contextvars.bound_contextvars(file=str(path), inbox=str(root)):
            if self._store.jobs.unfinished_for(str(path)):
                return
            try:
                info = path.stat()
            except FileNotFoundError:
                return  # gone again, or a link to nothing (yet)
            except OSError as exc:  # EACCES on a share's folder, EIO, ELOOP
                self._outcomes.refused(
                    self._store, inbox, path, f"cannot read its attributes: {exc.strerror} (errno {exc.errno})", None
                )
                return
            if stat.S_ISDIR(info.st_mode):
                return
            finished = self._store.jobs.finished_for(str(path), info.st_size, info.st_mtime_ns)
            if finished is not None:
                self._finish_leftover(inbox, path, finished.state)
                return
            try:
                admission = admit(self._store, inbox, path, info, self.runtime.config.inputs, inside=root)
            except InputFileError as exc:  # too large, unreadable, outside the inbox, not a regular file
                self._outcomes.refused(self._store, inbox, path, exc.reason, info)
                return
            key = inbox_key_of(inbox)
            if admission.original is not None:
                original = admission.original
                job = self._store.jobs.add(
                    str(path),
                    key,
                    inbox.profile,
                    admission.sha256,
                    info.st_size,
                    info.st_mtime_ns,
                    "duplicate",
                    f"same bytes as job {original.id} ({original.path})",
                )
                self._finish_leftover(inbox, path, "duplicate")
                self.context.metrics.files_seen.labels(key, "duplicate").inc()
                log.info("file_duplicate", job_id=job.id, duplicate_of=original.id)
                return
            assert admission.job is not None
            job = admission.job
            self.context.metrics.files_seen.labels(key, "queued").inc()
            log.info("job_queued", job_id=job.id, bytes=info.st_size)
            self.context.work_available.set()

    def _finish_leftover(self, inbox: InboxConfig, path: Path, state: str) -> None:
        """A file whose job already ended (crash before the move, or a duplicate): file it now."""
        if state not in ("done", "duplicate"):
            return
        try:
            file_done(path, inbox.after, Path(inbox.path).absolute())
        except OSError as exc:
            log.error("file_not_filed", error=f"{exc.strerror} (errno {exc.errno})", after=inbox.after)


def _check_reloadable(old: Config, new: Config) -> None:
    """Keys the running threads were built on can change only with a restart: say so rather than half-apply them."""
    for key in ("state_dir", "workers"):
        if getattr(old, key) != getattr(new, key):
            raise ConfigError(
                f"{new.source}: {key} changed ({getattr(old, key)} → {getattr(new, key)}); restart hwdaemon to apply it"
            )
    if old.queue.backend != new.queue.backend:
        raise ConfigError(
            f"{new.source}: queue.backend changed ({old.queue.backend} → {new.queue.backend}); restart hwdaemon to apply it"
        )
