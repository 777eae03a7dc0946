"""The deliveries table: one row per result version per sink, retried until delivered or dead.

At-least-once: a row is `pending` until its sink took it; each carries an
idempotency key (`delivery_key`) so a receiver can drop a repeat. Rows are
created with their job's result (`Jobs.finish`) or a reviewer's approval
(`Review.approve`), in the same transaction, through `add_delivery`.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Literal

from hwdaemon.store.database import Database

DeliveryState = Literal["held", "pending", "delivered", "dead", "superseded"]


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


_DELIVERY_COLUMNS = "id, job_id, sink, idempotency_key, state, attempts, last_error, location, created_at, revision"


def delivery_key(sha256: str, sink: str, revision: int) -> str:
    """The idempotency key of one result version for one sink: sha256:sink, plus :rN for revision N."""
    return f"{sha256}:{sink}" if revision == 0 else f"{sha256}:{sink}:r{revision}"


def add_delivery(
    db: sqlite3.Connection, job_id: int, sink: str, key: str, state: DeliveryState, now: float, revision: int = 0
) -> int:
    """Insert one delivery row inside the caller's transaction; returns its id."""
    cursor = db.execute(
        "INSERT INTO deliveries (job_id, sink, idempotency_key, state, created_at, updated_at, revision) VALUES (?,?,?,?,?,?,?)",
        (job_id, sink, key, state, now, now, revision),
    )
    return int(cursor.lastrowid or 0)


class Deliveries:
    """The delivery rows: what is due, and each attempt's outcome."""

    def __init__(self, database: Database) -> None:
        self._db = database.connection
        self._transaction = database.transaction

    def due(self, limit: int = 50) -> list[Delivery]:
        """Pending deliveries whose next attempt is due, oldest first."""
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

    def retry_later(self, delivery_id: int, error: str, delay_seconds: float) -> None:
        """Count a failed attempt and make the delivery due again in `delay_seconds`."""
        now = time.time()
        with self._transaction() as db:
            db.execute(
                "UPDATE deliveries SET attempts=attempts+1, last_error=?, next_attempt_at=?, updated_at=? WHERE id=?",
                (error, now + delay_seconds, now, delivery_id),
            )

    def dead_letter(self, delivery_id: int, error: str) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE deliveries SET state='dead', attempts=attempts+1, last_error=?, updated_at=? WHERE id=?",
                (error, time.time(), delivery_id),
            )

    def recent(self, state: DeliveryState | None = None, limit: int = 100) -> list[Delivery]:
        """The newest deliveries (in `state`, if given), newest first."""
        where, params = ("WHERE state=?", (state, limit)) if state else ("", (limit,))
        rows = self._db.execute(
            f"SELECT {_DELIVERY_COLUMNS} FROM deliveries {where} ORDER BY id DESC LIMIT ?", params
        ).fetchall()
        return [Delivery(*row) for row in rows]

    def of_job(self, job_id: int) -> list[Delivery]:
        """Every delivery of one job, all revisions, oldest first."""
        rows = self._db.execute(
            f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE job_id=? ORDER BY id", (job_id,)
        ).fetchall()
        return [Delivery(*row) for row in rows]

    def requeue(self, delivery_id: int) -> bool:
        """Make a delivery that is not pending due again, its attempts reset; False if it was pending or is unknown."""
        with self._transaction() as db:
            return (
                db.execute(
                    "UPDATE deliveries SET state='pending', attempts=0, next_attempt_at=0, updated_at=? WHERE id=? AND state!='pending'",
                    (time.time(), delivery_id),
                ).rowcount
                == 1
            )
