"""The jobs table: one row per file taken from an inbox, from queued to its outcome.

A job is `queued`, then `processing` (claimed, its attempt counted), then
`done`, `failed` or `duplicate`. Jobs left `processing` by a crash go back to
the queue at start (`recover`), so `kill -9` at any point loses nothing.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Literal

from hwdaemon.model import Result
from hwdaemon.store.database import Database
from hwdaemon.store.deliveries import add_delivery, delivery_key

JobState = Literal["queued", "processing", "done", "failed", "duplicate"]


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


JOB_COLUMNS = (
    "id, path, inbox, profile, sha256, size, mtime_ns, state, attempts, error, final_path, created_at, updated_at"
)
JOB_WIDTH = len(JOB_COLUMNS.split(","))


def job_of(row: tuple[Any, ...]) -> Job:
    """A Job from a row whose first columns are JOB_COLUMNS."""
    return Job(*row[:JOB_WIDTH])


class Jobs:
    """The job rows: intake, claiming, outcomes and results."""

    def __init__(self, database: Database) -> None:
        self._db = database.connection
        self._transaction = database.transaction

    def add(
        self,
        path: str,
        inbox: str,
        profile: str,
        sha256: str,
        size: int,
        mtime_ns: int,
        state: JobState = "queued",
        error: str | None = None,
    ) -> Job:
        now = time.time()
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO jobs (path, inbox, profile, sha256, size, mtime_ns, state, error, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (path, inbox, profile, sha256, size, mtime_ns, state, error, now, now),
            )
            job_id = cursor.lastrowid
        job = self.get(int(job_id or 0))
        assert job is not None
        return job

    def get(self, job_id: int) -> Job | None:
        row = self._db.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id=?", (job_id,)).fetchone()
        return job_of(row) if row else None

    def recent(self, state: JobState | None = None, limit: int = 100) -> list[Job]:
        """The newest jobs (in `state`, if given), newest first."""
        if state is None:
            rows = self._db.execute(f"SELECT {JOB_COLUMNS} FROM jobs ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        else:
            rows = self._db.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE state=? ORDER BY id DESC LIMIT ?", (state, limit)
            ).fetchall()
        return [job_of(row) for row in rows]

    def in_hand(self) -> list[Job]:
        """Jobs left `processing`: at start-up, those the process died reading (or out with a remote worker)."""
        return [
            job_of(row)
            for row in self._db.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE state='processing' ORDER BY id")
        ]

    def recover(self) -> int:
        """Jobs a crash left `processing` go back to the queue; returns how many.

        Their attempt stays counted: a file that kills the process is failed after max_attempts.
        """
        with self._transaction() as db:
            return db.execute(
                "UPDATE jobs SET state='queued', updated_at=? WHERE state='processing'", (time.time(),)
            ).rowcount

    def unfinished_for(self, path: str) -> Job | None:
        """The newest job for this path that is not finished yet (queued or processing)."""
        row = self._db.execute(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE path=? AND state IN ('queued','processing') ORDER BY id DESC LIMIT 1",
            (path,),
        ).fetchone()
        return job_of(row) if row else None

    def finished_for(self, path: str, size: int, mtime_ns: int) -> Job | None:
        """The newest ended job for exactly this file version (same path, size and mtime).

        A failed file back in the inbox is a retry, unless it failed where it lies
        (it could not be moved to failed/): taking it again would fail again, every rescan.
        """
        row = self._db.execute(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE path=? AND size=? AND mtime_ns=?"
            " AND (state IN ('done','duplicate') OR (state='failed' AND final_path IS NULL)) ORDER BY id DESC LIMIT 1",
            (path, size, mtime_ns),
        ).fetchone()
        return job_of(row) if row else None

    def original_with_sha256(self, sha256: str) -> Job | None:
        """The oldest job that read these bytes or is still to read them (done, queued or processing).

        A new file with the same bytes is a duplicate of it. Failed jobs do not
        count, so a file that failed may be dropped in again.
        """
        row = self._db.execute(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE sha256=? AND state IN ('done','queued','processing') ORDER BY id LIMIT 1",
            (sha256,),
        ).fetchone()
        return job_of(row) if row else None

    def claim_next(self) -> Job | None:
        """Atomically take the oldest queued job that is due, marking it `processing` and counting the attempt."""
        now = time.time()
        with self._transaction() as db:
            row = db.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE state='queued' AND next_attempt_at<=? ORDER BY id LIMIT 1",
                (now,),
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET state='processing', attempts=attempts+1, task_id=NULL, dispatched_at=NULL, updated_at=? WHERE id=?",
                (now, row[0]),
            )
        return self.get(int(row[0]))

    def finish(
        self, job_id: int, result: Result, sinks: list[str], needs_review: bool = False, hold: bool = False
    ) -> None:
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
                add_delivery(db, job_id, sink, delivery_key(result.sha256, sink, 0), "held" if hold else "pending", now)

    def fail(self, job_id: int, error: str) -> None:
        with self._transaction() as db:
            db.execute("UPDATE jobs SET state='failed', error=?, updated_at=? WHERE id=?", (error, time.time(), job_id))

    def give_back(self, job_id: int, error: str, delay_seconds: float) -> None:
        """Queue a job in hand again without counting the attempt: it never ran to an outcome (the store was full)."""
        now = time.time()
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET state='queued', attempts=MAX(0, attempts-1), error=?, next_attempt_at=?, updated_at=? WHERE id=? AND state='processing'",
                (error, now + delay_seconds, now, job_id),
            )

    def retry_later(self, job_id: int, error: str, delay_seconds: float) -> None:
        now = time.time()
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET state='queued', error=?, next_attempt_at=?, updated_at=? WHERE id=?",
                (error, now + delay_seconds, now, job_id),
            )

    def set_final_path(self, job_id: int, final_path: str) -> None:
        with self._transaction() as db:
            db.execute("UPDATE jobs SET final_path=?, updated_at=? WHERE id=?", (final_path, time.time(), job_id))

    def result_of(self, job_id: int, revision: int = 0) -> Result | None:
        """The OCR result (revision 0) or a reviewer's revision of it."""
        if revision:
            row = self._db.execute(
                "SELECT result FROM revisions WHERE job_id=? AND number=?", (job_id, revision)
            ).fetchone()
        else:
            row = self._db.execute("SELECT result FROM jobs WHERE id=?", (job_id,)).fetchone()
        return Result.from_dict(json.loads(row[0])) if row and row[0] else None
