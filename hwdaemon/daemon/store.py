"""The durable store: jobs, results and deliveries in one SQLite file (WAL). The only module with SQL.

Every step that must survive a crash is a row here, so `kill -9` at any point
loses nothing: on start `recover()` re-queues jobs left `processing`, and
pending deliveries are simply still pending. Each thread opens its own Store;
SQLite serialises writers, WAL lets `hwdaemon status` read while the daemon writes.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import structlog

from hwdaemon.errors import StoreError
from hwdaemon.model import Result

log = structlog.get_logger()

JobState = Literal["queued", "processing", "done", "failed", "duplicate"]
DeliveryState = Literal["held", "pending", "delivered", "dead", "superseded"]
DATABASE_NAME = "hwdaemon.sqlite3"

# The schema is built by numbered migrations, applied in order; `PRAGMA user_version`
# is the number of the last one applied. Add a migration at the end, never edit
# one that has shipped. Each is idempotent (IF NOT EXISTS, columns added only when
# missing), because stores from before user_version (0, tables present) may hold
# any of the later columns: they run them all and end up current.


def _create_tables(db: sqlite3.Connection) -> None:
    """1: jobs and deliveries, as first released."""
    for statement in (
        """CREATE TABLE IF NOT EXISTS jobs (
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
        )""",
        "CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, next_attempt_at)",
        "CREATE INDEX IF NOT EXISTS jobs_sha256 ON jobs (sha256)",
        "CREATE INDEX IF NOT EXISTS jobs_path ON jobs (path)",
        """CREATE TABLE IF NOT EXISTS deliveries (
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
        )""",
        "CREATE INDEX IF NOT EXISTS deliveries_state ON deliveries (state, next_attempt_at)",
    ):
        db.execute(statement)


def _add_review(db: sqlite3.Connection) -> None:
    """2: the review page: each job's text and confidences, reviews, revisions, revised deliveries."""
    _add_columns(
        db,
        "jobs",
        text="TEXT",
        mean_confidence="REAL",
        min_confidence="REAL",
        needs_review="INTEGER NOT NULL DEFAULT 0",
        approved_revision="INTEGER",
        reviewed_by="TEXT",
        reviewed_at="REAL",
    )
    _add_columns(db, "deliveries", revision="INTEGER NOT NULL DEFAULT 0")
    db.execute(
        """CREATE TABLE IF NOT EXISTS revisions (
            id INTEGER PRIMARY KEY,
            job_id INTEGER NOT NULL REFERENCES jobs (id),
            number INTEGER NOT NULL,
            result TEXT NOT NULL,
            author TEXT NOT NULL,
            created_at REAL NOT NULL,
            UNIQUE (job_id, number)
        )"""
    )


def _add_remote_workers(db: sqlite3.Connection) -> None:
    """3: queue.backend celery: the task a job was sent as, when, and who read it."""
    _add_columns(db, "jobs", task_id="TEXT", dispatched_at="REAL", worker="TEXT")


def _add_columns(db: sqlite3.Connection, table: str, **declarations: str) -> None:
    present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
    for name, declaration in declarations.items():
        if name not in present:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {declaration}")


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_create_tables, _add_review, _add_remote_workers)
SCHEMA_VERSION = len(MIGRATIONS)
_WHAT_TO_DO = (
    "stop hwdaemon, then restore the file from a backup, or move it (and any -wal and -shm files beside it) "
    "aside to start with an empty job history"
)


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
    revision: int = 0


@dataclass(frozen=True, slots=True)
class Revision:
    """A reviewer's edit of a job's result; number 0 is the OCR result itself and is never stored here."""

    job_id: int
    number: int
    author: str
    created_at: float
    result: Result


@dataclass(frozen=True, slots=True)
class ReviewRow:
    """One line of the review page's job list."""

    job: Job
    text: str
    mean_confidence: float | None
    min_confidence: float | None
    needs_review: bool
    approved_revision: int | None
    reviewed_by: str | None
    reviewed_at: float | None
    revisions: int


ReviewFilter = Literal["all", "needs_review", "approved", "unreviewed"]


_JOB_COLUMNS = "id, path, inbox, profile, sha256, size, mtime_ns, state, attempts, error, final_path, created_at, updated_at"
_DELIVERY_COLUMNS = "id, job_id, sink, idempotency_key, state, attempts, last_error, location, created_at, revision"
_REVIEW_SELECT = (
    f"SELECT {_JOB_COLUMNS}, COALESCE(text, ''), mean_confidence, min_confidence, needs_review, approved_revision, reviewed_by, reviewed_at,"
    " (SELECT COUNT(*) FROM revisions WHERE revisions.job_id=jobs.id) FROM jobs"
)


def _review_row(row: tuple[Any, ...]) -> ReviewRow:
    width = len(_JOB_COLUMNS.split(","))
    job, (text, mean, lowest, needs_review, approved, by, at, revisions) = Job(*row[:width]), row[width:]
    return ReviewRow(job, text, mean, lowest, bool(needs_review), approved, by, at, revisions)


class Store:
    """One connection to the state database; open one per thread."""

    def __init__(self, state_dir: Path, verify: bool = False) -> None:
        """Open (or create) the store, bringing its schema up to date.

        With `verify` (daemon start, the CLI's read commands) SQLite's quick_check
        reads the whole file first. Raises StoreError, naming the file and what to
        do, for a store that is empty, damaged, unopenable or newer than this code.
        """
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / DATABASE_NAME
        if self.path.exists():
            _check_header(self.path)
        else:
            _create(self.path)
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            if verify:
                self._check_integrity()
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            error = _store_error(self.path, exc)
            if error is None:
                raise
            raise error from exc
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        self._db.close()

    def _check_integrity(self) -> None:
        problems = [row[0] for row in self._db.execute("PRAGMA quick_check(5)")]
        if problems != ["ok"]:
            raise StoreError(f"{self.path}: the job store is damaged ({'; '.join(problems)}); {_WHAT_TO_DO}")

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        """Apply the migrations this store has not had yet, in one transaction."""
        if self.schema_version == SCHEMA_VERSION:
            return
        with self._transaction() as db:
            version = self.schema_version  # again, under the write lock: another process may have just done it
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path}: the job store has schema version {version}, written by a newer hwdaemon "
                    f"(this one knows up to {SCHEMA_VERSION}); run the newer hwdaemon, or restore a backup made "
                    "before the upgrade. The file is left as it is"
                )
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if version == 0 and tables and "jobs" not in tables:
                raise StoreError(
                    f"{self.path}: not an hwdaemon job store (tables {', '.join(sorted(tables))}); "
                    "point state_dir at another folder, or move this file aside"
                )
            for migration in MIGRATIONS[version:]:
                migration(db)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        if version < SCHEMA_VERSION and tables:
            log.info("store_migrated", file=str(self.path), from_version=version, to_version=SCHEMA_VERSION)

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

    def jobs_in_hand(self) -> list[Job]:
        """Jobs left `processing`: at start-up, those the process died reading (or out with a remote worker)."""
        return [Job(*row) for row in self._db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE state='processing' ORDER BY id")]

    def recover(self) -> int:
        """Jobs a crash left `processing` go back to the queue; returns how many.

        Their attempt stays counted: a file that kills the process is failed after max_attempts.
        """
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
        """The newest ended job for exactly this file version (same path, size and mtime).

        A failed file back in the inbox is a retry, unless it failed where it lies
        (it could not be moved to failed/): taking it again would fail again, every rescan.
        """
        row = self._db.execute(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE path=? AND size=? AND mtime_ns=?"
            " AND (state IN ('done','duplicate') OR (state='failed' AND final_path IS NULL)) ORDER BY id DESC LIMIT 1",
            (path, size, mtime_ns),
        ).fetchone()
        return Job(*row) if row else None

    def done_job_with_sha256(self, sha256: str) -> Job | None:
        row = self._db.execute(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE sha256=? AND state IN ('done','queued','processing') ORDER BY id LIMIT 1", (sha256,)
        ).fetchone()
        return Job(*row) if row else None

    def claim_next_job(self) -> Job | None:
        """Atomically take the oldest queued job that is due, marking it `processing` and counting the attempt."""
        now = time.time()
        with self._transaction() as db:
            row = db.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE state='queued' AND next_attempt_at<=? ORDER BY id LIMIT 1", (now,)
            ).fetchone()
            if row is None:
                return None
            db.execute("UPDATE jobs SET state='processing', attempts=attempts+1, task_id=NULL, dispatched_at=NULL, updated_at=? WHERE id=?", (now, row[0]))
        return self.job(int(row[0]))

    # remote workers (queue.backend: celery) ----------------------------------

    def mark_dispatched(self, job_id: int, task_id: str) -> None:
        now = time.time()
        with self._transaction() as db:
            db.execute("UPDATE jobs SET task_id=?, dispatched_at=?, updated_at=? WHERE id=? AND state='processing'", (task_id, now, now, job_id))

    def dispatched_jobs(self) -> list[tuple[Job, str, float]]:
        """Jobs out with a remote worker: (job, Celery task id, when it was sent)."""
        rows = self._db.execute(
            f"SELECT {_JOB_COLUMNS}, task_id, dispatched_at FROM jobs WHERE state='processing' AND task_id IS NOT NULL ORDER BY dispatched_at"
        ).fetchall()
        width = len(_JOB_COLUMNS.split(","))
        return [(Job(*row[:width]), str(row[width]), float(row[width + 1])) for row in rows]

    def undispatched_processing(self) -> list[Job]:
        """Jobs claimed for dispatch whose task was never sent (the broker was down, or a crash between the two)."""
        rows = self._db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE state='processing' AND task_id IS NULL").fetchall()
        return [Job(*row) for row in rows]

    def set_worker(self, job_id: int, worker: str) -> None:
        with self._transaction() as db:
            db.execute("UPDATE jobs SET worker=? WHERE id=?", (worker, job_id))

    def worker_stats(self, window_seconds: float = 600.0) -> list[dict[str, Any]]:
        """Per remote worker: jobs done in all, when last seen, and jobs per minute over the last `window_seconds`."""
        since = time.time() - window_seconds
        rows = self._db.execute(
            "SELECT worker, COUNT(*), MAX(updated_at), SUM(CASE WHEN updated_at>=? THEN 1 ELSE 0 END) FROM jobs"
            " WHERE worker IS NOT NULL AND state='done' GROUP BY worker ORDER BY worker",
            (since,),
        ).fetchall()
        return [
            {"worker": name, "jobs_done": total, "last_seen": last, "jobs_per_minute": round(recent * 60 / window_seconds, 2)}
            for name, total, last, recent in rows
        ]

    def finish_job(self, job_id: int, result: Result, sinks: list[str], needs_review: bool = False, hold: bool = False) -> None:
        """Store the result and one delivery per sink, in one transaction.

        With `hold` (the inbox's `review: required`) the deliveries wait, state
        `held`, until a reviewer approves the job.
        """
        now = time.time()
        confidences = [line.confidence for line in result.lines]
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET state='done', result=?, error=NULL, updated_at=?, text=?, mean_confidence=?, min_confidence=?, needs_review=?,"
                " approved_revision=NULL, reviewed_by=NULL, reviewed_at=NULL WHERE id=?",
                (
                    json.dumps(result.to_dict(), ensure_ascii=False),
                    now,
                    result.text,
                    result.mean_confidence,
                    min(confidences) if confidences else None,
                    int(needs_review),
                    job_id,
                ),
            )
            db.execute("DELETE FROM revisions WHERE job_id=?", (job_id,))
            for sink in sinks:
                db.execute(
                    "INSERT INTO deliveries (job_id, sink, idempotency_key, state, created_at, updated_at) VALUES (?,?,?,?,?,?)",
                    (job_id, sink, delivery_key(result.sha256, sink, 0), "held" if hold else "pending", now, now),
                )

    def fail_job(self, job_id: int, error: str) -> None:
        with self._transaction() as db:
            db.execute("UPDATE jobs SET state='failed', error=?, updated_at=? WHERE id=?", (error, time.time(), job_id))

    def give_back_job(self, job_id: int, error: str, delay_seconds: float) -> None:
        """Queue a job in hand again without counting the attempt: it never ran to an outcome (the store was full)."""
        now = time.time()
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET state='queued', attempts=MAX(0, attempts-1), error=?, next_attempt_at=?, updated_at=? WHERE id=? AND state='processing'",
                (error, now + delay_seconds, now, job_id),
            )

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

    def result_of(self, job_id: int, revision: int = 0) -> Result | None:
        """The OCR result (revision 0) or a reviewer's revision of it."""
        if revision:
            row = self._db.execute("SELECT result FROM revisions WHERE job_id=? AND number=?", (job_id, revision)).fetchone()
        else:
            row = self._db.execute("SELECT result FROM jobs WHERE id=?", (job_id,)).fetchone()
        return Result.from_dict(json.loads(row[0])) if row and row[0] else None

    # review -------------------------------------------------------------------

    def latest_revision(self, job_id: int) -> int:
        row = self._db.execute("SELECT MAX(number) FROM revisions WHERE job_id=?", (job_id,)).fetchone()
        return int(row[0] or 0)

    def add_revision(self, job_id: int, result: Result, author: str) -> int:
        """Keep a reviewer's edit as the next revision; the OCR result stays untouched. Returns its number."""
        now = time.time()
        with self._transaction() as db:
            number = int(db.execute("SELECT COALESCE(MAX(number), 0) + 1 FROM revisions WHERE job_id=?", (job_id,)).fetchone()[0])
            db.execute(
                "INSERT INTO revisions (job_id, number, result, author, created_at) VALUES (?,?,?,?,?)",
                (job_id, number, json.dumps(result.to_dict(), ensure_ascii=False), author, now),
            )
            db.execute("UPDATE jobs SET text=?, updated_at=? WHERE id=?", (result.text, now, job_id))
        return number

    def revisions(self, job_id: int) -> list[Revision]:
        rows = self._db.execute("SELECT number, author, created_at, result FROM revisions WHERE job_id=? ORDER BY number", (job_id,)).fetchall()
        return [Revision(job_id, number, author, created_at, Result.from_dict(json.loads(result))) for number, author, created_at, result in rows]

    def approve(self, job_id: int, revision: int, author: str, sinks: list[str]) -> list[int]:
        """Mark the job reviewed and queue `revision` for every sink; returns the new delivery ids.

        Deliveries held for review are released (revision 0) or superseded by
        the corrected revision, which gets its own idempotency key so receivers
        that dropped the first as a duplicate take the correction.
        """
        now = time.time()
        job = self.job(job_id)
        if job is None:
            raise KeyError(job_id)
        created: list[int] = []
        with self._transaction() as db:
            db.execute("UPDATE jobs SET approved_revision=?, reviewed_by=?, reviewed_at=?, updated_at=? WHERE id=?", (revision, author, now, now, job_id))
            if revision == 0:
                rows = db.execute("SELECT id FROM deliveries WHERE job_id=? AND state='held' AND revision=0", (job_id,)).fetchall()
                db.execute("UPDATE deliveries SET state='pending', next_attempt_at=0, updated_at=? WHERE job_id=? AND state='held'", (now, job_id))
                return [int(row[0]) for row in rows]
            db.execute("UPDATE deliveries SET state='superseded', updated_at=? WHERE job_id=? AND state='held'", (now, job_id))
            for sink in sinks:
                key = delivery_key(job.sha256, sink, revision)
                if db.execute("SELECT 1 FROM deliveries WHERE idempotency_key=? AND job_id=?", (key, job_id)).fetchone():
                    continue  # this revision was approved before: it is already on its way
                cursor = db.execute(
                    "INSERT INTO deliveries (job_id, sink, idempotency_key, state, created_at, updated_at, revision) VALUES (?,?,?,?,?,?,?)",
                    (job_id, sink, key, "pending", now, now, revision),
                )
                created.append(int(cursor.lastrowid or 0))
        return created

    def review_rows(self, review: ReviewFilter = "all", state: JobState | None = None, query: str = "", offset: int = 0, limit: int = 50) -> tuple[list[ReviewRow], int]:
        """A page of jobs for the review list, newest first, and how many match in all."""
        where, params = ["1=1"], []
        if state:
            where.append("state=?")
            params.append(state)
        if review == "needs_review":
            where.append("needs_review=1 AND approved_revision IS NULL")
        elif review == "approved":
            where.append("approved_revision IS NOT NULL")
        elif review == "unreviewed":
            where.append("state='done' AND approved_revision IS NULL")
        if query:
            where.append("(text LIKE ? ESCAPE '\\' OR path LIKE ? ESCAPE '\\')")
            pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            params += [pattern, pattern]
        clause = " AND ".join(where)
        total = int(self._db.execute(f"SELECT COUNT(*) FROM jobs WHERE {clause}", params).fetchone()[0])
        rows = self._db.execute(f"{_REVIEW_SELECT} WHERE {clause} ORDER BY id DESC LIMIT ? OFFSET ?", [*params, limit, offset]).fetchall()
        return [_review_row(row) for row in rows], total

    def review_row(self, job_id: int) -> ReviewRow | None:
        row = self._db.execute(f"{_REVIEW_SELECT} WHERE id=?", (job_id,)).fetchone()
        return _review_row(row) if row else None

    def approved_jobs(self, profile: str) -> list[tuple[int, int]]:
        """(job id, approved revision) of every reviewed job read by `profile`: lines a person vouched for."""
        rows = self._db.execute(
            "SELECT id, approved_revision FROM jobs WHERE profile=? AND state='done' AND approved_revision IS NOT NULL ORDER BY id", (profile,)
        ).fetchall()
        return [(int(job_id), int(revision)) for job_id, revision in rows]

    def neighbour_jobs(self, job_id: int) -> tuple[int | None, int | None]:
        """The done jobs just newer and just older than `job_id`, for next/previous keys."""
        newer = self._db.execute("SELECT MIN(id) FROM jobs WHERE id>? AND state='done'", (job_id,)).fetchone()[0]
        older = self._db.execute("SELECT MAX(id) FROM jobs WHERE id<? AND state='done'", (job_id,)).fetchone()[0]
        return newer, older

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

    def deliveries_of(self, job_id: int) -> list[Delivery]:
        rows = self._db.execute(f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE job_id=? ORDER BY id", (job_id,)).fetchall()
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


def _check_header(path: Path) -> None:
    """Refuse, before SQLite touches it, a store file that is empty.

    hwdaemon creates its store whole (see `_create`), so an empty file where the store
    should be is a store that lost its contents (a full disk, a bad copy), not a fresh
    start; SQLite would silently begin a new, empty history in it. Only `stat` looks:
    opening and closing the file here would drop the POSIX locks this process's other
    SQLite connections hold on it (SQLite's documented pitfall). A file that is not
    SQLite at all is SQLite's own "not a database" at open.
    """
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise StoreError(f"{path}: cannot read the job store ({exc.strerror}); check that the daemon's user may read and write it") from exc
    if size == 0:
        raise StoreError(
            f"{path}: the job store is empty (0 bytes), so every job's history is gone; {_WHAT_TO_DO}. "
            "If this state_dir never held jobs (a first start cut short), just delete the file"
        )


def _create(path: Path) -> None:
    """Make a new, current store at `path` atomically: built under another name, then linked into place.

    So `path` either does not exist or is a whole store. A journal left beside a
    missing store means the store was deleted or moved; SQLite would replay it
    into the new file, so that is refused.
    """
    wal = path.with_name(path.name + "-wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise StoreError(
            f"{path} is missing but its journal {wal} is still there: the store was moved or deleted; "
            f"put it back, or move {wal} aside too to start with an empty job history"
        )
    temporary = path.with_name(f"{path.name}.new-{os.getpid()}-{threading.get_ident()}")
    for leftover in (temporary, *(temporary.with_name(temporary.name + suffix) for suffix in ("-wal", "-shm", "-journal"))):
        leftover.unlink(missing_ok=True)
    try:
        db = sqlite3.connect(temporary, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("BEGIN IMMEDIATE")
            for migration in MIGRATIONS:
                migration(db)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            db.execute("COMMIT")
        finally:
            db.close()  # the last connection checkpoints and removes its -wal and -shm
        fd = os.open(temporary, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temporary, path)  # never replaces: a store another process just made wins
        except FileExistsError:
            pass
        except OSError as exc:  # a file system without hard links
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK) or path.exists():
                raise
            os.rename(temporary, path)
        _fsync_folder(path.parent)
    finally:
        temporary.unlink(missing_ok=True)


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _store_error(path: Path, exc: sqlite3.DatabaseError) -> StoreError | None:
    """SQLite's error at open as a StoreError naming the file, when waiting cannot mend it."""
    name = getattr(exc, "sqlite_errorname", "")
    if name == "SQLITE_NOTADB" or "not a database" in str(exc):
        return StoreError(f"{path}: not an SQLite database (damaged, or another file in its place); {_WHAT_TO_DO}")
    if name == "SQLITE_CORRUPT" or "malformed" in str(exc):
        return StoreError(f"{path}: the job store is damaged ({exc}); {_WHAT_TO_DO}")
    if name in ("SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_READONLY", "SQLITE_AUTH"):
        return StoreError(f"{path}: cannot open the job store ({exc}); check that the daemon's user may read and write its folder")
    return None  # busy, disk full, I/O: these may pass, so they stay errors a restart may cure


def delivery_key(sha256: str, sink: str, revision: int) -> str:
    """The idempotency key of one result version for one sink: sha256:sink, plus :rN for revision N."""
    return f"{sha256}:{sink}" if revision == 0 else f"{sha256}:{sink}:r{revision}"
