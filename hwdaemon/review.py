"""Reviewers' corrections: a page's edits applied to a Result, and the three things a reviewer does to a job.

The actions — save a revision, approve (which re-delivers a corrected
revision), add a word to the profile's list — are plain functions over an open
`Store` and the config, so the review page and any later caller (the HTTP API)
do exactly the same thing. They raise `ReviewError`s, never HTTP errors; the
caller decides how to answer. They block (SQLite, the word file): the review
page runs them on its thread pool.

A corrected line gets confidence 1.0 — a person read it — and keeps its
polygon, so sinks still get boxes; so does a line the reviewer vouched for
unchanged (`checked`). Fixes of the page's lines themselves (delete, not text,
add, merge, split, move: `hwdaemon.line_edits`) are saved in the same revision,
after the texts. Everything else is copied unchanged.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from hwdaemon.config import Config
from hwdaemon.daemon.runtime import inbox_for
from hwdaemon.errors import HwdaemonError
from hwdaemon.line_edits import HUMAN_CONFIDENCE, LineEdit, apply_line_edit, one_line
from hwdaemon.model import PageResult, Point, Result
from hwdaemon.pipeline.userwords import UserWords
from hwdaemon.store import Store

ChangeKind = Literal["text", "added", "removed", "moved", "not text", "restored"]


class ReviewError(HwdaemonError):
    """A review action that cannot be done as asked; the message says why.

    ReviewError
     ├── JobNotFoundError     no job with that id
     ├── ReviewConflictError  the job is not in a state that allows it (no result, not read, no word file)
     ├── WordRefusedError     the word is not one word
     └── LineEditRefusedError a fix of the page's lines does not fit the page (no such line, box off the page)
    """


class JobNotFoundError(ReviewError):
    """No job has that id."""


class ReviewConflictError(ReviewError):
    """The job (or its profile) does not allow the action now: it has no result, is not read, or has no word file."""


class WordRefusedError(ReviewError):
    """The word offered for the profile's list is empty or more than one word."""


class LineEditRefusedError(ReviewError):
    """A delete, add, merge, split or move that does not fit the page; the message says what would."""


@dataclass(frozen=True, slots=True)
class LineChange:
    """One line a reviewer changed: where it is, what OCR (or the previous revision) read, and what it says now.

    `kind` says what happened to it: its text changed, or the line itself was
    added, removed, moved, marked not text or restored. `index` is the line's
    place after the change (before it, for a removed line or a region marked not text).
    """

    page: int
    index: int
    before: str
    after: str
    kind: ChangeKind = "text"


def apply_edits(
    result: Result, page_number: int, texts: Mapping[int, str], revision: int, checked: Collection[int] = ()
) -> Result:
    """`result` with the lines of one page replaced by `texts` (line index → text), as `revision`.

    The lines in `checked` were read by the reviewer and left as they are: they too get a person's confidence.
    """
    pages = []
    for page in result.pages:
        if page.number != page_number:
            pages.append(page)
            continue
        lines = []
        for index, line in enumerate(page.lines):
            edited = one_line(texts.get(index, line.text))
            if edited != line.text or (index in checked and line.confidence < HUMAN_CONFIDENCE):
                line = line.retexted(edited, HUMAN_CONFIDENCE)
            lines.append(line)
        pages.append(replace(page, lines=tuple(lines)))
    return replace(result, pages=tuple(pages), revision=revision)


def apply_line_edits(result: Result, page_number: int, edits: Sequence[LineEdit]) -> Result:
    """`result` with one page's lines fixed by `edits`, in order; LineEditRefusedError when one does not fit."""
    if not edits:
        return result
    pages = []
    for page in result.pages:
        if page.number == page_number:
            for number, edit in enumerate(edits, 1):
                try:
                    page = apply_line_edit(page, edit)
                except ValueError as exc:
                    where = f" (fix {number} of {len(edits)})" if len(edits) > 1 else ""
                    raise LineEditRefusedError(f"{exc}{where}") from exc
        pages.append(page)
    if page_number not in {page.number for page in result.pages}:
        raise LineEditRefusedError(f"this job has no page {page_number}")
    return replace(result, pages=tuple(pages))


def changes_between(before: Result, after: Result) -> list[LineChange]:
    """What changed, page by page in reading order: texts, and lines added, removed, moved, marked not text or restored.

    Lines are matched by their outline (a reviewer's text fix keeps it), so a
    deleted line does not make every line after it look retyped.
    """
    changes = []
    after_pages: dict[int, PageResult] = {page.number: page for page in after.pages}
    for page in before.pages:
        other = after_pages.get(page.number)
        if other is not None:
            changes += _page_changes(page, other)
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


def save_revision(
    store: Store,
    job_id: int,
    page_number: int,
    texts: Mapping[int, str],
    reviewer: str,
    edits: Sequence[LineEdit] = (),
    checked: Collection[int] = (),
    based_on: int | None = None,
) -> int | None:
    """Keep one page's edited lines as the job's next revision; its number, or None when nothing changed.

    The edit applies to the newest revision, so successive saves build on each
    other. Texts and `checked` name lines as the page showed them; `edits`
    then fix the lines themselves, in order (LineEditRefusedError, nothing saved, when one does not fit).
    `based_on` is the revision the reviewer saw: when another was saved since,
    line numbers may name other lines, so ReviewConflictError asks them to reload.
    """
    if store.review.row(job_id) is None:
        raise JobNotFoundError(f"no job {job_id}")
    revision = store.review.latest_revision(job_id)
    if based_on is not None and based_on != revision:
        raise ReviewConflictError(
            f"revision {revision} was saved since you opened revision {based_on} of this job; "
            "reload the page and make your change again"
        )
    current = store.jobs.result_of(job_id, revision)
    if current is None:
        raise ReviewConflictError("this job has no result to correct")
    edited = apply_line_edits(apply_edits(current, page_number, texts, revision + 1, checked), page_number, edits)
    if edited.pages == current.pages:
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


def _page_changes(before: PageResult, after: PageResult) -> list[LineChange]:
    """One page's changes: lines aligned by outline (difflib), then what became of the unmatched ones."""
    old_outlines = [line.polygon for line in before.lines]
    new_outlines = [line.polygon for line in after.lines]
    removed: dict[tuple[Point, ...], int] = {}
    added: dict[tuple[Point, ...], int] = {}
    changes = []
    matcher = difflib.SequenceMatcher(None, old_outlines, new_outlines, autojunk=False)
    for tag, old_start, old_end, new_start, new_end in matcher.get_opcodes():
        if tag == "equal":
            for old_index, new_index in zip(range(old_start, old_end), range(new_start, new_end), strict=True):
                old, new = before.lines[old_index], after.lines[new_index]
                if old.text != new.text:
                    changes.append(LineChange(before.number, new_index, old.text, new.text))
            continue
        removed.update({old_outlines[index]: index for index in range(old_start, old_end)})
        added.update({new_outlines[index]: index for index in range(new_start, new_end)})
    now_not_text = {line.polygon for line in after.not_text}
    was_not_text = {line.polygon for line in before.not_text}
    for outline, index in removed.items():
        old = before.lines[index]
        if outline in added:
            new_index = added.pop(outline)
            changes.append(LineChange(before.number, new_index, old.text, after.lines[new_index].text, "moved"))
        else:
            kind: ChangeKind = "not text" if outline in now_not_text else "removed"
            changes.append(LineChange(before.number, index, old.text, "", kind))
    for outline, index in added.items():
        new = after.lines[index]
        kind = "restored" if outline in was_not_text else "added"
        changes.append(LineChange(before.number, index, "", new.text, kind))
    return sorted(changes, key=lambda change: change.index)
