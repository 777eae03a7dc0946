"""The command line's own rules: quick commands load nothing heavy, and `train` takes its options from flags or a file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hwdaemon.cli import cli
from hwdaemon.cli.training import train, training_options
from hwdaemon.training.options import TrainingOptions

HEAVY = ("cv2", "torch", "easyocr", "onnxruntime", "hwdaemon.pipeline")


def heavy_modules_loaded_by(code: str) -> list[str]:
    """The heavy modules a fresh interpreter has loaded after running `code`."""
    probe = f"import sys\n{code}\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    outcome = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return [name for name in outcome.stdout.strip().split(",") if name]


def test_every_commands_help_loads_neither_opencv_nor_torch() -> None:
    code = (
        "from click.testing import CliRunner\nfrom hwdaemon.cli import cli\n"
        "for name in [None, *cli.commands]:\n"
        "    outcome = CliRunner().invoke(cli, [name, '--help'] if name else ['--help'])\n"
        "    assert outcome.exit_code == 0, (name, outcome.output)"
    )
    assert heavy_modules_loaded_by(code) == []


def test_importing_the_daemon_commands_loads_neither_opencv_nor_torch() -> None:
    assert heavy_modules_loaded_by("import hwdaemon.cli.daemon") == []


def options_from(arguments: list[str]) -> TrainingOptions:
    """What `hwdaemon train ARGUMENTS` would train with, without training."""
    context = train.make_context("train", arguments)
    flags = dict(context.params)
    flags.pop("config_path")
    return training_options(context, flags.pop("options_file"), flags)


def test_train_without_flags_has_the_options_defaults() -> None:
    assert options_from([]) == TrainingOptions()


def test_train_flags_become_typed_options() -> None:
    options = options_from(["--source", "a/b=lines.jsonl", "--line-type", "a/b=Handwritten", "--line-type", "a/b=Print",
                            "--oversample", "a/b=3", "--drop-pattern", r"\d+", "--epochs", "0.5", "--schedule", "cosine"])  # fmt: skip
    assert options.sources == (("a/b", Path("lines.jsonl")),)
    assert options.line_types == {"a/b": ("Handwritten", "Print")}
    assert options.oversample == {"a/b": 3}
    assert options.drop_patterns == (r"\d+",) and options.epochs == 0.5 and options.schedule == "cosine"


def test_an_options_file_supplies_what_the_flags_do_not(tmp_path: Path) -> None:
    (tmp_path / "rules.tsv").write_text("")
    file = tmp_path / "run.yaml"
    file.write_text(
        f"sources: [a/b=x.jsonl, c/d=y]\nexclusions: {tmp_path / 'rules.tsv'}\nbatch_size: 32\nepochs: 2\noversample: c/d=4\n"
    )
    options = options_from(["--options", str(file), "--batch-size", "8"])
    assert options.sources == (("a/b", Path("x.jsonl")), ("c/d", Path("y")))
    assert options.exclusions == tmp_path / "rules.tsv"
    assert options.batch_size == 8  # the flag wins
    assert options.epochs == 2.0 and options.oversample == {"c/d": 4}


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("batch_size: 8\nbatch-size: 16\n", "run.yaml:2 batch-size: not a training option"),
        ("epochs: many\n", "run.yaml:1 epochs: 'many' is not a valid float"),
        ("sources: [no-equals-sign]\n", "run.yaml:1 sources:"),
        ("exclusions: /nowhere/rules.tsv\n", "run.yaml:1 exclusions:"),
        ("- batch_size\n", "run.yaml: the top level must be a mapping"),
    ],
)
def test_a_bad_options_file_is_a_config_error_naming_line_and_key(tmp_path: Path, text: str, named: str) -> None:
    file = tmp_path / "run.yaml"
    file.write_text(text)
    outcome = CliRunner().invoke(cli, ["train", "--options", str(file)])
    assert outcome.exit_code == 78, outcome.output
    assert named in outcome.stderr


def test_public_data_options_make_the_request_the_train_command_always_made(tmp_path: Path) -> None:
    options = TrainingOptions(sources=(("a/b", tmp_path),), exclusions=tmp_path / "rules.tsv", out=tmp_path / "run",
                              line_types={"a/b": ("Handwritten",)})  # fmt: skip
    request = options.public_data_request()
    assert (request.epochs, request.learning_rate, request.fonts, request.synthetic_languages) == (
        1.0,
        3e-4,
        None,
        ["en"],
    )
    assert request.sources == [("a/b", tmp_path)] and request.line_types == {"a/b": ["Handwritten"]}


def test_corrections_keep_their_tuned_defaults_unless_told() -> None:
    from hwdaemon.training.corrections import CORRECTIONS_SETTINGS

    assert TrainingOptions().corrections_settings() == CORRECTIONS_SETTINGS
    told = TrainingOptions(epochs=2, learning_rate=1e-4, batch_size=4, device="cpu").corrections_settings()
    assert (told.epochs, told.learning_rate, told.batch_size, told.device, told.patience) == (
        2,
        1e-4,
        4,
        "cpu",
        CORRECTIONS_SETTINGS.patience,
    )
