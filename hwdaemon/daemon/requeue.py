"""An operator's requests that give the daemon work again: a failed job's file back into its inbox, a file queued anew.

`hwdaemon retry` and `hwdaemon reprocess` call these while the daemon runs;
the daemon then takes the file in as a new scan, or reads the queued job, as
it does any other. Moving files is filing.py's job, recording jobs the store's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hwdaemon.config import Config, InboxConfig
from hwdaemon.daemon.filing import filing_root, return_to_inbox, uploads_folder
from hwdaemon.daemon.intake import admit
from hwdaemon.daemon.runtime import inbox_for, inbox_key_of
from hwdaemon.errors import ConfigError
from hwdaemon.inputs import sha256_of
from hwdaemon.store import Job, Store


def is_retryable(job: Job, store: Store | None = None) -> bool:
    """A failed job whose file still lies in failed/ (and, given the store, is not a newer job's since a retry)."""
    if job.state != "failed" or not job.final_path or not Path(job.final_path).exists():
        return False
    return store is None or not store.uploads.is_refiled(job)


@dataclass(frozen=True, slots=True)
class Retried:
    """Where a retried job's file lies now, and its new job when it was queued at once (an upload)."""

    path: Path
    job: Job | None


def retry(store: Store, config: Config, job: Job) -> Retried:
    """A retryable job's file back where it came from under its own name (or a free one).

    An inbox file is then taken in by the daemon as a new scan. An upload lies
    where no watcher looks, so it is queued here, through the same intake, its
    upload record (name, callback) carried over to the new job.
    """
    assert job.final_path is not None
    folder = filing_root(job.path, job.inbox, config.state_dir)
    target = return_to_inbox(Path(job.final_path), folder, Path(job.path).name)
    if folder != uploads_folder(config.state_dir):
        return Retried(target, None)
    inbox = inbox_for(config, job.inbox)
    if inbox is None:
        raise ConfigError(f"job {job.id}'s inbox {job.inbox} is no longer configured; {target} was not queued")
    admission = admit(store, inbox, target, target.stat(), config.inputs, inside=folder, profile=job.profile)
    queued = admission.job or admission.original
    upload = store.uploads.of_job(job.id)
    if admission.job is not None and upload is not None:
        store.uploads.record(
            admission.job.id, upload.original_name, upload.token_name, upload.formats, upload.callback_url
        )
    return Retried(target, queued)


def inbox_holding(config: Config, path: Path) -> InboxConfig | None:
    """The inbox `path` lies in, else the first inbox (a file from elsewhere); None when the config has none."""
    absolute = path.absolute()
    holding = (inbox for inbox in config.inboxes if absolute.is_relative_to(Path(inbox.path).absolute()))
    return next(holding, config.inboxes[0] if config.inboxes else None)


def queue_again(store: Store, inbox: InboxConfig, path: Path, profile: str) -> Job:
    """A new queued job for `path` read with `profile`, even though its bytes were read before."""
    absolute = path.absolute()
    info = absolute.stat()
    return store.jobs.add(
        str(absolute), inbox_key_of(inbox), profile, sha256_of(absolute), info.st_size, info.st_mtime_ns
    )
