"""The review page's composition: its middleware and routes, over the daemon's config.

A jobs list, a job's scan beside its lines, save a revision, approve and
re-deliver: server-rendered Starlette + Jinja2 (autoescaped, `views.py`) with
one small script for the keyboard and the box ↔ line highlighting; no
front-end build. The handlers are in `routes.py` (review) and `gate.py`
(sign-in), the actions they call in `hwdaemon.review`.

The HTTP API (`hwdaemon.api`) is mounted at /api/v1, outside all of this: it
answers programs, with its own Bearer-token gate. Before any page route, in
this order: the Host header must be one of ours (`hosts.py`, against DNS rebinding); the body at most `ui.max_request_bytes`
(413, counted as it streams, so chunked bodies too); then the gate (token,
security headers, CSRF cookie).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from hwdaemon.api.app import create_api_app
from hwdaemon.config import Config
from hwdaemon.ui.gate import Gate, Login
from hwdaemon.ui.hosts import allowed_hosts
from hwdaemon.ui.routes import ReviewRoutes
from hwdaemon.ui.security import Csrf, Guard, server_secret, token_for
from hwdaemon.ui.views import Views

STATIC = Path(__file__).parent / "static"


def create_app(
    config_of: Callable[[], Config], host: str | None = None, on_job_queued: Callable[[], None] | None = None
) -> Starlette:
    """The review app over the store, profiles and inboxes of `config_of()` (the daemon's, swapped on reload).

    `host` is the address it will be bound to (default `ui.host`): a Host header
    naming it is accepted. The ui settings themselves are read once, here.
    Raises ConfigError if it may not be served (off loopback without a token).
    """
    ui = config_of().ui
    bound_host = host or ui.host
    guard = Guard(token_for(ui.model_copy(update={"host": bound_host})))
    csrf = Csrf(server_secret(config_of().state_dir))
    views = Views(csrf, is_login_required=guard.token is not None)
    middleware = [
        Middleware(
            TrustedHostMiddleware, allowed_hosts=allowed_hosts(bound_host, ui.allowed_hosts), www_redirect=False
        ),
        Middleware(Gate, guard=guard, views=views),
    ]
    routes = _routes(ReviewRoutes(config_of, csrf, views), Login(guard, csrf, views))
    review_page = Starlette(routes=routes, middleware=middleware, max_body_size=ui.max_request_bytes)
    # the API has its own gate (Bearer tokens, always) and body limits: neither the page's Host check nor its sign-in apply
    api = create_api_app(config_of, on_job_queued or (lambda: None))
    return Starlette(routes=[Mount("/api/v1", app=api), Mount("", app=review_page)])


def _routes(review: ReviewRoutes, login: Login) -> list[BaseRoute]:
    """Every URL the page answers. GET handlers are sync (run on the thread pool); POST ones async to read the form."""
    return [
        Route("/", review.home),
        Route("/jobs", review.jobs_list),
        Route("/jobs/{job_id:int}", review.job_page),
        Route("/jobs/{job_id:int}/pages/{page:int}.jpg", review.page_image),
        Route("/jobs/{job_id:int}/save", review.save, methods=["POST"]),
        Route("/jobs/{job_id:int}/approve", review.approve, methods=["POST"]),
        Route("/jobs/{job_id:int}/words", review.add_word, methods=["POST"]),
        Route("/check", review.check_page),
        Route("/check/next", review.next_line),
        Route("/login", login.form),
        Route("/login", login.submit, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
