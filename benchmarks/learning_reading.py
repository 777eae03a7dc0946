"""Reading speed while the daemon learns in the background, against the same daemon idle (issue #28: within 10%).

One daemon reads the dev pages one at a time (each dropped a couple of seconds
after the last is done, so the background training runs between them and is
stopped for each), in alternating rounds: learning off (idle), then on while a
long training runs (turned on and off by SIGHUP reloads; off suspends the
training, on continues it from its checkpoint), so both ways share the
machine's load of the moment. Reports each job's time on its worker and from
drop to done both ways, how far the training got, and peak memory.

    .venv/bin/python benchmarks/learning_reading.py --rounds 2
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEV_DATA, FONT, cpu_seconds, rss_mb, start_daemon
from hwdaemon.config import load_config
from hwdaemon.daemon.previews import encode_previews, save_previews
from hwdaemon.daemon.runtime import inbox_key_of
from hwdaemon.model import Box, Document, Line, Page, PageResult, Result
from hwdaemon.plugins import build_registry
from hwdaemon.review import apply_edits, approve
from hwdaemon.store import Store

SENTENCES = "milk bread tea post bank call write pay garden train letter lunch meeting parcel".split()


def events(log: Path) -> list[dict[str, Any]]:
    found = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                found.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return found


def wait_event(log: Path, name: str, count: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while sum(1 for event in events(log) if event.get("event") == name) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"no {count}× {name} in {timeout}s:\n{log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.05)


def approve_rendered(config_path: Path, jobs: int, lines_per_job: int, offset: int) -> None:
    """Approved jobs of rendered lines, as the review page leaves them."""
    config = load_config(config_path, build_registry())
    font = ImageFont.truetype(str(FONT), 40)
    store = Store(config.state_dir)
    try:
        for number in range(offset, offset + jobs):
            texts = [
                " ".join(SENTENCES[(number * 5 + index * 3 + word) % len(SENTENCES)] for word in range(4))
                for index in range(lines_per_job)
            ]
            width = max(int(font.getlength(text)) for text in texts) + 80
            page = Image.new("L", (width, 76 * lines_per_job + 80), 255)
            draw = ImageDraw.Draw(page)
            for index, text in enumerate(texts):
                draw.text((40, 40 + index * 76), text, font=font, fill=20)
            image = np.asarray(page)
            boxes = [Box(0, 30 + index * 76, width, 60) for index in range(lines_per_job)]
            sha256 = hashlib.sha256(image.tobytes()).hexdigest()
            result = Result(
                f"note-{number}.png", sha256, "learner",
                (PageResult(1, width, page.height, tuple(Line("?", 0.2, box.polygon) for box in boxes)),),
            )  # fmt: skip
            job = store.jobs.add(f"/approved/{sha256}.png", inbox_key_of(config.inboxes[0]), "learner", sha256, 1, 1)
            store.jobs.finish(job.id, result, [])
            save_previews(
                encode_previews(Document(result.source, sha256, (Page(1, image),)), width), config.state_dir, job.id
            )
            store.review.add_revision(job.id, apply_edits(result, 1, dict(enumerate(texts)), 1), "bench")
            approve(store, config, job.id, "bench")
    finally:
        store.close()


def read_one_at_a_time(
    inbox: Path, log: Path, pages: list[Path], rounds: int, tag: str, gap_seconds: float, trainer: int | None = None
) -> list[dict[str, float]]:
    """Drop each page (a new copy each time, so it is no duplicate), wait until it is done.

    Per job: worker and drop-to-done seconds, and with `trainer` (its pid) the CPU
    seconds the training process used from the drop to the job's end: what it could
    have taken from reading.
    """
    measured = []
    for round_number in range(rounds):
        for page in pages:
            done_before = sum(1 for event in events(log) if event.get("event") == "job_done")
            target = inbox / f"{tag}-{round_number}-{page.name}"
            staging = inbox.parent / f".{target.name}"
            staging.write_bytes(page.read_bytes() + f"{tag}{round_number}".encode())  # bytes after the image's end
            trainer_cpu = cpu_seconds(trainer) if trainer else 0.0
            dropped = time.monotonic()
            staging.rename(target)
            wait_event(log, "job_done", done_before + 1)
            done = [event for event in events(log) if event.get("event") == "job_done"][-1]
            measured.append(
                {
                    "worker_seconds": done["seconds"],
                    "drop_to_done_seconds": time.monotonic() - dropped,
                    "trainer_cpu_seconds": cpu_seconds(trainer) - trainer_cpu if trainer else 0.0,
                }
            )
            time.sleep(gap_seconds)  # let the training run between jobs, as it would between a user's scans
    return measured


def pause_latencies(log: Path) -> list[float]:
    """For each job queued while a training ran: seconds from job_queued to learning_paused."""
    latencies, queued_at = [], None
    for event in events(log):
        when = datetime.fromisoformat(event["timestamp"]).timestamp() if "timestamp" in event else None
        if event.get("event") == "job_queued":
            queued_at = when
        elif event.get("event") == "learning_paused" and queued_at is not None and when is not None:
            latencies.append(when - queued_at)
            queued_at = None
    return latencies


def summary(measured: list[dict[str, float]], key: str) -> dict[str, float]:
    values = [item[key] for item in measured]
    return {"mean": round(statistics.mean(values), 3), "median": round(statistics.median(values), 3)}


def set_learning(root: Path, config: dict[str, Any], daemon_pid: int, log: Path, enabled: bool) -> None:
    """Turn the profile's learning on or off with a SIGHUP reload (off: the training is suspended, kept for later)."""
    config["profiles"]["learner"]["learning"]["enabled"] = enabled
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    reloads = sum(1 for event in events(log) if event.get("event") == "config_reloaded")
    os.kill(daemon_pid, signal.SIGHUP)
    wait_event(log, "config_reloaded", reloads + 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2, help="rounds each way, alternating: idle, training, idle, ...")
    parser.add_argument("--gap", type=float, default=2.0, help="seconds between a job done and the next drop")
    args = parser.parse_args()
    manifest = [json.loads(line) for line in (DEV_DATA / "manifest.jsonl").read_text().splitlines() if line.strip()]
    pages = [DEV_DATA / item["image"] for item in manifest if item["kind"] == "page"]
    root = Path(tempfile.mkdtemp(prefix="learning-reading-"))
    inbox = root / "inbox"
    inbox.mkdir()
    config: dict[str, Any] = {
        "state_dir": str(root / "state"),
        "workers": 1,
        "log": {"level": "info", "format": "json"},
        "profiles": {
            "learner": {
                "learning": {"enabled": False, "min_new_lines": 40, "epochs": 40, "check_interval_seconds": 0.5}
            }
        },
        "inboxes": [{"path": str(inbox), "profile": "learner", "settle_seconds": 0.2, "sinks": ["outbox"]}],
        "sinks": {"outbox": {"type": "file", "path": str(root / "outbox"), "formats": ["txt"]}},
    }
    daemon, log = start_daemon(root, config)
    progress = root / "state" / "learning" / "learner" / "run" / "progress.jsonl"
    idle: list[dict[str, float]] = []
    training: list[dict[str, float]] = []
    trainer_peak_mb = 0.0
    steps = 0
    try:
        approve_rendered(root / "config.yaml", jobs=12, lines_per_job=5, offset=0)  # 60 lines: a training once enabled
        for round_number in range(args.rounds):
            idle += read_one_at_a_time(inbox, log, pages, 1, f"idle{round_number}", args.gap)
            started = sum(1 for event in events(log) if event.get("event") == "learning_started")
            set_learning(root, config, daemon.pid, log, enabled=True)
            wait_event(log, "learning_started", started + 1)
            lines_before = len(progress.read_text().splitlines()) if progress.is_file() else 0
            deadline = time.monotonic() + 600  # until the training process is loaded and stepping
            while (len(progress.read_text().splitlines()) if progress.is_file() else 0) <= lines_before:
                if time.monotonic() > deadline:
                    raise SystemExit("the training made no step in 10 minutes")
                time.sleep(0.5)
            trainer = [event for event in events(log) if event.get("event") == "learning_started"][-1]["pid"]
            training += read_one_at_a_time(inbox, log, pages, 1, f"training{round_number}", args.gap, trainer)
            trainer_peak_mb = max(trainer_peak_mb, rss_mb(trainer, "VmHWM"))
            steps = len(progress.read_text().splitlines())
            set_learning(root, config, daemon.pid, log, enabled=False)
        daemon_peak_mb = rss_mb(daemon.pid, "VmHWM")
        pauses = sum(1 for event in events(log) if event.get("event") == "learning_paused")
        finished = any(event.get("event") == "learning_finished" for event in events(log))
    finally:
        daemon.terminate()
        daemon.wait(60)
    report: dict[str, Any] = {
        "pages": len(pages),
        "jobs_each_way": len(idle),
        "idle": {key: summary(idle, key) for key in ("worker_seconds", "drop_to_done_seconds")},
        "training": {
            key: summary(training, key) for key in ("worker_seconds", "drop_to_done_seconds", "trainer_cpu_seconds")
        },
        "pause_latency_seconds": summary([{"latency": value} for value in pause_latencies(log)], "latency"),
        "training_finished_early": finished,
        "training_paused": pauses,
        "training_progress_lines": steps,
        "peak_rss_mb": {"daemon": round(daemon_peak_mb), "training_process": round(trainer_peak_mb)},
    }
    for key in ("worker_seconds", "drop_to_done_seconds"):
        report[f"{key}_ratio"] = round(report["training"][key]["mean"] / report["idle"][key]["mean"], 3)
    print(json.dumps(report, indent=2))
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
