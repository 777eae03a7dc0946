"""Shared fixtures. EasyOCR is loaded once per session (the readers are cached process-wide)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from rapidfuzz.distance import Levenshtein

from hwdaemon.config import Config, load_config
from hwdaemon.plugins import Registry, build_registry

REPO_ROOT = Path(__file__).resolve().parents[1]
DEV_DATA = Path(os.environ.get("HWDAEMON_DEV_DATA", REPO_ROOT.parent / "shared" / "data"))


def character_error_rate(reference: str, hypothesis: str) -> float:
    reference, hypothesis = " ".join(reference.split()), " ".join(hypothesis.split())
    return Levenshtein.distance(reference, hypothesis) / max(1, len(reference))


@pytest.fixture(scope="session")
def registry() -> Registry:
    return build_registry()


@pytest.fixture(scope="session")
def default_config(registry: Registry) -> Config:
    return load_config(None, registry)


@pytest.fixture(scope="session")
def default_pipeline(default_config: Config, registry: Registry):  # type: ignore[no-untyped-def]
    from hwdaemon.pipeline import Pipeline

    return Pipeline.from_profile("default", default_config.profile("default"), default_config.models, registry)


@pytest.fixture(scope="session")
def dev_manifest() -> list[dict[str, str]]:
    manifest = DEV_DATA / "manifest.jsonl"
    if not manifest.is_file():
        pytest.skip(f"labelled dev data not found at {DEV_DATA} (set HWDAEMON_DEV_DATA); skipping")
    return [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture
def chdir_tmp(tmp_path: Path) -> Iterator[Path]:
    previous = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(previous)
