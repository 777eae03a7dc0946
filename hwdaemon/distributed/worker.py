"""`hwdaemon worker`: a Celery worker that reads jobs for the profiles whose models this host has.

Each worker process loads its pipelines once (at fork, before the first
task) and answers every task with a ReadReply — never an exception — so a bad
file or a job for a profile it does not serve is a clear answer, not a crash.
"""

from __future__ import annotations

import base64
import os
import socket
import sys
import tempfile
import time
import traceback
from dataclasses import replace
from pathlib import Path

import structlog
from celery import Celery
from celery.signals import setup_logging, worker_process_init

from hwdaemon.config import Config
from hwdaemon.daemon.previews import previewed
from hwdaemon.daemon.runtime import Runtime
from hwdaemon.distributed.celery_app import READ_TASK, make_app, queue_for, redacted
from hwdaemon.distributed.messages import ReadReply, ReadRequest
from hwdaemon.errors import ConfigError, InputFileError
from hwdaemon.inputs import open_document
from hwdaemon.pipeline import onnx_runtime
from hwdaemon.plugins import Registry

log = structlog.get_logger()


class ReadingHost:
    """What one worker process reads with: the config's pipelines for the profiles it serves.

    `threads` caps each network's threads per process (ONNX Runtime's, and torch's
    for an EasyOCR profile): two processes each spinning a thread per core made every
    page 30× slower on a 2-core host.
    """

    def __init__(self, config: Config, registry: Registry, threads: int | None = None) -> None:
        self.config = config
        self.runtime = Runtime(config=config, registry=registry)
        self.profiles = served_profiles(config)
        self.threads = threads

    def load_models(self) -> None:
        if self.threads:
            onnx_runtime.set_threads(self.threads)
            os.environ["OMP_NUM_THREADS"] = str(self.threads)  # read by torch if an EasyOCR profile imports it later
            if "torch" in sys.modules:  # already imported (checking an EasyOCR profile's weight files does)
                sys.modules["torch"].set_num_threads(self.threads)
        for profile in self.profiles:
            started = time.perf_counter()
            self.runtime.pipeline(profile).load()
            log.info("models_loaded", profile=profile, seconds=round(time.perf_counter() - started, 2), pid=os.getpid())

    def read(self, request: ReadRequest, worker: str) -> ReadReply:
        started = time.perf_counter()
        reply = ReadReply(job_id=request.job_id, sha256=request.sha256, worker=worker)
        if request.profile not in self.profiles:
            error = f"worker {worker} does not serve profile {request.profile!r} (it serves {', '.join(self.profiles)})"
            log.warning("job_refused", job_id=request.job_id, error=error)
            return replace(reply, error=error, refused=True)
        log.info("job_started", job_id=request.job_id, profile=request.profile, worker=worker, pid=os.getpid())
        try:
            with tempfile.TemporaryDirectory(prefix="hwdaemon-job-") as folder:
                path = self._materialise(request, Path(folder))
                previews: dict[int, bytes] = {}
                with open_document(path, self.config.inputs) as document:
                    if document.sha256 != request.sha256:
                        raise InputFileError(
                            str(path),
                            "the file's sha256 differs from the job's (changed on the share, or damaged in transit)",
                        )
                    if request.previews_max_side:
                        document = previewed(document, request.previews_max_side, previews)
                    result = self.runtime.pipeline(request.profile).run(document)
        except InputFileError as exc:
            return replace(reply, error=exc.reason, permanent=True, seconds=time.perf_counter() - started)
        except Exception as exc:  # noqa: BLE001 (reported to the coordinator, which retries)
            log.error("job_error", job_id=request.job_id, error=str(exc), traceback=traceback.format_exc(limit=6))
            return replace(reply, error=f"{type(exc).__name__}: {exc}", seconds=time.perf_counter() - started)
        seconds = time.perf_counter() - started
        log.info(
            "job_read",
            job_id=request.job_id,
            profile=request.profile,
            lines=len(result.lines),
            seconds=round(seconds, 3),
        )
        return replace(
            reply,
            result=result.to_dict(),
            previews={str(page): base64.b64encode(jpeg).decode("ascii") for page, jpeg in previews.items()},
            seconds=seconds,
        )

    @staticmethod
    def _materialise(request: ReadRequest, folder: Path) -> Path:
        content = request.content()
        if content is not None:
            path = folder / Path(request.name).name
            path.write_bytes(content)
            return path
        if request.path is None:
            raise InputFileError(request.name, "the task carries neither the file nor a path")
        path = Path(request.path)
        if not path.is_file():
            raise InputFileError(
                request.path,
                "not found on this worker host; files above queue.inline_max_bytes must be on storage both hosts see",
            )
        return path


def served_profiles(config: Config) -> list[str]:
    profiles = config.queue.serve_profiles or list(config.profiles)
    unknown = [name for name in profiles if name not in config.profiles]
    if unknown:
        raise ConfigError(f"queue.serve_profiles names {', '.join(unknown)}, which profiles: does not define")
    return profiles


def build_worker_app(host: ReadingHost) -> Celery:
    app = make_app(host.config.queue)

    @app.task(name=READ_TASK, bind=True, acks_late=True, reject_on_worker_lost=True)  # type: ignore[untyped-decorator]
    def read(task: object, request: dict[str, object]) -> dict[str, object]:
        hostname = getattr(getattr(task, "request", None), "hostname", None) or socket.gethostname()
        return host.read(ReadRequest.from_dict(request), str(hostname)).to_dict()

    worker_process_init.connect(lambda **_: host.load_models(), weak=False)
    # Our own structlog events say what happened; Celery's default logging would also
    # print every task's return value (the scan's text and previews) into the journal.
    setup_logging.connect(lambda **_: None, weak=False)
    return app


def run_worker(host: ReadingHost, concurrency: int, name: str | None = None) -> None:
    """Run the Celery worker in this process until SIGTERM (warm shutdown: the job in hand finishes)."""
    app = build_worker_app(host)
    queues = ",".join(queue_for(profile) for profile in host.profiles)
    log.info("worker_starting", broker=redacted(host.config.queue.broker_url), queues=queues, concurrency=concurrency)
    app.worker_main(
        [
            "worker",
            f"--concurrency={concurrency}",
            "--pool=prefork",
            f"--queues={queues}",
            f"--hostname={name or 'hwdaemon-' + str(os.getpid())}@%h",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=INFO",
        ]
    )
