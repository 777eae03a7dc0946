"""The review routes: the jobs list, a job's page and its scan, the three form posts (save, approve, add a word), the check queue.

A save carries the page's texts and at most one fix of its lines (`edits.py`),
so a reviewer's typing is never lost to a delete or a split pressed after it.

The rule: no store or disk call on the event loop. Pages (GET) are plain
functions, which Starlette runs on its thread pool; a post is async only to
read its form, then hands the action from `hwdaemon.review` to the pool with a
store opened there. Every request opens the store afresh: the daemon writes to
it at the same time (WAL), and a SQLite connection stays on its thread.
Images come only from the previews the worker wrote, found by job id and page
number, never from a path in the request.
"""

from __future__ import annotations

import getpass
import math
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response

from hwdaemon import review
from hwdaemon.config import Config
from hwdaemon.daemon.previews import preview_path
from hwdaemon.learning.summary import learning_summary
from hwdaemon.review import (
    JobNotFoundError,
    LineEditRefusedError,
    ReviewConflictError,
    ReviewError,
    WordRefusedError,
)
from hwdaemon.review_queue import CheckQueue, LineToCheck, check_queue
from hwdaemon.store import JobState, ReviewFilter, Store
from hwdaemon.ui.edits import checked_lines_of, line_edits_of, revision_seen_of
from hwdaemon.ui.security import Csrf
from hwdaemon.ui.views import Views

P = ParamSpec("P")
T = TypeVar("T")
C = TypeVar("C", bound=str)

REVIEWER_COOKIE = "hwdaemon_reviewer"
JOB_STATES: tuple[JobState, ...] = ("queued", "processing", "done", "failed", "duplicate")
REVIEW_FILTERS: tuple[ReviewFilter, ...] = ("all", "needs_review", "unreviewed", "approved")
HTTP_STATUS_OF: dict[type[ReviewError], int] = {
    JobNotFoundError: 404,
    ReviewConflictError: 409,
    WordRefusedError: 400,
    LineEditRefusedError: 400,
}


class ReviewRoutes:
    """The handlers, over the config the daemon holds now (`config_of()`, swapped on reload)."""

    def __init__(self, config_of: Callable[[], Config], csrf: Csrf, views: Views) -> None:
        self._config_of = config_of
        self._csrf = csrf
        self._views = views

    def home(self, request: Request) -> Response:
        return RedirectResponse("/jobs", status_code=307)

    def jobs_list(self, request: Request) -> Response:
        review_filter = _one_of(request.query_params.get("review", "all"), REVIEW_FILTERS)
        state_name = request.query_params.get("state")
        state = _one_of(state_name, JOB_STATES) if state_name else None
        query = request.query_params.get("q", "").strip()
        page = _positive_int(request.query_params.get("page"), 1)
        config = self._config_of()
        size = config.ui.page_size
        with self._store() as store:
            rows, total = store.review.rows(review_filter, state, query, offset=(page - 1) * size, limit=size)
        base = {"review": review_filter, "state": state or "", "q": query}
        return self._views.render(
            request,
            "jobs.html",
            {
                "rows": rows,
                "total": total,
                "page": page,
                "pages": max(1, math.ceil(total / size)),
                "filters": base,
                "states": JOB_STATES,
                "reviews": REVIEW_FILTERS,
                "page_url": lambda number: "/jobs?" + urlencode({**base, "page": number}),
                "name_of": lambda path: Path(path).name,
                "threshold_of": config.review_below,
            },
        )

    def job_page(self, request: Request) -> Response:
        job_id = int(request.path_params["job_id"])
        with self._store() as store:
            row = store.review.row(job_id)
            if row is None:
                raise HTTPException(404, f"no job {job_id}")
            revision = store.review.latest_revision(job_id)
            original = store.jobs.result_of(job_id)
            current = store.jobs.result_of(job_id, revision) if revision else original
            revisions = store.review.revisions(job_id)
            deliveries = store.deliveries.of_job(job_id)
            newer, older = store.review.neighbours(job_id)
            queue = check_queue(store, row.job.profile, limit=1, is_counted=False)
            learning = learning_summary(self._config_of(), store, row.job.profile)
        page_numbers = [page.number for page in current.pages] if current else []
        page_number = _positive_int(request.query_params.get("page"), page_numbers[0] if page_numbers else 1)
        page = next((p for p in current.pages if p.number == page_number), None) if current else None
        if current is not None and page is None:
            raise HTTPException(404, f"job {job_id} has no page {page_number}")
        config = self._config_of()
        return self._views.render(
            request,
            "job.html",
            {
                "row": row,
                "job": row.job,
                "result": current,
                "page": page,
                "page_numbers": page_numbers,
                "revision": revision,
                "revisions": revisions,
                "changes": review.changes_between(original, current) if original and current and revision else [],
                "deliveries": deliveries,
                "threshold": config.review_below(row.job.profile),
                "has_preview": page is not None and preview_path(config.state_dir, job_id, page.number).is_file(),
                "newer": newer,
                "older": older,
                "reviewer": _reviewer_of(request),
                "words_file": review.words_file_of(config, row.job.profile),
                "name": Path(row.job.path).name,
                "message": request.query_params.get("message", ""),
                "queue": queue,
                "learning": learning,
                "focus_line": _focus_line(request, page.lines if page else ()),
            },
        )

    def check_page(self, request: Request) -> Response:
        """The queue of lines to check, per profile: the least sure first, each one click from its place."""
        config = self._config_of()
        profiles = sorted(config.profiles)
        profile = request.query_params.get("profile") or (profiles[0] if profiles else "")
        if profile not in config.profiles:
            raise HTTPException(404, f"no profile {profile!r}")
        with self._store() as store:
            queue = check_queue(store, profile)
            learning = learning_summary(config, store, profile)
        return self._views.render(
            request,
            "check.html",
            {
                "queue": queue,
                "learning": learning,
                "profiles": profiles,
                "line_url": _line_url,
                "message": request.query_params.get("message", ""),
            },
        )

    def next_line(self, request: Request) -> Response:
        """One click to the profile's least sure line (GET /check/next?profile=NAME)."""
        profile = request.query_params.get("profile", "")
        if profile not in self._config_of().profiles:
            raise HTTPException(404, f"no profile {profile!r}")
        with self._store() as store:
            queue = check_queue(store, profile, limit=1, is_counted=False)
        return _to_next(queue, "")

    def page_image(self, request: Request) -> Response:
        job_id, page_number = int(request.path_params["job_id"]), int(request.path_params["page"])
        path = preview_path(self._config_of().state_dir, job_id, page_number)
        if not path.is_file():
            raise HTTPException(404, "no preview for this page")
        return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=300"})

    async def save(self, request: Request) -> Response:
        job_id = int(request.path_params["job_id"])
        form = await self._csrf.checked_form(request)
        page_number = _page_of(form)
        texts = _line_texts(form)
        edits, checked = line_edits_of(form), checked_lines_of(form)
        reviewer = _reviewer_of(request, str(form.get("reviewer", "")))
        saved = await self._in_store(
            review.save_revision, job_id, page_number, texts, reviewer, edits, checked, revision_seen_of(form)
        )
        message = "nothing changed" if saved is None else f"saved as revision {saved}"
        if form.get("then") == "next":
            queue = await self._in_store(self._queue_of_job, job_id)
            response = _to_next(queue, message)
        else:
            response = _back_to_job(job_id, page_number, message)
        response.set_cookie(REVIEWER_COOKIE, reviewer, max_age=365 * 86400, httponly=True, samesite="strict")
        return response

    async def approve(self, request: Request) -> Response:
        job_id = int(request.path_params["job_id"])
        form = await self._csrf.checked_form(request)
        reviewer = _reviewer_of(request, str(form.get("reviewer", "")))
        approval = await self._in_store(review.approve, self._config_of(), job_id, reviewer)
        message = f"approved revision {approval.revision}"
        if queued := len(approval.queued_delivery_ids):
            message += f", {queued} deliver{'y' if queued == 1 else 'ies'} queued"
        return _back_to_job(job_id, _page_of(form), message)

    async def add_word(self, request: Request) -> Response:
        job_id = int(request.path_params["job_id"])
        form = await self._csrf.checked_form(request)
        added = await self._in_store(review.add_word, self._config_of(), job_id, str(form.get("word", "")))
        if added.is_new:
            message = f"added {added.word!r} to {added.words_file.path}"
        else:
            message = f"{added.word!r} is already among the profile's words"
        return _back_to_job(job_id, _page_of(form), message)

    def _queue_of_job(self, store: Store, job_id: int) -> CheckQueue:
        row = store.review.row(job_id)
        if row is None:
            raise JobNotFoundError(f"no job {job_id}")
        return check_queue(store, row.job.profile, limit=1, is_counted=False)

    @contextmanager
    def _store(self) -> Iterator[Store]:
        """The store, opened for this request on the calling thread and closed after it."""
        with closing(Store(self._config_of().state_dir)) as store:
            yield store

    async def _in_store(self, action: Callable[Concatenate[Store, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`action(store, ...)` on the thread pool with a store opened there; a ReviewError becomes its HTTP status."""

        def run() -> T:
            with self._store() as store:
                return action(store, *args, **kwargs)

        try:
            return await run_in_threadpool(run)
        except ReviewError as exc:
            raise HTTPException(HTTP_STATUS_OF[type(exc)], str(exc)) from None


def _reviewer_of(request: Request, form_value: str = "") -> str:
    """Who is reviewing: the name in the form, else the one in the cookie, else the account serving the page."""
    name = form_value.strip() or request.cookies.get(REVIEWER_COOKIE, "").strip()
    return name[:80] or getpass.getuser()


def _one_of(value: str, choices: tuple[C, ...]) -> C:
    """`value` if it is one of the list's filters (400 otherwise)."""
    for choice in choices:
        if choice == value:
            return choice
    raise HTTPException(400, "unknown filter")


def _line_texts(form: FormData) -> dict[int, str]:
    """The save form's `line-N` fields: line index → text."""
    fields = form.multi_items()
    return {int(key[5:]): str(value) for key, value in fields if key.startswith("line-") and key[5:].isdigit()}


def _page_of(form: FormData) -> int:
    return _positive_int(str(form.get("page", "")), 1)


def _positive_int(value: str | None, default: int) -> int:
    return int(value) if value and value.isdigit() and int(value) > 0 else default


def _focus_line(request: Request, lines: tuple[object, ...]) -> int | None:
    """The line the page was opened at (`?line=N`, from the check queue), when the page has it."""
    value = request.query_params.get("line", "")
    return int(value) if value.isdigit() and int(value) < len(lines) else None


def _line_url(line: LineToCheck) -> str:
    return f"/jobs/{line.job_id}?" + urlencode({"page": line.page, "line": line.index}) + f"#line-{line.index}"


def _to_next(queue: CheckQueue, message: str) -> RedirectResponse:
    """To the queue's first line, or to the queue page saying there is none left."""
    if queue.next is None:
        done = "no line left to check for profile " + queue.profile
        text = f"{message}; {done}" if message else done
        return RedirectResponse("/check?" + urlencode({"profile": queue.profile, "message": text}), status_code=303)
    url = _line_url(queue.next)
    if message:
        path, _, fragment = url.partition("#")
        url = f"{path}&{urlencode({'message': message})}#{fragment}"
    return RedirectResponse(url, status_code=303)


def _back_to_job(job_id: int, page: int, message: str) -> RedirectResponse:
    return RedirectResponse(f"/jobs/{job_id}?" + urlencode({"page": page, "message": message}), status_code=303)
