"""The review page: jobs list, a job's scan beside its lines, save a revision, approve and re-deliver.

Server-rendered Starlette + Jinja2 (autoescaped) with one small script for the
keyboard and the box ↔ line highlighting; no front-end build. Every request
opens the store afresh: the daemon writes to it at the same time (WAL).
Images come only from the previews the worker wrote, found by job id and page
number, never from a path in the request. Before any route: the Host header
must be one of ours (`hosts.py`, against DNS rebinding) and the body at most
`ui.max_request_bytes` (413, counted as it streams, so chunked bodies too).
"""

from __future__ import annotations

import getpass
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hwdaemon.config import Config
from hwdaemon.daemon.previews import preview_path
from hwdaemon.daemon.runtime import inbox_key_of
from hwdaemon.store import JobState, ReviewFilter, Store
from hwdaemon.pipeline.userwords import UserWords
from hwdaemon.review import apply_edits, changes_between
from hwdaemon.ui.hosts import allowed_hosts
from hwdaemon.ui.security import CSRF_COOKIE, SESSION_COOKIE, Csrf, Guard, server_secret, token_for

HERE = Path(__file__).parent
REVIEWER_COOKIE = "hwdaemon_reviewer"
JOB_STATES: tuple[JobState, ...] = ("queued", "processing", "done", "failed", "duplicate")
REVIEW_FILTERS: tuple[ReviewFilter, ...] = ("all", "needs_review", "unreviewed", "approved")
OPEN_PATHS = ("/login", "/static/")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
}


def create_app(config_of: Callable[[], Config], host: str | None = None) -> Starlette:
    """The review app over the store, profiles and inboxes of `config_of()` (the daemon's, swapped on reload).

    `host` is the address it will be bound to (default `ui.host`): a Host header
    naming it is accepted. The ui settings themselves are read once, here.
    Raises ConfigError if it may not be served (off loopback without a token).
    """
    ui = config_of().ui
    bound_host = host or ui.host
    guard = Guard(token_for(ui.model_copy(update={"host": bound_host})))
    csrf = Csrf(server_secret(config_of().state_dir))
    checked_form = csrf.checked_form
    templates = Jinja2Templates(env=jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True))
    templates.env.filters["percent"] = lambda value: "–" if value is None else f"{value * 100:.0f}%"

    def store() -> Store:
        return Store(config_of().state_dir)

    def render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
        context = {"csrf_token": csrf.token_of(request), "login_required": guard.token is not None, **context}
        return templates.TemplateResponse(request, name, context, status_code=status_code)

    def reviewer_of(request: Request, form_value: str = "") -> str:
        name = form_value.strip() or request.cookies.get(REVIEWER_COOKIE, "").strip()
        return name[:80] or getpass.getuser()

    async def jobs_list(request: Request) -> Response:
        review = request.query_params.get("review", "all")
        state = request.query_params.get("state") or None
        query = request.query_params.get("q", "").strip()
        if review not in REVIEW_FILTERS or (state is not None and state not in JOB_STATES):
            raise HTTPException(400, "unknown filter")
        page = _positive_int(request.query_params.get("page"), 1)
        size = config_of().ui.page_size
        db = store()
        try:
            rows, total = db.review.rows(review, state, query, offset=(page - 1) * size, limit=size)  # type: ignore[arg-type]
        finally:
            db.close()
        pages = max(1, math.ceil(total / size))
        base = {"review": review, "state": state or "", "q": query}
        return render(
            request,
            "jobs.html",
            {
                "rows": rows,
                "total": total,
                "page": page,
                "pages": pages,
                "filters": base,
                "states": JOB_STATES,
                "reviews": REVIEW_FILTERS,
                "page_url": lambda number: "/jobs?" + urlencode({**base, "page": number}),
                "name_of": lambda path: Path(path).name,
                "threshold_of": lambda profile: config_of().review_below(profile),
            },
        )

    async def job_page(request: Request) -> Response:
        job_id = int(request.path_params["job_id"])
        db = store()
        try:
            row = db.review.row(job_id)
            if row is None:
                raise HTTPException(404, f"no job {job_id}")
            revision = db.review.latest_revision(job_id)
            original = db.jobs.result_of(job_id)
            current = db.jobs.result_of(job_id, revision) if revision else original
            revisions = db.review.revisions(job_id)
            deliveries = db.deliveries.of_job(job_id)
            newer, older = db.review.neighbours(job_id)
        finally:
            db.close()
        page_numbers = [page.number for page in current.pages] if current else []
        page_number = _positive_int(request.query_params.get("page"), page_numbers[0] if page_numbers else 1)
        page = next((p for p in current.pages if p.number == page_number), None) if current else None
        if current is not None and page is None:
            raise HTTPException(404, f"job {job_id} has no page {page_number}")
        has_preview = page is not None and preview_path(config_of().state_dir, job_id, page.number).is_file()
        changes = changes_between(original, current) if original and current and revision else []
        return render(
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
                "changes": changes,
                "deliveries": deliveries,
                "threshold": config_of().review_below(row.job.profile),
                "has_preview": has_preview,
                "newer": newer,
                "older": older,
                "reviewer": reviewer_of(request),
                "words_file": _words_file(config_of(), row.job.profile),
                "name": Path(row.job.path).name,
                "message": request.query_params.get("message", ""),
            },
        )

    async def page_image(request: Request) -> Response:
        path = preview_path(config_of().state_dir, int(request.path_params["job_id"]), int(request.path_params["page"]))
        if not path.is_file():
            raise HTTPException(404, "no preview for this page")
        return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=300"})

    async def save(request: Request) -> Response:
        job_id = int(request.path_params["job_id"])
        form = await checked_form(request)
        page_number = _positive_int(str(form.get("page", "")), 1)
        texts = {int(key[5:]): str(value) for key, value in form.multi_items() if key.startswith("line-") and key[5:].isdigit()}
        reviewer = reviewer_of(request, str(form.get("reviewer", "")))
        db = store()
        try:
            if db.review.row(job_id) is None:
                raise HTTPException(404, f"no job {job_id}")
            revision = db.review.latest_revision(job_id)
            current = db.jobs.result_of(job_id, revision)
            if current is None:
                raise HTTPException(409, "this job has no result to correct")
            edited = apply_edits(current, page_number, texts, revision + 1)
            if changes_between(current, edited):
                db.review.add_revision(job_id, edited, reviewer)
                message = f"saved as revision {revision + 1}"
            else:
                message = "nothing changed"
        finally:
            db.close()
        response = _back_to_job(job_id, page_number, message)
        response.set_cookie(REVIEWER_COOKIE, reviewer, max_age=365 * 86400, httponly=True, samesite="strict")
        return response

    async def approve(request: Request) -> Response:
        job_id = int(request.path_params["job_id"])
        form = await checked_form(request)
        reviewer = reviewer_of(request, str(form.get("reviewer", "")))
        db = store()
        try:
            row = db.review.row(job_id)
            if row is None:
                raise HTTPException(404, f"no job {job_id}")
            if row.job.state != "done":
                raise HTTPException(409, f"job {job_id} is {row.job.state}; only a read job can be approved")
            inbox = next((inbox for inbox in config_of().inboxes if inbox_key_of(inbox) == row.job.inbox), None)
            sinks = inbox.sinks if inbox else []
            revision = db.review.latest_revision(job_id)
            queued = db.review.approve(job_id, revision, reviewer, sinks)
        finally:
            db.close()
        message = f"approved revision {revision}" + (f", {len(queued)} deliver{'y' if len(queued) == 1 else 'ies'} queued" if queued else "")
        return _back_to_job(job_id, _positive_int(str(form.get("page", "")), 1), message)

    async def add_word(request: Request) -> Response:
        job_id = int(request.path_params["job_id"])
        form = await checked_form(request)
        db = store()
        try:
            row = db.review.row(job_id)
        finally:
            db.close()
        if row is None:
            raise HTTPException(404, f"no job {job_id}")
        words_file = _words_file(config_of(), row.job.profile)
        if words_file is None:
            raise HTTPException(409, f"profile {row.job.profile!r} has no user_words_file")
        try:
            added = words_file.add(str(form.get("word", "")))
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        word = str(form.get("word", "")).strip()
        message = f"added {word!r} to {words_file.path}" if added else f"{word!r} is already among the profile's words"
        return _back_to_job(job_id, _positive_int(str(form.get("page", "")), 1), message)

    async def login_form(request: Request) -> Response:
        return render(request, "login.html", {"error": "", "next": _safe_next(request.query_params.get("next"))})

    async def login(request: Request) -> Response:
        form = await checked_form(request)
        target = _safe_next(str(form.get("next", "")))
        if not guard.token_matches(str(form.get("token", ""))):
            return render(request, "login.html", {"error": "That token is not right.", "next": target}, status_code=401)
        csrf.renew(request)  # a token fetched before signing in (by anyone) is void after it
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(SESSION_COOKIE, guard.session_value, httponly=True, samesite="strict", secure=request.url.scheme == "https")
        return response

    async def home(request: Request) -> Response:
        return RedirectResponse("/jobs", status_code=307)

    def gate(app: ASGIApp) -> ASGIApp:
        """Every route but login and static files needs the token when one is set; every response carries the headers and CSRF cookie.

        Plain ASGI, not BaseHTTPMiddleware: that one reads the body in a task
        group, which wraps the body limit's 413 in an ExceptionGroup (a 500).
        """

        async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            request = Request(scope, receive)

            async def send_with_headers(message: Message) -> None:
                if message["type"] == "http.response.start":
                    headers = MutableHeaders(scope=message)
                    for name, value in SECURITY_HEADERS.items():
                        headers.setdefault(name, value)
                    new_csrf = getattr(request.state, "new_csrf", None)
                    if new_csrf:
                        cookie = Response()
                        cookie.set_cookie(CSRF_COOKIE, new_csrf, httponly=True, samesite="strict", secure=request.url.scheme == "https")
                        headers.append("set-cookie", cookie.headers["set-cookie"])
                await send(message)

            if not request.url.path.startswith(OPEN_PATHS) and not guard.is_allowed(request):
                response = render(request, "login.html", {"error": "", "next": _safe_next(request.url.path)}, status_code=401)
                response.headers["WWW-Authenticate"] = 'Bearer realm="hwdaemon"'
                await response(scope, receive, send_with_headers)
            else:
                await app(scope, receive, send_with_headers)

        return guarded

    routes = [
        Route("/", home),
        Route("/jobs", jobs_list),
        Route("/jobs/{job_id:int}", job_page),
        Route("/jobs/{job_id:int}/pages/{page:int}.jpg", page_image),
        Route("/jobs/{job_id:int}/save", save, methods=["POST"]),
        Route("/jobs/{job_id:int}/approve", approve, methods=["POST"]),
        Route("/jobs/{job_id:int}/words", add_word, methods=["POST"]),
        Route("/login", login_form),
        Route("/login", login, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    middleware = [
        Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts(bound_host, ui.allowed_hosts), www_redirect=False),
        Middleware(gate),
    ]
    return Starlette(routes=routes, middleware=middleware, max_body_size=ui.max_request_bytes)


def _words_file(config: Config, profile: str) -> UserWords | None:
    """The profile's own word list, if it has a file the page can add to."""
    found = config.profiles.get(profile)
    return UserWords(found.user_words, found.user_words_file) if found and found.user_words_file else None


def _positive_int(value: str | None, default: int) -> int:
    return int(value) if value and value.isdigit() and int(value) > 0 else default


def _safe_next(target: str | None) -> str:
    """Only our own paths: `//host` or `http://…` would make the login an open redirect."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/jobs"


def _back_to_job(job_id: int, page: int, message: str) -> RedirectResponse:
    return RedirectResponse(f"/jobs/{job_id}?" + urlencode({"page": page, "message": message}), status_code=303)
