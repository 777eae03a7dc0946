"""Scale-out through Celery with a real redis-server and real `hwdaemon worker` processes."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from daemon_harness import Daemon, install_test_plugins, wait_for
from distributed_harness import PASSWORD, REDIS_SERVER, Redis, Worker
from hwdaemon.config import parse_config
from hwdaemon.distributed.messages import ReadRequest
from hwdaemon.distributed.worker import ReadingHost
from hwdaemon.plugins import Registry
from rendering import render_lines, save

pytestmark = pytest.mark.skipif(
    REDIS_SERVER is None, reason="redis-server is not installed (scripts/setup --test installs it)"
)
ENV = {"REDIS_PASSWORD": PASSWORD}


@pytest.fixture(scope="module")
def faults_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_test_plugins(tmp_path_factory.mktemp("site"), "hwdaemon-faults")


@pytest.fixture(scope="module")
def env(faults_site: Path) -> dict[str, str]:
    """The broker password, and the test plugin whose `stall` step the `slow` profile uses."""
    return {**ENV, "PYTHONPATH": str(faults_site)}


@pytest.fixture
def redis(tmp_path: Path) -> Any:
    server = Redis(tmp_path).start()
    yield server
    server.stop()


def configs(
    folder: Path, broker: str, visibility: float = 60, worker_profiles: list[str] | None = None
) -> tuple[Path, Path]:
    """The daemon's config (coordinator) and a worker's config, sharing profiles and broker."""
    profiles = {
        "default": {"preprocess": ["grayscale"], "recognizer": "handwriting", "postprocess": ["normalize_whitespace"]},
        "slow": {"preprocess": ["grayscale", {"type": "stall", "seconds": 6}], "recognizer": "handwriting"},
    }
    queue = {"backend": "celery", "broker_url": broker, "visibility_timeout_seconds": visibility}
    daemon = {
        "state_dir": str(folder / "state"),
        "log": {"level": "debug", "format": "json"},
        "queue": queue,
        "profiles": profiles,
        "inboxes": [
            {"path": str(folder / "inbox"), "settle_seconds": 0.3, "sinks": ["outbox"]},
            {"path": str(folder / "slow-inbox"), "profile": "slow", "settle_seconds": 0.3, "sinks": ["outbox"]},
        ],
        "sinks": {"outbox": {"type": "file", "path": str(folder / "outbox"), "formats": ["txt"]}},
    }
    worker = {"log": {"format": "json"}, "queue": {**queue, "serve_profiles": worker_profiles}, "profiles": profiles}
    (folder / "inbox").mkdir()
    (folder / "slow-inbox").mkdir()
    daemon_path, worker_path = folder / "daemon.yaml", folder / "worker.yaml"
    daemon_path.write_text(yaml.safe_dump(daemon))
    worker_path.write_text(yaml.safe_dump(worker))
    return daemon_path, worker_path


def jobs(folder: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(folder / "state" / "hwdaemon.sqlite3") as db:
        db.row_factory = sqlite3.Row
        return [
            dict(row) for row in db.execute("SELECT id, path, state, worker, attempts, error FROM jobs ORDER BY id")
        ]


def deliveries(folder: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(folder / "state" / "hwdaemon.sqlite3") as db:
        return list(db.execute("SELECT job_id, state FROM deliveries ORDER BY job_id"))


def drop(folder: Path, count: int, start: int = 0) -> None:
    for number in range(start, start + count):
        save(render_lines([f"Note {number} for the file"], font_size=28), folder / f"note-{number:03}.png")


def all_done(folder: Path, count: int) -> bool:
    try:
        rows = jobs(folder)
    except sqlite3.OperationalError:
        return False
    return (
        len(rows) == count
        and all(row["state"] == "done" for row in rows)
        and len(deliveries(folder)) == count
        and all(state == "delivered" for _, state in deliveries(folder))
    )


def test_a_worker_refuses_a_profile_it_does_not_serve(tmp_path: Path, registry: Registry) -> None:
    text = """
queue: {backend: celery, broker_url: 'redis://127.0.0.1:1/0', serve_profiles: [default]}
profiles:
  default: {recognizer: handwriting}
  other: {recognizer: handwriting}
"""
    host = ReadingHost(parse_config(text, "worker.yaml", registry), registry)
    image = save(render_lines(["hello"]), tmp_path / "a.png").read_bytes()
    import hashlib

    sha = hashlib.sha256(image).hexdigest()
    refused = host.read(ReadRequest.inline(1, sha, "other", "a.png", image, None), "w1@host")
    assert refused.refused and refused.result is None and "does not serve profile 'other'" in (refused.error or "")
    tampered = host.read(ReadRequest.inline(2, "0" * 64, "default", "a.png", image, None), "w1@host")
    assert tampered.permanent and "sha256 differs" in (tampered.error or "")
    broken = host.read(
        ReadRequest.inline(3, hashlib.sha256(b"junk").hexdigest(), "default", "b.png", b"junk", None), "w1@host"
    )
    assert broken.permanent and broken.result is None
    read = host.read(ReadRequest.inline(4, sha, "default", "a.png", image, 500), "w1@host")
    assert read.result is not None and read.result["sha256"] == sha and set(read.preview_bytes()) == {1}


@pytest.mark.slow
def test_100_files_are_read_exactly_once_by_two_workers(redis: Redis, tmp_path: Path, env: dict[str, str]) -> None:
    daemon_config, worker_config = configs(tmp_path, redis.url)
    workers = [Worker(worker_config, name, env).start() for name in ("alpha", "beta")]
    daemon = Daemon(daemon_config, env=env).start()
    try:
        drop(tmp_path / "inbox", 100)
        wait_for(lambda: all_done(tmp_path, 100), timeout=300, interval=0.5, what="100 jobs done and delivered")
        rows = jobs(tmp_path)
        assert {row["worker"].split("@")[0] for row in rows} == {"alpha", "beta"}
        assert sorted(path.name for path in (tmp_path / "outbox").iterdir()) == [f"note-{n:03}.txt" for n in range(100)]
        assert daemon.count("duplicate_result_ignored") == 0 and daemon.count("job_done") == 100
        status = json.loads(_run_status(daemon_config, env))
        assert {seen["worker"].split("@")[0] for seen in status["workers"]} == {"alpha", "beta"}
        assert status["broker"]["queues"]["hwdaemon.default"] == 0 and len(status["broker"]["workers_online"]) == 2
        assert PASSWORD not in json.dumps(status)
    finally:
        daemon.stop()
        for worker in workers:
            worker.stop()


@pytest.mark.slow
def test_a_job_whose_worker_is_killed_finishes_on_the_other(redis: Redis, tmp_path: Path, env: dict[str, str]) -> None:
    daemon_config, worker_config = configs(tmp_path, redis.url, visibility=8)
    doomed = Worker(worker_config, "doomed", env).start()
    daemon = Daemon(daemon_config, env=env).start()
    survivor = None
    try:
        drop(tmp_path / "slow-inbox", 1)
        wait_for(lambda: '"job_started"' in doomed.log(), timeout=60, what="the doomed worker to start the job")
        doomed.kill()
        survivor = Worker(worker_config, "survivor", env).start()
        wait_for(lambda: all_done(tmp_path, 1), timeout=120, interval=0.5, what="the job to finish on the survivor")
        assert jobs(tmp_path)[0]["worker"].startswith("survivor@")
        assert len(deliveries(tmp_path)) == 1
    finally:
        daemon.stop()
        if survivor:
            survivor.stop()


@pytest.mark.slow
def test_redis_down_for_20_seconds_loses_nothing(redis: Redis, tmp_path: Path, env: dict[str, str]) -> None:
    daemon_config, worker_config = configs(tmp_path, redis.url, visibility=10)
    workers = [Worker(worker_config, name, env).start() for name in ("alpha", "beta")]
    daemon = Daemon(daemon_config, env=env).start()
    try:
        drop(tmp_path / "inbox", 10)
        wait_for(lambda: len(jobs(tmp_path)) == 10, timeout=60, what="10 jobs taken in")
        redis.stop()  # no persistence: queued tasks and stored results are gone
        drop(tmp_path / "inbox", 10, start=10)
        time.sleep(20)
        redis.start()
        wait_for(lambda: all_done(tmp_path, 20), timeout=240, interval=0.5, what="20 jobs done after the outage")
        assert sorted(path.name for path in (tmp_path / "outbox").iterdir()) == [f"note-{n:03}.txt" for n in range(20)]
        assert daemon.count("job_done") == 20
    finally:
        daemon.stop()
        for worker in workers:
            worker.stop()


def _run_status(config: Path, env: dict[str, str]) -> str:
    import os
    import subprocess
    import sys

    completed = subprocess.run(
        [sys.executable, "-m", "hwdaemon", "status", "--json", "--config", str(config)],
        capture_output=True, text=True, env={**os.environ, **env}, check=True, timeout=60,
    )  # fmt: skip
    return completed.stdout


@pytest.mark.slow
def test_a_running_worker_refuses_a_job_for_a_profile_it_does_not_serve(
    redis: Redis, tmp_path: Path, env: dict[str, str]
) -> None:
    import hashlib

    from hwdaemon.config import QueueConfig
    from hwdaemon.distributed.celery_app import READ_TASK, make_app, queue_for

    _, worker_config = configs(tmp_path, redis.url, worker_profiles=["default"])
    worker = Worker(worker_config, "picky", env).start()
    try:
        app = make_app(QueueConfig(backend="celery", broker_url=redis.url.replace("${REDIS_PASSWORD}", PASSWORD)))
        image = save(render_lines(["hello there"]), tmp_path / "a.png").read_bytes()
        request = ReadRequest.inline(7, hashlib.sha256(image).hexdigest(), "slow", "a.png", image, None)
        reply = app.send_task(READ_TASK, kwargs={"request": request.to_dict()}, queue=queue_for("default")).get(
            timeout=60
        )
        assert (
            reply["refused"] is True and "does not serve profile 'slow'" in reply["error"] and reply["result"] is None
        )
        served = ReadRequest.inline(8, request.sha256, "default", "a.png", image, None)
        answer = app.send_task(READ_TASK, kwargs={"request": served.to_dict()}, queue=queue_for("default")).get(
            timeout=60
        )
        assert answer["result"] is not None and answer["worker"].startswith("picky@")  # still alive and reading
    finally:
        worker.stop()
