"""Commands for whoever runs the daemon: run it, a Celery worker, the review page; look at and act on its store.

The quick ones (status, deliveries, retry, …) must answer at once: this module
imports neither the pipeline (OpenCV) nor the daemon's threads at load; each
command imports what it calls.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import closing
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from hwdaemon.cli.loading import CONFIG_OPTION, load, open_store, ready_pipeline
from hwdaemon.cli.models import describe_learning, learning_summaries
from hwdaemon.errors import ConfigError
from hwdaemon.logging import configure_logging
from hwdaemon.plugins import build_registry


@click.command()
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
    config, registry = load(config_path)
    configure_logging(config.log.level, config.log.format)
    from hwdaemon.daemon.compose import build_service
    from hwdaemon.daemon.lock import acquire_state_dir
    from hwdaemon.pipeline import check_profiles_ready
    from hwdaemon.store import Store

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


@click.command()
@CONFIG_OPTION
@click.option(
    "--concurrency",
    type=int,
    default=1,
    show_default=True,
    help="Worker processes on this host, each with its own loaded model.",
)
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
    config, registry = load(config_path)
    configure_logging(config.log.level, config.log.format)
    if config.queue.backend != "celery":
        raise ConfigError("hwdaemon worker needs queue.backend: celery and queue.broker_url in its config")
    from hwdaemon.distributed.worker import ReadingHost, run_worker

    host = ReadingHost(config, registry, threads or max(1, (os.cpu_count() or 1) // concurrency))
    for profile in host.profiles:
        ready_pipeline(config, registry, profile)
    run_worker(host, concurrency, name)


@click.command()
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
    config, _ = load(config_path)
    configure_logging(config.log.level, config.log.format)
    from hwdaemon.ui.server import UiServer

    if host is not None:
        config = config.model_copy(update={"ui": config.ui.model_copy(update={"host": host})})
    server = UiServer(lambda: config, host=host, port=port)
    shown_host = host or config.ui.host
    click.echo(
        f"review page on http://{shown_host}:{port if port is not None else config.ui.port}/ (Ctrl-C stops)", err=True
    )
    server.serve_forever()


@click.command("check-config")
@click.argument("config_file", type=click.Path(path_type=Path, dir_okay=False), required=False)
def check_config(config_file: Path | None) -> None:
    """Validate a config file: keys, plugin options, sinks and model weights.

    Exits 0 when the daemon could start with it, 78 naming the file, line and
    key otherwise, 69 when a profile's model weights are missing.

    Example: hwdaemon check-config /etc/hwdaemon/config.yaml
    """
    configure_logging("warning")
    config, registry = load(config_file)
    from hwdaemon.pipeline import check_profiles_ready

    check_profiles_ready(config, registry)
    click.echo(
        f"{config.source}: OK — {len(config.profiles)} profile(s), {len(config.inboxes)} inbox(es), {len(config.sinks)} sink(s)"
    )


@click.command()
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


@click.command()
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
    config, _ = load(config_path)
    with closing(open_store(config)) as store:
        summary = store.reporting.summary()
        if config.queue.backend == "celery":
            from hwdaemon.distributed.celery_app import broker_overview

            summary["workers"] = store.dispatch.worker_stats()
            summary["broker"] = broker_overview(config.queue, list(config.profiles))
        summary["learning"] = learning_summaries(config, store)
    if as_json:
        click.echo(json.dumps(summary, indent=2, ensure_ascii=False))
        return
    _print_status(summary)


def _print_status(summary: dict[str, Any]) -> None:
    click.echo(f"queue depth: {summary['queue_depth']}")
    for inbox, counts in summary["jobs"].items():
        click.echo(f"inbox {inbox}: " + ", ".join(f"{state} {count}" for state, count in sorted(counts.items())))
    for sink, counts in summary["deliveries"].items():
        click.echo(f"sink {sink}: " + ", ".join(f"{state} {count}" for state, count in sorted(counts.items())))
    for error in summary["last_errors"]:
        click.echo(f"failed job {error['job']}: {error['file']}: {error['error']}")
    if "broker" in summary:
        broker = summary["broker"]
        click.echo(
            f"broker {broker['broker']}: "
            + (broker.get("error") or ", ".join(f"{name} {depth} waiting" for name, depth in broker["queues"].items()))
        )
        click.echo("workers online: " + (", ".join(broker["workers_online"]) or "none"))
        for seen in summary["workers"]:
            click.echo(f"worker {seen['worker']}: {seen['jobs_done']} done, {seen['jobs_per_minute']}/min over 10 min")
    for learning in summary["learning"]:
        click.echo(describe_learning(learning))


@click.command()
@click.argument("job_id", type=int, required=False)
@click.option("--failed", "all_failed", is_flag=True, help="Retry every failed job.")
@CONFIG_OPTION
def retry(job_id: int | None, all_failed: bool, config_path: Path | None) -> None:
    """Put failed jobs' files back into their inbox so the daemon reads them again.

    The file moves from failed/ back to the inbox and its .error.json is removed;
    the daemon takes it in as a new job.

    Example: hwdaemon retry --failed
    """
    from hwdaemon.daemon import requeue

    if (job_id is None) == (not all_failed):
        raise click.UsageError("give a JOB id or --failed")
    config, _ = load(config_path)
    retried = 0
    with closing(open_store(config)) as store:
        jobs = (
            store.jobs.recent("failed", limit=100_000)
            if all_failed
            else [job for job in [store.jobs.get(job_id or 0)] if job]
        )
        for job in jobs:
            if not requeue.is_retryable(job):
                click.echo(
                    f"job {job.id}: nothing to retry (state {job.state}, file {job.final_path or 'gone'})", err=True
                )
                continue
            retried_job = requeue.retry(store, config, job)
            queued = f" (queued as job {retried_job.job.id})" if retried_job.job else ""
            click.echo(f"job {job.id}: {Path(job.final_path or '')} → {retried_job.path}{queued}")
            retried += 1
    if not retried:
        sys.exit(1)


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--profile", help="Profile to read with (default: the inbox's, else 'default').")
@CONFIG_OPTION
def reprocess(file: Path, profile: str | None, config_path: Path | None) -> None:
    """Queue FILE again even though its bytes were read before (e.g. after changing a profile).

    Example: hwdaemon reprocess inbox/processed/letter.png --profile difficult
    """
    from hwdaemon.daemon import requeue

    config, _ = load(config_path)
    with closing(open_store(config)) as store:
        inbox = requeue.inbox_holding(config, file)
        if inbox is None:
            raise click.UsageError("the config has no inbox to attach the job to")
        chosen = profile or inbox.profile
        config.profile(chosen)  # an unknown profile is a config error (78), before anything is queued
        job = requeue.queue_again(store, inbox, file, chosen)
    click.echo(f"queued job {job.id} for {file.absolute()} with profile {chosen}")


@click.command()
@click.option("--failed", "only_failed", is_flag=True, help="Only dead-lettered deliveries.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@CONFIG_OPTION
def deliveries(only_failed: bool, as_json: bool, config_path: Path | None) -> None:
    """List deliveries to sinks, newest first: state, attempts, last error, where the result went.

    Example: hwdaemon deliveries --failed
    """
    config, _ = load(config_path)
    with closing(open_store(config)) as store:
        rows = store.deliveries.recent("dead" if only_failed else None, limit=200)
    if as_json:
        click.echo(json.dumps([asdict(row) for row in rows], indent=2))
        return
    for row in rows:
        detail = row.location if row.state == "delivered" else (row.last_error or "").splitlines()[-1:] or ""
        click.echo(f"{row.id}\tjob {row.job_id}\t{row.sink}\t{row.state}\t{row.attempts} attempt(s)\t{detail}")


@click.command()
@click.argument("delivery_id", type=int, required=False)
@click.option("--failed", "all_failed", is_flag=True, help="Re-queue every dead-lettered delivery.")
@CONFIG_OPTION
def redeliver(delivery_id: int | None, all_failed: bool, config_path: Path | None) -> None:
    """Queue dead-lettered deliveries again; the running daemon picks them up.

    Example: hwdaemon redeliver --failed
    """
    if (delivery_id is None) == (not all_failed):
        raise click.UsageError("give a DELIVERY id or --failed")
    config, _ = load(config_path)
    with closing(open_store(config)) as store:
        ids = [row.id for row in store.deliveries.recent("dead", limit=100_000)] if all_failed else [delivery_id or 0]
        count = sum(store.deliveries.requeue(identifier) for identifier in ids)
    click.echo(f"re-queued {count} deliver{'y' if count == 1 else 'ies'}")


COMMANDS = (run, worker, ui, check_config, plugins, status, retry, reprocess, deliveries, redeliver)
