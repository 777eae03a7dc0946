"""Which line a reviewer should check next: the doubt-ordered queue of a profile.

The rule: the lines that teach the model most are those it is least sure of,
so across all of a profile's unapproved jobs the queue lists the lines no
person has read yet (confidence under a person's 1.0), lowest confidence
first. A line leaves the queue when a reviewer corrects it, vouches for it as
it is ("checked"), or approves its job. Our results carry one confidence per
line (the greedy path's); when they carry the beam's disagreement too, it
belongs in the order here.
"""

from __future__ import annotations

import heapq
import json
from dataclasses import dataclass

from hwdaemon.line_edits import HUMAN_CONFIDENCE
from hwdaemon.store import Store

QUEUE_LENGTH = 20  # lines listed on the queue page; the count covers them all


@dataclass(frozen=True, slots=True, order=True)
class LineToCheck:
    """A line of an unapproved job, in its newest revision, that no person has read yet; `index` counts from 0.

    Ordered as the queue is: least sure first, then the older job, then the page's reading order.
    """

    confidence: float
    job_id: int
    page: int
    index: int
    revision: int
    text: str


@dataclass(frozen=True, slots=True)
class CheckQueue:
    """The first lines to check of a profile and how many are left in all (None: not counted)."""

    profile: str
    lines: tuple[LineToCheck, ...]
    total: int | None

    @property
    def next(self) -> LineToCheck | None:
        return self.lines[0] if self.lines else None


def check_queue(store: Store, profile: str, limit: int = QUEUE_LENGTH, is_counted: bool = True) -> CheckQueue:
    """The profile's queue now. Finding the first lines reads only the jobs that can hold them (milliseconds on
    every page view); counting them all reads every unapproved job, so the job page leaves it out (`is_counted`)."""
    lines = heapq.nsmallest(limit, _unread_lines(store.review.least_sure_candidates(profile, limit)))
    total = store.review.count_lines_to_check(profile, HUMAN_CONFIDENCE) if is_counted else None
    return CheckQueue(profile, tuple(lines), total)


def _unread_lines(documents: list[tuple[int, int, str]]) -> list[LineToCheck]:
    """The lines no person has read of each (job id, revision, result JSON); plain json, not Result: only four fields are needed."""
    lines = []
    for job_id, revision, result in documents:
        for page in json.loads(result)["pages"]:
            for index, line in enumerate(page["lines"]):
                if line["confidence"] < HUMAN_CONFIDENCE:
                    lines.append(LineToCheck(line["confidence"], job_id, page["number"], index, revision, line["text"]))
    return lines
