"""A real S3-compatible server for tests: OpenStack Swift (Debian packages) with the s3api middleware.

One replica of account, container and object servers plus a proxy on 127.0.0.1,
all under one temporary folder. tempauth user `test:tester`, key `testing`;
s3api checks SigV4 signatures like AWS. Needs Debian's swift, swift-proxy,
swift-account, swift-container, swift-object and memcached.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

ACCESS_KEY = "test:tester"
SECRET_KEY = "testing"
REGION = "us-east-1"
BINARIES = (
    "swift-ring-builder",
    "swift-proxy-server",
    "swift-account-server",
    "swift-container-server",
    "swift-object-server",
    "memcached",
)


def missing_binaries() -> list[str]:
    return [name for name in BINARIES if shutil.which(name) is None and not Path(f"/usr/bin/{name}").exists()]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SwiftServer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.ports = {name: free_port() for name in ("proxy", "account", "container", "object", "memcached")}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._configure()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['proxy']}"

    def _configure(self) -> None:
        root, user = self.root, getpass.getuser()
        (root / "node" / "sdb1").mkdir(parents=True, exist_ok=True)
        (root / "run").mkdir(exist_ok=True)
        (root / "swift.conf").write_text(
            "[swift-hash]\nswift_hash_path_prefix = hwdaemon\nswift_hash_path_suffix = tests\n\n[storage-policy:0]\nname = gold\ndefault = yes\n"
        )
        common = f"[DEFAULT]\nbind_ip = 127.0.0.1\nswift_dir = {root}\ndevices = {root / 'node'}\nmount_check = false\nuser = {user}\nworkers = 1\nlog_level = WARNING\n"
        for kind in ("account", "container", "object"):
            (root / f"{kind}-server.conf").write_text(
                common + f"bind_port = {self.ports[kind]}\n\n[pipeline:main]\npipeline = {kind}-server\n\n"
                f"[app:{kind}-server]\nuse = egg:swift#{kind}\n\n[{kind}-replicator]\n[{kind}-auditor]\n"
                + ("[container-updater]\n[container-sync]\n" if kind == "container" else "")
                + ("[object-updater]\n" if kind == "object" else "")
            )
            builder = root / f"{kind}.builder"
            subprocess.run(
                ["swift-ring-builder", str(builder), "create", "4", "1", "1"], check=True, capture_output=True
            )
            subprocess.run(
                ["swift-ring-builder", str(builder), "add", f"r1z1-127.0.0.1:{self.ports[kind]}/sdb1", "1"],
                check=True,
                capture_output=True,
            )
            subprocess.run(["swift-ring-builder", str(builder), "rebalance"], check=True, capture_output=True)
        (root / "proxy-server.conf").write_text(
            f"[DEFAULT]\nbind_ip = 127.0.0.1\nbind_port = {self.ports['proxy']}\nswift_dir = {root}\nuser = {user}\nworkers = 1\nlog_level = WARNING\n\n"
            "[pipeline:main]\npipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy dlo versioned_writes proxy-logging proxy-server\n\n"
            "[app:proxy-server]\nuse = egg:swift#proxy\naccount_autocreate = true\n\n"
            f"[filter:s3api]\nuse = egg:swift#s3api\nlocation = {REGION}\n\n"
            "[filter:tempauth]\nuse = egg:swift#tempauth\nuser_test_tester = testing .admin\n\n"
            f"[filter:cache]\nuse = egg:swift#memcache\nmemcache_servers = 127.0.0.1:{self.ports['memcached']}\n\n"
            "[filter:catch_errors]\nuse = egg:swift#catch_errors\n\n[filter:gatekeeper]\nuse = egg:swift#gatekeeper\n\n"
            "[filter:healthcheck]\nuse = egg:swift#healthcheck\n\n[filter:proxy-logging]\nuse = egg:swift#proxy_logging\n\n"
            "[filter:listing_formats]\nuse = egg:swift#listing_formats\n\n[filter:copy]\nuse = egg:swift#copy\n\n"
            "[filter:dlo]\nuse = egg:swift#dlo\n\n[filter:versioned_writes]\nuse = egg:swift#versioned_writes\n"
        )

    def _spawn(self, name: str, command: list[str]) -> None:
        log = (self.root / "run" / f"{name}.log").open("ab")
        # Own session: swift servers fork workers, and stop() ends the whole group.
        self.processes[name] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

    def __enter__(self) -> SwiftServer:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> SwiftServer:
        self._spawn(
            "memcached",
            ["memcached", "-l", "127.0.0.1", "-p", str(self.ports["memcached"]), "-U", "0", "-u", getpass.getuser()],
        )
        for kind in ("account", "container", "object"):
            self._spawn(kind, [f"swift-{kind}-server", str(self.root / f"{kind}-server.conf")])
        for name in ("memcached", "account", "container", "object"):
            self._wait_listening(name)
        self.start_proxy()
        return self

    def _wait_listening(self, name: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.ports[name]), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(
            f"swift {name} server did not listen on {self.ports[name]}: {(self.root / 'run' / f'{name}.log').read_text()[-1500:]}"
        )

    def start_proxy(self) -> None:
        self._spawn("proxy", ["swift-proxy-server", str(self.root / "proxy-server.conf")])
        self.wait_healthy()

    def stop_proxy(self) -> None:
        _stop_group(self.processes.pop("proxy"))

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.endpoint}/healthcheck", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        logs = "\n".join(path.read_text(errors="replace")[-1500:] for path in (self.root / "run").glob("*.log"))
        raise RuntimeError(f"swift proxy not healthy after {timeout}s:\n{logs}")

    def stop(self) -> None:
        for process in self.processes.values():
            _stop_group(process)
        self.processes.clear()


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
    except ProcessLookupError:
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # forked workers that outlived their parent
    except ProcessLookupError:
        pass
