"""The `hwdaemon` command line. Thin: parse options, call the library, print, map errors to exit codes."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import structlog

from hwdaemon import __version__
from hwdaemon.config import Config, load_config
from hwdaemon.errors import HwdaemonError, InputFileError, NoInputError
from hwdaemon.export import FORMATS, Format, render, write_atomic
from hwdaemon.inputs import expand_inputs, load_document
from hwdaemon.logging import configure_logging
from hwdaemon.model import Result
from hwdaemon.plugins import Registry, build_registry

log = structlog.get_logger()

CONFIG_OPTION = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="HWDAEMON_CONFIG",
    help="YAML config file (default: $HWDAEMON_CONFIG, else the embedded default).",
)


class HwdaemonGroup(click.Group):
    """Turns HwdaemonError into its message on stderr and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HwdaemonError as exc:
            click.echo(f"hwdaemon: error: {exc}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=HwdaemonGroup)
@click.version_option(__version__, prog_name="hwdaemon")
def cli() -> None:
    """Turn handwritten scans into text: watch inbox folders, or process files once."""


def _load(config_path: Path | None) -> tuple[Config, Registry]:
    registry = build_registry()
    return load_config(config_path, registry), registry


@dataclass
class FileOutcome:
    path: str
    ok: bool
    error: str | None = None
    outputs: list[str] = field(default_factory=list)
    seconds: float = 0.0
    pages: int = 0
    lines: int = 0
    mean_confidence: float | None = None


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@CONFIG_OPTION
@click.option("--profile", default="default", show_default=True, help="Profile (pipeline) to read with.")
@click.option("--format", "format_", type=click.Choice(FORMATS), default="txt", show_default=True)
@click.option("--output", "-o", default="-", show_default=True, help="Folder for <name>.<format> files, or - for stdout.")
@click.option("--recursive", "-r", is_flag=True, help="Descend into sub-folders of folder arguments.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout (needs --output DIR).")
@click.option("--verbose", "-v", is_flag=True, help="Log each stage to stderr.")
def process(
    paths: tuple[Path, ...],
    config_path: Path | None,
    profile: str,
    format_: Format,
    output: str,
    recursive: bool,
    as_json: bool,
    verbose: bool,
) -> None:
    """Read scans once and print or save their text.

    PATHS are image files (PNG, JPEG, TIFF incl. multi-page, BMP, WebP) or
    folders of them. Exit status: 0 all files read, 1 some failed, 2 usage,
    66 no input found, 69 model weights missing, 78 bad config.

    Example: hwdaemon process scans/ --format json --output out/
    """
    if as_json and output == "-":
        raise click.UsageError("--json prints a summary on stdout, so results need --output DIR")
    configure_logging("info" if verbose else "warning")
    config, registry = _load(config_path)
    from hwdaemon.pipeline import Pipeline  # imports OpenCV; kept out of the quick commands

    pipeline = Pipeline.from_profile(profile, config.profile(profile), config.models, registry)
    pipeline.check_ready()
    files = expand_inputs(list(paths), recursive)
    if not files:
        raise NoInputError(f"no image files in {', '.join(map(str, paths))}")
    outcomes: list[FileOutcome] = []
    results: list[Result] = []
    claimed: set[Path] = set()
    show_progress = len(files) > 1 and sys.stderr.isatty() and output != "-"
    with click.progressbar(files, label="reading", file=sys.stderr, hidden=not show_progress) as progress:
        for path in progress:
            outcome = FileOutcome(path=str(path), ok=False)
            started = time.perf_counter()
            try:
                result = pipeline.run(load_document(path, config.limits))
            except InputFileError as exc:
                outcome.error = exc.reason
                click.echo(f"hwdaemon: error: {exc}", err=True)
            else:
                outcome.ok, outcome.pages, outcome.lines = True, len(result.pages), len(result.lines)
                outcome.mean_confidence = result.mean_confidence
                if output == "-":
                    results.append(result)
                else:
                    target = _output_path(Path(output), path, format_, claimed)
                    write_atomic(target, render(result, format_))
                    outcome.outputs.append(str(target))
            outcome.seconds = round(time.perf_counter() - started, 3)
            outcomes.append(outcome)
    if output == "-":
        _print_results(results, format_)
    if as_json:
        click.echo(json.dumps(_summary(outcomes), ensure_ascii=False, indent=2))
    if not all(outcome.ok for outcome in outcomes):
        sys.exit(1)


def _output_path(folder: Path, source: Path, format_: Format, claimed: set[Path]) -> Path:
    """`<stem>.<format>` in `folder`; a second input with the same stem gets `<stem>-2`, and so on."""
    target = folder / f"{source.stem}.{format_}"
    counter = 2
    while target in claimed:
        target = folder / f"{source.stem}-{counter}.{format_}"
        counter += 1
    claimed.add(target)
    return target


def _print_results(results: list[Result], format_: Format) -> None:
    if format_ == "json":
        documents = [result.to_dict() for result in results]
        click.echo(json.dumps(documents[0] if len(documents) == 1 else documents, ensure_ascii=False, indent=2))
        return
    for index, result in enumerate(results):
        text = render(result, format_)
        if format_ == "csv" and index > 0:
            text = text.split("\n", 1)[1]  # one header for all files
        elif format_ == "txt" and len(results) > 1:
            text = f"==> {result.source} <==\n{text}"
        click.echo(text, nl=False)


def _summary(outcomes: list[FileOutcome]) -> dict[str, Any]:
    return {
        "ok": sum(outcome.ok for outcome in outcomes),
        "failed": sum(not outcome.ok for outcome in outcomes),
        "files": [outcome.__dict__ for outcome in outcomes],
    }


@cli.command("check-config")
@click.argument("config_file", type=click.Path(path_type=Path, dir_okay=False), required=False)
def check_config(config_file: Path | None) -> None:
    """Validate a config file: keys, plugin options, sinks and model weights.

    Exits 0 when the daemon could start with it, 78 naming the file, line and
    key otherwise, 69 when a profile's model weights are missing.

    Example: hwdaemon check-config /etc/hwdaemon/config.yaml
    """
    configure_logging("warning")
    config, registry = _load(config_file)
    from hwdaemon.pipeline import Pipeline

    for name, profile in config.profiles.items():
        Pipeline.from_profile(name, profile, config.models, registry).check_ready()
    click.echo(
        f"{config.source}: OK — {len(config.profiles)} profile(s), {len(config.inboxes)} inbox(es), {len(config.sinks)} sink(s)"
    )


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def plugins(as_json: bool) -> None:
    """List every plugin, its version and what it registered; broken plugins are listed with their error.

    Example: hwdaemon plugins --json
    """
    registry = build_registry()
    if as_json:
        document = {
            "plugins": [
                {"name": p.name, "version": p.version, "builtin": p.is_builtin, "registered": p.registered}
                for p in registry.plugins
            ],
            "broken": registry.broken,
        }
        click.echo(json.dumps(document, indent=2))
        return
    for info in registry.plugins:
        origin = "built-in" if info.is_builtin else f"version {info.version or '?'}"
        click.echo(f"{info.name} ({origin})")
        for kind, names in sorted(info.registered.items()):
            click.echo(f"  {kind}s: {', '.join(names)}")
    for name, error in registry.broken.items():
        click.echo(f"{name} (BROKEN): {error}")


def main() -> None:
    cli(prog_name="hwdaemon")
