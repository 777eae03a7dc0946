"""The daemon's guarantees, each against a real `hwdaemon run` process."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import sqlite3
import threading
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from daemon_harness import Daemon, wait_for, write_config
from hwdaemon.cli import cli
from rendering import render_lines, save
from test_inputs import _png_claiming_size

pytestmark = pytest.mark.slow


def job_states(folder: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(folder / "state" / "hwdaemon.sqlite3") as db:
        return [(Path(path).name, state) for path, state in db.execute("SELECT path, state FROM jobs ORDER BY id")]


@pytest.fixture
def daemon(tmp_path: Path):  # type: ignore[no-untyped-def]
    running = Daemon(write_config(tmp_path)).start()
    yield running
    running.stop()


def test_dropped_scan_is_read_and_filed(daemon: Daemon, tmp_path: Path) -> None:
    save(render_lines(["Meet me at the station"]), tmp_path / "inbox" / "note.png")
    text = wait_for(
        lambda: (tmp_path / "outbox" / "note.txt").exists() and (tmp_path / "outbox" / "note.txt").read_text(),
        what="note.txt",
    )
    assert "station" in text.lower() or len(text) > 10
    result = json.loads((tmp_path / "outbox" / "note.json").read_text())
    assert result["pages"][0]["lines"][0]["polygon"]
    assert (tmp_path / "inbox" / "processed" / "note.png").exists()
    assert not (tmp_path / "inbox" / "note.png").exists()
    done = [event for event in daemon.events() if event.get("event") == "job_done"]
    assert done[0]["job_id"] == 1 and done[0]["file"].endswith("note.png")


def test_half_written_file_is_not_read(daemon: Daemon, tmp_path: Path) -> None:
    source = save(render_lines(["Slowly copied over the network"]), tmp_path / "source.png").read_bytes()
    target = tmp_path / "inbox" / "slow.png"
    chunks = [source[i : i + len(source) // 10 + 1] for i in range(0, len(source), len(source) // 10 + 1)]
    with target.open("wb") as stream:
        for chunk in chunks:  # about 5 s of trickling writes
            stream.write(chunk)
            stream.flush()
            time.sleep(0.5)
    wait_for(lambda: (tmp_path / "outbox" / "slow.json").exists(), what="slow.json")
    assert job_states(tmp_path) == [("slow.png", "done")]
    assert daemon.count("job_failed") == 0


def test_duplicate_bytes_are_recorded_not_reprocessed(daemon: Daemon, tmp_path: Path) -> None:
    image = render_lines(["Same page twice"])
    save(image, tmp_path / "inbox" / "first.png")
    wait_for(lambda: (tmp_path / "outbox" / "first.txt").exists(), what="first.txt")
    (tmp_path / "inbox" / "again.png").write_bytes((tmp_path / "inbox" / "processed" / "first.png").read_bytes())
    wait_for(lambda: (tmp_path / "inbox" / "processed" / "again.png").exists(), what="again.png filed")
    assert job_states(tmp_path) == [("first.png", "done"), ("again.png", "duplicate")]
    assert not (tmp_path / "outbox" / "again.txt").exists()
    assert daemon.count("job_done") == 1


def test_hostile_files_fail_with_a_reason_and_the_daemon_goes_on(daemon: Daemon, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    (inbox / "empty.png").write_bytes(b"")
    (inbox / "letter.jpg").write_text("Dear Sir, this is a text file")
    truncated = save(render_lines(["cut short"]), tmp_path / "whole.png").read_bytes()
    (inbox / "truncated.png").write_bytes(truncated[: len(truncated) // 3])
    _png_claiming_size(inbox / "bomb.png", 40_000, 40_000)
    (inbox / "outside.png").symlink_to("/etc/hostname")
    odd_names = ["with space.png", "new\nline.png", "ünïcødé 手紙.png"]
    for name in odd_names:
        save(render_lines(["odd name"]), inbox / name)  # the same bytes: one done, two duplicates
    wait_for(
        lambda: (
            len(job_states(tmp_path)) == 8
            and all(state not in ("queued", "processing") for _, state in job_states(tmp_path))
        ),
        what="8 finished jobs",
    )
    failed = inbox / "failed"
    reasons = {
        name: json.loads((failed / f"{name}.error.json").read_text())["error"]
        for name in ("empty.png", "letter.jpg", "truncated.png", "bomb.png", "outside.png")
    }
    assert "empty" in reasons["empty.png"]
    assert "not a supported file" in reasons["letter.jpg"]
    assert "truncated or corrupt" in reasons["truncated.png"]
    assert "inputs.max_pixels" in reasons["bomb.png"]
    assert "symlink points outside the inbox" in reasons["outside.png"]
    assert (failed / "letter.jpg").read_text() == "Dear Sir, this is a text file"  # the original, intact
    assert sorted(path.name for path in (inbox / "processed").iterdir()) == sorted(odd_names)
    assert sorted(state for _, state in job_states(tmp_path)) == ["done", "duplicate", "duplicate", *["failed"] * 5]
    save(render_lines(["still alive"]), inbox / "after.png")
    wait_for(lambda: (tmp_path / "outbox" / "after.txt").exists(), what="after.txt")


def test_polling_inbox_picks_up_files(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        inboxes=[
            {
                "path": str(tmp_path / "inbox"),
                "polling": True,
                "poll_interval_seconds": 0.5,
                "settle_seconds": 0.5,
                "sinks": ["outbox"],
            }
        ],
    )
    running = Daemon(config).start()
    try:
        save(render_lines(["Scanned to the NAS"]), tmp_path / "inbox" / "nas.png")
        wait_for(lambda: (tmp_path / "outbox" / "nas.txt").exists(), what="nas.txt")
    finally:
        assert running.stop() == 0


def test_files_present_at_start_are_read(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    save(render_lines(["Arrived while down"]), tmp_path / "inbox" / "early.png")
    running = Daemon(write_config(tmp_path)).start()
    try:
        wait_for(lambda: (tmp_path / "outbox" / "early.txt").exists(), what="early.txt")
    finally:
        running.stop()


def test_sighup_applies_a_new_config_and_refuses_an_invalid_one(daemon: Daemon, tmp_path: Path) -> None:
    config = yaml.safe_load(daemon.config.read_text())
    config["sinks"]["outbox"]["formats"] = ["csv"]
    daemon.config.write_text(yaml.safe_dump(config))
    daemon.signal(signal.SIGHUP)
    daemon.wait_event("config_reloaded")
    save(render_lines(["After reload"]), tmp_path / "inbox" / "reloaded.png")
    wait_for(lambda: (tmp_path / "outbox" / "reloaded.csv").exists(), what="reloaded.csv")
    daemon.config.write_text(daemon.config.read_text().replace("settle_seconds", "setle_seconds"))
    daemon.signal(signal.SIGHUP)
    daemon.wait_event("config_reload_refused")
    refused = next(event for event in daemon.events() if event.get("event") == "config_reload_refused")
    assert "setle_seconds" in refused["error"]
    save(render_lines(["Old config kept"]), tmp_path / "inbox" / "kept.png")
    wait_for(lambda: (tmp_path / "outbox" / "kept.csv").exists(), what="kept.csv")


def test_sigterm_finishes_the_job_in_hand_and_exits_zero(daemon: Daemon, tmp_path: Path) -> None:
    save(render_lines(["Finish me before you go"] * 6), tmp_path / "inbox" / "busy.png")
    daemon.wait_event("job_started")
    assert daemon.stop() == 0
    assert daemon.count("daemon_stopped") == 1
    assert job_states(tmp_path) == [("busy.png", "done")]
    assert (tmp_path / "inbox" / "processed" / "busy.png").exists()


def test_status_retry_and_deliveries_commands(daemon: Daemon, tmp_path: Path) -> None:
    (tmp_path / "inbox" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    save(render_lines(["A good one"]), tmp_path / "inbox" / "good.png")
    wait_for(
        lambda: (
            (tmp_path / "inbox" / "failed" / "broken.png.error.json").exists()
            and (tmp_path / "outbox" / "good.txt").exists()
        ),
        what="both filed",
    )
    runner = CliRunner()
    status = json.loads(runner.invoke(cli, ["status", "--json", "--config", str(daemon.config)]).stdout)
    inbox_counts = status["jobs"][str(tmp_path / "inbox")]
    assert inbox_counts == {"done": 1, "failed": 1}
    assert status["last_errors"][0]["file"].endswith("broken.png")
    wait_for(
        lambda: (
            json.loads(runner.invoke(cli, ["status", "--json", "--config", str(daemon.config)]).stdout)["deliveries"]
            == {"outbox": {"delivered": 1}}
        ),
        what="delivery",
    )
    listing = runner.invoke(cli, ["deliveries", "--json", "--config", str(daemon.config)])
    assert json.loads(listing.stdout)[0]["idempotency_key"].endswith(":outbox")
    outcome = runner.invoke(cli, ["retry", "--failed", "--config", str(daemon.config)])
    assert outcome.exit_code == 0, outcome.output
    assert not (tmp_path / "inbox" / "failed" / "broken.png.error.json").exists()
    wait_for(lambda: (tmp_path / "inbox" / "failed" / "broken.png.error.json").exists(), what="failed again")
    assert [state for _, state in job_states(tmp_path)].count("failed") == 2


def test_reprocess_reads_known_bytes_again(daemon: Daemon, tmp_path: Path) -> None:
    save(render_lines(["Read me twice"]), tmp_path / "inbox" / "twice.png")
    wait_for(lambda: (tmp_path / "outbox" / "twice.txt").exists(), what="twice.txt")
    outcome = CliRunner().invoke(
        cli, ["reprocess", str(tmp_path / "inbox" / "processed" / "twice.png"), "--config", str(daemon.config)]
    )
    assert outcome.exit_code == 0, outcome.output
    daemon.wait_event("job_done", count=2)
    assert [state for _, state in job_states(tmp_path)] == ["done", "done"]
    assert (tmp_path / "inbox" / "processed" / "twice.png").exists()


def test_sd_notify_ready_status_watchdog_stopping(tmp_path: Path) -> None:
    address = str(tmp_path / "notify.sock")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(address)
    receiver.settimeout(60)
    messages: list[str] = []

    def collect() -> None:
        try:
            while True:
                messages.append(receiver.recv(4096).decode())
        except OSError:
            return

    threading.Thread(target=collect, daemon=True).start()
    running = Daemon(write_config(tmp_path), env={"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "1000000"})
    running.start()
    wait_for(lambda: any("READY=1" in message for message in messages), what="READY=1")
    wait_for(lambda: sum("WATCHDOG=1" in message for message in messages) >= 2, what="watchdog pings")
    wait_for(lambda: any(message.startswith("STATUS=watching 1 inbox") for message in messages), what="STATUS")
    assert running.stop() == 0
    wait_for(lambda: any("STOPPING=1" in message for message in messages), what="STOPPING=1")
    receiver.close()


def test_kill_9_at_random_points_loses_nothing(tmp_path: Path) -> None:
    """200 distinct files, three kill -9 rounds mid-stream: each ends processed exactly once, outputs whole."""
    rng = random.Random(7)
    staging = tmp_path / "staging"
    staging.mkdir()
    names = []
    for number in range(200):
        name = f"note-{number:03d}.png"
        save(
            render_lines([f"note {number} {rng.choice(['milk', 'bread', 'tea', 'post'])}"], font_size=24),
            staging / name,
        )
        names.append(name)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config = write_config(tmp_path)
    running = Daemon(config)
    dropped = 0
    for _ in range(3):
        running.start()
        batch = names[dropped : dropped + 70]
        for name in batch:
            os.rename(staging / name, inbox / name)
        dropped += len(batch)
        done_before = running.count("job_done")
        wait_for(
            lambda: running.count("job_done") >= done_before + rng.randint(5, 40),  # noqa: B023 (called within this iteration)
            timeout=120,
            what="some progress",
        )
        time.sleep(rng.uniform(0, 0.3))
        running.kill()
    running.start()
    wait_for(
        lambda: len(list((inbox / "processed").glob("*.png"))) == 200,
        timeout=240,
        interval=0.5,
        what="all 200 files filed",
    )
    wait_for(lambda: len(list((tmp_path / "outbox").glob("*.json"))) == 200, timeout=60, what="all 200 outputs")
    running.stop()
    states = job_states(tmp_path)
    assert sorted(name for name, state in states if state == "done") == sorted(names)  # once each
    assert not [name for name, state in states if state != "done"]
    for output in (tmp_path / "outbox").glob("*.json"):
        json.loads(output.read_text())  # whole, never half-written
    assert not [path for path in (tmp_path / "outbox").iterdir() if path.name.startswith(".")]  # no temp files left
    assert sorted(path.name for path in (inbox / "processed").iterdir()) == sorted(names)
