"""What the API takes and answers, as pydantic models: they validate requests and are the OpenAPI document's schemas.

Pydantic at the edge only: the handlers turn store rows into these (views.py)
and these into JSON, nothing deeper sees them. Request models forbid unknown
keys, so a misspelt query parameter is a 400, not silently ignored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hwdaemon.export import FORMATS

JobStateName = Literal["queued", "processing", "done", "failed", "duplicate"]


class ApiModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _format_list(value: object) -> object:
    """`txt,json` (a form field or query value) or a list; each must be a known format."""
    names = [part.strip() for part in value.split(",") if part.strip()] if isinstance(value, str) else value
    if isinstance(names, list):
        for name in names:
            if name not in FORMATS:
                raise ValueError(f"unknown format {name!r}; known: {', '.join(FORMATS)}")
    return names


class SubmitOptions(ApiModel):
    """POST /documents: form fields beside `file`, or query parameters with a raw body."""

    filename: str | None = Field(default=None, max_length=1024, description="the file's name (raw body uploads)")
    profile: str | None = Field(default=None, description="the profile to read with; default the inbox's")
    inbox: str | None = Field(
        default=None, description="path of the configured inbox whose sinks, review and after: apply"
    )
    formats: list[str] = Field(default_factory=list, description="formats to link to in the answer: txt,json,…")
    callback_url: str | None = Field(
        default=None, max_length=2048, description="POSTed the result when read, signed like the webhook sink"
    )
    reprocess: bool = Field(default=False, description="read it even if the same bytes were read before")

    @field_validator("formats", mode="before")
    @classmethod
    def _known_formats(cls, value: object) -> object:
        return _format_list(value)


class ListQuery(ApiModel):
    """GET /documents."""

    state: JobStateName | None = None
    inbox: str | None = Field(default=None, description="path of a configured inbox")
    since: datetime | None = Field(default=None, description="changed at or after (ISO 8601)")
    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = Field(default=None, max_length=64, description="next_cursor of the previous page")


class WaitQuery(ApiModel):
    """GET /documents/{id}."""

    wait: float = Field(default=0, ge=0, description="seconds to wait for the job to end (done, failed, duplicate)")


class ResultQuery(ApiModel):
    """GET /documents/{id}/result.{format}."""

    revision: int | None = Field(
        default=None, ge=0, le=2**31, description="default: the approved revision, else the OCR (0)"
    )
    page: int | None = Field(
        default=None, ge=1, le=2**31, description="for a one-page format (page) of a scan of several pages"
    )


class PageSummary(ApiModel):
    number: int
    width: int
    height: int
    lines: int
    mean_confidence: float | None
    orientation: int


class DeliveryView(ApiModel):
    sink: str
    state: str
    attempts: int
    revision: int
    last_error: str | None
    location: str | None


class RevisionView(ApiModel):
    latest: int = Field(description="the newest revision; 0 is the OCR result")
    approved: int | None = Field(description="the revision a reviewer approved, if any")
    reviewed_by: str | None
    reviewed_at: datetime | None
    needs_review: bool


class Links(ApiModel):
    document: str
    results: dict[str, str] = Field(description="format → URL of the result in that format")


class Document(ApiModel):
    """A job, as GET /documents/{id} shows it."""

    id: int
    state: JobStateName
    file: str = Field(description="the file's name")
    inbox: str
    profile: str
    sha256: str
    size_bytes: int
    attempts: int
    error: str | None
    created_at: datetime
    updated_at: datetime
    timings: dict[str, float] = Field(description="seconds per pipeline stage")
    pages: list[PageSummary]
    deliveries: list[DeliveryView]
    revision: RevisionView
    uploaded_by: str | None = Field(description="the name of the API token that sent it; null for an inbox file")
    duplicate_of: int | None = Field(default=None, description="set when these bytes are another job's")
    links: Links


class DocumentSummary(ApiModel):
    """A job in the list."""

    id: int
    state: JobStateName
    file: str
    inbox: str
    profile: str
    attempts: int
    error: str | None
    created_at: datetime
    updated_at: datetime
    links: Links


class DocumentList(ApiModel):
    documents: list[DocumentSummary]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last")


class Retried(ApiModel):
    retried: int = Field(description="the failed job")
    path: str = Field(description="where its file lies now")
    job: Document | None = Field(description="the new job (uploads); an inbox file is taken in by the daemon")


class Approved(ApiModel):
    revision: int
    queued_deliveries: int


class Problem(ApiModel):
    """Every error answer."""

    status: int
    error: str
