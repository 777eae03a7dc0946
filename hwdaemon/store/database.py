"""The state database: one SQLite file (WAL) under state_dir, opened, checked and brought up to date.

The store's rule: it is created whole or not at all, and a file that is empty,
damaged, not ours or newer than this code is refused (StoreError, exit 78) and
left as it is, never silently begun afresh. Each thread opens its own
connection; SQLite serialises writers, WAL lets `hwdaemon status` read while the
daemon writes.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import structlog

from hwdaemon.durable import fsync_folder
from hwdaemon.errors import StoreError
from hwdaemon.store.migrations import MIGRATIONS, SCHEMA_VERSION

log = structlog.get_logger()

DATABASE_NAME = "hwdaemon.sqlite3"
_WHAT_TO_DO = (
    "stop hwdaemon, then restore the file from a backup, or move it (and any -wal and -shm files beside it) "
    "aside to start with an empty job history"
)


class Database:
    """One connection to the state database, shared by the store's tables; open one per thread."""

    def __init__(self, state_dir: Path, verify: bool = False) -> None:
        """Open (or create) the database, bringing its schema up to date.

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
        self.connection = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        try:
            self.connection.execute("PRAGMA journal_mode=WAL")
            self.connection.execute("PRAGMA synchronous=FULL")
            self.connection.execute("PRAGMA foreign_keys=ON")
            if verify:
                self._check_integrity()
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self.connection.close()
            error = _store_error(self.path, exc)
            if error is None:
                raise
            raise error from exc
        except BaseException:
            self.connection.close()
            raise

    def close(self) -> None:
        self.connection.close()

    @property
    def schema_version(self) -> int:
        return int(self.connection.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, taking SQLite's write lock at once (so reads inside it are current)."""
        self.connection.execute("BEGIN IMMEDIATE")
        try:
            yield self.connection
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        self.connection.execute("COMMIT")

    def _check_integrity(self) -> None:
        problems = [row[0] for row in self.connection.execute("PRAGMA quick_check(5)")]
        if problems != ["ok"]:
            raise StoreError(f"{self.path}: the job store is damaged ({'; '.join(problems)}); {_WHAT_TO_DO}")

    def _migrate(self) -> None:
        """Apply the migrations this store has not had yet, in one transaction."""
        if self.schema_version == SCHEMA_VERSION:
            return
        with self.transaction() as db:
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
        raise StoreError(
            f"{path}: cannot read the job store ({exc.strerror}); check that the daemon's user may read and write it"
        ) from exc
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
    for leftover in (
        temporary,
        *(temporary.with_name(temporary.name + suffix) for suffix in ("-wal", "-shm", "-journal")),
    ):
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
        fsync_folder(path.parent)
    finally:
        temporary.unlink(missing_ok=True)


def _store_error(path: Path, exc: sqlite3.DatabaseError) -> StoreError | None:
    """SQLite's error at open as a StoreError naming the file, when waiting cannot mend it."""
    name = getattr(exc, "sqlite_errorname", "")
    if name == "SQLITE_NOTADB" or "not a database" in str(exc):
        return StoreError(f"{path}: not an SQLite database (damaged, or another file in its place); {_WHAT_TO_DO}")
    if name == "SQLITE_CORRUPT" or "malformed" in str(exc):
        return StoreError(f"{path}: the job store is damaged ({exc}); {_WHAT_TO_DO}")
    if name in ("SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_READONLY", "SQLITE_AUTH"):
        return StoreError(
            f"{path}: cannot open the job store ({exc}); check that the daemon's user may read and write its folder"
        )
    return None  # busy, disk full, I/O: these may pass, so they stay errors a restart may cure
