"""The systemd unit: it verifies cleanly, is hardened, and works under a real booted systemd."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import REPO_ROOT
from rendering import render_lines, save

UNIT = REPO_ROOT / "systemd" / "hwdaemon.service"
UNITS = [UNIT, REPO_ROOT / "systemd" / "hwdaemon-worker.service"]
NSPAWN_ROOT = Path(os.environ.get("HWDAEMON_NSPAWN_ROOT", "/var/cache/hwdaemon-test/bookworm"))


def _require(condition: bool, reason: str) -> None:
    """Skip on a developer machine without the tools; fail in CI, where scripts/setup provides them."""
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must provide it: scripts/setup --test installs it as root)")
    pytest.skip(reason)


def _unit_with_real_executable(tmp_path: Path, unit: Path = UNIT) -> Path:
    copy = tmp_path / unit.name
    executable = Path(sys.prefix) / "bin" / "hwdaemon"
    copy.write_text(unit.read_text().replace("/opt/hwdaemon/.venv/bin/hwdaemon", str(executable)))
    return copy


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.name)
def test_unit_verifies_with_empty_stderr(tmp_path: Path, unit: Path) -> None:
    _require(shutil.which("systemd-analyze") is not None, "systemd-analyze not installed")
    outcome = subprocess.run(
        ["systemd-analyze", "verify", str(_unit_with_real_executable(tmp_path, unit))], capture_output=True, text=True
    )
    assert outcome.returncode == 0 and outcome.stderr == "", outcome.stderr


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.name)
def test_unit_security_exposure_is_at_most_two(tmp_path: Path, unit: Path) -> None:
    _require(shutil.which("systemd-analyze") is not None, "systemd-analyze not installed")
    outcome = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(_unit_with_real_executable(tmp_path, unit))],
        capture_output=True,
        text=True,
    )
    match = re.search(rf"Overall exposure level for {re.escape(unit.name)}: ([0-9.]+)", outcome.stdout)
    assert match, outcome.stdout[-2000:] + outcome.stderr
    assert float(match.group(1)) <= 2.0


def _prepare_rootfs(root: Path, results: Path) -> None:
    """Install the unit as shipped, a venv wired to the host's Python, a config and the scenario."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    venv = root / "opt" / "hwdaemon" / ".venv"
    shutil.rmtree(venv, ignore_errors=True)
    (venv / "bin").mkdir(parents=True)
    site = venv / "lib" / version / "site-packages"
    site.mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text(
        f"home = /opt/python/bin\ninclude-system-site-packages = false\nversion = {sys.version.split()[0]}\n"
    )
    (venv / "bin" / "python").symlink_to(f"/opt/python/bin/{version}")
    (site / "hwdaemon-host.pth").write_text("import site; site.addsitedir('/opt/hwdaemon-site')\n")
    script = venv / "bin" / "hwdaemon"
    script.write_text("#!/opt/hwdaemon/.venv/bin/python\nfrom hwdaemon.cli import main\nmain()\n")
    script.chmod(0o755)

    systemd = root / "etc" / "systemd" / "system"
    shutil.copy(UNIT, systemd / "hwdaemon.service")
    dropin = systemd / "hwdaemon.service.d"
    dropin.mkdir(exist_ok=True)
    (dropin / "test.conf").write_text(
        "[Service]\n"
        "Environment=LD_LIBRARY_PATH=/opt/python/lib PYTHONPATH=/opt/hwdaemon-src\n"
        "WatchdogSec=10s\nRestartSec=1s\n"
    )
    (systemd / "hwdaemon-scenario.service").write_text(
        "[Unit]\nDescription=hwdaemon test scenario\nAfter=multi-user.target\n\n"
        "[Service]\nType=oneshot\nExecStart=/results/scenario.sh\nTimeoutStartSec=infinity\nStandardOutput=journal\n\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )
    wants = systemd / "multi-user.target.wants"
    wants.mkdir(exist_ok=True)
    link = wants / "hwdaemon-scenario.service"
    if not link.is_symlink():
        link.symlink_to("/etc/systemd/system/hwdaemon-scenario.service")
    config = root / "etc" / "hwdaemon"
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.yaml").write_text(
        "state_dir: /var/lib/hwdaemon/state\n"
        "log: {format: json}\n"
        "inboxes:\n  - {path: /var/lib/hwdaemon/inbox, settle_seconds: 0.5, sinks: [outbox]}\n"
        "sinks:\n  outbox:\n    type: file\n    path: /var/lib/hwdaemon/outbox\n    formats: [txt]\n"
    )
    shutil.rmtree(root / "var" / "lib" / "private" / "hwdaemon", ignore_errors=True)
    shutil.copy(REPO_ROOT / "tests" / "systemd" / "scenario.sh", results / "scenario.sh")
    for name, text in (
        ("first", "Posted by the first scanner"),
        ("second", "After the reload"),
        ("third", "After the watchdog"),
    ):
        save(render_lines([text]), results / f"{name}.png")


@pytest.mark.slow
def test_daemon_under_a_real_booted_systemd(tmp_path: Path) -> None:
    _require(os.geteuid() == 0, "booting systemd in a container needs root")
    _require(shutil.which("systemd-nspawn") is not None, "systemd-nspawn not installed (Debian systemd-container)")
    _require(
        (NSPAWN_ROOT / ".complete").exists(),
        f"no container rootfs at {NSPAWN_ROOT} (tests/systemd/build-rootfs builds it)",
    )
    results = tmp_path / "results"
    results.mkdir()
    _prepare_rootfs(NSPAWN_ROOT, results)
    command = [
        "systemd-nspawn", "-D", str(NSPAWN_ROOT), "-b", "--register=no", "--keep-unit", "--console=pipe", "-q",
        f"--bind-ro={sys.base_prefix}:/opt/python",
        f"--bind-ro={REPO_ROOT}:/opt/hwdaemon-src",
        f"--bind-ro={sysconfig.get_paths()['purelib']}:/opt/hwdaemon-site",
        f"--bind={results}:/results",
    ]  # fmt: skip
    with (results / "console.log").open("w") as console:
        subprocess.run(command, stdout=console, stderr=subprocess.STDOUT, timeout=540, check=False)
    checks = (results / "checks").read_text() if (results / "checks").exists() else ""
    journal = (
        (results / "journal.txt").read_text()[-4000:]
        if (results / "journal.txt").exists()
        else (results / "console.log").read_text()[-4000:]
    )
    assert (results / "finished").exists(), f"scenario did not finish; checks so far:\n{checks}\n{journal}"
    failed = [line for line in checks.splitlines() if not line.endswith("=ok")]
    assert not failed and len(checks.splitlines()) == 12, f"{checks}\n{journal}"
