"""The review page's rows: reviewers' revisions of a job's result, approvals, and the job list they browse.

A revision never overwrites the OCR result (revision 0, in the jobs table);
approving one queues it for every sink under its own idempotency key.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Literal

from hwdaemon.model import Result
from hwdaemon.store.database import Database
from hwdaemon.store.deliveries import add_delivery, delivery_key
from hwdaemon.store.jobs import JOB_COLUMNS, JOB_WIDTH, Job, JobState, job_of

ReviewFilter = Literal["all", "needs_review", "approved", "unreviewed"]


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


# The confidence of each line of the newest revision of each unapproved read job of a profile (SQLite's JSON functions).
_UNAPPROVED_LINES = """
WITH heads AS (
    SELECT id AS job_id, result, (SELECT MAX(number) FROM revisions WHERE revisions.job_id = jobs.id) AS revision
    FROM jobs WHERE profile = ? AND state = 'done' AND approved_revision IS NULL
), documents AS (
    SELECT CASE WHEN revision IS NULL THEN result ELSE
        (SELECT result FROM revisions WHERE revisions.job_id = heads.job_id AND number = heads.revision) END AS result
    FROM heads
), lines AS (
    SELECT json_extract(line.value, '$.confidence') AS confidence
    FROM documents, json_each(documents.result, '$.pages') AS page, json_each(page.value, '$.lines') AS line
)
"""


_REVIEW_SELECT = (
    f"SELECT {JOB_COLUMNS}, COALESCE(text, ''), mean_confidence, min_confidence, needs_review, approved_revision, reviewed_by, reviewed_at,"
    " (SELECT COUNT(*) FROM revisions WHERE revisions.job_id=jobs.id) FROM jobs"
)


def _review_row(row: tuple[Any, ...]) -> ReviewRow:
    text, mean, lowest, needs_review, approved, by, at, revisions = row[JOB_WIDTH:]
    return ReviewRow(job_of(row), text, mean, lowest, bool(needs_review), approved, by, at, revisions)


class Review:
    """Revisions, approvals and the review list."""

    def __init__(self, database: Database) -> None:
        self._db = database.connection
        self._transaction = database.transaction

    def latest_revision(self, job_id: int) -> int:
        """The number of the job's newest revision; 0 when it has none."""
        row = self._db.execute("SELECT MAX(number) FROM revisions WHERE job_id=?", (job_id,)).fetchone()
        return int(row[0] or 0)

    def add_revision(self, job_id: int, result: Result, author: str) -> int:
        """Keep a reviewer's edit as the next revision; the OCR result stays untouched. Returns its number."""
        now = time.time()
        with self._transaction() as db:
            number = int(
                db.execute("SELECT COALESCE(MAX(number), 0) + 1 FROM revisions WHERE job_id=?", (job_id,)).fetchone()[0]
            )
            db.execute(
                "INSERT INTO revisions (job_id, number, result, author, created_at) VALUES (?,?,?,?,?)",
                (job_id, number, json.dumps(result.to_dict(), ensure_ascii=False), author, now),
            )
            db.execute("UPDATE jobs SET text=?, updated_at=? WHERE id=?", (result.text, now, job_id))
        return number

    def revisions(self, job_id: int) -> list[Revision]:
        rows = self._db.execute(
            "SELECT number, author, created_at, result FROM revisions WHERE job_id=? ORDER BY number", (job_id,)
        ).fetchall()
        return [
            Revision(job_id, number, author, created_at, Result.from_dict(json.loads(result)))
            for number, author, created_at, result in rows
        ]

    def approve(self, job_id: int, revision: int, author: str, sinks: list[str]) -> list[int]:
        """Mark the job reviewed and queue `revision` for every sink; returns the new delivery ids.

        Deliveries held for review are released (revision 0) or superseded by
        the corrected revision, which gets its own idempotency key so receivers
        that dropped the first as a duplicate take the correction.
        """
        now = time.time()
        found = self._db.execute("SELECT sha256 FROM jobs WHERE id=?", (job_id,)).fetchone()
        if found is None:
            raise KeyError(job_id)
        sha256 = str(found[0])
        created: list[int] = []
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET approved_revision=?, reviewed_by=?, reviewed_at=?, updated_at=? WHERE id=?",
                (revision, author, now, now, job_id),
            )
            if revision == 0:
                rows = db.execute(
                    "SELECT id FROM deliveries WHERE job_id=? AND state='held' AND revision=0", (job_id,)
                ).fetchall()
                db.execute(
                    "UPDATE deliveries SET state='pending', next_attempt_at=0, updated_at=? WHERE job_id=? AND state='held'",
                    (now, job_id),
                )
                return [int(row[0]) for row in rows]
            db.execute(
                "UPDATE deliveries SET state='superseded', updated_at=? WHERE job_id=? AND state='held'", (now, job_id)
            )
            for sink in sinks:
                key = delivery_key(sha256, sink, revision)
                if db.execute(
                    "SELECT 1 FROM deliveries WHERE idempotency_key=? AND job_id=?", (key, job_id)
                ).fetchone():
                    continue  # this revision was approved before: it is already on its way
                created.append(add_delivery(db, job_id, sink, key, "pending", now, revision))
        return created

    def rows(
        self,
        review: ReviewFilter = "all",
        state: JobState | None = None,
        query: str = "",
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[ReviewRow], int]:
        """A page of jobs for the review list, newest first, and how many match in all."""
        where: list[str] = ["1=1"]
        params: list[str] = []
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
        rows = self._db.execute(
            f"{_REVIEW_SELECT} WHERE {clause} ORDER BY id DESC LIMIT ? OFFSET ?", [*params, limit, offset]
        ).fetchall()
        return [_review_row(row) for row in rows], total

    def row(self, job_id: int) -> ReviewRow | None:
        """One job's line of the review list; None for an unknown job."""
        row = self._db.execute(f"{_REVIEW_SELECT} WHERE id=?", (job_id,)).fetchone()
        return _review_row(row) if row else None

    def approved_jobs(self, profile: str) -> list[tuple[int, int]]:
        """(job id, approved revision) of every reviewed job read by `profile`: lines a person vouched for."""
        rows = self._db.execute(
            "SELECT id, approved_revision FROM jobs WHERE profile=? AND state='done' AND approved_revision IS NOT NULL ORDER BY id",
            (profile,),
        ).fetchall()
        return [(int(job_id), int(revision)) for job_id, revision in rows]

    def least_sure_candidates(self, profile: str, limit: int) -> list[tuple[int, int, str]]:
        """(job id, newest revision, its result as JSON) of the unapproved jobs that can hold the `limit` least sure lines.

        Those are every revised job and the `limit` unrevised ones with the lowest
        min_confidence: each of those has a line at its minimum, so a line of any
        other unrevised job has `limit` lines before it.
        """
        rows = self._db.execute(
            """
            WITH candidates AS (
                SELECT id, (SELECT MAX(number) FROM revisions WHERE revisions.job_id = jobs.id) AS revision
                FROM jobs WHERE profile = ? AND state = 'done' AND approved_revision IS NULL
                    AND (id IN (SELECT job_id FROM revisions) OR id IN (
                        SELECT id FROM jobs WHERE profile = ? AND state = 'done' AND approved_revision IS NULL
                            AND id NOT IN (SELECT job_id FROM revisions)
                        ORDER BY min_confidence IS NULL, min_confidence, id LIMIT ?))
            )
            SELECT id, COALESCE(revision, 0), CASE WHEN revision IS NULL THEN (SELECT result FROM jobs WHERE jobs.id = candidates.id)
                ELSE (SELECT result FROM revisions WHERE job_id = candidates.id AND number = revision) END
            FROM candidates ORDER BY id
            """,
            (profile, profile, limit),
        ).fetchall()
        return [(int(job_id), int(revision), str(result)) for job_id, revision, result in rows if result]

    def count_lines_to_check(self, profile: str, below: float) -> int:
        """How many lines under `below` the profile's unapproved jobs hold (reads every one: for the queue page)."""
        row = self._db.execute(
            f"{_UNAPPROVED_LINES} SELECT COUNT(*) FROM lines WHERE confidence < ?",
            (profile, below),
        ).fetchone()
        return int(row[0])

    def approved_lines_since(self, profile: str, since: float) -> int:
        """How many lines with text the profile's jobs approved after `since` (a Unix time) hold: what the next training adds."""
        row = self._db.execute(
            """
            SELECT COUNT(*) FROM jobs,
                json_each(CASE WHEN approved_revision = 0 THEN jobs.result ELSE (SELECT result FROM revisions
                    WHERE revisions.job_id = jobs.id AND number = jobs.approved_revision) END, '$.pages') AS page,
                json_each(page.value, '$.lines') AS line
            WHERE profile = ? AND state = 'done' AND approved_revision IS NOT NULL AND reviewed_at > ?
                AND TRIM(json_extract(line.value, '$.text')) != ''
            """,
            (profile, since),
        ).fetchone()
        return int(row[0])

    def neighbours(self, job_id: int) -> tuple[int | None, int | None]:
        """The done jobs just newer and just older than `job_id`, for next/previous keys."""
        newer = self._db.execute("SELECT MIN(id) FROM jobs WHERE id>? AND state='done'", (job_id,)).fetchone()[0]
        older = self._db.execute("SELECT MAX(id) FROM jobs WHERE id<? AND state='done'", (job_id,)).fetchone()[0]
        return newer, older
