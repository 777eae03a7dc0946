"""The HTTP API's costs: uploads accepted per second, and a job's time through the API against the folder.

1. Intake: `hwdaemon ui` alone (no daemon, so nothing reads), N tiny PNGs sent by
   C concurrent clients; reports uploads accepted per second and the request
   latency (median, p95).
2. Per-job overhead: a daemon (ui.enabled, inbox settle_seconds 0) reads the same
   K small notes once dropped into its inbox and once sent through the API (each
   waited for with ?wait=); reports seconds from hand-over to `done` for both.

    .venv/bin/python benchmarks/api_throughput.py --uploads 1000 --clients 8 --jobs 20
"""

from __future__ import annotations

import argparse
import io
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
import yaml
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import render_note, start_daemon

TOKEN = "benchmark-token-0123456789"
API = {"tokens": [{"name": "bench", "token": TOKEN, "scopes": ["admin"]}], "rate_limit_per_minute": 10_000_000}
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def png_bytes(number: int) -> bytes:
    image = Image.new("L", (16, 8), 255)
    image.putpixel((number % 16, (number // 16) % 8), 0)
    image.putpixel((0, 0), number % 256)
    image.putpixel((1, 0), (number // 256) % 256)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def note_bytes(number: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(render_note(number)).save(buffer, format="PNG")
    return buffer.getvalue()


def intake(root: Path, uploads: int, clients: int) -> dict[str, Any]:
    config = {
        "state_dir": str(root / "state"),
        "inboxes": [{"path": str(root / "inbox")}],
        "sinks": {"outbox": {"type": "file", "path": str(root / "outbox")}},
        "api": API,
    }
    root.mkdir(parents=True)
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "hwdaemon", "ui", "--config", str(root / "config.yaml"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/api/v1/documents"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(url, timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise SystemExit("hwdaemon ui did not start") from None
                time.sleep(0.2)
        bodies = [png_bytes(number) for number in range(uploads)]
        latencies: list[float] = []

        def send(number: int) -> int:
            started = time.perf_counter()
            answer = requests.post(f"{url}?filename=n{number}.png", data=bodies[number], headers=HEADERS, timeout=60)
            latencies.append(time.perf_counter() - started)
            return answer.status_code

        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            statuses = list(pool.map(send, range(uploads)))
        seconds = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(10)
    latencies.sort()
    return {
        "uploads": uploads,
        "clients": clients,
        "accepted": statuses.count(202),
        "seconds": round(seconds, 2),
        "uploads_per_second": round(uploads / seconds, 1),
        "latency_ms_median": round(statistics.median(latencies) * 1000, 1),
        "latency_ms_p95": round(latencies[int(len(latencies) * 0.95)] * 1000, 1),
    }


def per_job(root: Path, jobs: int) -> dict[str, Any]:
    port = free_port()
    config = {
        "state_dir": str(root / "state"),
        "log": {"level": "info", "format": "json"},
        "ui": {"enabled": True, "port": port},
        "inboxes": [{"path": str(root / "inbox"), "settle_seconds": 0, "sinks": ["outbox"]}],
        "sinks": {"outbox": {"type": "file", "path": str(root / "outbox"), "formats": ["txt"]}},
        "api": API,
    }
    (root / "inbox").mkdir(parents=True)
    daemon, log = start_daemon(root, config)
    url = f"http://127.0.0.1:{port}/api/v1/documents"
    folder_seconds: list[float] = []
    api_seconds: list[float] = []
    try:
        for number in range(jobs):
            body = note_bytes(number)
            staged = root / f"staged{number}.png"
            staged.write_bytes(body)
            done_before = log.read_text(errors="replace").count('"job_done"')
            started = time.perf_counter()
            staged.rename(root / "inbox" / staged.name)
            while log.read_text(errors="replace").count('"job_done"') <= done_before:
                time.sleep(0.01)
            folder_seconds.append(time.perf_counter() - started)

            other = note_bytes(number + 100_000)
            started = time.perf_counter()
            sent = requests.post(f"{url}?filename=api{number}.png", data=other, headers=HEADERS, timeout=60).json()
            state = requests.get(f"{url}/{sent['id']}?wait=60", headers=HEADERS, timeout=90).json()["state"]
            api_seconds.append(time.perf_counter() - started)
            assert state == "done", state
    finally:
        daemon.terminate()
        daemon.wait(60)
    return {
        "jobs": jobs,
        "folder_seconds_median": round(statistics.median(folder_seconds), 3),
        "api_seconds_median": round(statistics.median(api_seconds), 3),
        "api_minus_folder_seconds": round(statistics.median(api_seconds) - statistics.median(folder_seconds), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=20)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="hwdaemon-api-bench-"))
    report = {
        "intake": intake(root / "intake", args.uploads, args.clients),
        "per_job": per_job(root / "daemon", args.jobs),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
