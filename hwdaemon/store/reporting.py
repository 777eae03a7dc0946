"""Counts for `hwdaemon status` and /metrics: read-only views over jobs and deliveries."""

from __future__ import annotations

from typing import Any

from hwdaemon.store.database import Database


class Reporting:
    """Aggregate counts; reads only."""

    def __init__(self, database: Database) -> None:
        self._db = database.connection

    def job_counts(self) -> dict[str, dict[str, int]]:
        """Per inbox, how many jobs are in each state."""
        counts: dict[str, dict[str, int]] = {}
        for inbox, state, count in self._db.execute("SELECT inbox, state, COUNT(*) FROM jobs GROUP BY inbox, state"):
            counts.setdefault(inbox, {})[state] = count
        return counts

    def queue_depth(self) -> int:
        """Jobs not finished yet: queued or processing."""
        return int(self._db.execute("SELECT COUNT(*) FROM jobs WHERE state IN ('queued','processing')").fetchone()[0])

    def delivery_counts(self) -> dict[str, dict[str, int]]:
        """Per sink, how many deliveries are in each state."""
        counts: dict[str, dict[str, int]] = {}
        for sink, state, count in self._db.execute("SELECT sink, state, COUNT(*) FROM deliveries GROUP BY sink, state"):
            counts.setdefault(sink, {})[state] = count
        return counts

    def summary(self) -> dict[str, Any]:
        """What `hwdaemon status` prints: per-inbox job counts, delivery counts, queue depth, last errors (where each file is now)."""
        errors = self._db.execute(
            "SELECT id, COALESCE(final_path, path), error, updated_at FROM jobs WHERE state='failed' ORDER BY updated_at DESC LIMIT 5"
        ).fetchall()
        return {
            "queue_depth": self.queue_depth(),
            "jobs": self.job_counts(),
            "deliveries": self.delivery_counts(),
            "last_errors": [{"job": row[0], "file": row[1], "error": row[2], "at": row[3]} for row in errors],
        }
