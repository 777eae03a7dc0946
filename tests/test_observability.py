"""/metrics and /healthz over real HTTP, and the crash/stall faults they must reveal."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from daemon_harness import Daemon, http_get, install_test_plugins, wait_for, write_config
from rendering import render_lines, save

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def faults_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_test_plugins(tmp_path_factory.mktemp("site"), "hwdaemon-faults")


def metrics_url(daemon: Daemon) -> str:
    event = next(event for event in daemon.events() if event.get("event") == "metrics_listening")
    return str(event["url"]).removesuffix("/metrics")


def sample(text: str, name: str, **labels: str) -> float | None:
    selector = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))  # exposition sorts labels
    pattern = re.escape(name) + (r"\{" + re.escape(selector) + r"\}" if labels else "") + r" ([0-9.e+-]+)"
    match = re.search(pattern, text)
    return float(match.group(1)) if match else None


def faulty_config(folder: Path, step: dict[str, object], **overrides: object) -> Path:
    return write_config(
        folder,
        metrics={"enabled": True, "port": 0},
        profiles={"default": {"preprocess": ["grayscale"]}, "faulty": {"preprocess": [step]}},
        inboxes=[
            {"path": str(folder / "inbox"), "settle_seconds": 0.5, "sinks": ["outbox"]},
            {"path": str(folder / "faulty"), "profile": "faulty", "settle_seconds": 0.5, "sinks": ["outbox"]},
        ],
        **overrides,
    )


def test_metrics_move_after_a_job_and_match_status(faults_site: Path, tmp_path: Path) -> None:
    config = faulty_config(tmp_path, {"type": "crash"}, max_attempts=2)
    daemon = Daemon(
        config, env={"PYTHONPATH": str(faults_site), "HWDAEMON_TEST_EVENTS": str(tmp_path / "hooks.jsonl")}
    ).start()
    try:
        base = metrics_url(daemon)
        status, body = http_get(f"{base}/metrics")
        assert status == 200 and sample(body, "hwdaemon_model_load_seconds", profile="default") is not None
        assert sample(body, "hwdaemon_jobs_finished_total", outcome="done") is None
        save(render_lines(["Counted"]), tmp_path / "inbox" / "counted.png")
        save(render_lines(["Crashes"]), tmp_path / "faulty" / "crashes.png")
        wait_for(
            lambda: (tmp_path / "faulty" / "failed" / "crashes.png.error.json").exists(), timeout=90, what="crash filed"
        )
        wait_for(lambda: (tmp_path / "outbox" / "counted.txt").exists(), what="counted.txt")
        _, body = http_get(f"{base}/metrics")
        assert sample(body, "hwdaemon_jobs_finished_total", outcome="done") == 1
        assert sample(body, "hwdaemon_jobs_finished_total", outcome="failed") == 1
        assert (
            sample(body, "hwdaemon_jobs_finished_total", outcome="retry_scheduled") == 1
        )  # the crash was retried once
        assert sample(body, "hwdaemon_stage_duration_seconds_count", stage="recognize") == 1
        assert sample(body, "hwdaemon_files_seen_total", inbox=str(tmp_path / "inbox"), outcome="queued") == 1
        assert (sample(body, "process_resident_memory_bytes") or 0) > 100e6
        wait_for(
            lambda: (
                sample(
                    http_get(f"{base}/metrics")[1],
                    "hwdaemon_delivery_attempts_total",
                    sink="outbox",
                    outcome="delivered",
                )
                == 1
            ),
            what="delivery counted",
        )
        _, body = http_get(f"{base}/metrics")
        status_command = [sys.executable, "-m", "hwdaemon", "status", "--json", "--config", str(config)]
        summary = json.loads(
            subprocess.run(status_command, capture_output=True, text=True, check=True, env=daemon.env).stdout
        )
        for inbox, counts in summary["jobs"].items():
            for state, count in counts.items():
                assert sample(body, "hwdaemon_jobs", inbox=inbox, state=state) == count
        report = json.loads((tmp_path / "faulty" / "failed" / "crashes.png.error.json").read_text())
        assert "injected crash" in report["error"] and report["attempts"] == 2 and "RuntimeError" in report["traceback"]
        assert http_get(f"{base}/anything")[0] == 404
        status, body = http_get(f"{base}/healthz")
        assert status == 200 and json.loads(body)["healthy"] is True
    finally:
        daemon.stop()


def test_healthz_turns_503_when_the_worker_stalls(faults_site: Path, tmp_path: Path) -> None:
    config = faulty_config(tmp_path, {"type": "stall", "seconds": 3600}, job_timeout_seconds=1)
    daemon = Daemon(config, env={"PYTHONPATH": str(faults_site)}).start()
    try:
        base = metrics_url(daemon)
        assert http_get(f"{base}/healthz")[0] == 200
        save(render_lines(["Never finishes"]), tmp_path / "faulty" / "wedged.png")
        _status, body = wait_for(
            lambda: (lambda reply: reply if reply[0] == 503 else None)(http_get(f"{base}/healthz")), what="503"
        )
        details = json.loads(body)
        assert details["healthy"] is False and details["workers"][0]["stalled"] is True
    finally:
        daemon.process.kill()  # type: ignore[union-attr]  # the stalled job would hold SIGTERM for an hour
        daemon.process.wait()  # type: ignore[union-attr]


def test_every_job_log_line_carries_job_file_inbox_and_profile(tmp_path: Path) -> None:
    daemon = Daemon(write_config(tmp_path)).start()
    try:
        save(render_lines(["Logged"]), tmp_path / "inbox" / "logged.png")
        wait_for(lambda: daemon.count("delivered") == 1, what="delivered")
    finally:
        daemon.stop()
    job_events = [event for event in daemon.events() if event.get("event") in ("job_started", "job_done")]
    assert len(job_events) == 2
    for event in job_events:
        assert {"job_id", "file", "inbox", "profile", "timestamp", "level"} <= set(event)
    assert os.path.basename(job_events[0]["file"]) == "logged.png"


def test_hook_hwdaemon_job_done_and_hwdaemon_job_failed(faults_site: Path, tmp_path: Path) -> None:
    events = tmp_path / "hooks.jsonl"
    daemon = Daemon(
        faulty_config(tmp_path, {"type": "crash"}, max_attempts=1),
        env={"PYTHONPATH": str(faults_site), "HWDAEMON_TEST_EVENTS": str(events)},
    ).start()
    try:
        save(render_lines(["Hooked"]), tmp_path / "inbox" / "hooked.png")
        save(render_lines(["Crashes"]), tmp_path / "faulty" / "crashes.png")
        wait_for(lambda: events.exists() and len(events.read_text().splitlines()) == 2, what="both hooks")
    finally:
        daemon.stop()
    recorded = {item["hook"]: item for item in map(json.loads, events.read_text().splitlines())}
    assert (
        recorded["hwdaemon_job_done"]["source"].endswith("hooked.png") and recorded["hwdaemon_job_done"]["lines"] >= 1
    )
    assert (
        recorded["hwdaemon_job_failed"]["path"].endswith("crashes.png")
        and "injected crash" in recorded["hwdaemon_job_failed"]["error"]
    )
    assert (
        recorded["hwdaemon_job_failed"]["job_error"] == recorded["hwdaemon_job_failed"]["error"]
        and recorded["hwdaemon_job_failed"]["attempts"] == 1
    )
