"""Config loading: the example validates, mistakes are named with their line, secrets come from env."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import REPO_ROOT
from hwdaemon.cli import cli
from hwdaemon.config import load_config, parse_config
from hwdaemon.errors import ConfigError, ModelMissingError
from hwdaemon.plugins import Registry

MINIMAL = """\
profiles:
  default:
    languages: [en]
    preprocess:
      - grayscale
      - {type: denoise, method: median}
"""


def test_example_config_validates_every_key(registry: Registry) -> None:
    config = load_config(REPO_ROOT / "config.example.yaml", registry)
    assert config.inboxes and config.sinks and len(config.profiles) >= 2


def test_embedded_default_watches_inbox_and_writes_outbox(registry: Registry) -> None:
    config = load_config(None, registry)
    assert config.inboxes[0].path == Path("inbox")
    assert config.sinks["outbox"].type == "file" and config.sinks["outbox"].options["path"] == "./outbox"


def test_a_key_a_profile_leaves_out_means_what_it_means_in_the_embedded_default(registry: Registry) -> None:
    default = load_config(None, registry).profile("default")
    for text in ("state_dir: ./state\n", "profiles:\n  letters:\n    languages: [en]\n"):
        profile = next(iter(parse_config(text, "test.yaml", registry).profiles.values()))
        assert profile.model_dump(exclude={"user_words_file"}) == default.model_dump(
            exclude={"user_words_file"}
        )  # our handwriting model, not english_g2


def test_misspelt_top_level_key_is_named_with_its_line(registry: Registry) -> None:
    with pytest.raises(ConfigError, match=r"cfg.yaml:2 stat_dir: Extra inputs are not permitted"):
        parse_config("workers: 1\nstat_dir: /tmp\n", "cfg.yaml", registry)


def test_misspelt_step_option_is_named_with_its_line(registry: Registry) -> None:
    text = MINIMAL.replace("method: median", "methd: median")
    with pytest.raises(ConfigError, match=r"cfg.yaml:6 profiles.default.preprocess\[1\].methd: .*unknown option"):
        parse_config(text, "cfg.yaml", registry)


def test_bad_option_value_is_rejected(registry: Registry) -> None:
    text = MINIMAL.replace("method: median", "method: bilateral")
    with pytest.raises(ConfigError, match=r"preprocess\[1\].method: Input should be 'median', 'nlmeans' or 'gaussian'"):
        parse_config(text, "cfg.yaml", registry)


def test_unknown_step_type_lists_the_installed_ones(registry: Registry) -> None:
    with pytest.raises(
        ConfigError, match=r"cfg.yaml:5 .*no step named 'greyscale' is installed; installed: .*grayscale"
    ):
        parse_config(MINIMAL.replace("- grayscale", "- greyscale"), "cfg.yaml", registry)


def test_inbox_pointing_to_a_missing_sink_is_refused(registry: Registry) -> None:
    text = "inboxes:\n  - path: /tmp/in\n    sinks: [nowhere]\n"
    with pytest.raises(ConfigError, match=r"cfg.yaml:3 inboxes\[0\].sinks\[0\]: no sink 'nowhere'"):
        parse_config(text, "cfg.yaml", registry)


def test_environment_variables_fill_secrets(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HW_OUT", "/srv/out")
    config = parse_config("sinks:\n  out: {type: file, path: '${HW_OUT}'}\n", "cfg.yaml", registry)
    assert config.sinks["out"].options["path"] == "/srv/out"


def test_missing_environment_variable_is_named(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HW_NOT_SET", raising=False)
    with pytest.raises(ConfigError, match=r"cfg.yaml:2 sinks.out.path: environment variable HW_NOT_SET is not set"):
        parse_config("sinks:\n  out: {type: file, path: '${HW_NOT_SET}'}\n", "cfg.yaml", registry)


def test_language_without_weights_names_the_missing_file(registry: Registry, tmp_path: Path) -> None:
    from hwdaemon.pipeline import Pipeline

    config = parse_config("profiles:\n  french: {languages: [fr], recognizer: easyocr}\n", "cfg.yaml", registry)
    pipeline = Pipeline.from_profile("french", config.profile("french"), config.models, registry)
    with pytest.raises(
        ModelMissingError,
        match=r"missing model file latin_g2.pth for languages \['fr'\]; searched: .*easyocr_en_models",
    ):
        pipeline.check_ready()


def test_check_config_exit_codes(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(MINIMAL)
    bad = tmp_path / "bad.yaml"
    bad.write_text("profiles:\n  default:\n    langages: [en]\n")
    french = tmp_path / "french.yaml"
    french.write_text("profiles:\n  default: {languages: [fr], recognizer: easyocr}\n")
    runner = CliRunner()
    assert runner.invoke(cli, ["check-config", str(good)]).exit_code == 0
    outcome = runner.invoke(cli, ["check-config", str(bad)])
    assert outcome.exit_code == 78 and "bad.yaml:3 profiles.default.langages" in outcome.stderr
    outcome = runner.invoke(cli, ["check-config", str(french)])
    assert outcome.exit_code == 69 and "latin_g2.pth" in outcome.stderr


def test_model_dirs_are_searched_before_the_embedded_weights(registry: Registry, tmp_path: Path) -> None:
    from hwdaemon.builtins.easyocr_reader import resolve_model_dir

    (tmp_path / "latin_g2.pth").write_bytes(b"weights")
    assert resolve_model_dir(("fr",), (tmp_path,), False, "recognizer") == tmp_path


def test_celery_queue_needs_a_broker_and_takes_its_password_from_the_environment(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match=r"queue.backend celery needs queue.broker_url"):
        parse_config("queue: {backend: celery}\n", "c.yaml", registry)
    monkeypatch.setenv("REDIS_PASSWORD", "hunter2-hunter2")
    config = parse_config(
        "queue: {backend: celery, broker_url: 'redis://:${REDIS_PASSWORD}@10.0.0.5:6379/0'}\n", "c.yaml", registry
    )
    assert config.queue.broker_url == "redis://:hunter2-hunter2@10.0.0.5:6379/0"
    from hwdaemon.distributed.celery_app import redacted

    assert redacted(config.queue.broker_url) == "redis://:***@10.0.0.5:6379/0"


def test_each_profile_has_a_words_file_under_the_state_folder_unless_placed_elsewhere(registry: Registry) -> None:
    """So the review page's "Add word" works without any configuration."""
    config = parse_config(
        "state_dir: /srv/hw\nprofiles:\n  letters: {}\n  forms: {user_words_file: /etc/hw/forms.txt}\n",
        "cfg.yaml",
        registry,
    )
    assert config.profile("letters").user_words_file == Path("/srv/hw/words/letters.txt")
    assert config.profile("forms").user_words_file == Path("/etc/hw/forms.txt")
