"""Commands that read scans once, without the daemon: `process` prints or saves their text, `eval` measures profiles.

Image decoding and the pipeline are imported by the commands, not at module load,
since every `hwdaemon` command loads this module.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from hwdaemon.cli.loading import CONFIG_OPTION, load, ready_pipeline
from hwdaemon.errors import InputFileError, NoInputError
from hwdaemon.export import BINARY_FORMATS, FORMATS, Format, extension, files_of, render, render_bytes, write_atomic
from hwdaemon.logging import configure_logging

if TYPE_CHECKING:
    from hwdaemon.model import Result


@dataclass
class FileOutcome:
    """One input's line in `process --json`."""

    path: str
    ok: bool
    error: str | None = None
    outputs: list[str] = field(default_factory=list)
    seconds: float = 0.0
    pages: int = 0
    lines: int = 0
    mean_confidence: float | None = None


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@CONFIG_OPTION
@click.option("--profile", default="default", show_default=True, help="Profile (pipeline) to read with.")
@click.option("--format", "format_", type=click.Choice(FORMATS), default="txt", show_default=True)
@click.option(
    "--output", "-o", default="-", show_default=True, help="Folder for <name>.<format> files, or - for stdout."
)
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

    PATHS are scans (PDF, TIFF incl. multi-page, PNG, JPEG, BMP, WebP, HEIC)
    or folders of them. Exit status: 0 all files read, 1 some failed, 2 usage,
    66 no input found, 69 model weights missing, 78 bad config.

    Example: hwdaemon process scans/ --format json --output out/
    """
    if as_json and output == "-":
        raise click.UsageError("--json prints a summary on stdout, so results need --output DIR")
    if format_ in BINARY_FORMATS and output == "-":
        raise click.UsageError(f"--format {format_} writes one file per input: add --output DIR")
    from hwdaemon.inputs import expand_inputs, open_document  # Pillow and the PDF renderer: not for the quick commands

    configure_logging("info" if verbose else "warning")
    config, registry = load(config_path)
    pipeline = ready_pipeline(config, registry, profile)
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
                with open_document(path, config.inputs) as document:
                    result = pipeline.run(document)
            except InputFileError as exc:
                outcome.error = exc.reason
                click.echo(f"hwdaemon: error: {exc}", err=True)
            else:
                outcome.ok, outcome.pages, outcome.lines = True, len(result.pages), len(result.lines)
                outcome.mean_confidence = result.mean_confidence
                if output == "-":
                    results.append(result)
                else:
                    for part, file_result in files_of(result, format_):
                        target = _output_path(Path(output), path, format_, claimed, part)
                        write_atomic(target, render_bytes(file_result, format_, original=path))
                        outcome.outputs.append(str(target))
            outcome.seconds = round(time.perf_counter() - started, 3)
            outcomes.append(outcome)
    if output == "-":
        _print_results(results, format_)
    if as_json:
        click.echo(json.dumps(_summary(outcomes), ensure_ascii=False, indent=2))
    if not all(outcome.ok for outcome in outcomes):
        sys.exit(1)


def _output_path(folder: Path, source: Path, format_: Format, claimed: set[Path], part: str = "") -> Path:
    """`<stem><part>.<extension>` (`.txt`, `.alto.xml`, `-page2.page.xml` …) in `folder`; a second input with the same stem gets `<stem>-2`, and so on."""
    target = folder / f"{source.stem}{part}.{extension(format_)}"
    counter = 2
    while target in claimed:
        target = folder / f"{source.stem}-{counter}{part}.{extension(format_)}"
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


@click.command("eval")
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--profile", "profiles", multiple=True, help="Profile to evaluate; repeat to compare (default: default).")
@click.option("--kind", "kinds", multiple=True, help="Only items of this kind (line, page, word); repeatable.")
@click.option(
    "--lang",
    "languages",
    multiple=True,
    help="Only items in this language (the manifest's lang), e.g. to read them with a profile set to it; repeatable.",
)
@click.option("--limit", type=int, help="Only the first N items (after filtering).")
@click.option(
    "--readings",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write every item's truth and reading here (JSON Lines).",
)
@CONFIG_OPTION
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def evaluate_command(
    manifest: Path,
    profiles: tuple[str, ...],
    kinds: tuple[str, ...],
    languages: tuple[str, ...],
    limit: int | None,
    readings: Path | None,
    config_path: Path | None,
    as_json: bool,
) -> None:
    """Measure profiles on labelled scans: CER, WER, seconds per item, peak memory.

    MANIFEST is JSON Lines with image (relative to the manifest), text, kind and
    lang per item. Use it on your own labelled scans to choose a profile.

    Example: hwdaemon eval ../shared/data/manifest.jsonl --profile default --profile difficult
    """
    from hwdaemon.evaluation import evaluate, format_table, read_manifest

    configure_logging("warning")
    config, registry = load(config_path)
    items = [
        item
        for item in read_manifest(manifest)
        if (not kinds or item.kind in kinds) and (not languages or item.lang in languages)
    ][:limit]
    if not items:
        wanted = " ".join(
            part
            for part in (
                f"of kind {', '.join(kinds)}" if kinds else "",
                f"in {', '.join(languages)}" if languages else "",
            )
            if part
        )
        raise NoInputError(f"{manifest}: no items{' ' + wanted if wanted else ''}")
    reports = [
        evaluate(ready_pipeline(config, registry, name), items, config.inputs) for name in profiles or ("default",)
    ]
    if readings is not None:
        lines = [
            json.dumps({"profile": report.profile, **row}, ensure_ascii=False)
            for report in reports
            for row in report.readings
        ]
        write_atomic(readings, "\n".join(lines) + "\n")
    if as_json:
        click.echo(json.dumps([report.to_dict() for report in reports], indent=2))
    else:
        click.echo(format_table(reports))


COMMANDS = (process, evaluate_command)
