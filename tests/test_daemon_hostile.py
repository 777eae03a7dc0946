"""Hostile input against the real daemon process: nothing a file does may stop it, lose a job or leak a file.

Each test is an attack from the hardening issue, made with real files, real
filesystems (tmpfs for a full disk), real capabilities (setpriv) and a real
memory cap (a cgroup): the daemon must end each job as a recorded failure or a
retry, file the original with its reason, and go on reading the next scan.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from daemon_harness import Daemon, http_get, install_test_plugins, wait_for, write_config
from hostile_files import pdf_of_large_pages, pdf_of_nested_forms, tiff_of_large_frames
from memory_cap import MemoryCap, memory_cap_unavailable
from rendering import render_lines, save

pytestmark = pytest.mark.slow

LONG_STEM = "brief-" + "ä" * 60 + "x" * 115  # 241 bytes, then the extension: 245–246 bytes in all


def job_rows(folder: Path) -> list[tuple[str, str, int, str | None]]:
    with sqlite3.connect(folder / "state" / "hwdaemon.sqlite3") as db:
        return list(db.execute("SELECT path, state, attempts, error FROM jobs ORDER BY id"))


def all_ended(folder: Path, count: int) -> bool:
    rows = job_rows(folder)
    return len(rows) == count and all(state not in ("queued", "processing") for _, state, _, _ in rows)


def report_of(failed: Path, name_start: str) -> dict[str, object]:
    reports = [path for path in failed.glob("*.error.json") if path.name.startswith(name_start)]
    assert len(reports) == 1, sorted(path.name for path in failed.iterdir())
    return json.loads(reports[0].read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def faults_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_test_plugins(tmp_path_factory.mktemp("site"), "hwdaemon-faults")


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    running = Daemon(write_config(tmp_path)).start()
    yield running
    running.stop()


def test_names_at_name_max_are_filed_with_shortened_derived_names(daemon: Daemon, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    good, bad, clash = f"{LONG_STEM}.png", f"{LONG_STEM}y.png", f"{LONG_STEM}z.png"
    assert len(os.fsencode(bad)) > 245
    save(render_lines(["A long name"]), inbox / good)
    (inbox / bad).write_bytes(b"\x89PNG\r\n\x1a\nnot an image at all")

    def outputs() -> list[str]:
        return sorted(path.name for path in (tmp_path / "outbox").glob("brief-*"))

    wait_for(
        lambda: (
            all_ended(tmp_path, 2) and len(list((inbox / "failed").glob("*.error.json"))) == 1 and len(outputs()) == 2
        ),
        what="both filed",
    )
    failed_names = [path.name for path in (inbox / "failed").iterdir()]
    assert len(failed_names) == 2 and all(len(os.fsencode(name)) <= 255 for name in failed_names)
    report = report_of(inbox / "failed", "brief-")
    assert "truncated or corrupt" in str(report["error"])
    assert (inbox / "processed" / good).exists()  # a name that fits keeps its name
    assert all(len(os.fsencode(name)) <= 255 for name in outputs())
    # the same broken bytes under a third long name: a clash in failed/, shortened again; the daemon goes on
    (inbox / clash).write_bytes(b"\x89PNG\r\n\x1a\nnot an image at all")
    wait_for(lambda: len(list((inbox / "failed").glob("*.error.json"))) == 2, what="the clash filed")
    save(render_lines(["Still reading"]), inbox / "after.png")
    wait_for(lambda: (tmp_path / "outbox" / "after.txt").exists(), what="after.txt")


def test_a_long_named_leftover_does_not_stop_the_next_start(tmp_path: Path) -> None:
    """A done job whose file was never moved (a crash in between) is filed at start-up, long name and all."""
    config = write_config(tmp_path)
    first = Daemon(config).start()
    name = f"{LONG_STEM}.png"
    save(render_lines(["Filed at the next start"]), tmp_path / "inbox" / name)
    wait_for(lambda: all_ended(tmp_path, 1), what="job done")
    first.stop()
    moved = tmp_path / "inbox" / "processed" / name
    os.rename(moved, tmp_path / "inbox" / name)  # as if the process died before the move
    again = Daemon(config).start()
    try:
        wait_for(lambda: moved.exists(), what="the leftover filed")
        assert again.process is not None and again.process.poll() is None
    finally:
        again.stop()


def test_an_unreadable_file_becomes_a_failed_job_with_the_os_error(tmp_path: Path) -> None:
    """Mode 000 under a daemon without CAP_DAC_OVERRIDE (as any non-root service user is)."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to drop the capability that reads any file")
    config = write_config(tmp_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    locked = save(render_lines(["You cannot read me"]), inbox / "locked.png")
    locked.chmod(0)
    daemon = Daemon(
        config,
        prefix=[
            "setpriv",
            "--bounding-set=-dac_override,-dac_read_search",
            "--inh-caps=-dac_override,-dac_read_search",
        ],
    ).start()
    try:
        wait_for(lambda: (inbox / "failed" / "locked.png.error.json").exists(), what="locked.png refused")
        report = json.loads((inbox / "failed" / "locked.png.error.json").read_text())
        assert "Permission denied" in report["error"] and "errno 13" in report["error"]
        save(render_lines(["Readable"]), inbox / "open.png")
        wait_for(lambda: (tmp_path / "outbox" / "open.txt").exists(), what="open.txt")
        daemon.stop()
        daemon.start()  # the next start does not trip over it either
        assert [state for _, state, _, _ in job_rows(tmp_path)] == ["failed", "done"]
    finally:
        daemon.stop()


def test_an_unreadable_file_that_cannot_be_moved_is_recorded_once(tmp_path: Path) -> None:
    """A file in a folder the daemon may read but not change: failed in the store, not retried every rescan."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to drop the capability that reads any file")
    inbox = tmp_path / "inbox"
    (inbox / "stuck").mkdir(parents=True)
    locked = save(render_lines(["Stuck"]), inbox / "stuck" / "locked.png")
    locked.chmod(0)
    config = write_config(tmp_path, rescan_interval_seconds=1)
    document = yaml.safe_load(config.read_text())
    document["inboxes"][0]["recursive"] = True
    config.write_text(yaml.safe_dump(document))
    (inbox / "stuck").chmod(0o555)
    caps = "-dac_override,-dac_read_search,-fowner"
    daemon = Daemon(config, prefix=["setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}"]).start()
    try:
        wait_for(lambda: len(job_rows(tmp_path)) == 1, what="the failure recorded")
        time.sleep(3)  # three rescans
        rows = job_rows(tmp_path)
        assert len(rows) == 1 and rows[0][1] == "failed" and "Permission denied" in str(rows[0][3])
        assert locked.exists()
        assert daemon.count("file_refused") == 1
    finally:
        daemon.stop()
        (inbox / "stuck").chmod(0o755)


def test_endless_and_enormous_files_are_refused_without_reading_them(daemon: Daemon, tmp_path: Path) -> None:
    """A FIFO never ends; a sparse 1 TB file would take an hour to hash: both are refused at once."""
    inbox = tmp_path / "inbox"
    os.mkfifo(inbox / "pipe.png")
    with (inbox / "sparse.png").open("wb") as stream:
        stream.truncate(1 << 40)
    wait_for(
        lambda: (
            (inbox / "failed" / "pipe.png.error.json").exists()
            and (inbox / "failed" / "sparse.png.error.json").exists()
        ),
        timeout=30,
        what="both refused",
    )
    assert "not a regular file" in json.loads((inbox / "failed" / "pipe.png.error.json").read_text())["error"]
    assert "inputs.max_file_bytes" in json.loads((inbox / "failed" / "sparse.png.error.json").read_text())["error"]
    save(render_lines(["Intake goes on"]), inbox / "after.png")
    wait_for(lambda: (tmp_path / "outbox" / "after.txt").exists(), what="after.txt")


def test_a_name_that_is_not_utf8_is_read_under_its_latin1_name(daemon: Daemon, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    save(render_lines(["An old scanner"]), Path(os.fsdecode(os.fsencode(inbox) + b"/re\xe7u.png")))
    wait_for(lambda: (tmp_path / "outbox" / "reçu.txt").exists(), what="reçu.txt")
    assert (inbox / "processed" / "reçu.png").exists()
    assert daemon.count("intake_failed") == 0 and daemon.count("file_renamed") == 1


def test_a_symlink_retargeted_after_queueing_is_not_read(faults_site: Path, tmp_path: Path) -> None:
    inbox, slow = tmp_path / "inbox", tmp_path / "slow"
    secret = save(render_lines(["TOP SECRET payroll"]), tmp_path / "secret.png")
    (inbox / "processed").mkdir(parents=True)
    save(render_lines(["harmless"]), inbox / "processed" / "harmless.png")
    config = write_config(
        tmp_path,
        workers=1,
        profiles={"default": {}, "stall": {"preprocess": [{"type": "stall", "seconds": 4}]}},
        inboxes=[
            {"path": str(slow), "profile": "stall", "settle_seconds": 0.3, "sinks": ["outbox"]},
            {"path": str(inbox), "settle_seconds": 0.3, "sinks": ["outbox"], "patterns": ["*.png"]},
        ],
    )
    daemon = Daemon(config, env={"PYTHONPATH": str(faults_site)}).start()
    try:
        save(render_lines(["hold the worker"]), slow / "hold.png")
        daemon.wait_event("job_started")
        (inbox / "link.png").symlink_to(inbox / "processed" / "harmless.png")  # inside: queued
        wait_for(
            lambda: any(path.endswith("link.png") and state == "queued" for path, state, _, _ in job_rows(tmp_path)),
            what="link queued",
        )
        (inbox / "link.png").unlink()
        (inbox / "link.png").symlink_to(secret)  # retargeted while it waits
        wait_for(lambda: all_ended(tmp_path, 2), timeout=60, what="both ended")
        report = json.loads((inbox / "failed" / "link.png.error.json").read_text())
        assert "symlink points outside the inbox" in report["error"]
        assert not any(
            "SECRET" in path.read_text(errors="replace").upper() for path in (tmp_path / "outbox").glob("*.txt")
        )
        assert secret.exists()
    finally:
        daemon.stop()


@pytest.mark.parametrize(
    ("name", "make", "reason"),
    [
        ("pages.pdf", lambda path: pdf_of_large_pages(path, 200, 2000), "inputs.max_job_pixels"),
        ("frames.tif", lambda path: tiff_of_large_frames(path, 30, 6000), "inputs.max_job_pixels"),
        ("forms.pdf", pdf_of_nested_forms, "PDF renderer"),
        ("strip.png", lambda path: _strip(path), "which is no page"),
    ],
)
def test_memory_bombs_under_a_memory_cap_fail_and_the_daemon_lives(
    tmp_path: Path, name: str, make, reason: str
) -> None:  # type: ignore[no-untyped-def]
    unavailable = memory_cap_unavailable()
    if unavailable:
        pytest.skip(unavailable)
    config = write_config(tmp_path, inputs={"pdf_page_seconds": 20, "pdf_render_memory_mb": 512})
    cap = MemoryCap(1_500_000_000)  # the daemon needs about 600 MB; each bomb asks for many GB
    daemon = Daemon(config)
    try:
        daemon.start(wait_ready=False)
        assert daemon.process is not None
        cap.add(daemon.process.pid)
        daemon.wait_event("daemon_ready")
        make(tmp_path / "inbox" / name)
        wait_for(
            lambda: (tmp_path / "inbox" / "failed" / f"{name}.error.json").exists(), timeout=120, what=f"{name} refused"
        )
        report = json.loads((tmp_path / "inbox" / "failed" / f"{name}.error.json").read_text())
        assert reason in report["error"] and report["permanent"] is True
        save(render_lines(["After the bomb"]), tmp_path / "inbox" / "after.png")
        wait_for(lambda: (tmp_path / "outbox" / "after.txt").exists(), what="after.txt")
        assert daemon.process.poll() is None and daemon.count("daemon_starting") == 1
        assert next(row[2] for row in job_rows(tmp_path)) == 1  # one attempt: a permanent refusal
    finally:
        daemon.stop()
        cap.remove()


def _strip(path: Path) -> Path:
    """A 1×100000 image: OpenCV asserts on it, and it is no page."""
    from PIL import Image

    Image.new("L", (100_000, 1), 255).save(path)
    return path


def test_a_file_that_kills_the_process_ends_in_failed_after_max_attempts(faults_site: Path, tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        max_attempts=2,
        profiles={"deadly": {"preprocess": [{"type": "kill"}]}},
        inboxes=[{"path": str(tmp_path / "inbox"), "profile": "deadly", "settle_seconds": 0.3, "sinks": ["outbox"]}],
    )
    (tmp_path / "inbox").mkdir()
    save(render_lines(["poison"]), tmp_path / "inbox" / "poison.png")
    daemon = Daemon(config, env={"PYTHONPATH": str(faults_site)})
    for start in range(1, 3):  # as systemd's Restart=on-failure would
        daemon.start()
        assert daemon.process is not None
        daemon.process.wait(60)
        assert daemon.process.returncode == -signal.SIGKILL
        assert job_rows(tmp_path)[0][1:3] == ("processing", start)
    daemon.start()
    try:
        wait_for(lambda: (tmp_path / "inbox" / "failed" / "poison.png.error.json").exists(), what="poison filed")
        report = json.loads((tmp_path / "inbox" / "failed" / "poison.png.error.json").read_text())
        assert "stopped while reading this file, 2 times" in report["error"]
        assert job_rows(tmp_path)[0][1:3] == ("failed", 2)
        time.sleep(1)
        assert daemon.process is not None and daemon.process.poll() is None
    finally:
        daemon.stop()


def test_a_thread_that_dies_is_restarted_and_its_job_not_lost(faults_site: Path, tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        max_attempts=2,
        workers=1,
        metrics={"enabled": True, "port": 0},
        profiles={"default": {}, "exits": {"preprocess": [{"type": "exit"}]}},
        inboxes=[
            {"path": str(tmp_path / "inbox"), "settle_seconds": 0.3, "sinks": ["outbox"]},
            {"path": str(tmp_path / "exits"), "profile": "exits", "settle_seconds": 0.3, "sinks": ["outbox"]},
        ],
    )
    daemon = Daemon(config, env={"PYTHONPATH": str(faults_site)}).start()
    try:
        save(render_lines(["ends its thread"]), tmp_path / "exits" / "exit.png")
        wait_for(
            lambda: (tmp_path / "exits" / "failed" / "exit.png.error.json").exists(),
            what="exit.png failed after 2 attempts",
        )
        assert daemon.count("thread_restarted") == 2
        save(render_lines(["The new thread reads"]), tmp_path / "inbox" / "next.png")
        wait_for(lambda: (tmp_path / "outbox" / "next.txt").exists(), what="next.txt")
        url = next(event for event in daemon.events() if event.get("event") == "metrics_listening")["url"]
        status, body = http_get(str(url).removesuffix("/metrics") + "/healthz")
        assert status == 200 and json.loads(body)["thread_restarts"] == 2
    finally:
        daemon.stop()


def test_a_full_disk_under_state_dir_keeps_the_job_and_resumes(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    state = tmp_path / "state"
    state.mkdir()
    if (
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(state)], capture_output=True).returncode
        != 0
    ):
        pytest.skip("cannot mount a tmpfs here")
    config = write_config(tmp_path, metrics={"enabled": True, "port": 0}, ui={"previews": True})
    daemon = Daemon(config)
    try:
        daemon.start()
        filler = state / "filler"
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True)  # until the disk is full
        save(render_lines(["Waiting for space"] * 4), tmp_path / "inbox" / "patient.png")
        daemon.wait_event("store_unavailable", timeout=60)
        url = next(event for event in daemon.events() if event.get("event") == "metrics_listening")["url"]
        status, body = http_get(str(url).removesuffix("/metrics") + "/healthz")
        assert status == 503 and "full" in json.loads(body)["store_error"]
        assert daemon.process is not None and daemon.process.poll() is None
        filler.unlink()
        wait_for(
            lambda: (tmp_path / "outbox" / "patient.txt").exists(), timeout=90, what="patient.txt once space returns"
        )
        assert [row[1] for row in job_rows(tmp_path)] == ["done"]
        wait_for(
            lambda: http_get(str(url).removesuffix("/metrics") + "/healthz")[0] == 200, timeout=60, what="healthy again"
        )
    finally:
        daemon.stop()
        subprocess.run(["umount", "-l", str(state)], capture_output=True)


def test_sighup_with_missing_model_files_keeps_the_old_config(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    daemon = Daemon(config).start()
    try:
        document = yaml.safe_load(config.read_text())
        document["profiles"] = {
            "default": {"recognizer": {"type": "handwriting", "model_dir": str(tmp_path / "no-model-here")}}
        }
        config.write_text(yaml.safe_dump(document))
        daemon.signal(signal.SIGHUP)
        daemon.wait_event("config_reload_refused")
        refused = next(event for event in daemon.events() if event.get("event") == "config_reload_refused")
        assert "no-model-here" in refused["error"]
        save(render_lines(["Old config still reads"]), tmp_path / "inbox" / "kept.png")
        wait_for(lambda: (tmp_path / "outbox" / "kept.txt").exists(), what="kept.txt")
        assert daemon.count("job_failed") == 0
        del document["profiles"]
        document["state_dir"] = str(tmp_path / "elsewhere")  # the threads' store and the lock are on the old one
        config.write_text(yaml.safe_dump(document))
        daemon.signal(signal.SIGHUP)
        daemon.wait_event("config_reload_refused", count=2)
        assert (
            "restart hwdaemon"
            in [event for event in daemon.events() if event.get("event") == "config_reload_refused"][-1]["error"]
        )
    finally:
        daemon.stop()


def test_outputs_and_error_reports_honour_the_umask(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    previous = os.umask(0o007)
    try:
        daemon = Daemon(config).start()
    finally:
        os.umask(previous)
    try:
        save(render_lines(["Shared with the group"]), tmp_path / "inbox" / "shared.png")
        (tmp_path / "inbox" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
        wait_for(
            lambda: (
                (tmp_path / "outbox" / "shared.txt").exists()
                and (tmp_path / "inbox" / "failed" / "bad.png.error.json").exists()
            ),
            what="both filed",
        )
        assert (tmp_path / "outbox" / "shared.txt").stat().st_mode & 0o777 == 0o660
        assert (tmp_path / "outbox" / "shared.json").stat().st_mode & 0o777 == 0o660
        assert (tmp_path / "inbox" / "failed" / "bad.png.error.json").stat().st_mode & 0o777 == 0o660
    finally:
        daemon.stop()
