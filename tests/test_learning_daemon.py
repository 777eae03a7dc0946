"""Continuous learning in the real daemon: lines approved as the review page approves them, training in the background.

It starts only past `min_new_lines`, stops while a job is read, continues after a
kill -9 of the daemon from its checkpoint, installs a model that reads the held-back
lines better, refuses one that does not, and `models rollback` undoes a step.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from daemon_harness import Daemon, http_get, install_test_plugins, wait_for, write_config
from hwdaemon.cli import cli
from hwdaemon.config import Config, load_config
from hwdaemon.daemon.previews import PREVIEW_FOLDER, encode_previews, save_previews
from hwdaemon.daemon.runtime import inbox_key_of
from hwdaemon.learning.places import registry_for
from hwdaemon.learning.registry import network_digest
from hwdaemon.learning.runs import RunFolder
from hwdaemon.model import Box, Document, Line, Page, PageResult, Result
from hwdaemon.plugins import Registry, build_registry
from hwdaemon.review import apply_edits, approve
from hwdaemon.store import Store
from rendering import render_lines, save

pytestmark = pytest.mark.slow

TEXTS = [
    "Pick up the parcel", "Ring the dentist", "Water the tomatoes", "Pay the gas bill", "Fix the garden gate",
    "Book the train north", "Return library books", "Call Aunt Rosalind", "Buy flour and yeast", "Post the birthday card",
    "Mend the blue jacket", "Order more firewood", "Wash the car Sunday", "Send the forms back", "Plant the tulip bulbs",
    "Clean the gutters", "Renew the passport", "Walk the dog early", "Sort the old photos", "Oil the bicycle chain",
    "Feed the neighbours cat", "Bake bread for Monday", "Paint the back fence", "Visit Grandma Hilda",
]  # fmt: skip
NOTE = "Water the garden early\nPost the parcel today"
FONT_SIZE = 40
PITCH = int(FONT_SIZE * 1.9)  # render_lines' line spacing


@pytest.fixture(scope="module")
def faults_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_test_plugins(tmp_path_factory.mktemp("site"), "hwdaemon-faults")


@pytest.fixture
def registry(faults_site: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    """The plugins the daemon sees (the `stall` step too), for this process and the commands it invokes."""
    monkeypatch.syspath_prepend(str(faults_site))
    return build_registry()


def learning_config(folder: Path, **learning: Any) -> Path:
    return write_config(
        folder,
        workers=1,
        metrics={"enabled": True, "port": 0},
        profiles={
            "mine": {
                "detector": {"type": "lines"},
                "recognizer": {"type": "handwriting", "decoder": "greedy"},  # what the network reads, no spelling help
                "learning": {"enabled": True, "check_interval_seconds": 0.3, "epochs": 3, **learning},
            },
            "slow": {"preprocess": [{"type": "stall", "seconds": 4}], "detector": {"type": "lines"}},
        },
        inboxes=[
            {"path": str(folder / "inbox"), "profile": "mine", "settle_seconds": 0.3, "sinks": ["outbox"]},
            {"path": str(folder / "slow"), "profile": "slow", "settle_seconds": 0.3, "sinks": ["outbox"]},
        ],
    )


def approve_pages(config: Config, pages: list[list[str]], labels: list[list[str]] | None = None) -> None:
    """A read job per page, its lines corrected to `labels` (default the truth) and approved, as the review page does."""
    store = Store(config.state_dir)
    try:
        for number, lines in enumerate(pages):
            image = render_lines(lines, font_size=FONT_SIZE)
            height, width = image.shape
            boxes = [Box(0, FONT_SIZE + index * PITCH - 10, width, int(FONT_SIZE * 1.5)) for index in range(len(lines))]
            sha256 = hashlib.sha256(image.tobytes()).hexdigest()
            result = Result(
                f"page-{number}.png", sha256, "mine",
                (PageResult(1, width, height, tuple(Line("?", 0.2, box.polygon) for box in boxes)),),
            )  # fmt: skip
            path = config.inboxes[0].path / f"page-{sha256[:8]}.png"
            job = store.jobs.add(str(path), inbox_key_of(config.inboxes[0]), "mine", sha256, 1, 1)
            store.jobs.finish(job.id, result, [])
            save_previews(
                encode_previews(Document(path.name, sha256, (Page(1, image),)), max_side=width),
                config.state_dir,
                job.id,
            )
            texts = (labels or pages)[number]
            store.review.add_revision(job.id, apply_edits(result, 1, dict(enumerate(texts)), 1), "ada")
            approve(store, config, job.id, "ada")
    finally:
        store.close()


def progress_lines(config: Config) -> list[dict[str, Any]]:
    path = RunFolder.of(config.state_dir, "mine").progress
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def process_state(pid: int) -> str | None:
    """The kernel's one-letter state of `pid` (T: stopped), None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return None


def events(daemon: Daemon, name: str) -> list[dict[str, Any]]:
    return [event for event in daemon.events() if event.get("event") == name]


def run_cli(*args: str) -> Any:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if "--json" in args else result.output


def test_the_daemon_learns_past_the_threshold_yields_to_reading_survives_kill_9_and_rolls_back(
    tmp_path: Path, registry: Registry, faults_site: Path
) -> None:
    config_path = learning_config(tmp_path, min_new_lines=20)
    config = load_config(config_path, registry)
    Store(config.state_dir).close()
    approve_pages(config, [TEXTS[0:4], TEXTS[4:8], TEXTS[8:12]])  # 12 lines: below the threshold
    daemon = Daemon(config_path, env={"PYTHONPATH": str(faults_site)}).start()
    try:
        read_before = read_note(tmp_path, daemon, "before")  # with the shipped model
        daemon.wait_event("learning_checked")
        assert events(daemon, "learning_checked")[-1]["new_lines"] == 12 and not events(daemon, "learning_started")

        approve_pages(config, [TEXTS[12:16], TEXTS[16:20], TEXTS[20:24]])  # 24: past it
        daemon.wait_event("learning_started")
        started = events(daemon, "learning_started")[0]
        assert events(daemon, "learning_planned")[0]["new_lines"] == 24
        pid = started["pid"]

        # a job arrives: the training stops while it is read, and continues after
        wait_for(lambda: progress_lines(config), timeout=120, what="the first training step")
        save(render_lines(["hold the worker"]), tmp_path / "slow" / "hold.png")
        daemon.wait_event("job_started")
        daemon.wait_event("learning_paused")
        wait_for(lambda: process_state(pid) == "T", timeout=10, what="the training process stopped")
        daemon.wait_event("job_done")
        daemon.wait_event("learning_resumed")
        wait_for(lambda: process_state(pid) not in ("T", None), timeout=10, what="the training process continued")
        paused, resumed_at = (timestamp(daemon, name) for name in ("learning_paused", "learning_resumed"))
        assert timestamp(daemon, "job_started") <= paused + 0.2 and resumed_at >= timestamp(daemon, "job_done")
        assert not [line for line in progress_lines(config) if paused + 0.5 < line["at"] < resumed_at - 0.1]

        # kill -9 mid-training: the training dies with the daemon and continues from its checkpoint
        checkpoint = RunFolder.of(config.state_dir, "mine").train_dir / "checkpoint.pt"
        wait_for(checkpoint.is_file, timeout=300, what="a checkpoint")
        steps_before = max(line.get("steps", 0) for line in progress_lines(config))
        daemon.kill()
        wait_for(lambda: process_state(pid) is None, timeout=10, what="the training process gone with the daemon")
        seen = len(progress_lines(config))
        daemon.start()
        daemon.wait_event("learning_started", count=2)
        assert events(daemon, "learning_started")[1]["start"] == 2
        resumed = wait_for(
            lambda: [line for line in progress_lines(config)[seen:] if "steps" in line],
            timeout=300,
            what="a step after restart",
        )
        assert 1 < resumed[0]["steps"] <= steps_before + 1  # from the checkpoint, not from the start

        daemon.wait_event("learning_finished", timeout=600)
        finished = events(daemon, "learning_finished")[0]
        assert finished["outcome"] == "installed" and finished["cer_after"] < finished["cer_before"], finished
        models = registry_for(config, "mine")
        assert models.current() == 1 and network_digest(models.live) == network_digest(models.folder_of(1))
        assert not RunFolder.of(config.state_dir, "mine").path.exists()

        listing = run_cli("models", "--profile", "mine", "--json", "--config", str(config_path))["profiles"][0]
        version = listing["versions"][1]
        assert (version["origin"], version["lines_learnt"], version["base_version"]) == ("learnt", 20, 0)
        assert version["cer_after"] == finished["cer_after"] and version["cer_before"] == finished["cer_before"]
        status = run_cli("status", "--json", "--config", str(config_path))["learning"][0]
        assert (status["version"], status["state"], status["approved_since"]) == (1, "waiting", 0)
        url = events(daemon, "metrics_listening")[-1]["url"]  # the restarted daemon's
        _, metrics = http_get(url)
        assert 'hwdaemon_model_version{profile="mine"} 1.0' in metrics
        assert f'hwdaemon_model_held_back_cer{{profile="mine",when="after"}} {finished["cer_after"]}' in metrics
        read_learnt = read_note(tmp_path, daemon, "learnt")  # the next job, with no restart: another network
        assert read_learnt != read_before

        # rollback, with the daemon running: the next job reads the model before learning again
        run_cli("models", "rollback", "mine", "--config", str(config_path))
        assert models.current() == 0 and network_digest(models.live) == network_digest(models.folder_of(0))
        assert read_note(tmp_path, daemon, "rolled-back") == read_before
    finally:
        daemon.stop()


def test_corrections_that_cannot_help_leave_the_model_as_it_was_and_say_why(
    tmp_path: Path, registry: Registry, faults_site: Path
) -> None:
    config_path = learning_config(tmp_path, min_new_lines=12, learning_rate=0.5)
    config = load_config(config_path, registry)
    Store(config.state_dir).close()
    pages = [TEXTS[0:4], TEXTS[4:8], TEXTS[8:12], TEXTS[12:16]]
    shuffled = [list(reversed(TEXTS[4:8])), TEXTS[8:12], TEXTS[12:16], TEXTS[0:4]]  # each line labelled with another's
    approve_pages(config, pages, shuffled)
    daemon = Daemon(config_path, env={"PYTHONPATH": str(faults_site)}).start()
    try:
        daemon.wait_event("learning_finished", timeout=600)
        finished = events(daemon, "learning_finished")[0]
        assert finished["outcome"] == "kept" and finished["cer_after"] >= finished["cer_before"], finished
        assert "kept version 0" in finished["reason"] and "held-back line(s)" in finished["reason"]
        models = registry_for(config, "mine")
        assert not models.live.exists()  # the profile still reads the shipped model
        assert [version.number for version in models.versions()] == [0]
        status = run_cli("status", "--config", str(config_path))
        assert "last training kept: kept version 0" in status
        daemon.wait_event("learning_checked", count=events_count(daemon, "learning_checked") + 1)
        assert len(events(daemon, "learning_started")) == 1  # not again until 12 more lines are approved
    finally:
        daemon.stop()


def test_a_training_that_cannot_start_is_recorded_with_its_reason_and_not_retried(
    tmp_path: Path, registry: Registry, faults_site: Path
) -> None:
    config_path = learning_config(tmp_path, min_new_lines=8)
    config = load_config(config_path, registry)
    Store(config.state_dir).close()
    approve_pages(config, [TEXTS[0:4], TEXTS[4:8]])
    shutil.rmtree(config.state_dir / PREVIEW_FOLDER)  # the page images the lines are cropped from are gone
    daemon = Daemon(config_path, env={"PYTHONPATH": str(faults_site)}).start()
    try:
        daemon.wait_event("learning_failed", timeout=120)
        failed = events(daemon, "learning_failed")[0]
        assert failed["outcome"] == "failed" and "only 0 approved line(s)" in failed["reason"], failed
        status = run_cli("status", "--config", str(config_path))
        assert "last training failed: only 0 approved line(s)" in status
        daemon.wait_event("learning_checked", count=events_count(daemon, "learning_checked") + 2)
        assert len(events(daemon, "learning_started")) == 1  # not again until 8 more lines are approved
        assert registry_for(config, "mine").versions()[0].origin == "before-learning"
    finally:
        daemon.stop()


def test_a_clean_stop_of_the_daemon_mid_training_does_not_count_against_the_run(
    tmp_path: Path, registry: Registry, faults_site: Path
) -> None:
    config_path = learning_config(tmp_path, min_new_lines=8)
    config = load_config(config_path, registry)
    Store(config.state_dir).close()
    approve_pages(config, [TEXTS[0:4], TEXTS[4:8]])
    daemon = Daemon(config_path, env={"PYTHONPATH": str(faults_site)}).start()
    try:
        daemon.wait_event("learning_started")
        pid = events(daemon, "learning_started")[0]["pid"]
        assert daemon.stop() == 0
        assert process_state(pid) is None  # the training ended with the daemon
        daemon.start()
        daemon.wait_event("learning_started", count=2)
        assert [event["start"] for event in events(daemon, "learning_started")] == [1, 1]  # a restart, not a fault
    finally:
        daemon.stop()


def read_note(folder: Path, daemon: Daemon, name: str) -> list[tuple[str, float]]:
    """Drop a page none of the approved lines holds into the learning profile's inbox; each line's text and confidence.

    Two networks read it apart: the confidences differ, if the texts do not.
    """
    done = events_count(daemon, "job_done")
    page = folder / f"{name}.png"
    save(render_lines(NOTE.split("\n"), font_size=FONT_SIZE), page)
    page.write_bytes(page.read_bytes() + name.encode())  # other bytes each time: not a duplicate
    page.rename(folder / "inbox" / page.name)
    daemon.wait_event("job_done", count=done + 1)
    result = json.loads((folder / "outbox" / f"{name}.json").read_text())
    return [(line["text"], line["confidence"]) for page in result["pages"] for line in page["lines"]]


def timestamp(daemon: Daemon, name: str) -> float:
    """When the daemon logged its first `name` event, as a Unix time."""
    return datetime.fromisoformat(events(daemon, name)[0]["timestamp"]).timestamp()


def events_count(daemon: Daemon, name: str) -> int:
    return len(events(daemon, name))
