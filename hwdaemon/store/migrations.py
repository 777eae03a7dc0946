"""The store's schema, as numbered migrations applied in order (as llm's `migrations.py`).

`PRAGMA user_version` is the number of the last one applied. Add a migration at
the end, never edit one that has shipped. Each is idempotent (IF NOT EXISTS,
columns added only when missing), because stores from before user_version
(0, tables present) may hold any of the later columns: they run them all and end
up current. This is the only place the schema is written.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable


def m001_jobs_and_deliveries(db: sqlite3.Connection) -> None:
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


def m002_review(db: sqlite3.Connection) -> None:
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


def m003_remote_workers(db: sqlite3.Connection) -> None:
    """3: queue.backend celery: the task a job was sent as, when, and who read it."""
    _add_columns(db, "jobs", task_id="TEXT", dispatched_at="REAL", worker="TEXT")


def m004_uploads(db: sqlite3.Connection) -> None:
    """4: the HTTP API: what came with an uploaded file (its name, the token, formats, callback)."""
    db.execute(
        """CREATE TABLE IF NOT EXISTS uploads (
            job_id INTEGER PRIMARY KEY REFERENCES jobs (id),
            original_name TEXT NOT NULL,
            token_name TEXT NOT NULL,
            formats TEXT NOT NULL DEFAULT '',
            callback_url TEXT,
            created_at REAL NOT NULL
        )"""
    )


def _add_columns(db: sqlite3.Connection, table: str, **declarations: str) -> None:
    present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
    for name, declaration in declarations.items():
        if name not in present:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {declaration}")


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    m001_jobs_and_deliveries,
    m002_review,
    m003_remote_workers,
    m004_uploads,
)
SCHEMA_VERSION = len(MIGRATIONS)
