"""Soak: good scans mixed with hostile files at a steady rate; memory must stay flat and nothing be lost.

Drops `--files` files over `--minutes` into a real daemon's inbox, one in
`--hostile-every` of them hostile (truncated, empty, text named .jpg, a PNG that
claims 40000×40000, a 1×100000 strip, a 250-byte name, a link out of the inbox,
a 200-page 31-Mpx-a-page PDF, a PDF of nested forms, a 30-frame 6000×6000 TIFF),
and samples the RSS of the daemon and its children every few seconds. At the end:
every good file delivered exactly once, every hostile one in failed/ with its
.error.json, the daemon alive, and the RSS trend.

    .venv/bin/python benchmarks/hostile_soak.py --files 2000 --minutes 10
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _common import render_note, rss_mb, start_daemon
from hostile_files import pdf_of_large_pages, pdf_of_nested_forms, tiff_of_large_frames


def _truncated(path: Path) -> None:
    Image.fromarray(render_note(1)).save(path)
    path.write_bytes(path.read_bytes()[:200])


def _claims_huge(path: Path) -> None:
    import struct
    import zlib

    Image.new("L", (8, 8), 255).save(path)
    data = bytearray(path.read_bytes())
    header = struct.pack(">II", 40_000, 40_000) + bytes(data[24:29])
    data[16:29] = header
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + header))
    path.write_bytes(bytes(data))


HOSTILE: list[tuple[str, Callable[[Path], object]]] = [
    ("truncated.png", _truncated),
    ("empty.png", lambda path: path.write_bytes(b"")),
    ("letter.jpg", lambda path: path.write_text("Dear Sir, this is text")),
    ("claims-huge.png", _claims_huge),
    ("strip.png", lambda path: Image.new("L", (100_000, 1), 255).save(path)),
    ("x" * 246 + ".png", lambda path: path.write_bytes(b"\x89PNG\r\n\x1a\nbroken")),
    ("outside.png", lambda path: path.symlink_to("/etc/hostname")),
    ("pages.pdf", lambda path: pdf_of_large_pages(path, 200, 2000)),
    ("forms.pdf", pdf_of_nested_forms),
    ("frames.tif", lambda path: tiff_of_large_frames(path, 30, 6000)),
]


def family_rss_mb(pid: int) -> float:
    """RSS of the daemon and its children (the PDF renderer)."""
    total = rss_mb(pid)
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        for child in children.read_text().split():
            try:
                total += rss_mb(child)
            except OSError:
                pass
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--hostile-every", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="hwdaemon-soak-"))
    staging, inbox, outbox = root / "staging", root / "inbox", root / "outbox"
    for folder in (staging, inbox):
        folder.mkdir()
    plan: list[tuple[str, bool]] = []
    hostile_made = 0
    for number in range(args.files):
        if number % args.hostile_every == args.hostile_every - 1:
            name, make = HOSTILE[hostile_made % len(HOSTILE)]
            stem, _dot, ext = name.rpartition(".")
            name = f"{stem[: 246 - 6]}-{hostile_made:04d}.{ext}"
            hostile_made += 1
            make(staging / name)
            plan.append((name, False))
        else:
            name = f"note-{number:05d}.png"
            Image.fromarray(render_note(number)).save(staging / name)
            plan.append((name, True))
    config = {
        "state_dir": str(root / "state"),
        "workers": args.workers,
        "log": {"level": "info", "format": "json"},
        "inputs": {"pdf_page_seconds": 20, "pdf_render_memory_mb": 512},
        "inboxes": [{"path": str(inbox), "settle_seconds": 1.0, "sinks": ["out"]}],
        "sinks": {"out": {"type": "file", "path": str(outbox), "formats": ["txt"]}},
    }
    daemon, log = start_daemon(root, config)

    interval = args.minutes * 60 / args.files
    samples: list[tuple[float, float]] = []
    started = time.monotonic()
    next_sample = started
    for index, (name, _) in enumerate(plan):
        due = started + index * interval
        while time.monotonic() < due:
            time.sleep(min(0.05, due - time.monotonic()) if due > time.monotonic() else 0)
        source = staging / name
        os.rename(source, inbox / name)
        if time.monotonic() >= next_sample:
            samples.append((time.monotonic() - started, family_rss_mb(daemon.pid)))
            next_sample += 5
    good = sum(1 for _, is_good in plan if is_good)
    hostile = len(plan) - good

    def settled() -> bool:
        outputs = len(list(outbox.glob("note-*.txt"))) if outbox.exists() else 0
        reports = len(list((inbox / "failed").glob("*.error.json"))) if (inbox / "failed").exists() else 0
        return outputs >= good and reports >= hostile

    deadline = time.monotonic() + 1800
    while not settled() and time.monotonic() < deadline and daemon.poll() is None:
        time.sleep(1)
        samples.append((time.monotonic() - started, family_rss_mb(daemon.pid)))
    elapsed = time.monotonic() - started
    alive = daemon.poll() is None
    daemon.terminate()
    daemon.wait(60)

    events = [json.loads(line) for line in log.read_text(errors="replace").splitlines() if line.startswith("{")]
    with sqlite3.connect(root / "state" / "hwdaemon.sqlite3") as db:
        delivered = dict(
            db.execute(
                "SELECT jobs.path, COUNT(*) FROM deliveries JOIN jobs ON jobs.id=deliveries.job_id WHERE deliveries.state='delivered' GROUP BY jobs.path"
            )
        )
        states = dict(db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state"))
    good_names = {name for name, is_good in plan if is_good}
    delivered_good = {Path(path).name: count for path, count in delivered.items() if Path(path).name in good_names}
    failed_reports = list((inbox / "failed").glob("*.error.json"))
    first_half = [rss for at, rss in samples if at < elapsed / 2]
    second_half = [rss for at, rss in samples if at >= elapsed / 2]
    report = {
        "files": len(plan),
        "good": good,
        "hostile": hostile,
        "minutes_dropping": round(args.minutes, 1),
        "seconds_until_settled": round(elapsed, 1),
        "daemon_alive_at_end": alive,
        "daemon_starts": sum(1 for event in events if event.get("event") == "daemon_starting"),
        "jobs_by_state": states,
        "good_delivered": len(delivered_good),
        "good_delivered_more_than_once": sum(1 for count in delivered_good.values() if count > 1),
        "hostile_in_failed_with_report": len(failed_reports),
        "thread_restarts": sum(1 for event in events if event.get("event") == "thread_restarted"),
        "rss_mb_first_sample": round(samples[0][1], 1) if samples else None,
        "rss_mb_max": round(max(rss for _, rss in samples), 1) if samples else None,
        "rss_mb_median_first_half": round(sorted(first_half)[len(first_half) // 2], 1) if first_half else None,
        "rss_mb_median_second_half": round(sorted(second_half)[len(second_half) // 2], 1) if second_half else None,
        "rss_mb_last_sample": round(samples[-1][1], 1) if samples else None,
        "folder": str(root),
    }
    print(json.dumps(report, indent=2))
    ok = (
        alive
        and report["good_delivered"] == good
        and report["good_delivered_more_than_once"] == 0
        and len(failed_reports) == hostile
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
