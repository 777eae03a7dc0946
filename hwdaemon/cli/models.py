"""`hwdaemon models`: each profile's model versions with their figures, and `models rollback` to restore one.

The versions are those continuous learning kept (docs/learning.md); the
library is hwdaemon/learning/. Nothing here loads a model or torch.
"""

from __future__ import annotations

import json
import time
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from hwdaemon.cli.loading import CONFIG_OPTION, load, open_store
from hwdaemon.config import Config
from hwdaemon.errors import ModelVersionError

if TYPE_CHECKING:
    from hwdaemon.learning.registry import ModelRegistry, ModelVersion
    from hwdaemon.store import Store

ATTEMPTS_SHOWN = 5


@click.group(invoke_without_command=True)
@click.option("--profile", help="Only this profile (default: every profile that learns or has kept versions).")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@CONFIG_OPTION
@click.pass_context
def models(ctx: click.Context, /, profile: str | None, as_json: bool, config_path: Path | None) -> None:
    """List each profile's model versions: which one it reads, lines learnt, held-back CER before → after.

    Every model continuous learning installed is kept as a version, with the
    model it replaced (version 0 is the one read before learning began); the
    last trainings are listed with what came of them and why.

    Examples:
      hwdaemon models
      hwdaemon models --profile letters --json
      hwdaemon models rollback letters        # back to the version before the current one
      hwdaemon models rollback letters 0      # back to the model read before learning began
    """
    if ctx.invoked_subcommand is not None:
        return
    from hwdaemon.learning.places import learning_profiles, registry_for

    config, _ = load(config_path)
    if profile is not None:
        names = [profile]
        config.profile(profile)  # an unknown profile is a ConfigError naming those defined
    else:
        kept = [name for name in config.profiles if registry_for(config, name).versions()]
        names = sorted({*learning_profiles(config), *kept})
    with closing(open_store(config)) as store:
        listing = [_profile_listing(config, store, name) for name in names]
    if as_json:
        click.echo(json.dumps({"profiles": listing}, indent=2, ensure_ascii=False))
        return
    if not listing:
        click.echo("no profile learns yet; set learning: {enabled: true} in a profile (docs/learning.md)")
    for entry in listing:
        _print_profile(entry)


@models.command()
@click.argument("profile")
@click.argument("version", type=int, required=False)
@CONFIG_OPTION
def rollback(profile: str, version: int | None, config_path: Path | None) -> None:
    """Make PROFILE read model VERSION again (default: the version the current one was trained from).

    The next job read uses it; the daemon need not restart. The newer versions
    stay kept, so a rollback can itself be undone. Learning starts again once
    `min_new_lines` more lines are approved.

    Example: hwdaemon models rollback letters 2
    """
    from hwdaemon.learning.places import registry_for

    config, _ = load(config_path)
    config.profile(profile)
    registry = registry_for(config, profile)
    with registry.locked():
        try:
            current = registry.current()
        except (ValueError, KeyError, TypeError):  # a damaged registry.json: installing a named version rewrites it
            current = None
        target = version if version is not None else _previous(registry, current)
        registry.install(registry.version(target).number)
    click.echo(f"profile {profile}: reads model version {target} now (was {current}); from {registry.live}")


def learning_summaries(config: Config, store: Store) -> list[dict[str, Any]]:
    """The learning summary of each profile that learns, for `status`."""
    from hwdaemon.learning.places import learning_profiles
    from hwdaemon.learning.summary import learning_summary

    return [learning_summary(config, store, profile).to_dict() for profile in learning_profiles(config)]


def describe_learning(summary: dict[str, Any]) -> str:
    """One line of `status` for a profile's learning."""
    version = summary["version"]
    model = "the model before learning" if not version else f"model version {version}"
    if version and summary["cer_before"] is not None:
        model += f" (learnt {summary['lines_learnt']} lines; held-back CER {_percent(summary['cer_before'])} → {_percent(summary['cer_after'])})"
    line = f"learning {summary['profile']}: {model}; {summary['approved_since']} of {summary['min_new_lines']} new lines approved"
    progress = summary["progress"]
    if summary["state"] in ("training", "paused"):
        where = f", epoch {progress['epoch']} step {progress.get('steps', '?')}" if progress else ""
        line += f"; {summary['state']}{where}"
    attempt = summary["last_attempt"]
    if attempt and attempt["outcome"] != "installed":
        line += f"; last training {attempt['outcome']}: {attempt['reason']}"
    return line


def _profile_listing(config: Config, store: Store, profile: str) -> dict[str, Any]:
    from hwdaemon.learning.places import registry_for
    from hwdaemon.learning.summary import learning_summary

    registry = registry_for(config, profile)
    return {
        "profile": profile,
        "live": str(registry.live),
        "summary": learning_summary(config, store, profile).to_dict(),
        "versions": [version.to_dict() for version in registry.versions()],
        "attempts": [attempt.to_dict() for attempt in registry.attempts()[-ATTEMPTS_SHOWN:]],
    }


def _print_profile(entry: dict[str, Any]) -> None:
    summary = entry["summary"]
    click.echo(describe_learning(summary))
    for version in entry["versions"]:
        marker = "*" if version["number"] == summary["version"] else " "
        made = time.strftime("%Y-%m-%d %H:%M", time.localtime(version["created_at"]))
        figures = ""
        if version["origin"] == "learnt":
            figures = (
                f"from {version['base_version']} ({version['kind']}), {version['lines_learnt']} lines, held-back CER "
                f"{_percent(version['cer_before'])} → {_percent(version['cer_after'])} on {version['held_back_lines']} lines"
            )
        click.echo(f" {marker} {version['number']:>3}  {made}  {version['origin']:<15} {figures}".rstrip())
    for attempt in entry["attempts"]:
        ended = time.strftime("%Y-%m-%d %H:%M", time.localtime(attempt["finished_at"]))
        click.echo(f"   training {ended}: {attempt['outcome']}: {attempt['reason']}")


def _previous(registry: ModelRegistry, current: int | None) -> int:
    """The version the current one was trained from, else the one kept before it."""
    if current is None:
        raise ModelVersionError(f"profile {registry.root.name} has no kept model versions yet; nothing to roll back")
    version: ModelVersion = registry.version(current)
    if version.base_version is not None:
        return version.base_version
    older = [kept.number for kept in registry.versions() if kept.number < current]
    if not older:
        raise ModelVersionError(
            f"profile {registry.root.name} reads version {current}, the oldest kept; name a newer one to go forward"
        )
    return older[-1]


def _percent(value: float | None) -> str:
    return "?" if value is None else f"{value:.1%}"


COMMANDS = (models,)
