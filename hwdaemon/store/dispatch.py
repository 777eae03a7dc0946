"""Jobs sent to remote workers (queue.backend: celery): the task each went as, when, and who read it.

A dispatched job stays `processing` in the jobs table; these columns say where
it is, so the coordinator can find tasks that were never sent or never came back.
"""

from __future__ import annotations

import time
from typing import Any

from hwdaemon.store.database import Database
from hwdaemon.store.jobs import JOB_COLUMNS, JOB_WIDTH, Job, job_of


class Dispatch:
    """The remote-dispatch columns of the job rows."""

    def __init__(self, database: Database) -> None:
        self._db = database.connection
        self._transaction = database.transaction

    def mark_sent(self, job_id: int, task_id: str) -> None:
        """Record that a claimed job went to the broker as Celery task `task_id`."""
        now = time.time()
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET task_id=?, dispatched_at=?, updated_at=? WHERE id=? AND state='processing'",
                (task_id, now, now, job_id),
            )

    def sent(self) -> list[tuple[Job, str, float]]:
        """Jobs out with a remote worker: (job, Celery task id, when it was sent), oldest sent first."""
        rows = self._db.execute(
            f"SELECT {JOB_COLUMNS}, task_id, dispatched_at FROM jobs WHERE state='processing' AND task_id IS NOT NULL ORDER BY dispatched_at"
        ).fetchall()
        return [(job_of(row), str(row[JOB_WIDTH]), float(row[JOB_WIDTH + 1])) for row in rows]

    def claimed_unsent(self) -> list[Job]:
        """Jobs claimed for dispatch whose task was never sent (the broker was down, or a crash between the two)."""
        rows = self._db.execute(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE state='processing' AND task_id IS NULL"
        ).fetchall()
        return [job_of(row) for row in rows]

    def set_worker(self, job_id: int, worker: str) -> None:
        """Record which remote worker read the job."""
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
            {
                "worker": name,
                "jobs_done": total,
                "last_seen": last,
                "jobs_per_minute": round(recent * 60 / window_seconds, 2),
            }
            for name, total, last, recent in rows
        ]
