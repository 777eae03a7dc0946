"""The HTTP API's rows: what came with an uploaded file, the paged job list, and forgetting a job.

An upload is a job like any other (the jobs table); this table only keeps
what the request added — the name the client gave, which token sent it, the
formats it asked links for, and its callback URL. Forgetting a job removes
its row and every row that refers to it, whatever table (found through the
schema's foreign keys, so a later migration's table is included).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

from hwdaemon.store.database import Database
from hwdaemon.store.jobs import JOB_COLUMNS, Job, JobState, job_of


@dataclass(frozen=True, slots=True)
class UploadRecord:
    """What an API request added to its job."""

    job_id: int
    original_name: str
    token_name: str
    formats: tuple[str, ...]
    callback_url: str | None
    created_at: float


class JobBusyError(Exception):
    """The job is being read right now; it can be forgotten once it has ended."""


class Uploads:
    """Upload records, the API's job list, and forgetting a job."""

    def __init__(self, database: Database) -> None:
        self._db = database.connection
        self._transaction = database.transaction

    def record(
        self, job_id: int, original_name: str, token_name: str, formats: tuple[str, ...], callback_url: str | None
    ) -> UploadRecord:
        now = time.time()
        with self._transaction() as db:
            db.execute(
                "INSERT INTO uploads (job_id, original_name, token_name, formats, callback_url, created_at) VALUES (?,?,?,?,?,?)",
                (job_id, original_name, token_name, ",".join(formats), callback_url, now),
            )
        return UploadRecord(job_id, original_name, token_name, formats, callback_url, now)

    def of_job(self, job_id: int) -> UploadRecord | None:
        row = self._db.execute(
            "SELECT job_id, original_name, token_name, formats, callback_url, created_at FROM uploads WHERE job_id=?",
            (job_id,),
        ).fetchone()
        if row is None:
            return None
        job, name, token, formats, callback, created = row
        return UploadRecord(job, name, token, tuple(filter(None, formats.split(","))), callback, created)

    def page(
        self,
        state: JobState | None = None,
        inbox: str | None = None,
        since: float | None = None,
        before_id: int | None = None,
        limit: int = 50,
    ) -> list[Job]:
        """Jobs newest first, each filter optional; `since` is on the last change, `before_id` the cursor."""
        where: list[str] = ["1=1"]
        params: list[object] = []
        for clause, value in (("state=?", state), ("inbox=?", inbox), ("updated_at>=?", since), ("id<?", before_id)):
            if value is not None:
                where.append(clause)
                params.append(value)
        rows = self._db.execute(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?", [*params, limit]
        ).fetchall()
        return [job_of(row) for row in rows]

    def is_refiled(self, job: Job) -> bool:
        """Whether a newer job's file now lies where `job` filed its own: a retry of `job` already happened."""
        row = self._db.execute(
            "SELECT 1 FROM jobs WHERE id>? AND final_path=? LIMIT 1", (job.id, job.final_path)
        ).fetchone()
        return row is not None

    def forget(self, job_id: int) -> Job | None:
        """Remove the job and every row referring to it, in one transaction; None for an unknown job.

        Raises JobBusyError for a job being read (`processing`): its worker would
        write an outcome for a row that is gone.
        """
        with self._transaction() as db:
            row = db.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id=?", (job_id,)).fetchone()
            if row is None:
                return None
            job = job_of(row)
            if job.state == "processing":
                raise JobBusyError(f"job {job_id} is being read now; forget it once it has ended")
            for table, column in _references_to_jobs(db):
                db.execute(f"DELETE FROM {table} WHERE {column}=?", (job_id,))
            db.execute("DELETE FROM jobs WHERE id=?", (job_id,))
        return job


def _references_to_jobs(db: sqlite3.Connection) -> list[tuple[str, str]]:
    """(table, column) of every foreign key pointing at jobs.id."""
    tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table' AND name != 'jobs'")]
    found = []
    for table in tables:
        for key in db.execute(f"PRAGMA foreign_key_list({table})"):
            if key[2] == "jobs":  # (id, seq, table, from, to, …)
                found.append((table, str(key[3])))
    return found
