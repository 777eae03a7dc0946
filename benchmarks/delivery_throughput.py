"""Results per second that the webhook and S3 sinks deliver to servers on 127.0.0.1.

Each delivery goes through the store as the daemon's delivery thread does it
(store.deliveries.due → sink.deliver → store.deliveries.mark_delivered), one at a time. The webhook
receiver is a threaded http.server answering 200; S3 is OpenStack Swift with
s3api (skipped when Swift is not installed).

    .venv/bin/python benchmarks/delivery_throughput.py --results 500
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins" / "hwdaemon-s3" / "tests"))

from hwdaemon.model import Box, Line, PageResult, Result  # noqa: E402
from hwdaemon.sinks import Artifacts, Sink  # noqa: E402
from hwdaemon.store import Store  # noqa: E402


class Ok(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def sample_result(number: int) -> Result:
    lines = tuple(
        Line(f"line {index} of note {number}", 0.5, Box(10, 30 * index, 400, 28).polygon) for index in range(25)
    )
    return Result(
        f"inbox/note-{number}.png", f"{number:064x}", "default", (PageResult(1, 1700, 2200, lines),), {"recognize": 1.0}
    )


def measure(sink: Sink, results: int, state_dir: Path) -> dict[str, float]:
    store = Store(state_dir)
    for number in range(results):
        job = store.jobs.add(f"/in/note-{number}.png", "/in", "default", f"{number:064x}", 1, 1)
        store.jobs.finish(job.id, sample_result(number), ["bench"])
    started = time.perf_counter()
    delivered = 0
    while True:
        due = store.deliveries.due(limit=100)
        if not due:
            break
        for delivery in due:
            result = store.jobs.result_of(delivery.job_id)
            assert result is not None
            receipt = sink.deliver(result, Artifacts(delivery.idempotency_key, f"note-{delivery.job_id}.png"))
            store.deliveries.mark_delivered(delivery.id, receipt.location)
            delivered += 1
    seconds = time.perf_counter() - started
    store.close()
    return {"results": delivered, "seconds": round(seconds, 2), "results_per_second": round(delivered / seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=500)
    args = parser.parse_args()
    report: dict[str, object] = {}

    from hwdaemon_webhook import WebhookOptions, WebhookSink

    server = ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    webhook = WebhookSink(WebhookOptions(url=url, secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), "bench")  # type: ignore[arg-type]
    report["webhook"] = measure(webhook, args.results, Path(tempfile.mkdtemp()))
    server.shutdown()

    from swift_server import ACCESS_KEY, REGION, SECRET_KEY, SwiftServer, missing_binaries

    if missing_binaries():
        report["s3"] = f"skipped: {missing_binaries()} not installed"
    else:
        import boto3
        from botocore.config import Config

        from hwdaemon_s3 import S3Options, S3Sink

        swift = SwiftServer(Path(tempfile.mkdtemp())).start()
        try:
            boto3.client("s3", endpoint_url=swift.endpoint, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                         region_name=REGION, config=Config(s3={"addressing_style": "path"})).create_bucket(Bucket="bench")  # fmt: skip
            options = S3Options(bucket="bench", endpoint_url=swift.endpoint, region=REGION, addressing_style="path",
                                access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY)  # type: ignore[arg-type]  # fmt: skip
            report["s3_swift"] = measure(S3Sink(options, "bench"), args.results, Path(tempfile.mkdtemp()))
        finally:
            swift.stop()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
