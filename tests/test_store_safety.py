"""One daemon per state_dir, and a job store that is never silently emptied, half-read or downgraded.

Each refusal is checked against a real `hwdaemon run` (and `hwdaemon status`)
process: its exit code, its message naming the file, and no traceback.
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from daemon_harness import Daemon, wait_for, write_config
from hwdaemon.daemon.lock import LOCK_NAME, acquire_state_dir
from hwdaemon.errors import StateDirInUseError, StoreError
from hwdaemon.store import DATABASE_NAME, MIGRATIONS, SCHEMA_VERSION, Store
from rendering import render_lines, save

# The schema of the first release (71dbd32), before user_version: copied here, not
# imported, so a migration that drifts from what shipped is caught.
FIRST_RELEASE_SCHEMA = """
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY, path TEXT NOT NULL, inbox TEXT NOT NULL, profile TEXT NOT NULL, sha256 TEXT NOT NULL,
    size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT, duplicate_of INTEGER, final_path TEXT, result TEXT, created_at REAL NOT NULL,
    updated_at REAL NOT NULL, next_attempt_at REAL NOT NULL DEFAULT 0
);
CREATE INDEX jobs_state ON jobs (state, next_attempt_at);
CREATE INDEX jobs_sha256 ON jobs (sha256);
CREATE INDEX jobs_path ON jobs (path);
CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY, job_id INTEGER NOT NULL REFERENCES jobs (id), sink TEXT NOT NULL,
    idempotency_key TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,
    location TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL, next_attempt_at REAL NOT NULL DEFAULT 0
);
CREATE INDEX deliveries_state ON deliveries (state, next_attempt_at);
"""


def hwdaemon(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hwdaemon", *args], capture_output=True, text=True, timeout=timeout)


def assert_refused(outcome: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit 78 with one plain `hwdaemon: error:` message holding every needle, and no traceback."""
    assert outcome.returncode == 78, (outcome.returncode, outcome.stderr[-3000:])
    assert "Traceback" not in outcome.stderr and "Traceback" not in outcome.stdout, outcome.stderr
    message = outcome.stderr.split("hwdaemon: error: ", 1)[-1]
    for needle in needles:
        assert needle in message, (needle, outcome.stderr)


def store_with_jobs(state_dir: Path, count: int) -> Path:
    """A closed store holding `count` failed jobs with bulky errors (so it spans many pages)."""
    store = Store(state_dir)
    for number in range(count):
        job = store.jobs.add(f"/in/scan-{number}.png", "/in", "default", f"{number:064x}", 100, 1)
        store.jobs.fail(job.id, f"error {number}: " + "x" * 1000)
    store.close()
    path = state_dir / DATABASE_NAME
    assert not path.with_name(path.name + "-wal").exists()  # checkpointed: every page is in the main file
    return path


# two daemons -------------------------------------------------------------------------


@pytest.mark.slow
def test_second_daemon_on_one_state_dir_exits_78_and_the_first_reads_each_file_once(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    first = Daemon(config).start()
    try:
        second = hwdaemon("run", "--config", str(config))
        assert_refused(second, str(tmp_path / "state"), f"pid {first.process.pid}")  # type: ignore[union-attr]
        save(render_lines(["Only one daemon reads me"]), tmp_path / "inbox" / "once.png")
        wait_for(lambda: (tmp_path / "outbox" / "once.json").exists(), what="once.json")
        status = hwdaemon("status", "--config", str(config))
        assert status.returncode == 0, status.stderr
        assert "done 1" in status.stdout
        deliveries = hwdaemon("deliveries", "--config", str(config))
        assert deliveries.returncode == 0 and "delivered" in deliveries.stdout, deliveries.stderr
        with sqlite3.connect(tmp_path / "state" / DATABASE_NAME) as db:
            assert db.execute("SELECT state, attempts FROM jobs").fetchall() == [("done", 1)]
        assert first.count("daemon_starting") == 1 and first.count("job_done") == 1
        assert first.process.poll() is None  # type: ignore[union-attr]
    finally:
        assert first.stop() == 0


@pytest.mark.slow
def test_a_killed_daemon_leaves_no_stale_lock(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    first = Daemon(config).start()
    first.kill()
    assert (tmp_path / "state" / LOCK_NAME).read_text().strip() == str(first.process.pid)  # type: ignore[union-attr]
    again = Daemon(config).start()  # the kernel dropped the lock with the process
    assert again.stop() == 0


def test_lock_names_the_holder_and_is_free_once_released(tmp_path: Path) -> None:
    held = acquire_state_dir(tmp_path / "state")
    with pytest.raises(StateDirInUseError, match=f"pid {os.getpid()}") as refused:
        acquire_state_dir(tmp_path / "state")
    assert refused.value.exit_code == 78 and str(tmp_path / "state") in str(refused.value)
    held.release()
    acquire_state_dir(tmp_path / "state").release()


# damaged stores ----------------------------------------------------------------------------


@pytest.mark.slow
def test_empty_store_file_is_refused_not_started_afresh(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    database = tmp_path / "state" / DATABASE_NAME
    database.parent.mkdir()
    database.write_bytes(b"")
    assert_refused(hwdaemon("run", "--config", str(config)), str(database), "empty", "backup")
    assert_refused(hwdaemon("status", "--config", str(config)), str(database), "empty")
    assert database.stat().st_size == 0  # left for the operator, not silently turned into a new store


@pytest.mark.slow
def test_damaged_store_is_refused_with_what_to_do(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    database = store_with_jobs(tmp_path / "state", 400)
    page_size = 4096
    pages = database.stat().st_size // page_size
    assert pages > 50
    rng = random.Random(25)
    with database.open("r+b") as stream:  # garbage over a run of pages in the middle; the header is intact
        for page in range(pages // 3, pages // 3 + 8):
            stream.seek(page * page_size)
            stream.write(rng.randbytes(page_size))
    damaged = database.read_bytes()
    assert_refused(hwdaemon("run", "--config", str(config)), str(database), "damaged", "backup")
    assert_refused(hwdaemon("status", "--config", str(config)), str(database), "damaged")
    assert_refused(hwdaemon("deliveries", "--config", str(config)), str(database), "damaged")
    assert database.read_bytes() == damaged


@pytest.mark.slow
def test_other_file_in_the_stores_place_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    database = tmp_path / "state" / DATABASE_NAME
    database.parent.mkdir()
    database.write_text("state: not a database\n" * 100)
    assert_refused(hwdaemon("run", "--config", str(config)), str(database), "not an SQLite database")


def test_journal_left_beside_a_missing_store_is_refused(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.jobs.add("/in/a.png", "/in", "default", "a" * 64, 1, 1)
    wal = tmp_path / (DATABASE_NAME + "-wal")
    assert wal.stat().st_size > 0
    (tmp_path / DATABASE_NAME).rename(tmp_path / "moved.sqlite3")  # the journal stays behind
    with pytest.raises(StoreError, match="journal"):
        Store(tmp_path)
    store.close()


def test_stores_opened_at_once_on_a_fresh_state_dir_are_one_store(tmp_path: Path) -> None:
    stores: list[Store] = []
    errors: list[BaseException] = []

    def open_and_add(number: int) -> None:
        try:
            store = Store(tmp_path / "state")
            store.jobs.add(f"/in/{number}.png", "/in", "default", f"{number:064x}", 1, 1)
            stores.append(store)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=open_and_add, args=(number,)) for number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(Store(tmp_path / "state").jobs.recent()) == 8
    assert sorted(path.name for path in (tmp_path / "state").iterdir() if ".new-" in path.name) == []
    for store in stores:
        store.close()


# schema version ---------------------------------------------------------------------------


@pytest.mark.slow
def test_first_release_store_is_migrated_and_keeps_its_jobs(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    database = tmp_path / "state" / DATABASE_NAME
    database.parent.mkdir()
    with sqlite3.connect(database) as db:
        db.executescript(FIRST_RELEASE_SCHEMA)
        db.execute(
            "INSERT INTO jobs (path, inbox, profile, sha256, size, mtime_ns, state, error, final_path, created_at, updated_at)"
            " VALUES ('/old/broken.png', ?, 'default', ?, 1, 1, 'failed', 'not an image', '/old/failed/broken.png', 1, 1)",
            (str(tmp_path / "inbox"), "f" * 64),
        )
    db.close()
    assert sqlite3.connect(database).execute("PRAGMA user_version").fetchone()[0] == 0
    daemon = Daemon(config).start()
    try:
        save(render_lines(["Read after the upgrade"]), tmp_path / "inbox" / "new.png")
        wait_for(lambda: (tmp_path / "outbox" / "new.json").exists(), what="new.json")
        wait_for(
            lambda: "delivered 1" in hwdaemon("status", "--config", str(config)).stdout,
            what="delivery recorded",
            timeout=60,
        )
    finally:
        assert daemon.stop() == 0
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("SELECT path, state, error FROM jobs ORDER BY id").fetchall() == [
            ("/old/broken.png", "failed", "not an image"),
            (str(tmp_path / "inbox" / "new.png"), "done", None),
        ]
        assert db.execute("SELECT needs_review, worker FROM jobs WHERE id=2").fetchone()[1] is None
    assert daemon.count("store_migrated") == 1


def test_migrations_are_named_by_their_number_in_order() -> None:
    assert [migration.__name__[:4] for migration in MIGRATIONS] == [
        f"m{number:03d}" for number in range(1, SCHEMA_VERSION + 1)
    ]


@pytest.mark.parametrize("applied", range(1, len(MIGRATIONS) + 1))
@pytest.mark.parametrize("versioned", [False, True], ids=["before-user_version", "versioned"])
def test_every_older_store_ends_current_with_its_jobs(tmp_path: Path, applied: int, versioned: bool) -> None:
    database = tmp_path / DATABASE_NAME
    with sqlite3.connect(database, isolation_level=None) as db:
        for migration in MIGRATIONS[:applied]:
            migration(db)
        db.execute(
            "INSERT INTO jobs (path, inbox, profile, sha256, size, mtime_ns, state, created_at, updated_at) VALUES ('/a', '/in', 'default', 'x', 1, 1, 'done', 1, 1)"
        )
        db.execute(f"PRAGMA user_version={applied if versioned else 0}")
    db.close()
    store = Store(tmp_path, verify=True)
    assert store.schema_version == SCHEMA_VERSION
    assert [job.path for job in store.jobs.recent()] == ["/a"]
    store.dispatch.set_worker(1, "host-1")  # a column of the last migration
    assert store.review.rows()[1] == 1  # the review columns and revisions table
    store.close()
    reopened = Store(tmp_path)
    assert reopened.schema_version == SCHEMA_VERSION and len(reopened.jobs.recent()) == 1
    reopened.close()


def test_store_written_by_the_single_module_store_reads_back_whole(tmp_path: Path) -> None:
    """tests/data/store_v3.sqlite3 was written by hwdaemon/daemon/store.py (f7af7d0), before the store/ package.

    It holds a reviewed job (a revision, superseded, delivered and dead deliveries),
    a failed, a duplicate, a dispatched and a queued job.
    """
    shutil.copyfile(Path(__file__).parent / "data" / "store_v3.sqlite3", tmp_path / DATABASE_NAME)
    store = Store(tmp_path, verify=True)
    assert store.schema_version == SCHEMA_VERSION  # migrated from 3 to the current schema
    assert [(job.path, job.state, job.error, job.final_path) for job in store.jobs.recent()] == [
        ("/in/waiting.png", "queued", None, None),
        ("/in/remote.png", "processing", None, None),
        ("/in/copy.png", "duplicate", None, None),
        ("/in/broken.png", "failed", "not an image", "/in/failed/broken.png"),
        ("/in/letter.png", "done", None, None),
    ]
    assert [
        (delivery.sink, delivery.state, delivery.revision, delivery.idempotency_key)
        for delivery in store.deliveries.of_job(1)
    ] == [
        ("outbox", "superseded", 0, "a" * 64 + ":outbox"),
        ("hook", "superseded", 0, "a" * 64 + ":hook"),
        ("outbox", "delivered", 1, "a" * 64 + ":outbox:r1"),
        ("hook", "dead", 1, "a" * 64 + ":hook:r1"),
    ]
    row = store.review.row(1)
    assert row is not None and (row.needs_review, row.approved_revision, row.reviewed_by, row.revisions) == (
        True,
        1,
        "alice",
        1,
    )
    assert [(revision.number, revision.author) for revision in store.review.revisions(1)] == [(1, "alice")]
    original, revised = store.jobs.result_of(1), store.jobs.result_of(1, 1)
    assert original is not None and revised is not None
    assert (original.text, revised.text) == ("Dear Margaret,\nthe garden", "Dear Margaret,\nthe gardens")
    assert [(job.id, task_id) for job, task_id, _ in store.dispatch.sent()] == [(4, "task-1")]
    assert store.jobs.original_with_sha256("a" * 64).id == 1  # type: ignore[union-attr]
    claimed = store.jobs.claim_next()
    assert claimed is not None and claimed.path == "/in/waiting.png"
    store.close()


@pytest.mark.slow
def test_newer_store_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    database = store_with_jobs(tmp_path / "state", 3)
    with sqlite3.connect(database) as db:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    before = database.read_bytes()
    assert_refused(
        hwdaemon("run", "--config", str(config)),
        str(database),
        f"schema version {SCHEMA_VERSION + 1}",
        "newer hwdaemon",
    )
    assert_refused(hwdaemon("status", "--config", str(config)), str(database), "newer hwdaemon")
    assert database.read_bytes() == before


def test_unrelated_database_in_the_stores_place_is_refused(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / DATABASE_NAME) as db:
        db.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY)")
    db.close()
    with pytest.raises(StoreError, match="not an hwdaemon job store"):
        Store(tmp_path)
