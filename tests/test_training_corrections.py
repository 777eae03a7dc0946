"""`hwdaemon train --from-corrections`: approved lines become training data; a worse model is never installed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

from hwdaemon.cli import cli
from hwdaemon.config import load_config
from hwdaemon.daemon.previews import encode_previews, save_previews
from hwdaemon.model import Box, Document, Line, Page, PageResult, Result
from hwdaemon.plugins import Registry
from hwdaemon.review import apply_edits
from hwdaemon.store import Store
from hwdaemon.training.corrections import approved_lines
from rendering import render_lines

TEXTS = [
    "Pick up the parcel", "Ring the dentist", "Water the tomatoes", "Pay the gas bill", "Fix the garden gate",
    "Book the train north", "Return library books", "Call Aunt Rosalind", "Buy flour and yeast", "Post the birthday card",
    "Mend the blue jacket", "Order more firewood", "Wash the car Sunday", "Send the forms back", "Plant the tulip bulbs",
    "Clean the gutters", "Renew the passport", "Walk the dog early", "Sort the old photos", "Oil the bicycle chain",
]  # fmt: skip


def write_config(folder: Path, **recognizer: str) -> Path:
    config = {
        "state_dir": str(folder / "state"),
        "profiles": {
            "mine": {"recognizer": {"type": "handwriting", **recognizer}, "postprocess": ["normalize_whitespace"]}
        },
        "inboxes": [{"path": str(folder / "inbox"), "profile": "mine"}],
        "sinks": {"outbox": {"type": "file", "path": str(folder / "outbox")}},
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def write_manifest(folder: Path, texts: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for number, text in enumerate(texts):
        Image.fromarray(render_lines([text], font_size=36)).save(folder / f"line-{number:02}.png")
        lines.append(
            json.dumps(
                {"image": f"line-{number:02}.png", "text": text, "kind": "line", "lang": "en", "source": "me/notes"}
            )
        )
    manifest = folder / "manifest.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def test_approved_revisions_are_cropped_from_the_previews(tmp_path: Path, registry: Registry) -> None:
    config = load_config(write_config(tmp_path), registry)
    store = Store(config.state_dir)
    page_image = render_lines(["first line here", "second line there"], font_size=40)
    height, width = page_image.shape
    half = height // 2
    lines = (
        Line("frst line hera", 0.3, Box(0, 0, width, half).polygon),
        Line("second line there", 0.9, Box(0, half, width, height - half).polygon),
    )
    result = Result("note.png", "ab" * 32, "mine", (PageResult(1, width, height, lines),))
    job = store.jobs.add(str(tmp_path / "inbox/note.png"), str(tmp_path / "inbox"), "mine", result.sha256, 1, 1)
    store.jobs.finish(job.id, result, [])
    save_previews(
        encode_previews(Document("note.png", result.sha256, (Page(1, page_image),)), max_side=width // 2),
        config.state_dir,
        job.id,
    )
    assert approved_lines(store, config.state_dir, "mine") == []  # not approved yet
    store.review.add_revision(job.id, apply_edits(result, 1, {0: "first line here"}, 1), "ada")
    store.review.approve(job.id, 1, "ada", [])
    samples = approved_lines(store, config.state_dir, "mine")
    assert [sample.text for sample in samples] == ["first line here", "second line there"]
    assert {sample.document for sample in samples} == {f"job-{job.id}"}
    first = samples[0].image
    assert first.shape[1] > width // 2 - 10 and first.shape[0] < half  # scaled to the half-size preview
    assert (first < 128).any()  # the ink is in the crop


@pytest.mark.slow
def test_a_worse_model_is_refused_and_nothing_changes(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    manifest = write_manifest(tmp_path / "mine", TEXTS[:12])
    result = CliRunner().invoke(
        cli, ["train", "--from-corrections", "--profile", "mine", "--config", str(config), "--manifest", str(manifest),
              "--epochs", "1", "--learning-rate", "0.5", "--device", "cpu"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["installed"] is False and report["new_cer"] > report["current_cer"]
    assert "kept the current model" in result.stderr
    assert not (tmp_path / "state" / "models" / "mine").exists()


@pytest.mark.slow
def test_a_better_model_is_installed_for_that_profile_only(tmp_path: Path, registry: Registry) -> None:
    config_path = write_config(tmp_path)
    manifest = write_manifest(tmp_path / "mine", TEXTS)
    result = CliRunner().invoke(
        cli, ["train", "--from-corrections", "--profile", "mine", "--config", str(config_path), "--manifest", str(manifest),
              "--epochs", "3", "--device", "cpu"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["installed"] is True and report["new_cer"] < report["current_cer"], report
    installed = tmp_path / "state" / "models" / "mine" / "handwriting"
    card = json.loads((installed / "model.json").read_text())
    assert (installed / "weights.pth").is_file() and card["held_back_cer"] == report["new_cer"]
    assert (
        report["new_cer"] == min(report["fine_tuned_cer"], report["mean_cer"]) and card["kind"] == report["new_model"]
    )

    from hwdaemon.builtins.recognizers.handwriting import SHIPPED_MODEL
    from hwdaemon.pipeline import Pipeline

    config = load_config(config_path, registry)
    mine = Pipeline.from_profile("mine", config.profile("mine"), config.models, registry).recognizer
    other = Pipeline.from_profile("other", config.profile("mine"), config.models, registry).recognizer
    assert mine.model_dir() == installed.resolve() and other.model_dir() == SHIPPED_MODEL  # type: ignore[attr-defined]
    crop = np.asarray(Image.open(tmp_path / "mine" / "line-03.png").convert("L"))
    assert mine.recognize(crop, [Box(0, 0, crop.shape[1], crop.shape[0])])[0].text  # it loads and reads
