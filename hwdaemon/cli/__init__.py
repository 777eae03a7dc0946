"""The `hwdaemon` command line. Thin: parse options, call the library, print, map errors to exit codes."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import structlog

from hwdaemon import __version__
from hwdaemon.config import Config, ConfigError, load_config
from hwdaemon.errors import HwdaemonError, InputFileError, NoInputError
from hwdaemon.export import FORMATS, Format, render, write_atomic
from hwdaemon.inputs import expand_inputs, open_document
from hwdaemon.logging import configure_logging
from hwdaemon.model import Result
from hwdaemon.plugins import Registry, build_registry

if TYPE_CHECKING:
    from hwdaemon.store import Store

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

    PATHS are scans (PDF, TIFF incl. multi-page, PNG, JPEG, BMP, WebP, HEIC)
    or folders of them. Exit status: 0 all files read, 1 some failed, 2 usage,
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
    from hwdaemon.pipeline import check_profiles_ready

    check_profiles_ready(config, registry)
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


@cli.command()
@CONFIG_OPTION
def run(config_path: Path | None) -> None:
    """Watch the inboxes and turn every new scan into results delivered to its sinks.

    Runs until SIGTERM or Ctrl-C (finishing the job in hand); SIGHUP re-reads the
    config and keeps the old one if the new one is invalid. Under systemd it
    speaks sd_notify (READY, STATUS, WATCHDOG, STOPPING).

    One daemon per state_dir: a second exits 78 naming the pid that holds
    state_dir/daemon.lock. A job store that is empty, damaged or from a newer
    hwdaemon is refused (78) with what to do; an older one is brought up to date.

    Example: hwdaemon run --config /etc/hwdaemon/config.yaml
    """
    config, registry = _load(config_path)
    configure_logging(config.log.level, config.log.format)
    from hwdaemon.daemon.lock import acquire_state_dir
    from hwdaemon.daemon.compose import build_service
    from hwdaemon.store import Store
    from hwdaemon.pipeline import check_profiles_ready

    lock = acquire_state_dir(config.state_dir)  # one daemon per state_dir, held until this process ends
    try:
        Store(config.state_dir, verify=True).close()  # refuse an empty, damaged or newer store before anything runs
        if config.queue.backend == "local":  # with celery, the models live on the worker hosts
            check_profiles_ready(config, registry)
        service = build_service(config_path, config, registry)
        service.install_signal_handlers()
        service.run()
    finally:
        lock.release()


@cli.command()
@CONFIG_OPTION
@click.option("--concurrency", type=int, default=1, show_default=True, help="Worker processes on this host, each with its own loaded model.")
@click.option("--name", help="Worker name (default hwdaemon-PID); the host name is appended.")
@click.option("--threads", type=int, help="CPU threads per worker process (default: this host's cores ÷ concurrency).")
def worker(config_path: Path | None, concurrency: int, name: str | None, threads: int | None) -> None:
    """Read jobs sent by a daemon with `queue.backend: celery` (run on any host that can reach the broker).

    Serves the profiles in `queue.serve_profiles` (default: every profile in its
    config), whose model weights must be on this host; it listens only to those
    profiles' queues. Run one worker per host and raise --concurrency rather than
    starting several: each process takes its share of the cores (--threads). SIGTERM finishes the job in hand; a worker that dies
    mid-job gives the job back to the broker for another worker.

    Example: REDIS_PASSWORD=… hwdaemon worker --config /etc/hwdaemon/worker.yaml --concurrency 2
    """
    config, registry = _load(config_path)
    configure_logging(config.log.level, config.log.format)
    if config.queue.backend != "celery":
        raise ConfigError("hwdaemon worker needs queue.backend: celery and queue.broker_url in its config")
    from hwdaemon.distributed.worker import ReadingHost, run_worker
    from hwdaemon.pipeline import Pipeline

    host = ReadingHost(config, registry, threads or max(1, (os.cpu_count() or 1) // concurrency))
    for profile in host.profiles:
        Pipeline.from_profile(profile, config.profile(profile), config.models, registry).check_ready()
    run_worker(host, concurrency, name)


@cli.command()
@CONFIG_OPTION
@click.option("--host", help="Address to listen on (default: ui.host, 127.0.0.1). Off loopback a token is required.")
@click.option("--port", type=int, help="Port (default: ui.port, 8765; 0 picks a free one).")
def ui(config_path: Path | None, host: str | None, port: int | None) -> None:
    """Serve the review page: see each scan beside its text, fix doubtful lines, approve and re-deliver.

    Works beside a running daemon (same config, same state folder): approved
    corrections are queued in the store and the daemon's delivery thread sends
    them. Set `ui.enabled: true` to have the daemon serve the page itself.

    Example: hwdaemon ui --config /etc/hwdaemon/config.yaml --port 8765
    """
    config, _ = _load(config_path)
    configure_logging(config.log.level, config.log.format)
    from hwdaemon.ui.server import UiServer

    if host is not None:
        config = config.model_copy(update={"ui": config.ui.model_copy(update={"host": host})})
    server = UiServer(lambda: config, host=host, port=port)
    shown_host = host or config.ui.host
    click.echo(f"review page on http://{shown_host}:{port if port is not None else config.ui.port}/ (Ctrl-C stops)", err=True)
    server.serve_forever()


def _open_store(config_path: Path | None) -> Store:
    from hwdaemon.store import DATABASE_NAME, Store

    config, _ = _load(config_path)
    if not (config.state_dir / DATABASE_NAME).exists():
        raise NoInputError(f"no job store at {config.state_dir / DATABASE_NAME}; has `hwdaemon run` started with this config?")
    return Store(config.state_dir, verify=True)


@cli.command()
@CONFIG_OPTION
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def status(config_path: Path | None, as_json: bool) -> None:
    """Show queue depth, jobs per state and inbox, deliveries per sink, and the last errors.

    Reads the job store, so it works while the daemon runs. With
    `queue.backend: celery` it also shows the remote workers (seen in the store,
    and answering a ping now), their hosts and throughput, and the jobs waiting
    in the broker per profile queue.

    Example: hwdaemon status --json
    """
    store = _open_store(config_path)
    summary = store.reporting.summary()
    config, _ = _load(config_path)
    if config.queue.backend == "celery":
        from hwdaemon.distributed.celery_app import broker_overview

        summary["workers"] = store.dispatch.worker_stats()
        summary["broker"] = broker_overview(config.queue, list(config.profiles))
    store.close()
    if as_json:
        click.echo(json.dumps(summary, indent=2, ensure_ascii=False))
        return
    click.echo(f"queue depth: {summary['queue_depth']}")
    for inbox, counts in summary["jobs"].items():
        click.echo(f"inbox {inbox}: " + ", ".join(f"{state} {count}" for state, count in sorted(counts.items())))
    for sink, counts in summary["deliveries"].items():
        click.echo(f"sink {sink}: " + ", ".join(f"{state} {count}" for state, count in sorted(counts.items())))
    for error in summary["last_errors"]:
        click.echo(f"failed job {error['job']}: {error['file']}: {error['error']}")
    if "broker" in summary:
        broker = summary["broker"]
        click.echo(f"broker {broker['broker']}: " + (broker.get("error") or ", ".join(f"{name} {depth} waiting" for name, depth in broker["queues"].items())))
        click.echo("workers online: " + (", ".join(broker["workers_online"]) or "none"))
        for seen in summary["workers"]:
            click.echo(f"worker {seen['worker']}: {seen['jobs_done']} done, {seen['jobs_per_minute']}/min over 10 min")


@cli.command()
@click.argument("job_id", type=int, required=False)
@click.option("--failed", "all_failed", is_flag=True, help="Retry every failed job.")
@CONFIG_OPTION
def retry(job_id: int | None, all_failed: bool, config_path: Path | None) -> None:
    """Put failed jobs' files back into their inbox so the daemon reads them again.

    The file moves from failed/ back to the inbox and its .error.json is removed;
    the daemon takes it in as a new job.

    Example: hwdaemon retry --failed
    """
    from hwdaemon.daemon.filing import return_to_inbox

    if (job_id is None) == (not all_failed):
        raise click.UsageError("give a JOB id or --failed")
    store = _open_store(config_path)
    jobs = store.jobs.recent("failed", limit=100_000) if all_failed else [job for job in [store.jobs.get(job_id or 0)] if job]
    retried = 0
    for job in jobs:
        if job.state != "failed" or not job.final_path or not Path(job.final_path).exists():
            click.echo(f"job {job.id}: nothing to retry (state {job.state}, file {job.final_path or 'gone'})", err=True)
            continue
        failed_file = Path(job.final_path)
        target = return_to_inbox(failed_file, Path(job.inbox), Path(job.path).name)
        click.echo(f"job {job.id}: {failed_file} → {target}")
        retried += 1
    store.close()
    if not retried:
        sys.exit(1)


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--profile", help="Profile to read with (default: the inbox's, else 'default').")
@CONFIG_OPTION
def reprocess(file: Path, profile: str | None, config_path: Path | None) -> None:
    """Queue FILE again even though its bytes were read before (e.g. after changing a profile).

    Example: hwdaemon reprocess inbox/processed/letter.png --profile difficult
    """
    from hwdaemon.daemon.runtime import inbox_key_of
    from hwdaemon.inputs import sha256_of

    config, _ = _load(config_path)
    store = _open_store(config_path)
    absolute = file.absolute()
    inbox = next((i for i in config.inboxes if absolute.is_relative_to(Path(i.path).absolute())), config.inboxes[0] if config.inboxes else None)
    if inbox is None:
        raise click.UsageError("the config has no inbox to attach the job to")
    chosen = profile or inbox.profile
    config.profile(chosen)
    info = absolute.stat()
    job = store.jobs.add(str(absolute), inbox_key_of(inbox), chosen, sha256_of(absolute), info.st_size, info.st_mtime_ns)
    store.close()
    click.echo(f"queued job {job.id} for {absolute} with profile {chosen}")


@cli.command()
@click.option("--failed", "only_failed", is_flag=True, help="Only dead-lettered deliveries.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@CONFIG_OPTION
def deliveries(only_failed: bool, as_json: bool, config_path: Path | None) -> None:
    """List deliveries to sinks, newest first: state, attempts, last error, where the result went.

    Example: hwdaemon deliveries --failed
    """
    store = _open_store(config_path)
    rows = store.deliveries.recent("dead" if only_failed else None, limit=200)
    store.close()
    if as_json:
        click.echo(json.dumps([_delivery_dict(row) for row in rows], indent=2))
        return
    for row in rows:
        detail = row.location if row.state == "delivered" else (row.last_error or "").splitlines()[-1:] or ""
        click.echo(f"{row.id}\tjob {row.job_id}\t{row.sink}\t{row.state}\t{row.attempts} attempt(s)\t{detail}")


def _delivery_dict(row: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(row)


@cli.command()
@click.argument("delivery_id", type=int, required=False)
@click.option("--failed", "all_failed", is_flag=True, help="Re-queue every dead-lettered delivery.")
@CONFIG_OPTION
def redeliver(delivery_id: int | None, all_failed: bool, config_path: Path | None) -> None:
    """Queue dead-lettered deliveries again; the running daemon picks them up.

    Example: hwdaemon redeliver --failed
    """
    if (delivery_id is None) == (not all_failed):
        raise click.UsageError("give a DELIVERY id or --failed")
    store = _open_store(config_path)
    ids = [row.id for row in store.deliveries.recent("dead", limit=100_000)] if all_failed else [delivery_id or 0]
    count = sum(store.deliveries.requeue(identifier) for identifier in ids)
    store.close()
    click.echo(f"re-queued {count} deliver{'y' if count == 1 else 'ies'}")


@cli.command("eval")
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--profile", "profiles", multiple=True, help="Profile to evaluate; repeat to compare (default: default).")
@click.option("--kind", "kinds", multiple=True, help="Only items of this kind (line, page, word); repeatable.")
@click.option("--lang", "languages", multiple=True, help="Only items in this language (the manifest's lang), e.g. to read them with a profile set to it; repeatable.")
@click.option("--limit", type=int, help="Only the first N items (after filtering).")
@click.option("--readings", type=click.Path(dir_okay=False, path_type=Path), help="Write every item's truth and reading here (JSON Lines).")
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
    from hwdaemon.pipeline import Pipeline

    configure_logging("warning")
    config, registry = _load(config_path)
    items = [item for item in read_manifest(manifest) if (not kinds or item.kind in kinds) and (not languages or item.lang in languages)][:limit]
    if not items:
        wanted = " ".join(part for part in (f"of kind {', '.join(kinds)}" if kinds else "", f"in {', '.join(languages)}" if languages else "") if part)
        raise NoInputError(f"{manifest}: no items{' ' + wanted if wanted else ''}")
    reports = []
    for name in profiles or ("default",):
        pipeline = Pipeline.from_profile(name, config.profile(name), config.models, registry)
        pipeline.check_ready()
        reports.append(evaluate(pipeline, items, config.inputs))
    if readings is not None:
        lines = [json.dumps({"profile": report.profile, **row}, ensure_ascii=False) for report in reports for row in report.readings]
        write_atomic(readings, "\n".join(lines) + "\n")
    if as_json:
        click.echo(json.dumps([report.to_dict() for report in reports], indent=2))
    else:
        click.echo(format_table(reports))


@cli.command()
@click.option("--source", "sources", multiple=True, metavar="REPO=PATH",
              help="Training data: owner/repo=PATH, PATH an ALTO/PAGE .xml, a folder of them, or a manifest .jsonl. Repeatable.")
@click.option("--exclusions", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="DO-NOT-TRAIN.tsv: documents that must never be trained on (required with --source).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Run folder: checkpoint.pt, model/ (best), train.jsonl log.")
@click.option("--from-corrections", is_flag=True, help="Fine-tune PROFILE's model on lines approved on the review page (or --manifest).")
@click.option("--profile", default="default", show_default=True, help="With --from-corrections: whose model learns and is replaced.")
@click.option("--manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="With --from-corrections: labelled lines of your own (manifest.jsonl) instead of the review page's.")
@CONFIG_OPTION
@click.option("--epochs", type=float, help="May be fractional (0.5 = half an epoch). Default 1, or 10 with --from-corrections.")
@click.option("--batch-size", type=int, default=16, show_default=True)
@click.option("--learning-rate", type=float, help="Default 3e-4.")
@click.option("--validation-fraction", type=float, default=0.05, show_default=True, help="Documents held back to choose the best epoch.")
@click.option("--holdout-fraction", type=float, default=0.25, show_default=True, help="With --from-corrections: your documents held back to judge the new model.")
@click.option("--max-repeats", type=int, default=3, show_default=True, help="Keep a line text at most this often (boilerplate on every form).")
@click.option("--drop-pattern", "drop_patterns", multiple=True, help="Regex; lines whose text matches are dropped (e.g. file ids).")
@click.option("--max-minutes", type=float, help="Stop (with a checkpoint) after this long; run again to resume.")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when present), cpu, cuda.")
@click.option("--base", type=click.Path(exists=True, file_okay=False, path_type=Path), help="Continue from one of our model folders instead of english_g2.")
@click.option("--synthetic", type=int, default=0, show_default=True, help="Add this many lines rendered in handwriting fonts.")
@click.option("--font", "fonts", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A font for --synthetic (.ttf/.otf/.woff); repeatable. Default: the Debian handwriting fonts installed.")
@click.option("--synthetic-language", "synthetic_languages", multiple=True, default=("en",), show_default=True,
              help="Dictionary the synthetic words come from (en, fr, de, es, it, …); repeatable.")
@click.option("--line-type", "line_types", multiple=True, metavar="REPO=TYPE",
              help="Keep only REPO's lines tagged TYPE in its XML (e.g. Handwritten; Stanford mixes in typescript). Repeatable.")
@click.option("--oversample", "oversample", multiple=True, metavar="REPO=N", help="Repeat REPO's training lines N times per epoch (a small source). Repeatable.")
@click.option("--schedule", type=click.Choice(["constant", "cosine"]), default="constant", show_default=True,
              help="Learning rate: constant, or cosine decay to 5% over the run.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Vary the synthetic lines, batch order and augmentation (a run continued from another sees new ones). "
                   "The documents held out for validation stay the same.")
@click.option("--workers", type=int, default=0, show_default=True,
              help="Processes that render synthetic lines and prepare batches beside training; a GPU needs several to stay busy. "
                   "They change nothing in what is learnt.")
def train(
    sources: tuple[str, ...], exclusions: Path | None, out: Path | None, from_corrections: bool, profile: str, manifest: Path | None,
    config_path: Path | None, epochs: float | None, batch_size: int, learning_rate: float | None, validation_fraction: float,
    holdout_fraction: float, max_repeats: int, drop_patterns: tuple[str, ...], max_minutes: float | None, device: str,
    base: Path | None, synthetic: int, fonts: tuple[Path, ...], synthetic_languages: tuple[str, ...],
    line_types: tuple[str, ...], oversample: tuple[str, ...], schedule: str, seed: int, workers: int,
) -> None:  # fmt: skip
    """Fine-tune the handwriting recognizer on labelled lines; resumes an interrupted run.

    From public data: `--source … --exclusions … --out DIR` starts from english_g2;
    evaluation documents on the exclusion list are never loaded. The best model by
    validation CER lands in OUT/model; use it with
    `recognizer: {type: handwriting, model_dir: OUT/model}` and measure it with `hwdaemon eval`.

    From your corrections: `--from-corrections [--profile NAME]` fine-tunes the
    profile's current model on the lines approved on the review page (or
    `--manifest`), holds back some of your documents, and installs the new model
    for that profile only if it reads them better; otherwise it changes nothing.

    Examples:
      hwdaemon train --source banq-dcn/Copiste-d-un-jour=copiste/alto --exclusions DO-NOT-TRAIN.tsv --out runs/v1
      hwdaemon train --from-corrections --profile default --config /etc/hwdaemon/config.yaml
    """
    configure_logging("info")
    if from_corrections:
        report = _train_from_corrections(config_path, profile, manifest, exclusions, epochs, batch_size, learning_rate, holdout_fraction, device)
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
        if not report["installed"]:
            click.echo(
                f"kept the current model: neither the fine-tuned one nor its mean with the current one read your held-back "
                f"lines better (CER {report['fine_tuned_cer']:.1%} and {report['mean_cer']:.1%} vs {report['current_cer']:.1%})", err=True,
            )  # fmt: skip
        return
    if not sources or exclusions is None or out is None:
        raise click.UsageError("training from public data needs --source, --exclusions and --out (or use --from-corrections)")
    from hwdaemon.training.run import TrainRequest, run_training

    request = TrainRequest(
        sources=[(repository, Path(path)) for repository, path in _repository_pairs(sources, "--source")], exclusions=exclusions, out=out, epochs=epochs or 1.0, batch_size=batch_size,
        learning_rate=learning_rate or 3e-4, validation_fraction=validation_fraction, max_repeats=max_repeats,
        drop_patterns=list(drop_patterns), max_minutes=max_minutes, device=device, base=base, synthetic=synthetic,
        fonts=list(fonts) or None, synthetic_languages=list(synthetic_languages), schedule=schedule,
        line_types=_line_types(line_types), oversample=_oversample(oversample), seed=seed, workers=workers,
    )  # fmt: skip
    report = run_training(request)
    click.echo(json.dumps(report, indent=2, ensure_ascii=False))


@cli.command("train-segmenter")
@click.option("--source", "sources", multiple=True, required=True, metavar="REPO=PATH",
              help="Pages: owner/repo=FOLDER, a clone of an ALTO/PAGE set with its images. Repeatable.")
@click.option("--exclusions", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="DO-NOT-TRAIN.tsv: documents that must never be trained on.")
@click.option("--skip-pages", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="File names of pages to leave out, one per line (those benchmarks/segmentation.py measures: --write-pages).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Run folder: checkpoint.pt, model/ (best), train.jsonl log.")
@click.option("--minutes", type=float, default=40.0, show_default=True, help="Train this long in all; run again with more to go on.")
@click.option("--validation-fraction", type=float, default=0.1, show_default=True, help="Pages held back to choose the best checkpoint, in tenths.")
@click.option("--seed", type=int, default=1, show_default=True)
def train_segmenter(sources: tuple[str, ...], exclusions: Path, skip_pages: Path | None, out: Path, minutes: float, validation_fraction: float, seed: int) -> None:
    """Train the `linenet` line detector on the line polygons of transcribed pages; resumes an interrupted run.

    The best checkpoint by validation loss lands in OUT/model; use it with
    `detector: {type: linenet, model_dir: OUT/model}` and measure it with
    benchmarks/segmentation.py and `hwdaemon eval`.

    Example:
      hwdaemon train-segmenter --source HTR-United/CREMMA-AN-TestamentsDePoilus=CREMMA-AN-TestamentsDePoilus \\
        --exclusions DO-NOT-TRAIN.tsv --skip-pages held-out.txt --out runs/linenet
    """
    from hwdaemon.training.exclusion import ExclusionList
    from hwdaemon.training.segment import SegmentSettings, load_pages, split_validation, train_segmenter as run

    configure_logging("info")
    log = structlog.get_logger("hwdaemon.train_segmenter")

    def progress(event: dict[str, Any]) -> None:
        log.info(event.pop("event"), **event)

    skip = set(skip_pages.read_text().split()) if skip_pages else set()
    folders = {repository: Path(folder) for repository, folder in _repository_pairs(sources, "--source")}
    pages = load_pages(folders, ExclusionList.load(exclusions), skip, progress)
    training, validation = split_validation(pages, validation_fraction)
    log.info("segmenter_pages", training=len(training), validation=len(validation), skipped=len(skip))
    state = run(training, validation, out, SegmentSettings(minutes=minutes, seed=seed), progress)
    click.echo(json.dumps({"model": str(out / "model"), **state}, indent=2))


def _train_from_corrections(
    config_path: Path | None, profile: str, manifest: Path | None, exclusions: Path | None, epochs: float | None,
    batch_size: int, learning_rate: float | None, holdout_fraction: float, device: str,
) -> dict[str, Any]:  # fmt: skip
    from hwdaemon.pipeline import Pipeline
    from hwdaemon.builtins.recognizers.handwriting import HandwritingRecognizer
    from hwdaemon.training.corrections import CORRECTIONS_SETTINGS, CorrectionsRequest, approved_lines, check_profile_reads_handwriting, learn_from_corrections, manifest_lines
    from hwdaemon.training.data import guard
    from hwdaemon.training.exclusion import ExclusionList

    config, registry = _load(config_path)
    profile_config = config.profile(profile)
    check_profile_reads_handwriting(profile_config.recognizer.type, profile)
    recognizer = Pipeline.from_profile(profile, profile_config, config.models, registry).recognizer
    assert isinstance(recognizer, HandwritingRecognizer)
    if manifest is not None:
        samples = manifest_lines(manifest)
    else:
        store = _open_store(config_path)
        try:
            samples = approved_lines(store, config.state_dir, profile)
        finally:
            store.close()
    if exclusions is not None:
        guard(samples, ExclusionList.load(exclusions))
    explicit = recognizer.options.model_dir  # type: ignore[attr-defined]
    assert config.models.trained_dir is not None
    install_to = explicit.resolve() if explicit is not None else config.models.trained_dir / profile / "handwriting"
    work_dir = config.state_dir / "training"
    work_dir.mkdir(parents=True, exist_ok=True)
    defaults = CORRECTIONS_SETTINGS
    settings = replace(defaults, epochs=epochs or defaults.epochs, batch_size=batch_size, learning_rate=learning_rate or defaults.learning_rate, device=device)
    request = CorrectionsRequest(profile, recognizer.model_dir(), install_to, samples, work_dir, holdout_fraction, settings)
    return learn_from_corrections(request)


@cli.command("pack-lines")
@click.option("--source", "sources", multiple=True, required=True, metavar="OWNER/REPO=PATH", help="As for train: a folder of ALTO/PAGE XML, a file, or a manifest.")
@click.option("--exclusions", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path), help="DO-NOT-TRAIN.tsv: documents never loaded.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="The pack folder (manifest.jsonl and lines/).")
@click.option("--line-type", "line_types", multiple=True, metavar="REPO=TYPE", help="As for train.")
@click.option("--drop-pattern", "drop_patterns", multiple=True, help="As for train.")
@click.option("--max-repeats", type=int, default=3, show_default=True, help="As for train.")
def pack_lines_command(sources: tuple[str, ...], exclusions: Path, out: Path, line_types: tuple[str, ...], drop_patterns: tuple[str, ...], max_repeats: int) -> None:
    """Pack training sources' lines into a small folder to carry to a GPU machine.

    Reads the sources as `train` does (the exclusion list and filters applied)
    and writes each line at the network's height as WebP, with a manifest that
    `train --source pack/lines=OUT/manifest.jsonl` reads (repositories and
    documents kept: the exclusion list and the validation hold-out still apply).

    Example:
      hwdaemon pack-lines --source banq-dcn/Copiste-d-un-jour=copiste/alto --exclusions DO-NOT-TRAIN.tsv --out pack
    """
    from hwdaemon.training.exclusion import ExclusionList
    from hwdaemon.training.pack import pack_lines
    from hwdaemon.training.run import load_sources

    configure_logging("info")
    pairs = [(repository, Path(path)) for repository, path in _repository_pairs(sources, "--source")]
    samples, skipped = load_sources(pairs, ExclusionList.load(exclusions), _line_types(line_types), max_repeats, list(drop_patterns))
    written = pack_lines(samples, out)
    click.echo(json.dumps({"lines": len(samples), "documents_skipped": skipped, "megabytes": round(written / 1e6, 1), "manifest": str(out / "manifest.jsonl")}))


@cli.command("average-models")
@click.argument("folders", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="The new model folder.")
def average_models_command(folders: tuple[Path, ...], out: Path) -> None:
    """Average two or more models fine-tuned from one another into one (a "model soup").

    The mean of runs that continued from the same model is usually better than
    each of them, and reads as fast. Measure it with `hwdaemon eval` before you use it.

    Example:
      hwdaemon average-models hwdaemon/models/handwriting runs/v8/model --out runs/v4/model
    """
    from hwdaemon.training.average import average_models

    click.echo(average_models(list(folders), out))


def _repository_pairs(texts: tuple[str, ...], option: str) -> list[tuple[str, str]]:
    """`owner/repo=VALUE` options as pairs."""
    pairs = []
    for text in texts:
        repository, separator, value = text.partition("=")
        if not separator or not repository or not value:
            raise click.BadParameter(f"{text!r}: write owner/repo=VALUE", param_hint=option)
        pairs.append((repository, value))
    return pairs


def _line_types(texts: tuple[str, ...]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for repository, line_type in _repository_pairs(texts, "--line-type"):
        grouped.setdefault(repository, []).append(line_type)
    return grouped


def _oversample(texts: tuple[str, ...]) -> dict[str, int]:
    times = {}
    for repository, value in _repository_pairs(texts, "--oversample"):
        if not value.isdigit() or int(value) < 1:
            raise click.BadParameter(f"{value!r}: a whole number of times, 1 or more", param_hint="--oversample")
        times[repository] = int(value)
    return times


def main() -> None:
    cli(prog_name="hwdaemon")
