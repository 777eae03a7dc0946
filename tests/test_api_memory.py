"""Large uploads against a memory cap: the server streams them to disk, so its memory stays flat whatever they weigh.

`hwdaemon ui` runs in its own process inside a memory cgroup (the kernel's
cap, as systemd's MemoryMax= sets); four 100 MB uploads at once would need
400 MB if any were held in memory, and the cap allows the server 150 MB above
what it needs idle.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import yaml

from api_harness import SUBMIT, api_settings, files_under, jobs_of, raw_request
from daemon_harness import wait_for
from memory_cap import MemoryCap, memory_cap_unavailable

pytestmark = pytest.mark.slow

MB = 1_000_000
UPLOAD_BYTES = 100 * MB
HEADROOM_BYTES = 150 * 1024 * 1024


def rss_bytes(pid: int, field: str = "VmRSS") -> int:
    """Resident memory now (VmRSS) or at its highest so far (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    return 0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    state = tmp_path / "state"
    config = {
        "state_dir": str(state),
        "inputs": {"max_file_bytes": 150 * MB},
        "inboxes": [{"path": str(tmp_path / "inbox")}],
        "sinks": {"outbox": {"type": "file", "path": str(tmp_path / "outbox")}},
        "api": api_settings(),
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    port = 18000 + os.getpid() % 2000
    process = subprocess.Popen(
        [sys.executable, "-m", "hwdaemon", "ui", "--config", str(tmp_path / "config.yaml"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return requests.get(url + "/api/v1/documents", timeout=2).status_code == 401
        except requests.ConnectionError:
            return False

    wait_for(answers, timeout=60, what="hwdaemon ui")
    yield url, process, state
    process.terminate()
    process.wait(10)


def test_concurrent_large_uploads_stream_to_disk_under_a_memory_cap(
    server: tuple[str, subprocess.Popen[bytes], Path],
) -> None:
    reason = memory_cap_unavailable()
    if reason:
        pytest.skip(reason)
    url, process, state = server
    idle = rss_bytes(process.pid)
    cap = MemoryCap(idle + HEADROOM_BYTES)
    cap.add(process.pid)
    try:

        def chunks(number: int) -> Iterator[bytes]:
            block = bytes([number]) * MB
            for _ in range(UPLOAD_BYTES // MB):
                yield block

        def send(number: int) -> int:
            answer = requests.post(
                f"{url}/api/v1/documents?filename=big{number}.tif",
                data=chunks(number),
                headers={"Authorization": f"Bearer {SUBMIT}"},
                timeout=300,
            )
            return answer.status_code

        with ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(send, range(1, 5)))
        head = (
            b"POST /api/v1/documents?filename=huge.tif HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + f"Authorization: Bearer {SUBMIT}\r\nContent-Length: {10**12}\r\nConnection: close\r\n\r\n".encode()
        )
        oversize = raw_request(url, head)
        peak = cap.peak_bytes()
        resident_peak = rss_bytes(process.pid, "VmHWM")
        assert cap.oom_kills() == 0 and process.poll() is None
    finally:
        cap.remove()
    assert statuses == [202, 202, 202, 202]
    assert oversize.startswith(b"HTTP/1.1 413")
    assert len(jobs_of(state)) == 4
    assert sorted(files_under(state / "uploads")) == [f"big{number}.tif" for number in range(1, 5)]
    assert all((state / "uploads" / f"big{n}.tif").stat().st_size == UPLOAD_BYTES for n in range(1, 5))
    # 400 MB went through; the process's own peak grew by a few MiB of buffers (the cgroup's peak also counts
    # the page cache of the files written, which the kernel reclaims at the cap)
    assert resident_peak - idle < 64 * 2**20, (idle, resident_peak)
    print(
        f"idle RSS {idle / 2**20:.0f} MiB, peak RSS {resident_peak / 2**20:.0f} MiB, cgroup {(peak or 0) / 2**20:.0f} MiB"
    )
