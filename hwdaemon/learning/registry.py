"""A profile's model versions, each kept with its figures; which one the profile reads; every training attempt and its outcome.

Rule: a version folder is written once and never changed; the profile's live
folder (the one its recognizer reads) is only ever a copy of one version,
swapped in file by file with `os.replace`, ONNX network last, so a worker
reading at that moment gets the old model or the new one, never a missing file,
and the recognizer's cache (keyed by the network file's mtime) loads the new one
for the next job. Writers (the learner's child, `models rollback`) hold the
profile's lock file.

    <trained_dir>/<profile>/
        handwriting/          the live folder (or the recognizer's model_dir)
        versions/<n>/         a model folder and its version.json
        registry.json         {"current": n}
        attempts.jsonl        one line per training: installed, kept (and why) or failed
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from hwdaemon.errors import ModelVersionError
from hwdaemon.export import write_atomic
from hwdaemon.modelfolder import HANDWRITING

SCHEMA_VERSION = 1
Origin = Literal["before-learning", "learnt", "outside"]
Outcome = Literal["installed", "kept", "failed"]
# The network last: the recognizer reloads when its mtime changes, by then the card and weights are new too.
_SWAP_ORDER = (HANDWRITING.weights_file, HANDWRITING.card_file, HANDWRITING.onnx_file)


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One kept model of a profile and the figures that let it in."""

    number: int
    origin: Origin  # the model read before learning began, one learnt from approved lines, or one installed by hand
    created_at: float
    digest: str  # sha256 of its ONNX network: tells whether the live folder is still this version
    base_version: int | None = None  # the version it was fine-tuned from
    kind: str | None = None  # "fine-tuned" or "mean" (of the fine-tuned and its base)
    lines_learnt: int = 0  # approved lines it was trained on
    held_back_lines: int = 0
    cer_before: float | None = None  # the base version's CER on the held-back lines
    cer_after: float | None = None  # this version's
    run_id: str | None = None
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelVersion:
        return cls(**{key: value for key, value in data.items() if key in cls.__dataclass_fields__})


@dataclass(frozen=True, slots=True)
class Attempt:
    """One background training of a profile, whatever came of it; `reason` says why a model was kept or a run failed."""

    run_id: str
    outcome: Outcome
    started_at: float  # when its lines were gathered: lines approved later count towards the next one
    finished_at: float
    base_version: int | None
    version: int | None = None  # the version installed, when one was
    training_lines: int = 0
    held_back_lines: int = 0
    cer_before: float | None = None
    cer_after: float | None = None
    candidates: dict[str, float] = field(default_factory=dict)  # kind -> CER on the held-back lines
    reason: str = ""
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Attempt:
        return cls(**{key: value for key, value in data.items() if key in cls.__dataclass_fields__})


class ModelRegistry:
    """The versions of one profile's handwriting model; `live` is the folder the profile's recognizer reads."""

    def __init__(self, root: Path, live: Path) -> None:
        self.root = root  # <trained_dir>/<profile>
        self.live = live

    # reading -----------------------------------------------------------------

    def versions(self) -> list[ModelVersion]:
        folder = self.root / "versions"
        if not folder.is_dir():
            return []
        found = [_read_version(path / "version.json") for path in folder.iterdir() if path.name.isdigit()]
        return sorted((version for version in found if version is not None), key=lambda version: version.number)

    def version(self, number: int) -> ModelVersion:
        for version in self.versions():
            if version.number == number:
                return version
        known = ", ".join(str(version.number) for version in self.versions()) or "none yet"
        raise ModelVersionError(f"{self.root.name}: no model version {number}; versions kept: {known}")

    def folder_of(self, number: int) -> Path:
        return self.root / "versions" / str(number)

    def current(self) -> int | None:
        """The version the live folder was last set to; None before the first."""
        path = self.root / "registry.json"
        if not path.is_file():
            return None
        return int(json.loads(path.read_text(encoding="utf-8"))["current"])

    def attempts(self) -> list[Attempt]:
        path = self.root / "attempts.jsonl"
        if not path.is_file():
            return []
        attempts = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                attempts.append(Attempt.from_dict(json.loads(line)))
            except (json.JSONDecodeError, TypeError):
                continue  # a line cut by a crash mid-write
        return attempts

    # writing (hold `locked()`) -------------------------------------------------

    @contextmanager
    def locked(self) -> Iterator[None]:
        """One writer at a time per profile, across processes (the learner's child, `models rollback`)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def adopt(self, reading_now: Path) -> ModelVersion:
        """The version the profile reads now, kept first if it is not one yet (the model before learning, or one put in by hand)."""
        digest = network_digest(reading_now)
        current = self.current()
        if current is not None and self.version(current).digest == digest:
            return self.version(current)
        origin: Origin = "before-learning" if current is None else "outside"
        version = self.add(reading_now, ModelVersion(self._next_number(), origin, time.time(), digest))
        self._set_current(version.number)
        return version

    def add(self, folder: Path, version: ModelVersion) -> ModelVersion:
        """Copy `folder` in as `version` (its number must be new); the copy lands whole or not at all."""
        target = self.folder_of(version.number)
        staging = target.with_name(f".{version.number}.new")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(folder, staging, ignore=shutil.ignore_patterns("checkpoint.pt", "*.tmp", ".*.swap"))
        write_atomic(staging / "version.json", json.dumps(version.to_dict(), indent=2))
        staging.rename(target)
        return version

    def add_learnt(self, folder: Path, figures: ModelVersion) -> ModelVersion:
        """Keep a newly trained model as the next version and make it the live one."""
        version = self.add(folder, _numbered(figures, self._next_number(), network_digest(folder)))
        self.install(version.number)
        return version

    def install(self, number: int) -> None:
        """Make version `number` the profile's live model, for the next job read."""
        source = self.folder_of(self.version(number).number)
        self.live.mkdir(parents=True, exist_ok=True)
        names = [name for name in _SWAP_ORDER if (source / name).is_file()]
        names = [
            path.name for path in source.iterdir() if path.is_file() and path.name not in (*names, "version.json")
        ] + names
        for name in names:
            temporary = self.live / f".{name}.swap"
            shutil.copyfile(source / name, temporary)  # a fresh mtime: the recognizer's cache loads it anew
            os.replace(temporary, self.live / name)
        self._set_current(number)

    def record(self, attempt: Attempt) -> None:
        with (self.root / "attempts.jsonl").open("a", encoding="utf-8") as log:
            log.write(json.dumps(attempt.to_dict(), ensure_ascii=False) + "\n")
            log.flush()
            os.fsync(log.fileno())

    def has_run(self, run_id: str) -> bool:
        return any(attempt.run_id == run_id for attempt in self.attempts())

    def _next_number(self) -> int:
        versions = self.versions()
        return versions[-1].number + 1 if versions else 0

    def _set_current(self, number: int) -> None:
        write_atomic(self.root / "registry.json", json.dumps({"current": number, "schema_version": SCHEMA_VERSION}))


def network_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    with (folder / HANDWRITING.onnx_file).open("rb") as network:
        for block in iter(lambda: network.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _numbered(figures: ModelVersion, number: int, digest: str) -> ModelVersion:
    return ModelVersion(**{**figures.to_dict(), "number": number, "digest": digest})


def _read_version(path: Path) -> ModelVersion | None:
    try:
        return ModelVersion.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError, TypeError):
        return None
