"""`hwdaemon submit`: the `process` experience, read by a remote daemon through its HTTP API.

The command parses, calls `hwdaemon.api.client` and prints; exit codes as
`process` (0 all read, 1 some failed, 2 usage, 66 no input) plus 69 when the
API cannot be reached and 77 when it refuses the token.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from hwdaemon.errors import InputFileError, NoInputError
from hwdaemon.export import FORMATS, extension, write_atomic

DEFAULT_URL = "http://127.0.0.1:8765"


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--url",
    envvar="HWDAEMON_URL",
    default=DEFAULT_URL,
    show_default=True,
    help="The daemon's review page/API address ($HWDAEMON_URL).",
)
@click.option(
    "--token",
    envvar="HWDAEMON_API_TOKEN",
    required=True,
    help="An api.tokens token ($HWDAEMON_API_TOKEN; safer than the command line, which `ps` shows).",
)
@click.option("--wait", "is_waiting", is_flag=True, help="Wait for each job to end and print or save its result.")
@click.option(
    "--format",
    "format_",
    type=click.Choice(FORMATS),
    default="txt",
    show_default=True,
    help="With --wait: the result's format.",
)
@click.option(
    "--output",
    "-o",
    default="-",
    show_default=True,
    help="With --wait: folder for <name>.<format> files, or - for stdout.",
)
@click.option("--profile", help="Profile to read with (default: the inbox's).")
@click.option(
    "--inbox", help="Path of the configured inbox whose sinks and review apply (default: api.inbox, else the first)."
)
@click.option("--reprocess", is_flag=True, help="Read files again even if the same bytes were read before.")
@click.option(
    "--timeout",
    "timeout_seconds",
    type=float,
    default=600.0,
    show_default=True,
    help="With --wait: longest wait per file, in seconds.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON summary on stdout (with --wait, needs --output DIR)."
)
def submit(
    paths: tuple[Path, ...],
    url: str,
    token: str,
    is_waiting: bool,
    format_: str,
    output: str,
    profile: str | None,
    inbox: str | None,
    reprocess: bool,
    timeout_seconds: float,
    as_json: bool,
) -> None:
    """Send scans to a running daemon's HTTP API; with --wait, print or save their text as `process` does.

    PATHS are scans or folders of them. Exit status: 0 all files read (or
    queued, without --wait), 1 some failed, 2 usage, 66 no input found, 69 the
    API cannot be reached, 77 the token was refused.

    Example: HWDAEMON_API_TOKEN=… hwdaemon submit scan.jpg --url http://scanbox:8765 --wait --format pdf -o out/
    """
    from hwdaemon.api.client import ApiClient, UploadRefusedError
    from hwdaemon.inputs import expand_inputs

    if as_json and is_waiting and output == "-":
        raise click.UsageError("--json prints a summary on stdout, so results need --output DIR")
    if format_ == "pdf" and is_waiting and output == "-":
        raise click.UsageError("--format pdf writes one file per input: add --output DIR")
    files = expand_inputs(list(paths), recursive=False)
    if not files:
        raise NoInputError(f"no image files in {', '.join(map(str, paths))}")
    client = ApiClient(url, token)
    outcomes: list[dict[str, Any]] = []
    show_progress = len(files) > 1 and sys.stderr.isatty()
    with click.progressbar(files, label="sending", file=sys.stderr, hidden=not show_progress) as progress:
        for path in progress:
            outcome: dict[str, Any] = {"path": str(path), "ok": False, "job": None, "state": None, "error": None}
            outcomes.append(outcome)
            try:
                document = client.submit(path, profile, inbox, (format_,), reprocess)
                outcome.update(job=document["id"], state=document["state"], ok=True)
                if is_waiting:
                    document = client.wait(document["id"], timeout_seconds)
                    outcome.update(state=document["state"], error=document["error"], ok=document["state"] == "done")
                    if outcome["ok"]:
                        outcome["output"] = _deliver(client, document, path, format_, output)
                    elif document["state"] not in ("failed", "duplicate"):
                        outcome["error"] = f"still {document['state']} after {timeout_seconds:g} s"
            except UploadRefusedError as exc:
                outcome["error"] = f"{exc} ({exc.status})"
            except InputFileError as exc:  # missing or unreadable here: this file fails, the others are still sent
                outcome["error"] = exc.reason
            if outcome["error"] and not outcome["ok"]:
                click.echo(f"hwdaemon: error: {path}: {outcome['error']}", err=True)
            elif not is_waiting and not as_json:
                click.echo(f"{path}: job {outcome['job']} {outcome['state']}")
    if as_json:
        summary = {
            "ok": sum(o["ok"] for o in outcomes),
            "failed": sum(not o["ok"] for o in outcomes),
            "files": outcomes,
        }
        click.echo(json.dumps(summary, ensure_ascii=False, indent=2))
    if not all(outcome["ok"] for outcome in outcomes):
        sys.exit(1)


def _deliver(client: Any, document: dict[str, Any], source: Path, format_: str, output: str) -> str | None:
    """The job's result in `format_`: on stdout, or as <stem>.<ext> in the output folder (returned)."""
    content = client.result(document["id"], format_, page=None)
    if output == "-":
        click.echo(content.decode("utf-8"), nl=False)
        return None
    known = next(name for name in FORMATS if name == format_)
    target = Path(output) / f"{source.stem}.{extension(known)}"
    write_atomic(target, content)
    return str(target)


COMMANDS = (submit,)
