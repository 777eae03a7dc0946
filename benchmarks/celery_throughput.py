"""Pages/s through Celery with 1 and 2 `hwdaemon worker` processes, and the coordinator's cost per job.

Starts a real redis-server, the workers and the daemon (queue.backend: celery).
Throughput: real dev pages (re-encoded so every copy is a new file) dropped at
once, timed until every result is delivered. Overhead: small notes one at a
time; per job, the daemon's time from enqueue to result stored minus the
worker's own time for the job, and the daemon's CPU seconds per job — the
number that says when one coordinator becomes the limit.

    .venv/bin/python benchmarks/celery_throughput.py --pages 24 --notes 40
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml
from PIL import Image, PngImagePlugin

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]
from _common import DEV_DATA, cpu_seconds, render_note  # noqa: E402
from daemon_harness import Daemon, wait_for  # noqa: E402
from distributed_harness import PASSWORD, Redis, Worker  # noqa: E402

ENV = {"REDIS_PASSWORD": PASSWORD}


def write_configs(folder: Path, broker: str) -> tuple[Path, Path]:
    queue = {"backend": "celery", "broker_url": broker}
    daemon = {
        "state_dir": str(folder / "state"),
        "log": {"level": "info", "format": "json"},
        "queue": queue,
        "inboxes": [{"path": str(folder / "inbox"), "settle_seconds": 0.2, "after": "keep", "sinks": ["outbox"]}],
        "sinks": {"outbox": {"type": "file", "path": str(folder / "outbox"), "formats": ["txt"]}},
    }
    (folder / "inbox").mkdir()
    (folder / "daemon.yaml").write_text(yaml.safe_dump(daemon))
    (folder / "worker.yaml").write_text(yaml.safe_dump({"log": {"format": "json"}, "queue": queue}))
    return folder / "daemon.yaml", folder / "worker.yaml"


def dev_pages() -> list[Path]:
    manifest = DEV_DATA / "manifest.jsonl"
    if not manifest.is_file():
        raise SystemExit(f"dev data not found at {DEV_DATA}; set HWDAEMON_DEV_DATA")
    items = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    return [manifest.parent / item["image"] for item in items if item["kind"] == "page"]


def drop_pages(inbox: Path, sources: list[Path], count: int) -> None:
    """Copies of real pages, each with its own PNG text chunk so no two files share a sha256."""
    for number in range(count):
        info = PngImagePlugin.PngInfo()
        info.add_text("copy", str(number))
        with Image.open(sources[number % len(sources)]) as page:
            page.convert("L").save(inbox / f".page-{number:03}.png", pnginfo=info)
        (inbox / f".page-{number:03}.png").rename(inbox / f"page-{number:03}.png")


def done_events(daemon: Daemon) -> list[dict]:
    return [event for event in daemon.events() if event.get("event") == "job_done"]


def throughput(workers: int, pages: int) -> dict:
    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        redis = Redis(folder).start()
        daemon_config, worker_config = write_configs(folder, redis.url)
        cores = os.cpu_count() or 1
        started_workers = [
            Worker(worker_config, f"w{number}", ENV, threads=max(1, cores // workers)).start()
            for number in range(workers)
        ]
        daemon = Daemon(daemon_config, env=ENV).start()
        try:
            started = time.monotonic()
            drop_pages(folder / "inbox", dev_pages(), pages)
            wait_for(
                lambda: len(done_events(daemon)) == pages and daemon.count("delivered") == pages,
                timeout=1800,
                interval=0.2,
                what="all pages",
            )
            seconds = time.monotonic() - started
        finally:
            daemon.stop()
            for worker in started_workers:
                worker.stop()
            redis.stop()
    return {
        "workers": workers,
        "pages": pages,
        "seconds": round(seconds, 1),
        "pages_per_second": round(pages / seconds, 3),
    }


def overhead(notes: int) -> dict:
    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        redis = Redis(folder).start()
        daemon_config, worker_config = write_configs(folder, redis.url)
        worker = Worker(worker_config, "w0", ENV, threads=None).start()
        daemon = Daemon(daemon_config, env=ENV).start()
        try:
            assert daemon.process is not None
            cpu_before = cpu_seconds(daemon.process.pid)
            for number in range(notes):
                Image.fromarray(render_note(number)).save(folder / "inbox" / f"note-{number:03}.png")
                wait_for(
                    lambda: len(done_events(daemon)) == number + 1,  # noqa: B023 (called within this iteration)
                    timeout=120,
                    interval=0.02,
                    what=f"note {number}",
                )
            cpu = cpu_seconds(daemon.process.pid) - cpu_before
            coordinator = {event["job_id"]: event["seconds"] for event in done_events(daemon)}
            worker_side = {}
            for line in worker.log().splitlines():
                if line.startswith("{") and '"job_read"' in line:
                    event = json.loads(line)
                    worker_side[event["job_id"]] = event["seconds"]
        finally:
            daemon.stop()
            worker.stop()
            redis.stop()
    gaps = sorted(coordinator[job] - worker_side[job] for job in coordinator if job in worker_side)
    return {
        "jobs": len(gaps),
        "overhead_ms_median": round(statistics.median(gaps) * 1000, 1),
        "overhead_ms_p95": round(gaps[int(len(gaps) * 0.95) - 1] * 1000, 1),
        "worker_ms_median": round(statistics.median(worker_side.values()) * 1000, 1),
        "coordinator_cpu_ms_per_job": round(cpu / notes * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=24)
    parser.add_argument("--notes", type=int, default=40)
    args = parser.parse_args()
    report = {"overhead": overhead(args.notes), "throughput": [throughput(workers, args.pages) for workers in (1, 2)]}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
