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
from typing import Any

import structlog
from watchdog.observers.api import BaseObserver

from hwdaemon.config import Config, InboxConfig
from hwdaemon.daemon.delivery import DeliveryThread
from hwdaemon.daemon.files import move_into, write_error_report
from hwdaemon.daemon.filters import FAILED_FOLDER, PROCESSED_FOLDER, is_candidate
from hwdaemon.daemon.notify import Notifier, watchdog_interval_seconds
from hwdaemon.daemon.runtime import Runtime, inbox_key_of
from hwdaemon.store import Job, Store
from hwdaemon.daemon.watcher import Seen, SettleTracker, scan_inbox, start_observers
from hwdaemon.daemon.worker import Worker, record_failure
from hwdaemon.errors import ConfigError, HwdaemonError, InputFileError
from hwdaemon.export import process_umask
from hwdaemon.inputs import sha256_of
from hwdaemon.metrics import Metrics, MetricsServer
from hwdaemon.plugins import Registry
from hwdaemon.ui.server import UiServer

log = structlog.get_logger()
LOOP_SECONDS = 0.2
STORE_TROUBLE_SECONDS = 30.0  # how long /healthz reports a store failure after the last one


class Service:
    def __init__(self, config_path: Path | None, config: Config, registry: Registry, notifier: Notifier | None = None) -> None:
        self.config_path = config_path
        self.runtime = Runtime(config=config, registry=registry)
        self.notifier = notifier or Notifier()
        self.stopping = threading.Event()
        self.work_available = threading.Event()
        self.deliveries_available = threading.Event()
        self._reload_requested = threading.Event()
        self._seen: queue.Queue[Seen] = queue.Queue()
        self._tracker = SettleTracker(lambda index: self.runtime.config.inboxes[index].settle_seconds)
        self._observers: list[BaseObserver] = []
        self._workers: list[Worker] = []
        self._delivery: DeliveryThread | None = None
        self._store: Store | None = None
        self.metrics = Metrics(lambda: Store(self.runtime.config.state_dir))
        self._metrics_server: MetricsServer | None = None
        self._ui_server: UiServer | None = None
        self._store_trouble: tuple[float, str] | None = None  # (monotonic time, error) of the last store failure
        self.thread_restarts = 0
        process_umask()  # read once, before any thread exists

    # signals ----------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGHUP, self._on_reload_signal)

    def _on_stop_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping.set()

    def _on_reload_signal(self, signum: int, frame: FrameType | None) -> None:
        self._reload_requested.set()

    # lifecycle --------------------------------------------------------------

    def run(self) -> None:
        """Run until SIGTERM/SIGINT; returns after draining."""
        config = self.runtime.config
        self._store = Store(config.state_dir)
        self._fail_jobs_that_crashed_the_process()
        recovered = self._store.jobs.recover()
        log.info("daemon_starting", pid=os.getpid(), config=config.source, recovered_jobs=recovered, inboxes=[str(i.path) for i in config.inboxes])
        if config.queue.backend == "local":
            self._load_models()
        if config.metrics.enabled:
            self._metrics_server = MetricsServer(self.metrics, self.health, config.metrics.host, config.metrics.port)
            self._metrics_server.start()
            host, port = self._metrics_server.address
            log.info("metrics_listening", url=f"http://{host}:{port}/metrics")
        if config.ui.enabled:
            self._ui_server = UiServer(lambda: self.runtime.config)
            self._ui_server.start()
            log.info("ui_listening", url=self._ui_server.url)
        count = 1 if config.queue.backend == "celery" else config.workers
        self._workers = [self._new_worker(number) for number in range(1, count + 1)]
        for worker in self._workers:
            worker.start()
        self._delivery = DeliveryThread(self)
        self._delivery.start()
        self._start_watching()
        self.notifier.ready(self._status_line())
        log.info("daemon_ready", workers=config.workers)
        try:
            self._loop()
        finally:
            self._shutdown()

    def _new_worker(self, number: int) -> Worker:
        if self.runtime.config.queue.backend == "celery":
            from hwdaemon.distributed.coordinator import Dispatcher

            return Dispatcher(self)  # type: ignore[return-value]
        return Worker(self, number)

    def _fail_jobs_that_crashed_the_process(self) -> None:
        """A job in hand when the process died counted as an attempt; past max_attempts it is failed, not taken again.

        Without this a file that gets the daemon killed (by the kernel, for memory)
        is taken again at every start, forever.
        """
        assert self._store is not None
        limit = self.runtime.config.max_attempts
        for job in self._store.jobs.in_hand():
            if job.attempts >= limit:
                error = f"the daemon stopped while reading this file, {job.attempts} times (killed for memory, or a crash); it is not read again"
                record_failure(self, self._store, job, error, permanent=True)

    def _load_models(self) -> None:
        """Load each inbox profile's models before READY=1, so the first scan is not slow."""
        for profile in sorted({inbox.profile for inbox in self.runtime.config.inboxes}):
            started = time.perf_counter()
            self.runtime.pipeline(profile).load()
            seconds = time.perf_counter() - started
            self.metrics.model_load_seconds.labels(profile).set(seconds)
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
        while not self.stopping.wait(LOOP_SECONDS):
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
        self.stopping.set()
        self.work_available.set()
        self.deliveries_available.set()
        self._stop_watching()
        for worker in self._workers:
            worker.join(timeout=self.runtime.config.job_timeout_seconds)
        if self._delivery:
            self._delivery.join(timeout=30)
        self.runtime.close()
        if self._metrics_server:
            self._metrics_server.stop()
        if self._ui_server:
            self._ui_server.stop()
        if self._store:
            self._store.close()
        log.info("daemon_stopped")

    def is_healthy(self) -> bool:
        return self.health()[0]

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Healthy while the watchers and threads are alive and no job has run past job_timeout_seconds.

        Called by the main loop (watchdog) and by /healthz on the metrics thread.
        """
        now = time.monotonic()
        limit = self.runtime.config.job_timeout_seconds
        workers = []
        for worker in self._workers:
            busy_since = worker.busy_since
            busy_seconds = None if busy_since is None else round(now - busy_since, 1)
            stalled = busy_seconds is not None and busy_seconds > limit
            workers.append({"name": worker.name, "alive": worker.is_alive(), "busy_seconds": busy_seconds, "stalled": stalled})
        watchers_alive = all(observer.is_alive() for observer in self._observers)
        delivery_alive = self._delivery is not None and self._delivery.is_alive()
        trouble = self._store_trouble
        store_error = trouble[1] if trouble is not None and now - trouble[0] < STORE_TROUBLE_SECONDS else None
        is_healthy = watchers_alive and delivery_alive and store_error is None and all(w["alive"] and not w["stalled"] for w in workers)
        try:
            queue_depth = self._store.reporting.queue_depth() if self._store else None
        except sqlite3.Error as exc:
            queue_depth, store_error, is_healthy = None, store_error or str(exc), False
        return is_healthy, {
            "watchers_alive": watchers_alive,
            "delivery_alive": delivery_alive,
            "workers": workers,
            "thread_restarts": self.thread_restarts,
            "store_error": store_error,
            "job_timeout_seconds": limit,
            "queue_depth": queue_depth,
        }

    def store_trouble(self, exc: Exception) -> None:
        """A thread could not read or write the store (disk full, I/O error): log it, report it until it clears.

        The thread that saw it keeps its job and tries again; /healthz and the
        systemd watchdog show the condition for STORE_TROUBLE_SECONDS after the last failure.
        """
        first = self._store_trouble is None or time.monotonic() - self._store_trouble[0] >= STORE_TROUBLE_SECONDS
        self._store_trouble = (time.monotonic(), f"{type(exc).__name__}: {exc}")
        if first:
            log.error("store_unavailable", error=str(exc), state_dir=str(self.runtime.config.state_dir))

    def _supervise(self) -> None:
        """A thread that died anyway (a plugin's SystemExit, a bug) is logged and replaced; its job goes back."""
        if self.stopping.is_set():
            return
        for index, worker in enumerate(self._workers):
            if worker.is_alive():
                continue
            job = getattr(worker, "job_in_hand", None)
            log.error("thread_restarted", thread=worker.name, job_id=job.id if job else None)
            self.thread_restarts += 1
            self.metrics.thread_restarts.labels(worker.name).inc()
            if job is not None and self._store is not None:
                self._give_back_after_death(job, worker.name)
            self._workers[index] = self._new_worker(index + 1)
            self._workers[index].start()
        if self._delivery is not None and not self._delivery.is_alive():
            log.error("thread_restarted", thread=self._delivery.name)
            self.thread_restarts += 1
            self.metrics.thread_restarts.labels(self._delivery.name).inc()
            self._delivery = DeliveryThread(self)
            self._delivery.start()

    def _give_back_after_death(self, job: Job, thread: str) -> None:
        """The dead thread's job counts the attempt (it may be what killed it) and fails past max_attempts."""
        assert self._store is not None
        error = f"the thread reading this file ({thread}) ended without an outcome"
        try:
            record_failure(self, self._store, job, error, permanent=False)
        except (sqlite3.Error, OSError) as exc:
            log.error("job_outcome_not_recorded", job_id=job.id, error=str(exc))

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
        self.runtime = Runtime(config=config, registry=old.registry)
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
            self.store_trouble(exc)
        except Exception as exc:  # a bug must cost one file's intake, not the daemon
            log.error("intake_failed", file=str(path), error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(limit=8))

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
        with structlog.contextvars.bound_contextvars(file=str(path), inbox=str(root)):
            if self._store.jobs.unfinished_for(str(path)):
                return
            try:
                info = path.stat()
            except FileNotFoundError:
                return  # gone again, or a link to nothing (yet)
            except OSError as exc:  # EACCES on a share's folder, EIO, ELOOP
                self._refuse(inbox, path, f"cannot read its attributes: {exc.strerror} (errno {exc.errno})", None)
                return
            if stat.S_ISDIR(info.st_mode):
                return
            finished = self._store.jobs.finished_for(str(path), info.st_size, info.st_mtime_ns)
            if finished is not None:
                self._finish_leftover(inbox, path, finished.state)
                return
            try:
                sha256 = sha256_of(path, inside=root)
            except InputFileError as exc:  # unreadable, outside the inbox, not a regular file
                self._refuse(inbox, path, exc.reason, info)
                return
            original = self._store.jobs.original_with_sha256(sha256)
            key = inbox_key_of(inbox)
            if original is not None:
                job = self._store.jobs.add(str(path), key, inbox.profile, sha256, info.st_size, info.st_mtime_ns, "duplicate", f"same bytes as job {original.id} ({original.path})")
                self._finish_leftover(inbox, path, "duplicate")
                self.metrics.files_seen.labels(key, "duplicate").inc()
                log.info("file_duplicate", job_id=job.id, duplicate_of=original.id)
                return
            job = self._store.jobs.add(str(path), key, inbox.profile, sha256, info.st_size, info.st_mtime_ns)
            self.metrics.files_seen.labels(key, "queued").inc()
            log.info("job_queued", job_id=job.id, bytes=info.st_size)
            self.work_available.set()

    def _finish_leftover(self, inbox: InboxConfig, path: Path, state: str) -> None:
        """A file whose job already ended (crash before the move, or a duplicate): file it now."""
        try:
            if inbox.after == "move" and state in ("done", "duplicate"):
                move_into(path, Path(inbox.path).absolute() / PROCESSED_FOLDER)
            elif inbox.after == "delete" and state in ("done", "duplicate"):
                path.unlink(missing_ok=True)
        except OSError as exc:
            log.error("file_not_filed", error=f"{exc.strerror} (errno {exc.errno})", after=inbox.after)

    def _refuse(self, inbox: InboxConfig, path: Path, reason: str, info: os.stat_result | None) -> None:
        """A file that cannot become a job: a failed job, and the file in failed/ with its report where it can be moved.

        One that cannot be moved either stays where it is, failed in the store (`status`
        shows it) and recorded with its size and mtime, so it is not taken again until it changes.
        """
        assert self._store is not None
        size, mtime_ns = (info.st_size, info.st_mtime_ns) if info else (0, 0)
        job = self._store.jobs.add(str(path), inbox_key_of(inbox), inbox.profile, "", size, mtime_ns, "failed", reason)
        self.metrics.files_seen.labels(inbox_key_of(inbox), "refused").inc()
        try:
            final = move_into(path, Path(inbox.path).absolute() / FAILED_FOLDER, with_report=True)
            write_error_report(final, reason, 0, {"job_id": job.id, "permanent": True, "original_name": path.name})
        except OSError as exc:
            log.error("file_refused", job_id=job.id, error=reason, moved_to=None, move_error=f"{exc.strerror} (errno {exc.errno})")
            return
        self._store.jobs.set_final_path(job.id, str(final))
        log.error("file_refused", job_id=job.id, error=reason, moved_to=str(final))

    def call_hook(self, name: str, **kwargs: Any) -> None:
        """Event hooks are for observers: a failing one is logged, never fatal."""
        try:
            getattr(self.runtime.registry.manager.hook, name)(**kwargs)
        except Exception as exc:
            log.warning("hook_failed", hook=name, error=f"{type(exc).__name__}: {exc}")


def _check_reloadable(old: Config, new: Config) -> None:
    """Keys the running threads were built on can change only with a restart: say so rather than half-apply them."""
    for key in ("state_dir", "workers"):
        if getattr(old, key) != getattr(new, key):
            raise ConfigError(f"{new.source}: {key} changed ({getattr(old, key)} → {getattr(new, key)}); restart hwdaemon to apply it")
    if old.queue.backend != new.queue.backend:
        raise ConfigError(f"{new.source}: queue.backend changed ({old.queue.backend} → {new.queue.backend}); restart hwdaemon to apply it")
