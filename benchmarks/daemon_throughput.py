"""Drop N small real line images into a running daemon at once; measure what it costs.

Reports: time until every file is processed and delivered, files/s, the daemon's
overhead per file (worker time beyond the pipeline, and result → sink latency),
watcher CPU while idle, and RSS over the run.

    .venv/bin/python benchmarks/daemon_throughput.py --files 1000 --workers 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_seconds, render_note, rss_mb, start_daemon


def events(log: Path) -> list[dict]:
    out = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return out


def count(log: Path, name: str) -> int:
    return sum(1 for event in events(log) if event.get("event") == name)


def wait(condition, timeout: float, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise SystemExit("timed out")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="hwdaemon-bench-"))
    staging, inbox, outbox = root / "staging", root / "inbox", root / "outbox"
    for folder in (staging, inbox):
        folder.mkdir()
    for number in range(args.files):
        Image.fromarray(render_note(number)).save(staging / f"note-{number:04d}.png")
    config = {
        "state_dir": str(root / "state"),
        "workers": args.workers,
        "log": {"level": "info", "format": "json"},
        "inboxes": [{"path": str(inbox), "settle_seconds": 1.0, "sinks": ["out"]}],
        "sinks": {"out": {"type": "file", "path": str(outbox), "formats": ["json"]}},
    }
    daemon, log = start_daemon(root, config)
    idle_start = cpu_seconds(daemon.pid)
    time.sleep(args.idle_seconds)
    idle_cpu_percent = 100 * (cpu_seconds(daemon.pid) - idle_start) / args.idle_seconds

    rss_samples = [rss_mb(daemon.pid)]
    started = time.monotonic()
    for path in sorted(staging.iterdir()):
        os.rename(path, inbox / path.name)
    while count(log, "delivered") < args.files:
        time.sleep(0.5)
        rss_samples.append(rss_mb(daemon.pid))
        if time.monotonic() - started > 3600:
            raise SystemExit("timed out")
    elapsed = time.monotonic() - started
    daemon.terminate()
    daemon.wait(60)

    all_events = events(log)
    done = [e for e in all_events if e.get("event") == "job_done"]
    worker_overhead = [e["seconds"] - e["pipeline_seconds"] for e in done]
    pipeline = [e["pipeline_seconds"] for e in done]
    done_at = {e["job_id"]: datetime.fromisoformat(e["timestamp"]) for e in done}
    delivered_at = {
        e["job_id"]: datetime.fromisoformat(e["timestamp"]) for e in all_events if e.get("event") == "delivered"
    }
    delivery_latency = [(delivered_at[j] - done_at[j]).total_seconds() for j in done_at if j in delivered_at]
    report = {
        "files": args.files,
        "workers": args.workers,
        "seconds_until_all_delivered": round(elapsed, 1),
        "files_per_second": round(args.files / elapsed, 2),
        "pipeline_seconds_median": round(statistics.median(pipeline), 4),
        "worker_overhead_seconds_median": round(statistics.median(worker_overhead), 4),
        "worker_overhead_seconds_p95": round(sorted(worker_overhead)[int(len(worker_overhead) * 0.95)], 4),
        "result_to_sink_seconds_median": round(statistics.median(delivery_latency), 4),
        "idle_cpu_percent": round(idle_cpu_percent, 2),
        "rss_mb_start": round(rss_samples[0], 1),
        "rss_mb_max": round(max(rss_samples), 1),
        "rss_mb_end": round(rss_samples[-1], 1),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
