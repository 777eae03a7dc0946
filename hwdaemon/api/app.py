"""The API's Starlette app, mounted at /api/v1 beside the review page: routes from the endpoint table, each behind the gate.

The gate, before any handler: a Bearer token of `api.tokens` (401), the
endpoint's scope (403), the token's rate limit (429 with Retry-After). Every
answer that is not a result file is JSON; every refusal is a Problem
(`{"status", "error"}`). Bodies are bounded per route: an upload by its own
streaming limit (upload.py), every other request to a few KiB.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hwdaemon.api.auth import Caller, RateLimiter, caller_of
from hwdaemon.api.documents import ApiError, DocumentRoutes
from hwdaemon.api.endpoints import Endpoint, Handler, endpoints
from hwdaemon.api.openapi import openapi_document
from hwdaemon.api.spool import sweep_spool
from hwdaemon.config import Config

log = structlog.get_logger()
MAX_PLAIN_BODY_BYTES = 16_384  # requests other than uploads carry no body worth the name


def create_api_app(config_of: Callable[[], Config], on_job_queued: Callable[[], None]) -> Starlette:
    """The API over the store and config of `config_of()` (the daemon's, swapped on reload).

    `on_job_queued` is called after an upload queued a job: inside the daemon it
    wakes a worker at once, instead of at its next look at the store.
    """
    swept = sweep_spool(config_of().state_dir)
    if swept:
        log.info("upload_spool_swept", files=swept)
    limiter = RateLimiter()
    table: list[Endpoint] = []

    async def openapi(request: Request, caller: Caller) -> Response:
        return JSONResponse(openapi_document(table))

    table += endpoints(DocumentRoutes(config_of, on_job_queued), openapi)
    routes = [
        Route(
            _starlette_path(endpoint.path),
            _gated(endpoint, config_of, limiter),
            methods=[endpoint.method],
            max_body_size=None if endpoint.body == "upload" else MAX_PLAIN_BODY_BYTES,
        )
        for endpoint in table
    ]
    return Starlette(
        routes=routes,
        exception_handlers={ApiError: _problem, HTTPException: _problem},
    )


def _gated(endpoint: Endpoint, config_of: Callable[[], Config], limiter: RateLimiter) -> Callable[[Request], Any]:
    handler: Handler = endpoint.handler

    async def gated(request: Request) -> Response:
        caller = caller_of(request.headers.get("authorization"), config_of().api)
        if caller is None:
            raise ApiError(
                401,
                "send Authorization: Bearer TOKEN with one of api.tokens",
                {"WWW-Authenticate": 'Bearer realm="hwdaemon"'},
            )
        if endpoint.scope is not None and not caller.may(endpoint.scope):
            raise ApiError(403, f"token {caller.name!r} lacks the {endpoint.scope!r} scope")
        retry_after = limiter.retry_after_seconds(caller)
        if retry_after is not None:
            log.warning("api_rate_limited", token=caller.name, retry_after_seconds=retry_after)
            raise ApiError(429, f"token {caller.name!r} is over its rate limit", {"Retry-After": str(retry_after)})
        return await handler(request, caller)

    return gated


def _starlette_path(path: str) -> str:
    return path.replace("{id}", "{id:int}")


async def _problem(request: Request, exc: Exception) -> Response:
    """Every refusal as JSON, ours (ApiError) and Starlette's (404 for a path, 405, 413 for a body)."""
    if isinstance(exc, ApiError):
        status, message, headers = exc.status, str(exc), exc.headers
    else:
        assert isinstance(exc, HTTPException)
        status, message, headers = exc.status_code, str(exc.detail), dict(exc.headers or {})
    return JSONResponse({"status": status, "error": message}, status_code=status, headers=headers)
