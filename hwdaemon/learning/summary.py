"""What a person sees of a profile's learning: the model version read, lines learnt, approvals waiting, held-back CER before → after.

One function, `learning_summary`, feeds `hwdaemon status`, `hwdaemon models`,
/metrics (LearningCollector) and the review page, so they never disagree. It
reads files and one count from the store; it never loads a model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, Literal

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from hwdaemon.config import Config, ProfileConfig
from hwdaemon.errors import ModelVersionError
from hwdaemon.learning.learner import last_started_at
from hwdaemon.learning.places import learning_profiles, registry_for
from hwdaemon.learning.registry import Attempt, ModelRegistry, ModelVersion
from hwdaemon.learning.runs import RunFolder
from hwdaemon.store import Store

SCHEMA_VERSION = 1
LearningState = Literal["off", "waiting", "training", "paused"]


@dataclass(frozen=True, slots=True)
class LearningSummary:
    profile: str
    state: LearningState  # off: learning disabled; waiting: for min_new_lines; training; paused: while jobs are read
    version: int | None  # the model version the profile reads; None before its first training
    lines_learnt: int  # approved lines that version was trained on (0 for the model before learning)
    approved_since: int  # lines approved since the last training's lines were gathered
    min_new_lines: int  # what starts the next training
    cer_before: float | None  # held-back CER of the version it was trained from, when it was judged
    cer_after: float | None  # and its own, on the same lines
    progress: dict[str, Any] | None  # the running training's newest epoch, batch, steps
    last_attempt: Attempt | None
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def learning_summary(config: Config, store: Store, profile: str) -> LearningSummary:
    """The profile's learning as it stands; for the review page, `status`, `models` and /metrics.

    A profile no longer in the config (its old jobs are still on the review page) shows as off, with what it kept.
    """
    learning = config.profiles.get(profile, ProfileConfig()).learning
    registry = registry_for(config, profile)
    current, version = _current_version(registry)
    folder = RunFolder.of(config.state_dir, profile)
    is_training = folder.run() is not None and folder.outcome() is None
    state: LearningState = "off"
    if learning.enabled:
        state = ("paused" if folder.is_paused() else "training") if is_training else "waiting"
    attempts = registry.attempts()
    return LearningSummary(
        profile=profile, state=state, version=current, lines_learnt=version.lines_learnt if version else 0,
        approved_since=store.review.approved_lines_since(profile, last_started_at(config, profile)),
        min_new_lines=learning.min_new_lines, cer_before=version.cer_before if version else None,
        cer_after=version.cer_after if version else None, progress=folder.last_progress() if is_training else None,
        last_attempt=attempts[-1] if attempts else None,
    )  # fmt: skip


def _current_version(registry: ModelRegistry) -> tuple[int | None, ModelVersion | None]:
    """The version the profile reads and its figures; a damaged registry.json or a deleted version folder leaves them
    unknown rather than failing the review page, `status` or /metrics (`models rollback` names a kept one to repair it)."""
    try:
        current = registry.current()
        return current, registry.version(current) if current is not None else None
    except (OSError, ValueError, KeyError, TypeError, ModelVersionError):
        return None, None


class LearningCollector(Collector):
    """hwdaemon_model_* and hwdaemon_learning_* for each learning profile, read at scrape time."""

    def __init__(self, config_of: Callable[[], Config], open_store: Callable[[], Store]) -> None:
        self._config_of = config_of
        self._open_store = open_store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        config = self._config_of()
        store = self._open_store()
        try:
            summaries = [learning_summary(config, store, profile) for profile in learning_profiles(config)]
        finally:
            store.close()
        version = GaugeMetricFamily("hwdaemon_model_version", "Model version each profile reads", labels=["profile"])
        learnt = GaugeMetricFamily(
            "hwdaemon_model_lines_learnt", "Approved lines the profile's model was trained on", labels=["profile"]
        )
        cer = GaugeMetricFamily(
            "hwdaemon_model_held_back_cer",
            "Held-back CER of the profile's model (after) and of the one it replaced (before)",
            labels=["profile", "when"],
        )
        waiting = GaugeMetricFamily(
            "hwdaemon_learning_approved_lines", "Lines approved since the last training", labels=["profile"]
        )
        training = GaugeMetricFamily(
            "hwdaemon_learning_state", "1 for the profile's learning state", labels=["profile", "state"]
        )
        for summary in summaries:
            name = summary.profile
            if summary.version is not None:
                version.add_metric([name], summary.version)
            learnt.add_metric([name], summary.lines_learnt)
            for when, value in (("before", summary.cer_before), ("after", summary.cer_after)):
                if value is not None:
                    cer.add_metric([name, when], value)
            waiting.add_metric([name], summary.approved_since)
            for state in ("waiting", "training", "paused"):
                training.add_metric([name, state], 1 if summary.state == state else 0)
        yield from (version, learnt, cer, waiting, training)
