"""The tesseract recognizer plugin: registered through the entry point, used when a profile names it."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from hwdaemon.config import parse_config
from hwdaemon.model import Document, Page
from hwdaemon.pipeline import Pipeline
from hwdaemon.plugin_api import ModelMissingError
from hwdaemon.plugins import build_registry
from hwdaemon_tesseract import TesseractRecognizer

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
from rendering import render_lines


@pytest.fixture(scope="module")
def registry():  # type: ignore[no-untyped-def]
    if shutil.which("tesseract") is None:
        if os.environ.get("CI"):
            pytest.fail("tesseract not installed; scripts/setup --test installs tesseract-ocr as root")
        pytest.skip("tesseract not installed (Debian: tesseract-ocr tesseract-ocr-eng)")
    return build_registry()


def test_registered_and_used_when_a_profile_names_it(registry) -> None:  # type: ignore[no-untyped-def]
    assert registry.get("recognizer", "tesseract") is TesseractRecognizer
    config = parse_config("profiles:\n  tess: {recognizer: {type: tesseract}}\n", "cfg.yaml", registry)
    pipeline = Pipeline.from_profile("tess", config.profile("tess"), config.models, registry)
    pipeline.check_ready()
    assert isinstance(pipeline.recognizer, TesseractRecognizer)
    page = render_lines(["The quick brown fox", "jumps over the lazy dog"], font_size=48)
    result = pipeline.run(Document("fox.png", "0" * 64, (Page(1, page),)))
    assert len(result.lines) == 2
    assert any(word in result.text.lower() for word in ("quick", "brown", "lazy", "over", "the"))
    assert all(0 <= line.confidence <= 1 for line in result.lines)


def test_missing_language_data_is_named(registry) -> None:  # type: ignore[no-untyped-def]
    config = parse_config("profiles:\n  tess: {languages: [ja], recognizer: tesseract}\n", "cfg.yaml", registry)
    pipeline = Pipeline.from_profile("tess", config.profile("tess"), config.models, registry)
    with pytest.raises(ModelMissingError, match="no language data for \\['ja'\\]"):
        pipeline.check_ready()
