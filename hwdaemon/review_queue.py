"""Which line a reviewer should check next, and what approving teaches: the doubt-ordered queue of a profile.

The rule: the lines that teach the model most are those it is least sure of,
so across all of a profile's unapproved jobs the queue lists the lines no
person has read yet (confidence under a person's 1.0), lowest confidence
first. A line leaves the queue when a reviewer corrects it, vouches for it as
it is ("checked"), or approves its job. Our results carry one confidence per
line (the greedy path's); when they carry the beam's disagreement too, it
belongs in the order here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hwdaemon.config import Config
from hwdaemon.line_edits import HUMAN_CONFIDENCE
from hwdaemon.store import Store
from hwdaemon.store.review import LineToCheck

QUEUE_LENGTH = 20  # lines listed on the queue page; the count covers them all


@dataclass(frozen=True, slots=True)
class CheckQueue:
    """The first lines to check of a profile, how many are left in all, and the approved lines a next training would add."""

    profile: str
    lines: tuple[LineToCheck, ...]
    total: int
    approved_since_model: int
    model_trained_at: (
        float | None
    )  # when the profile's own model was installed; None while it reads with the shipped one

    @property
    def next(self) -> LineToCheck | None:
        return self.lines[0] if self.lines else None


def check_queue(store: Store, config: Config, profile: str, limit: int = QUEUE_LENGTH) -> CheckQueue:
    """The profile's queue now (a few SQL queries over the results' JSON; safe to run on every page view)."""
    lines, total = store.review.lines_to_check(profile, HUMAN_CONFIDENCE, limit)
    trained_at = model_installed_at(config, profile)
    approved = store.review.approved_lines_since(profile, trained_at or 0.0)
    return CheckQueue(profile, tuple(lines), total, approved, trained_at)


def model_installed_at(config: Config, profile: str) -> float | None:
    """When `train --from-corrections` last installed the profile's model (its card's time), if it ever did."""
    trained_dir = config.models.trained_dir
    card = Path(trained_dir) / profile / "handwriting" / "model.json" if trained_dir else None
    return card.stat().st_mtime if card and card.is_file() else None
