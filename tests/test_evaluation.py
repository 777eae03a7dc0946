"""hwdaemon eval: CER/WER arithmetic on a hand-made manifest with a recognizer whose output is known."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import DEV_DATA
from hwdaemon.cli import cli
from hwdaemon.config import InputsConfig, parse_config
from hwdaemon.evaluation import Tally, evaluate, normalise, read_manifest
from hwdaemon.hookspecs import hookimpl
from hwdaemon.model import Box, Line
from hwdaemon.pipeline import Pipeline
from hwdaemon.pipeline.stages import Recognizer
from hwdaemon.plugins import build_registry, get_plugin_manager
from rendering import render_lines, save


class ParrotRecognizer(Recognizer):
    """Reads every line as 'hello wrld': a known answer for known arithmetic."""

    name = "parrot"
    calls: ClassVar[list[str]] = []

    def load(self) -> None:
        self.calls.append("load")

    def recognize(self, image: np.ndarray, boxes: Sequence[Box]) -> list[Line]:
        self.calls.append("recognize")
        return [Line("hello wrld", 0.5, box.polygon) for box in boxes]


class ParrotPlugin:
    @hookimpl
    def hwdaemon_register_recognizers(self) -> list[type[Recognizer]]:
        return [ParrotRecognizer]


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    save(render_lines(["anything at all"]), tmp_path / "one.png")
    save(render_lines(["anything else"]), tmp_path / "two.png")
    (tmp_path / "broken.png").write_text("not an image")
    rows = [
        {"id": "a", "image": "one.png", "text": "hello world", "kind": "line", "lang": "en"},
        {"id": "b", "image": "two.png", "text": "Hello  World", "kind": "line", "lang": "en"},
        {"id": "c", "image": "broken.png", "text": "abc", "kind": "page", "lang": "fr"},
    ]
    path = tmp_path / "manifest.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    return path


def test_known_cer_and_wer_per_group(manifest: Path) -> None:
    manager = get_plugin_manager()
    manager.register(ParrotPlugin(), name="parrot")
    registry = build_registry(manager)
    config = parse_config("profiles:\n  parrot: {recognizer: parrot}\n", "cfg.yaml", registry)
    pipeline = Pipeline.from_profile("parrot", config.profile("parrot"), config.models, registry)
    report = evaluate(pipeline, read_manifest(manifest), InputsConfig()).to_dict()
    lines = next(group for group in report["groups"] if group["kind"] == "line")
    # "hello world" vs "hello wrld": 1 edit; "Hello World" vs "hello wrld": 3 edits (H, W, o); 22 chars.
    assert lines["cer"] == round(4 / 22, 4)
    assert lines["cer_ignoring_case"] == round(2 / 22, 4)
    assert lines["wer"] == round(3 / 4, 4)  # world→wrld; Hello→hello, World→wrld
    pages = next(group for group in report["groups"] if group["kind"] == "page")
    assert pages["failed"] == 1 and pages["cer"] == 1.0  # an unreadable image reads as nothing
    assert report["all"]["items"] == 3
    assert ParrotRecognizer.calls[:2] == ["load", "recognize"]  # loaded before the clock runs for the first item


def test_normalisation_ignores_unicode_form_quotes_and_spacing() -> None:
    tally = Tally()
    tally.add("l’école  est\nfermée", "l'e\u0301cole est fermée", 0.1)
    assert tally.char_edits == 0 and normalise(" a \n b ") == "a b"


def test_bad_manifest_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"image": "x.png", "text": "ok"}\n{"text": "no image"}\n')
    outcome = CliRunner().invoke(cli, ["eval", str(path)])
    assert outcome.exit_code == 78 and "m.jsonl:2: not a manifest line" in outcome.stderr


def test_eval_command_on_dev_lines_prints_a_table(dev_manifest: list[dict[str, str]], tmp_path: Path) -> None:
    outcome = CliRunner().invoke(
        cli,
        ["eval", str(DEV_DATA / "manifest.jsonl"), "--kind", "word", "--json", "--readings", str(tmp_path / "r.jsonl")],
    )
    assert outcome.exit_code == 0, outcome.output
    report = json.loads(outcome.stdout)[0]
    assert report["profile"] == "default" and report["all"]["items"] == 3
    assert 0 <= report["all"]["cer"] <= 1.5 and report["peak_rss_mb"] > 100
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 3


def test_eval_reads_only_the_languages_asked_for(manifest: Path) -> None:
    """`--lang fr` lets a French profile read the French items alone (its decoder spells French)."""
    outcome = CliRunner().invoke(cli, ["eval", str(manifest), "--lang", "fr", "--json"])
    assert outcome.exit_code == 0, outcome.output
    report = json.loads(outcome.stdout)[0]
    assert report["all"]["items"] == 1 and [group["lang"] for group in report["groups"]] == ["fr"]
    missing = CliRunner().invoke(cli, ["eval", str(manifest), "--lang", "de", "--kind", "line"])
    assert missing.exit_code != 0 and "no items of kind line in de" in missing.output
