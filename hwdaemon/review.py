"""Reviewers' corrections: a page's edits applied to a Result, and the three things a reviewer does to a job.

The actions — save a revision, approve (which re-delivers a corrected
revision), add a word to the profile's list — are plain functions over an open
`Store` and the config, so the review page and any later caller (the HTTP API)
do exactly the same thing. They raise `ReviewError`s, never HTTP errors; the
caller decides how to answer. They block (SQLite, the word file): the review
page runs them on its thread pool.

A corrected line gets confidence 1.0 — a person read it — and keeps its
polygon, so sinks still get boxes. Everything else is copied unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from hwdaemon.config import Config
from hwdaemon.daemon.runtime import inbox_for
from hwdaemon.errors import HwdaemonError
from hwdaemon.model import PageResult, Result
from hwdaemon.pipeline.userwords import UserWords
from hwdaemon.store import Store

HUMAN_CONFIDENCE = 1.0


class ReviewError(HwdaemonError):
    """A review action that cannot be done as asked; the message says why.

    ReviewError
     ├── JobNotFoundError     no job with that id
     ├── ReviewConflictError  the job is not in a state that allows it (no result, not read, no word file)
     └── WordRefusedError     the word is not one word
    """


class JobNotFoundError(ReviewError):
    """No job has that id."""


class ReviewConflictError(ReviewError):
    """The job (or its profile) does not allow the action now: it has no result, is not read, or has no word file."""


class WordRefusedError(ReviewError):
    """The word offered for the profile's list is empty or more than one word."""


@dataclass(frozen=True, slots=True)
class LineChange:
    """One line a reviewer changed: where it is, what OCR (or the previous revision) read, and what it says now."""

    page: int
    index: int
    before: str
    after: str


def apply_edits(result: Result, page_number: int, texts: Mapping[int, str], revision: int) -> Result:
    """`result` with the lines of one page replaced by `texts` (line index → text), as `revision`."""
    pages = []
    for page in result.pages:
        if page.number != page_number:
            pages.append(page)
            continue
        lines = []
        for index, line in enumerate(page.lines):
            edited = _clean(texts.get(index, line.text))
            lines.append(line if edited == line.text else line.retexted(edited, HUMAN_CONFIDENCE))
        pages.append(replace(page, lines=tuple(lines)))
    return replace(result, pages=tuple(pages), revision=revision)


def changes_between(before: Result, after: Result) -> list[LineChange]:
    """The lines whose text differs, page by page, in reading order."""
    changes = []
    after_pages: dict[int, PageResult] = {page.number: page for page in after.pages}
    for page in before.pages:
        other = after_pages.get(page.number)
        if other is None:
            continue
        for index, (old, new) in enumerate(zip(page.lines, other.lines, strict=False)):
            if old.text != new.text:
                changes.append(LineChange(page.number, index, old.text, new.text))
    return changes


@dataclass(frozen=True, slots=True)
class Approval:
    """What approving did: the revision now approved and the deliveries it queued (none when already on their way)."""

    revision: int
    queued_delivery_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class WordAdded:
    """The word offered, the file it belongs in, and whether it was new (not already among the profile's words)."""

    word: str
    words_file: UserWords
    is_new: bool


def save_revision(store: Store, job_id: int, page_number: int, texts: Mapping[int, str], reviewer: str) -> int | None:
    """Keep one page's edited lines as the job's next revision; its number, or None when nothing changed.

    The edit applies to the newest revision, so successive saves build on each other.
    """
    if store.review.row(job_id) is None:
        raise JobNotFoundError(f"no job {job_id}")
    revision = store.review.latest_revision(job_id)
    current = store.jobs.result_of(job_id, revision)
    if current is None:
        raise ReviewConflictError("this job has no result to correct")
    edited = apply_edits(current, page_number, texts, revision + 1)
    if not changes_between(current, edited):
        return None
    store.review.add_revision(job_id, edited, reviewer)
    return revision + 1


def approve(store: Store, config: Config, job_id: int, reviewer: str) -> Approval:
    """Approve the job's newest revision and queue it for its inbox's sinks.

    Held deliveries are released (revision 0) or superseded by the corrected
    revision, which is delivered again under its own idempotency key.
    """
    row = store.review.row(job_id)
    if row is None:
        raise JobNotFoundError(f"no job {job_id}")
    if row.job.state != "done":
        raise ReviewConflictError(f"job {job_id} is {row.job.state}; only a read job can be approved")
    inbox = inbox_for(config, row.job.inbox)
    sinks = inbox.sinks if inbox else []
    revision = store.review.latest_revision(job_id)
    return Approval(revision, tuple(store.review.approve(job_id, revision, reviewer, sinks)))


def add_word(store: Store, config: Config, job_id: int, word: str) -> WordAdded:
    """Add `word` to the word file of the profile that read the job, so spelling correction leaves it alone."""
    row = store.review.row(job_id)
    if row is None:
        raise JobNotFoundError(f"no job {job_id}")
    words_file = words_file_of(config, row.job.profile)
    if words_file is None:
        raise ReviewConflictError(f"profile {row.job.profile!r} has no user_words_file")
    try:
        is_new = words_file.add(word)
    except ValueError as exc:
        raise WordRefusedError(str(exc)) from exc
    return WordAdded(word.strip(), words_file, is_new)


def words_file_of(config: Config, profile: str) -> UserWords | None:
    """The profile's own word list, if it has a file reviewers can add to."""
    found = config.profiles.get(profile)
    return UserWords(found.user_words, found.user_words_file) if found and found.user_words_file else None


def _clean(text: str) -> str:
    """A line is one line: form fields may bring CR/LF or tabs."""
    return " ".join(text.replace("\r", " ").replace("\n", " ").replace("\t", " ").split(" ")).strip()
