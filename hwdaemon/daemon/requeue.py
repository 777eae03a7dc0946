"""An operator's requests that give the daemon work again: a failed job's file back into its inbox, a file queued anew.

`hwdaemon retry` and `hwdaemon reprocess` call these while the daemon runs;
the daemon then takes the file in as a new scan, or reads the queued job, as
it does any other. Moving files is filing.py's job, recording jobs the store's.
"""

from __future__ import annotations

from pathlib import Path

from hwdaemon.config import Config, InboxConfig
from hwdaemon.daemon.filing import return_to_inbox
from hwdaemon.daemon.runtime import inbox_key_of
from hwdaemon.inputs import sha256_of
from hwdaemon.store import Job, Store


def is_retryable(job: Job) -> bool:
    """A failed job whose file still lies in failed/."""
    return job.state == "failed" and bool(job.final_path) and Path(job.final_path or "").exists()


def retry(job: Job) -> Path:
    """A retryable job's file back into its inbox under its own name (or a free one); returns where it lies now."""
    assert job.final_path is not None
    return return_to_inbox(Path(job.final_path), Path(job.inbox), Path(job.path).name)


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
