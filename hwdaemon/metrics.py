"""Prometheus metrics and a health check, on a small HTTP server (loopback by default).

`/metrics`: counters and histograms kept in memory by the daemon's threads, plus
job and delivery counts read from the store at scrape time — the same numbers
`hwdaemon status` prints. `/healthz`: 200 with a JSON body while the watchers
are alive and the workers make progress, 503 otherwise. Any other path is 404
(prometheus_client's own server would answer every path with metrics).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from hwdaemon.store import Store
from hwdaemon.ui.hosts import is_loopback

log = structlog.get_logger()

STAGE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
Health = Callable[[], tuple[bool, dict[str, Any]]]


class _StoreCollector(Collector):
    """Job states, delivery states and queue depth, read from the store at scrape time."""

    def __init__(self, open_store: Callable[[], Store]) -> None:
        self._open_store = open_store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        store = self._open_store()
        try:
            summary = store.reporting.summary()
        finally:
            store.close()
        jobs = GaugeMetricFamily("hwdaemon_jobs", "Jobs in the store by inbox and state", labels=["inbox", "state"])
        for inbox, counts in summary["jobs"].items():
            for state, count in counts.items():
                jobs.add_metric([inbox, state], count)
        deliveries = GaugeMetricFamily(
            "hwdaemon_deliveries", "Deliveries in the store by sink and state", labels=["sink", "state"]
        )
        for sink, counts in summary["deliveries"].items():
            for state, count in counts.items():
                deliveries.add_metric([sink, state], count)
        yield jobs
        yield deliveries
        yield GaugeMetricFamily("hwdaemon_queue_depth", "Jobs queued or processing", value=summary["queue_depth"])


class Metrics:
    """Everything /metrics shows; each daemon has its own registry (no global state)."""

    def __init__(self, open_store: Callable[[], Store]) -> None:
        self.registry = CollectorRegistry()
        self.files_seen = Counter(
            "hwdaemon_files_seen",
            "Settled files taken in, by inbox and outcome",
            ["inbox", "outcome"],
            registry=self.registry,
        )
        self.jobs_finished = Counter(
            "hwdaemon_jobs_finished", "Jobs finished, by outcome", ["outcome"], registry=self.registry
        )
        self.job_seconds = Histogram(
            "hwdaemon_job_duration_seconds",
            "Wall time of a job on its worker",
            buckets=STAGE_BUCKETS,
            registry=self.registry,
        )
        self.stage_seconds = Histogram(
            "hwdaemon_stage_duration_seconds",
            "Pipeline time per stage and document",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=self.registry,
        )
        self.delivery_attempts = Counter(
            "hwdaemon_delivery_attempts",
            "Delivery attempts by sink and outcome",
            ["sink", "outcome"],
            registry=self.registry,
        )
        self.thread_restarts = Counter(
            "hwdaemon_thread_restarts",
            "Worker or delivery threads that died and were started again",
            ["thread"],
            registry=self.registry,
        )
        self.model_load_seconds = Gauge(
            "hwdaemon_model_load_seconds",
            "Time to load each profile's models at start",
            ["profile"],
            registry=self.registry,
        )
        ProcessCollector(registry=self.registry)  # process_resident_memory_bytes, cpu seconds, open fds
        self.registry.register(_StoreCollector(open_store))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class MetricsServer:
    """The HTTP endpoint; runs on its own daemon thread until `stop()`."""

    def __init__(self, metrics: Metrics, health: Health, host: str, port: int) -> None:
        handler = _handler_for(metrics, health)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        """Serve; off loopback, say so: /metrics has no token and its labels name the inboxes (their paths)."""
        if not is_loopback(self.address[0]):
            log.warning(
                "metrics_off_loopback",
                host=self.address[0],
                hint="anyone who can reach the port reads inbox paths and job counts; keep a firewall in front or use 127.0.0.1",
            )
        self._thread.start()
        host, port = self.address
        log.info("metrics_listening", url=f"http://{host}:{port}/metrics")

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler_for(metrics: Metrics, health: Health) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._reply(200, metrics.exposition(), "text/plain; version=0.0.4; charset=utf-8")
            elif path == "/healthz":
                is_healthy, details = health()
                self._reply(
                    200 if is_healthy else 503,
                    json.dumps({"healthy": is_healthy, **details}).encode(),
                    "application/json",
                )
            else:
                self._reply(404, b'{"error": "not found; try /metrics or /healthz"}', "application/json")

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Scrapes every few seconds would drown the journal; say nothing."""

    return Handler
