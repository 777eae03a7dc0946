"""Store rows → the API's answers (`models.py`), with the links a client follows next.

Called on the thread pool, with the store opened for the request.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from hwdaemon.api.models import (
    DeliveryView,
    Document,
    DocumentSummary,
    Links,
    PageSummary,
    RevisionView,
)
from hwdaemon.export import FORMATS
from hwdaemon.store import Job, Store

API_PREFIX = "/api/v1"


def links_of(job_id: int, formats: tuple[str, ...] = ()) -> Links:
    """The job's own URL and its results' (the formats asked for at upload, else every format)."""
    base = f"{API_PREFIX}/documents/{job_id}"
    return Links(document=base, results={name: f"{base}/result.{name}" for name in formats or FORMATS})


def document_of(store: Store, job: Job, duplicate_of: int | None = None) -> Document:
    upload = store.uploads.of_job(job.id)
    row = store.review.row(job.id)
    result = store.jobs.result_of(job.id)
    pages = [
        PageSummary(
            number=page.number,
            width=page.width,
            height=page.height,
            lines=len(page.lines),
            mean_confidence=_mean([line.confidence for line in page.lines]),
            orientation=page.orientation,
        )
        for page in (result.pages if result else ())
    ]
    deliveries = [
        DeliveryView(
            sink=delivery.sink,
            state=delivery.state,
            attempts=delivery.attempts,
            revision=delivery.revision,
            last_error=delivery.last_error,
            location=delivery.location,
        )
        for delivery in store.deliveries.of_job(job.id)
    ]
    revision = RevisionView(
        latest=store.review.latest_revision(job.id),
        approved=row.approved_revision if row else None,
        reviewed_by=row.reviewed_by if row else None,
        reviewed_at=_time(row.reviewed_at) if row and row.reviewed_at else None,
        needs_review=bool(row and row.needs_review),
    )
    return Document(
        id=job.id,
        state=job.state,
        file=upload.original_name if upload else Path(job.path).name,
        inbox=job.inbox,
        profile=job.profile,
        sha256=job.sha256,
        size_bytes=job.size,
        attempts=job.attempts,
        error=job.error,
        created_at=_time(job.created_at),
        updated_at=_time(job.updated_at),
        timings=dict(result.timings) if result else {},
        pages=pages,
        deliveries=deliveries,
        revision=revision,
        uploaded_by=upload.token_name if upload else None,
        duplicate_of=duplicate_of,
        links=links_of(job.id, upload.formats if upload else ()),
    )


def summary_of(job: Job) -> DocumentSummary:
    return DocumentSummary(
        id=job.id,
        state=job.state,
        file=Path(job.path).name,
        inbox=job.inbox,
        profile=job.profile,
        attempts=job.attempts,
        error=job.error,
        created_at=_time(job.created_at),
        updated_at=_time(job.updated_at),
        links=links_of(job.id),
    )


def _time(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None
