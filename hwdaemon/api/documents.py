"""The API's handlers: submit a scan, follow its job, fetch any format, list, retry, approve, forget.

The rule, as on the review page: no store or disk call on the event loop. A
handler is async only to read its request or wait; the store work runs on the
thread pool with a store opened there for the request (the daemon writes at
the same time; a SQLite connection stays on its thread). Every handler gets
the `Caller` the gate in app.py let through, and raises ApiError for a
refusal, which app.py turns into a JSON problem.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TypeVar

import structlog
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from hwdaemon import review
from hwdaemon.api.auth import Caller
from hwdaemon.api.models import Approved, DocumentList, ListQuery, ResultQuery, Retried, SubmitOptions, WaitQuery
from hwdaemon.api.spool import UploadTooLargeError, safe_upload_name
from hwdaemon.api.submission import Intake, SubmissionError, choices_of, upload_paths
from hwdaemon.api.upload import BadUploadError, receive_upload
from hwdaemon.api.views import document_of, summary_of
from hwdaemon.config import Config, inbox_named
from hwdaemon.daemon import requeue
from hwdaemon.daemon.previews import PREVIEW_FOLDER
from hwdaemon.daemon.runtime import inbox_key_of
from hwdaemon.errors import HwdaemonError, InputFileError
from hwdaemon.export import FORMATS, extension, files_of, render_bytes
from hwdaemon.review import JobNotFoundError, ReviewConflictError, ReviewError
from hwdaemon.store import Job, JobBusyError, Store

log = structlog.get_logger()
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

TERMINAL_STATES = ("done", "failed", "duplicate")
WAIT_POLL_SECONDS = 0.1  # a store read a tenth of a second per waiting client
MAX_ID = 2**63 - 1  # SQLite's largest integer
MEDIA_TYPES = {
    "txt": "text/plain; charset=utf-8",
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "alto": "application/xml",
    "page": "application/xml",
    "hocr": "application/xhtml+xml",
    "pdf": "application/pdf",
}


class ApiError(Exception):
    """A refusal with its HTTP status; the message is the problem's `error`."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


class DocumentRoutes:
    """The handlers, over the config the server holds now (`config_of()`, swapped by the daemon on reload)."""

    def __init__(self, config_of: Callable[[], Config], on_job_queued: Callable[[], None]) -> None:
        self._config_of = config_of
        self._on_job_queued = on_job_queued
        self._intake = Intake()

    async def submit(self, request: Request, caller: Caller) -> Response:
        config = self._config_of()
        query = _parsed(SubmitOptions, dict(request.query_params))
        limit = min(config.api.max_upload_bytes or config.inputs.max_file_bytes, config.inputs.max_file_bytes)
        try:
            received = await receive_upload(request, config.state_dir, limit)
        except OSError as exc:
            log.error("upload_not_stored", token=caller.name, error=f"{exc.strerror} (errno {exc.errno})")
            raise ApiError(503, f"the upload could not be stored: {exc.strerror}") from None
        except UploadTooLargeError as exc:
            log.warning("upload_refused", token=caller.name, reason="too_large", limit_bytes=limit)
            raise ApiError(413, str(exc)) from None
        except BadUploadError as exc:
            raise ApiError(400, str(exc)) from None
        except ClientDisconnect:
            log.warning("upload_cut_off", token=caller.name)
            raise ApiError(400, "the upload was cut off before its end; nothing was kept") from None
        try:
            options = _parsed(SubmitOptions, {**query.model_dump(exclude_unset=True), **received.fields})
            choices = choices_of(
                config, options.inbox, options.profile, options.formats, options.callback_url, options.reprocess
            )
        except (ApiError, SubmissionError) as exc:
            await run_in_threadpool(received.spool.discard)
            raise exc if isinstance(exc, ApiError) else ApiError(400, str(exc)) from None
        name = safe_upload_name(options.filename or received.filename)

        def accept(store: Store) -> tuple[int, dict[str, object]]:
            accepted = self._intake.accept(store, config, received.spool, name, choices, caller.name)
            original = None if accepted.is_new else accepted.job.id
            document = document_of(store, accepted.job, duplicate_of=original)
            return (202 if accepted.is_new else 200), document.model_dump(mode="json")

        try:
            status, body = await self._in_store(accept)
        except InputFileError as exc:
            raise ApiError(422, exc.reason) from None
        except OSError as exc:  # a full disk, a read-only state_dir: the client may try again later
            log.error("upload_not_stored", token=caller.name, error=f"{exc.strerror} (errno {exc.errno})")
            raise ApiError(503, f"the upload could not be stored: {exc.strerror}") from None
        finally:
            await run_in_threadpool(received.spool.discard)  # placed: a no-op; failed on the way: nothing left
        if status == 202:
            self._on_job_queued()
        event = "upload_accepted" if status == 202 else "upload_duplicate"
        log.info(event, job_id=body["id"], token=caller.name, bytes=received.spool.size, file=name)
        return JSONResponse(body, status_code=status, headers={"Location": f"/api/v1/documents/{body['id']}"})

    async def get(self, request: Request, caller: Caller) -> Response:
        job_id = _job_id(request)
        query = _parsed(WaitQuery, dict(request.query_params))
        deadline = time.monotonic() + min(query.wait, self._config_of().api.max_wait_seconds)
        while True:
            job = await self._in_store(lambda store: store.jobs.get(job_id))
            if job is None:
                raise ApiError(404, f"no job {job_id}")
            if job.state in TERMINAL_STATES or time.monotonic() >= deadline:
                break
            await asyncio.sleep(WAIT_POLL_SECONDS)
        body = await self._in_store(lambda store: document_of(store, job).model_dump(mode="json"))
        return JSONResponse(body)

    async def result(self, request: Request, caller: Caller) -> Response:
        job_id = _job_id(request)
        format_name = str(request.path_params["format"])
        if format_name not in FORMATS:
            raise ApiError(404, f"no format {format_name!r}; known: {', '.join(FORMATS)}")
        query = _parsed(ResultQuery, dict(request.query_params))

        def render(store: Store) -> tuple[bytes, str]:
            job = _job(store, job_id)
            if job.state != "done":
                raise ApiError(409, f"job {job_id} is {job.state}; results exist once it is done")
            row = store.review.row(job_id)
            revision = query.revision if query.revision is not None else (row.approved_revision if row else None) or 0
            result = store.jobs.result_of(job_id, revision)
            if result is None:
                raise ApiError(404, f"job {job_id} has no revision {revision}")
            format_ = next(known for known in FORMATS if known == format_name)
            parts = files_of(result, format_)
            if len(parts) > 1:
                numbers = [page.number for page in result.pages]
                if query.page not in numbers:
                    raise ApiError(400, f"{format_name} holds one page: add ?page=N, N one of {numbers}")
                parts = [part for part in parts if part[1].pages[0].number == query.page]
            original = _original_of(job)
            if format_name == "pdf" and original is None:
                raise ApiError(410, f"job {job_id}'s original file is gone (after: delete?); the pdf is made from it")
            stem = Path(job.path).stem
            return render_bytes(parts[0][1], format_, original=original), f"{stem}{parts[0][0]}.{extension(format_)}"

        try:
            content, filename = await self._in_store(render)
        except HwdaemonError as exc:  # the pdf could not be made (OCRmyPDF missing, a damaged original)
            raise ApiError(500, f"{format_name} could not be made: {exc}") from None
        return Response(
            content,
            media_type=MEDIA_TYPES.get(format_name, "application/octet-stream"),
            headers={"Content-Disposition": f"inline; filename*=UTF-8''{_quoted(filename)}"},
        )

    async def list(self, request: Request, caller: Caller) -> Response:
        query = _parsed(ListQuery, dict(request.query_params))
        config = self._config_of()
        inbox_key = None
        if query.inbox is not None:
            inbox = inbox_named(config, query.inbox)
            if inbox is None:
                raise ApiError(400, f"no inbox {query.inbox!r}")
            inbox_key = inbox_key_of(inbox)
        before = _cursor_id(query.cursor) if query.cursor else None
        since = query.since.timestamp() if query.since else None

        def page(store: Store) -> dict[str, object]:
            jobs = store.uploads.page(query.state, inbox_key, since, before, query.limit + 1)
            more = len(jobs) > query.limit
            jobs = jobs[: query.limit]
            cursor = _cursor_of(jobs[-1].id) if more else None
            return DocumentList(documents=[summary_of(job) for job in jobs], next_cursor=cursor).model_dump(mode="json")

        return JSONResponse(await self._in_store(page))

    async def retry(self, request: Request, caller: Caller) -> Response:
        job_id = _job_id(request)
        config = self._config_of()

        def retry(store: Store) -> dict[str, object]:
            job = _job(store, job_id)
            if not requeue.is_retryable(job, store):
                why = "its file is gone, or a newer job holds it" if job.state == "failed" else f"it is {job.state}"
                raise ApiError(409, f"job {job_id} has nothing to retry: {why}")
            retried = requeue.retry(store, config, job)
            queued = document_of(store, retried.job) if retried.job else None
            return Retried(retried=job_id, path=str(retried.path), job=queued).model_dump(mode="json")

        body = await self._in_store(retry)
        log.info("api_retry", job_id=job_id, token=caller.name)
        return JSONResponse(body, status_code=202)

    async def approve(self, request: Request, caller: Caller) -> Response:
        job_id = _job_id(request)
        config = self._config_of()
        try:
            approval = await self._in_store(lambda store: review.approve(store, config, job_id, caller.name))
        except ReviewError as exc:
            status = 404 if isinstance(exc, JobNotFoundError) else 409 if isinstance(exc, ReviewConflictError) else 400
            raise ApiError(status, str(exc)) from None
        body = Approved(revision=approval.revision, queued_deliveries=len(approval.queued_delivery_ids))
        return JSONResponse(body.model_dump(mode="json"))

    async def forget(self, request: Request, caller: Caller) -> Response:
        job_id = _job_id(request)
        state_dir = self._config_of().state_dir

        def forget(store: Store) -> None:
            try:
                job = store.uploads.forget(job_id)
            except JobBusyError as exc:
                raise ApiError(409, str(exc)) from None
            if job is None:
                raise ApiError(404, f"no job {job_id}")
            shutil.rmtree(state_dir / PREVIEW_FOLDER / str(job_id), ignore_errors=True)
            for path in upload_paths(job, state_dir):  # our copy of an upload; an inbox's files are the user's
                path.unlink(missing_ok=True)

        await self._in_store(forget)
        log.info("api_forget", job_id=job_id, token=caller.name)
        return Response(status_code=204)

    @contextmanager
    def _store(self) -> Iterator[Store]:
        with closing(Store(self._config_of().state_dir)) as store:
            yield store

    async def _in_store(self, action: Callable[[Store], T]) -> T:
        """`action(store)` on the thread pool with a store opened there for it."""

        def run() -> T:
            with self._store() as store:
                return action(store)

        return await run_in_threadpool(run)


def _parsed(model: type[M], values: dict[str, object]) -> M:
    """Query or form values as `model`; 400 naming the field otherwise."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc'])) or 'request'}: {error['msg']}" for error in exc.errors()
        )
        raise ApiError(400, problems) from None


def _job_id(request: Request) -> int:
    """The path's job id; 404 for one no job can have (past SQLite's integers)."""
    job_id = int(request.path_params["id"])
    if job_id > MAX_ID:
        raise ApiError(404, f"no job {job_id}")
    return job_id


def _job(store: Store, job_id: int) -> Job:
    job = store.jobs.get(job_id)
    if job is None:
        raise ApiError(404, f"no job {job_id}")
    return job


def _original_of(job: Job) -> Path | None:
    for candidate in (job.final_path, job.path):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def _cursor_of(job_id: int) -> str:
    return base64.urlsafe_b64encode(f"before:{job_id}".encode()).decode().rstrip("=")


def _cursor_id(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        text = ""
    prefix, _, number = text.partition(":")
    if prefix != "before" or not number.isdigit() or int(number) > MAX_ID:
        raise ApiError(400, "cursor: not a next_cursor this API gave")
    return int(number)


def _quoted(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")
