"""The daemon's learner: a thread that starts a profile's background training when enough new lines are approved.

Rule: reading never waits for learning. The training runs in its own process
(trainer.py: nice 19, one thread); this thread stops it with SIGSTOP the moment
a job is queued or being read and continues it with SIGCONT once none is, and
starts none while one is. One training at a time, across profiles. A run is
its folder (runs.py), so after a crash, a kill -9 of either process or a
restart, the next check finds the run unfinished and starts its process again,
which continues from the checkpoint. A process that keeps dying is given up
after MAX_STARTS and the attempt recorded as failed, so nothing loops forever;
a process the daemon itself ends (stopping, learning turned off) does not count.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable

import structlog

from hwdaemon.config import Config
from hwdaemon.learning.places import learning_profiles, reading_now, registry_for
from hwdaemon.learning.registry import Attempt
from hwdaemon.learning.runs import LearningRun, RunFolder
from hwdaemon.store import Store

log = structlog.get_logger()
QUEUE_POLL_SECONDS = 0.1  # how soon a queued job stops the training
MAX_STARTS = 5  # a run whose process dies this often is recorded as failed


class Learner:
    """Started and stopped with the daemon (like a side server); `config_of` is read afresh, so a SIGHUP reload applies."""

    def __init__(self, config_of: Callable[[], Config]) -> None:
        self._config_of = config_of
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="learner", daemon=True)
        self._next_check: dict[str, float] = {}
        self._process: subprocess.Popen[bytes] | None = None
        self._folder: RunFolder | None = None
        self._profile: str | None = None  # whose run the process is
        self._is_paused = False

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop the training process (its checkpoint stays: the next start continues it) and the thread."""
        self._stopping.set()
        self._thread.join(timeout=30)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    # the thread ---------------------------------------------------------------

    def _run(self) -> None:
        try:
            store = Store(self._config_of().state_dir)
        except Exception as error:  # the daemon itself opened it a moment ago: say why learning is off, read on
            log.error("learning_unavailable", error=f"{type(error).__name__}: {error}")
            return
        try:
            while not self._stopping.wait(QUEUE_POLL_SECONDS):
                try:
                    self._step(store)
                except sqlite3.Error as error:  # no queue depth to go by: hold the training stopped, try again
                    log.warning("learning_store_unavailable", error=str(error))
                    if self._process is not None:
                        self._pace(is_reading=True)
                    self._stopping.wait(5)
                except Exception as error:  # a bug must not end learning for the daemon's life
                    log.error("learning_check_failed", error=f"{type(error).__name__}: {error}")
                    self._stopping.wait(5)
        finally:
            self._end_process("daemon stopping; continues at the next start")
            store.close()

    def _step(self, store: Store) -> None:
        learning = learning_profiles(self._config_of())
        if self._process is None and not learning:
            return
        if (
            self._process is not None and self._profile not in learning
        ):  # turned off by a reload: keep the run for later
            self._end_process("learning.enabled is false now; the run continues when it is true again")
            return
        is_reading = store.reporting.queue_depth() > 0
        if self._process is not None:
            self._pace(is_reading)
            self._reap()
        elif not is_reading:
            self._check_profiles(store)

    def _pace(self, is_reading: bool) -> None:
        """Stop the training while anything is queued or read; continue it when nothing is."""
        assert self._process is not None and self._folder is not None
        if is_reading and not self._is_paused:
            self._signal(signal.SIGSTOP)
            self._is_paused = True
            self._folder.set_paused(True)
            log.info("learning_paused", reason="jobs queued")
        elif not is_reading and self._is_paused:
            self._signal(signal.SIGCONT)
            self._is_paused = False
            self._folder.set_paused(False)
            log.info("learning_resumed")

    def _reap(self) -> None:
        """A finished process: log its outcome and clear its run; a killed one: leave the run to be continued."""
        assert self._process is not None and self._folder is not None
        code = self._process.poll()
        if code is None:
            return
        folder, run = self._folder, self._folder.run()
        self._process, self._folder, self._profile, self._is_paused = None, None, None, False
        folder.set_paused(False)
        outcome = folder.outcome()
        if outcome is None:
            log.warning(
                "learning_interrupted", profile=run.profile if run else None, exit_code=code, log=str(folder.log)
            )
            return
        folder.clear()  # before the log line: a finished run's folder is gone once `learning_finished` is logged
        _log_outcome(outcome, run.profile if run else "?")

    def _check_profiles(self, store: Store) -> None:
        config = self._config_of()
        now = time.monotonic()
        for profile in learning_profiles(config):
            if now < self._next_check.get(profile, 0):
                continue
            self._next_check[profile] = now + config.profile(profile).learning.check_interval_seconds
            folder = RunFolder.of(config.state_dir, profile)
            if folder.outcome() is not None:  # decided before a crash, not yet cleared
                folder.clear()
            if folder.run() is None and not self._plan(store, config, profile, folder):
                continue
            self._start(folder)
            return

    def _plan(self, store: Store, config: Config, profile: str, folder: RunFolder) -> bool:
        """Plan a run when the profile has min_new_lines approved since its last one; True when planned."""
        new_lines = store.review.approved_lines_since(profile, last_started_at(config, profile))
        wanted = config.profile(profile).learning
        log.debug("learning_checked", profile=profile, new_lines=new_lines, min_new_lines=wanted.min_new_lines)
        if new_lines < wanted.min_new_lines:
            return False
        registry = registry_for(config, profile)
        run = LearningRun(
            run_id=uuid.uuid4().hex, profile=profile, state_dir=config.state_dir.absolute(),
            registry_root=registry.root.absolute(), live=registry.live.absolute(),
            reading_now=reading_now(config, profile), started_at=time.time(), epochs=wanted.epochs,
            learning_rate=wanted.learning_rate, holdout_fraction=wanted.holdout_fraction,
        )  # fmt: skip
        folder.plan(run)
        log.info("learning_planned", profile=profile, run_id=run.run_id, new_lines=new_lines)
        return True

    def _start(self, folder: RunFolder) -> None:
        """Start (or continue) the run's training process, unless it has died too often."""
        run = folder.run()
        assert run is not None
        starts = folder.count_start()
        if starts > MAX_STARTS:
            attempt = Attempt(
                run_id=run.run_id, outcome="failed", started_at=run.started_at, finished_at=time.time(), base_version=None,
                reason=f"the training process stopped without a result {MAX_STARTS} times; its output is in {folder.kept_log}",
            )  # fmt: skip
            registry = registry_for(self._config_of(), run.profile)
            with registry.locked():
                registry.record(attempt)
            folder.clear()
            _log_outcome(attempt, run.profile)
            return
        with folder.log.open("ab") as output:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "hwdaemon.learning", str(folder.path), str(os.getpid())],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self._folder, self._profile = folder, run.profile
        log.info("learning_started", profile=run.profile, run_id=run.run_id, pid=self._process.pid, start=starts)

    def _signal(self, number: int) -> None:
        assert self._process is not None
        try:
            self._process.send_signal(number)
        except ProcessLookupError:
            pass  # it has just ended: the next poll reaps it

    def _end_process(self, reason: str) -> None:
        """Kill the training (a stopped process too); its run folder stays, and its next start continues from the checkpoint."""
        if self._process is None:
            return
        self._process.kill()
        self._process.wait(10)
        if self._folder is not None:
            self._folder.set_paused(False)
            self._folder.uncount_start()  # not the run's fault: restarts and reloads never use up MAX_STARTS
        log.info("learning_suspended", profile=self._profile, pid=self._process.pid, reason=reason)
        self._process, self._folder, self._profile, self._is_paused = None, None, None, False


def last_started_at(config: Config, profile: str) -> float:
    """When the lines of the profile's last training were gathered (0 before any): newer approvals count for the next."""
    planned = RunFolder.of(config.state_dir, profile).run()
    if planned is not None:
        return planned.started_at
    attempts = registry_for(config, profile).attempts()
    return max((attempt.started_at for attempt in attempts), default=0.0)


def _log_outcome(attempt: Attempt, profile: str) -> None:
    fields = dict(
        profile=profile, run_id=attempt.run_id, outcome=attempt.outcome, version=attempt.version,
        training_lines=attempt.training_lines, held_back_lines=attempt.held_back_lines,
        cer_before=attempt.cer_before, cer_after=attempt.cer_after, reason=attempt.reason,
    )  # fmt: skip
    if attempt.outcome == "failed":
        log.error("learning_failed", **fields)
    else:
        log.info("learning_finished", **fields)
