"""Every API endpoint, declared once: its method and path, handler, scope, models and answers.

The Starlette routes (app.py) and the OpenAPI document (openapi.py) are both
built from `endpoints()`, so the document cannot drift from what is served.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from hwdaemon.api.auth import Caller
from hwdaemon.api.documents import MEDIA_TYPES, DocumentRoutes
from hwdaemon.api.models import (
    Approved,
    Document,
    DocumentList,
    ListQuery,
    ResultQuery,
    Retried,
    SubmitOptions,
    WaitQuery,
)
from hwdaemon.config import ApiScope

Handler = Callable[[Request, Caller], Awaitable[Response]]
# a result's type depends on {format}: one */* entry whose description maps them, read as bytes by generated clients
RESULT_TYPES = ", ".join(f"{name}: {media}" for name, media in MEDIA_TYPES.items())
Body = Literal["none", "upload"]


@dataclass(frozen=True, slots=True)
class Answer:
    """One documented answer: a JSON model, a media type (a result file), or nothing (204)."""

    description: str
    model: type[BaseModel] | None = None
    media_types: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str  # under /api/v1, OpenAPI style: {id}, {format}
    operation_id: str
    summary: str
    scope: ApiScope | None  # None: any valid token
    handler: Handler
    query: type[BaseModel] | None = None
    body: Body = "none"
    answers: dict[int, Answer] = field(default_factory=dict)


def endpoints(routes: DocumentRoutes, openapi: Handler) -> list[Endpoint]:
    return [
        Endpoint(
            "POST",
            "/documents",
            "submit_document",
            "Submit a scan: multipart `file` (with optional fields) or the raw body with ?filename=",
            "submit",
            routes.submit,
            query=SubmitOptions,
            body="upload",
            answers={
                202: Answer("queued as a new job", Document),
                200: Answer("the same bytes are already a job: that job", Document),
                413: Answer("larger than api.max_upload_bytes; nothing was kept"),
                422: Answer("refused by intake, as a dropped file would be"),
            },
        ),
        Endpoint(
            "GET",
            "/documents",
            "list_documents",
            "Jobs, newest first, a page at a time",
            "read",
            routes.list,
            query=ListQuery,
            answers={200: Answer("a page of jobs", DocumentList)},
        ),
        Endpoint(
            "GET",
            "/documents/{id}",
            "get_document",
            "A job: state, attempts, error, timings, pages, deliveries, revision; ?wait=N long-polls",
            "read",
            routes.get,
            query=WaitQuery,
            answers={200: Answer("the job", Document), 404: Answer("no such job")},
        ),
        Endpoint(
            "GET",
            "/documents/{id}/result.{format}",
            "get_result",
            "The job's result in a format; the approved revision by default",
            "read",
            routes.result,
            query=ResultQuery,
            answers={
                200: Answer(f"the result file ({RESULT_TYPES})", media_types=("*/*",)),
                409: Answer("the job is not done"),
                410: Answer("the pdf's original file is gone"),
            },
        ),
        Endpoint(
            "POST",
            "/documents/{id}/retry",
            "retry_document",
            "Read a failed job's file again",
            "admin",
            routes.retry,
            answers={202: Answer("the file is back; an upload is queued at once", Retried), 409: Answer("not failed")},
        ),
        Endpoint(
            "POST",
            "/documents/{id}/approve",
            "approve_document",
            "Approve the job's newest revision and queue it for the sinks",
            "review",
            routes.approve,
            answers={200: Answer("approved", Approved), 409: Answer("the job is not done")},
        ),
        Endpoint(
            "DELETE",
            "/documents/{id}",
            "forget_document",
            "Forget a job and its previews (an upload's own copy too); delivered outputs are never touched",
            "admin",
            routes.forget,
            answers={204: Answer("forgotten"), 409: Answer("being read now")},
        ),
        Endpoint(
            "GET",
            "/openapi.json",
            "get_openapi",
            "This API's OpenAPI 3.1 document",
            None,
            openapi,
            answers={200: Answer("the document", media_types=("application/json",))},
        ),
    ]
