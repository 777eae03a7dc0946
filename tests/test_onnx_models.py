"""The pipeline reads our networks' ONNX copies: the same outputs as the trained weights, and no torch in the process."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO_ROOT
from hwdaemon.builtins.detectors.linenet import SHIPPED_LINENET, shrink, to_network_input
from hwdaemon.builtins.recognizers.handwriting import SHIPPED_MODEL
from hwdaemon.builtins.recognizers.handwriting_model import HandwritingModel, load_model
from hwdaemon.config import PieceConfig
from hwdaemon.errors import ModelMissingError
from hwdaemon.pipeline.onnx_runtime import open_session, run
from hwdaemon.pipeline.stages import PieceContext
from hwdaemon.plugins import Registry
from hwdaemon.training.crnn import load_network, torch_forward
from hwdaemon.training.linenet_network import load_linenet
from rendering import render_lines, save

LETTER = ["Dear Margaret, thank you for", "the parcel and the kind words", "about our garden in spring."]


def test_the_shipped_recognizer_onnx_copy_computes_what_its_weights_do() -> None:
    network, card = load_network(SHIPPED_MODEL)
    page = render_lines(LETTER, font_size=40)
    crops = [page[:90], page[60:170, :500], page[:, :40]]  # a line, part of one, and a sliver
    ours = HandwritingModel(torch_forward(network), card["charset"], card).probabilities(crops)
    onnx = load_model(SHIPPED_MODEL).probabilities(crops)
    assert [rows.shape for rows in ours] == [rows.shape for rows in onnx]
    assert max(float(np.abs(mine - theirs).max()) for mine, theirs in zip(ours, onnx, strict=True)) < 1e-4


def test_the_shipped_segmenter_onnx_copy_computes_what_its_weights_do() -> None:
    page = np.full((1100, 800), 250, dtype=np.uint8)
    written = render_lines(LETTER, font_size=34)
    page[100 : 100 + written.shape[0], 40 : 40 + written.shape[1]] = written[:, :760]
    small, _ = shrink(page)
    band = to_network_input(small[:320, : -(small.shape[1] % 16) or None])[None, None]
    with torch.inference_mode():
        ours = torch.sigmoid(load_linenet(SHIPPED_LINENET)(torch.from_numpy(band))).numpy()
    assert np.abs(ours - run(open_session(SHIPPED_LINENET / "linenet.onnx"), band)).max() < 1e-4


def test_a_model_saved_without_its_onnx_copy_gets_one(registry: Registry, tmp_path: Path) -> None:
    """Models a user fine-tuned before models carried their ONNX copy keep being read, not skipped for the shipped one."""
    for name in ("weights.pth", "model.json"):
        shutil.copy(SHIPPED_MODEL / name, tmp_path / name)
    recognizer = registry.create(
        "recognizer",
        PieceConfig(type="handwriting", options={"model_dir": str(tmp_path), "decoder": "greedy"}),
        PieceContext(),
    )
    recognizer.check_ready()
    assert (tmp_path / "model.onnx").is_file()
    assert (
        load_model(tmp_path).read([render_lines(LETTER[:1], font_size=40)])[0][0]
        == load_model(SHIPPED_MODEL).read([render_lines(LETTER[:1], font_size=40)])[0][0]
    )


def test_a_segmenter_saved_without_its_onnx_copy_gets_one(registry: Registry, tmp_path: Path) -> None:
    for name in ("linenet.pth", "model.json"):
        shutil.copy(SHIPPED_LINENET / name, tmp_path / name)
    registry.create(
        "detector", PieceConfig(type="linenet", options={"model_dir": str(tmp_path)}), PieceContext()
    ).check_ready()
    assert (tmp_path / "linenet.onnx").is_file()


def test_a_damaged_model_file_is_named(tmp_path: Path) -> None:
    for name in ("model.json", "weights.pth"):
        shutil.copy(SHIPPED_MODEL / name, tmp_path / name)
    (tmp_path / "model.onnx").write_bytes(
        (SHIPPED_MODEL / "model.onnx").read_bytes()[:5000]
    )  # cut short, as by a full disk
    with pytest.raises(ModelMissingError, match=r"model.onnx is not a readable ONNX model"):
        load_model(tmp_path)


READ_A_PAGE = """
import sys
from pathlib import Path
from hwdaemon.config import load_config
from hwdaemon.inputs import open_document
from hwdaemon.pipeline import Pipeline
from hwdaemon.plugins import build_registry
registry = build_registry()
config = load_config(None, registry)
pipeline = Pipeline.from_profile("default", config.profile("default"), config.models, registry)
with open_document(Path(sys.argv[1]), config.inputs) as document:
    result = pipeline.run(document)
print(result.text)
print("torch imported:", "torch" in sys.modules)
"""


def test_the_default_profile_reads_a_page_without_importing_torch(tmp_path: Path) -> None:
    page = np.full((1300, 1000), 248, dtype=np.uint8)
    written = render_lines(LETTER, font_size=40, line_spacing=2.2)
    page[150 : 150 + written.shape[0], 50 : 50 + written.shape[1]] = written[:, :950]
    scan = save(page, tmp_path / "letter.png")
    output = subprocess.run(
        [sys.executable, "-c", READ_A_PAGE, str(scan)], capture_output=True, text=True, cwd=REPO_ROOT, check=True
    ).stdout
    text, flag = output.rstrip("\n").rsplit("\n", 1)
    assert flag == "torch imported: False"
    assert len(text.splitlines()) == len(LETTER) and "garden" in text
