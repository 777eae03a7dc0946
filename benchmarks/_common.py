"""Helpers shared by the benchmarks: process memory and CPU from /proc, rendered test pages."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image, ImageDraw, ImageFont

FONT = Path("/usr/share/fonts/truetype/fifthhorseman/dkg.ttf")
DEV_DATA = Path(os.environ.get("HWDAEMON_DEV_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
WORDS = "milk bread tea post bank call write pay garden train letter lunch meeting parcel".split()


def rss_mb(pid: int | str = "self", field: str = "VmRSS") -> float:
    """A memory figure of /proc/PID/status in MB: VmRSS (resident now), RssFile (of it, files mapped from disk), ..."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int | str = "self") -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def render_note(number: int, font_size: int = 24) -> np.ndarray:
    """A small one-line note, different for every number (so no two files are duplicates)."""
    font = ImageFont.truetype(str(FONT), font_size)
    text = f"note {number} {WORDS[number % len(WORDS)]} {WORDS[(number * 7) % len(WORDS)]}"
    width = int(font.getlength(text)) + 2 * font_size
    page = Image.new("L", (width, font_size * 3), 255)
    ImageDraw.Draw(page).text((font_size, font_size), text, font=font, fill=20)
    return np.asarray(page)


def start_daemon(root: Path, config: dict[str, Any], timeout: float = 120.0) -> tuple[subprocess.Popen[bytes], Path]:
    """`hwdaemon run` on `config` (written to root/config.yaml), its log in root/daemon.log; returns once it is ready."""
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    log = root / "daemon.log"
    with log.open("wb") as stream:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "hwdaemon", "run", "--config", str(root / "config.yaml")],
            stdout=stream,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    deadline = time.monotonic() + timeout
    while b'"daemon_ready"' not in log.read_bytes():
        if daemon.poll() is not None or time.monotonic() > deadline:
            daemon.kill()
            raise SystemExit(f"the daemon did not become ready: {log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.2)
    return daemon, log
