"""The durable store: jobs, results and deliveries in one SQLite file (WAL). The only module with SQL.

Every step that must survive a crash is a row here, so `kill -9` at any point
loses nothing: on start `recover()` re-queues jobs left `processing`, and
pending deliveries are simply still pending. Each thread opens its own Store;
SQLite serialises writers, WAL lets `hwdaemon status` read while the daemon writes.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hwdaemon.model import Result

JobState = Literal["queued", "processing", "done", "failed", "duplicate"]
DeliveryState = Literal["pending", "delivered", "dead"]
DATABASE_NAME = "hwdaemon.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL,
    inbox TEXT NOT NULL,
    profile TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    duplicate_of INTEGER,
    final_path TEXT,
    result TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    next_attempt_at REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, next_attempt_at);
CREATE INDEX IF NOT EXISTS jobs_sha256 ON jobs (sha256);
CREATE INDEX IF NOT EXISTS jobs_path ON jobs (path);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY,
    job_id INTEGER NOT NULL REFERENCES jobs (id),
    sink TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    location TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    next_attempt_at REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS deliveries_state ON deliveries (state, next_attempt_at);
"""


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    path: str
    inbox: str
    profile: str
    sha256: str
    size: int
    mtime_ns: int
    state: JobState
    attempts: int
    error: str | None
    final_path: str | None
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    job_id: int
    sink: str
    idempotency_key: str
    state: DeliveryState
    attempts: int
    last_error: str | None
    location: str | None
    created_at: float


_JOB_COLUMNS = "id, path, inbox, profile, sha256, size, mtime_ns, state, attempts, error, final_path, created_at, updated_at"
_DELIVERY_COLUMNS = "id, job_id, sink, idempotency_key, state, attempts, last_error, location, created_at"


class Store:
    """One connection to the state database; open one per thread."""

    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / DATABASE_NAME
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # jobs -----------------------------------------------------------------

    def recover(self) -> int:
        """Jobs a crash left `processing` go back to the queue; returns how many."""
        with self._transaction() as db:
            return db.execute("UPDATE jobs SET state='queued', updated_at=? WHERE state='processing'", (time.time(),)).rowcount

    def add_job(self, path: str, inbox: str, profile: str, sha256: str, size: int, mtime_ns: int, state: JobState = "queued", error: str | None = None) -> Job:
        now = time.time()
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO jobs (path, inbox, profile, sha256, size, mtime_ns, state, error, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (path, inbox, profile, sha256, size, mtime_ns, state, error, now, now),
            )
            job_id = cursor.lastrowid
        job = self.job(int(job_id or 0))
        assert job is not None
        return job

    def job(self, job_id: int) -> Job | None:
        row = self._db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id=?", (job_id,)).fetchone()
        return Job(*row) if row else None

    def open_job_for(self, path: str) -> Job | None:
        """A job for this path that is not finished yet (queued or processing)."""
        row = self._db.execute(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE path=? AND state IN ('queued','processing') ORDER BY id DESC LIMIT 1", (path,)
        ).fetchone()
        return Job(*row) if row else None

    def finished_job_for(self, path: str, size: int, mtime_ns: int) -> Job | None:
        """The newest successful job for exactly this file version (same path, size and mtime).

        Failed jobs do not count: a failed file back in the inbox is a retry.
        """
        row = self._db.execute(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE path=? AND size=? AND mtime_ns=? AND state IN ('done','duplicate') ORDER BY id DESC LIMIT 1",
            (path, size, mtime_ns),
        ).fetchone()
        return Job(*row) if row else None

    def done_job_with_sha256(self, sha256: str) -> Job | None:
        row = self._db.execute(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE sha256=? AND state IN ('done','queued','processing') ORDER BY id LIMIT 1", (sha256,)
        ).fetchone()
        return Job(*row) if row else None

    def claim_next_job(self) -> Job | None:
        """Atomically take the oldest queued job that is due, marking it `processing`."""
        now = time.time()
        with self._transaction() as db:
            row = db.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE state='queued' AND next_attempt_at<=? ORDER BY id LIMIT 1", (now,)
            ).fetchone()
            if row is None:
                return None
            db.execute("UPDATE jobs SET state='processing', attempts=attempts+1, updated_at=? WHERE id=?", (now, row[0]))
        return self.job(int(row[0]))

    def finish_job(self, job_id: int, result: Result, sinks: list[str]) -> None:
        """Store the result and one pending delivery per sink, in one transaction."""
        now = time.time()
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET state='done', result=?, error=NULL, updated_at=? WHERE id=?",
                (json.dumps(result.to_dict(), ensure_ascii=False), now, job_id),
            )
            for sink in sinks:
                db.execute(
                    "INSERT INTO deliveries (job_id, sink, idempotency_key, state, created_at, updated_at) VALUES (?,?,?,?,?,?)",
                    (job_id, sink, f"{result.sha256}:{sink}", "pending", now, now),
                )

    def fail_job(self, job_id: int, error: str) -> None:
        with self._transaction() as db:
            db.execute("UPDATE jobs SET state='failed', error=?, updated_at=? WHERE id=?", (error, time.time(), job_id))

    def retry_job_later(self, job_id: int, error: str, delay_seconds: float) -> None:
        now = time.time()
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET state='queued', error=?, next_attempt_at=?, updated_at=? WHERE id=?", (error, now + delay_seconds, now, job_id)
            )

    def requeue_job(self, job_id: int, path: str) -> None:
        """Queue a finished job again (retry, reprocess), reading from `path`."""
        now = time.time()
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET state='queued', path=?, attempts=0, error=NULL, final_path=NULL, next_attempt_at=0, updated_at=? WHERE id=?",
                (path, now, job_id),
            )

    def set_final_path(self, job_id: int, final_path: str) -> None:
        with self._transaction() as db:
            db.execute("UPDATE jobs SET final_path=?, updated_at=? WHERE id=?", (final_path, time.time(), job_id))

    def result_of(self, job_id: int) -> Result | None:
        row = self._db.execute("SELECT result FROM jobs WHERE id=?", (job_id,)).fetchone()
        return Result.from_dict(json.loads(row[0])) if row and row[0] else None

    def jobs(self, state: JobState | None = None, limit: int = 100) -> list[Job]:
        if state is None:
            rows = self._db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        else:
            rows = self._db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE state=? ORDER BY id DESC LIMIT ?", (state, limit)).fetchall()
        return [Job(*row) for row in rows]

    def job_counts(self) -> dict[str, dict[str, int]]:
        """Per inbox, how many jobs are in each state."""
        counts: dict[str, dict[str, int]] = {}
        for inbox, state, count in self._db.execute("SELECT inbox, state, COUNT(*) FROM jobs GROUP BY inbox, state"):
            counts.setdefault(inbox, {})[state] = count
        return counts

    def queue_depth(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM jobs WHERE state IN ('queued','processing')").fetchone()[0])

    # deliveries -------------------------------------------------------------

    def due_deliveries(self, limit: int = 50) -> list[Delivery]:
        rows = self._db.execute(
            f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE state='pending' AND next_attempt_at<=? ORDER BY id LIMIT ?",
            (time.time(), limit),
        ).fetchall()
        return [Delivery(*row) for row in rows]

    def mark_delivered(self, delivery_id: int, location: str) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE deliveries SET state='delivered', attempts=attempts+1, location=?, last_error=NULL, updated_at=? WHERE id=?",
                (location, time.time(), delivery_id),
            )

    def schedule_redelivery(self, delivery_id: int, error: str, delay_seconds: float) -> None:
        now = time.time()
        with self._transaction() as db:
            db.execute(
                "UPDATE deliveries SET attempts=attempts+1, last_error=?, next_attempt_at=?, updated_at=? WHERE id=?",
                (error, now + delay_seconds, now, delivery_id),
            )

    def dead_letter(self, delivery_id: int, error: str) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE deliveries SET state='dead', attempts=attempts+1, last_error=?, updated_at=? WHERE id=?", (error, time.time(), delivery_id)
            )

    def deliveries(self, state: DeliveryState | None = None, limit: int = 100) -> list[Delivery]:
        where, params = ("WHERE state=?", (state, limit)) if state else ("", (limit,))
        rows = self._db.execute(f"SELECT {_DELIVERY_COLUMNS} FROM deliveries {where} ORDER BY id DESC LIMIT ?", params).fetchall()
        return [Delivery(*row) for row in rows]

    def requeue_delivery(self, delivery_id: int) -> bool:
        with self._transaction() as db:
            return db.execute(
                "UPDATE deliveries SET state='pending', attempts=0, next_attempt_at=0, updated_at=? WHERE id=? AND state!='pending'",
                (time.time(), delivery_id),
            ).rowcount == 1

    def delivery_counts(self) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        for sink, state, count in self._db.execute("SELECT sink, state, COUNT(*) FROM deliveries GROUP BY sink, state"):
            counts.setdefault(sink, {})[state] = count
        return counts

    def summary(self) -> dict[str, Any]:
        """What `hwdaemon status` prints: per-inbox job counts, delivery counts, queue depth, last errors."""
        errors = self._db.execute(
            "SELECT id, path, error, updated_at FROM jobs WHERE state='failed' ORDER BY updated_at DESC LIMIT 5"
        ).fetchall()
        return {
            "queue_depth": self.queue_depth(),
            "jobs": self.job_counts(),
            "deliveries": self.delivery_counts(),
            "last_errors": [{"job": row[0], "file": row[1], "error": row[2], "at": row[3]} for row in errors],
        }
