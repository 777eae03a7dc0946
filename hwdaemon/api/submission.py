"""An upload becomes a job: the request's choices checked against the config, then the same intake as a dropped file.

The spooled file is placed in state_dir/uploads and handed to
`daemon.intake.admit` — size, sha256, dedup, a queued job of the chosen inbox
— so an upload is read, retried, reviewed, delivered and filed exactly as a
file dropped in that inbox. Same bytes as a job that is done or still to be
read: that job is the answer, and the new copy is removed (unless `reprocess`).
"""

from __future__ import annotations

import fnmatch
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from hwdaemon.api.spool import Spool
from hwdaemon.config import Config, InboxConfig, inbox_named
from hwdaemon.daemon.filing import uploads_folder
from hwdaemon.daemon.intake import admit
from hwdaemon.filenames import ERROR_REPORT_SUFFIX
from hwdaemon.store import Job, Store


class SubmissionError(Exception):
    """The request names something the config does not have (an inbox, a profile) or may not use (a callback host)."""


@dataclass(frozen=True, slots=True)
class Choices:
    """What an upload asked for, checked: its inbox, profile, formats and callback."""

    inbox: InboxConfig
    profile: str
    formats: tuple[str, ...]
    callback_url: str | None
    is_reprocess: bool


@dataclass(frozen=True, slots=True)
class Accepted:
    """The job an upload became, or the existing job with its bytes (`is_new` False)."""

    job: Job
    is_new: bool


def choices_of(
    config: Config,
    inbox: str | None,
    profile: str | None,
    formats: list[str],
    callback_url: str | None,
    is_reprocess: bool,
) -> Choices:
    """Check an upload's choices against the config; SubmissionError says what is wrong and what would do."""
    chosen = _inbox_of(config, inbox)
    profile = profile or chosen.profile
    if profile not in config.profiles:
        raise SubmissionError(f"no profile {profile!r}; defined: {', '.join(sorted(config.profiles))}")
    if callback_url is not None:
        _check_callback(config, callback_url)
    return Choices(chosen, profile, tuple(formats), callback_url, is_reprocess)


def _inbox_of(config: Config, name: str | None) -> InboxConfig:
    if not config.inboxes:
        raise SubmissionError("the daemon has no inboxes configured; uploads take an inbox's sinks: add one")
    if name is None:
        found = inbox_named(config, config.api.inbox) if config.api.inbox else config.inboxes[0]
    else:
        found = inbox_named(config, name)
    if found is None:
        defined = ", ".join(str(inbox.path) for inbox in config.inboxes)
        raise SubmissionError(f"no inbox {name!r}; defined: {defined}")
    return found


def _check_callback(config: Config, url: str) -> None:
    """Only http(s) to a host in api.callback_allowed_hosts, with a secret to sign: the daemon must not be a proxy into the LAN."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        raise SubmissionError("callback_url must be an http:// or https:// URL")
    if config.api.callback_secret is None:
        raise SubmissionError("callbacks are off: the operator must set api.callback_secret to sign them")
    if not any(fnmatch.fnmatchcase(host, pattern.lower()) for pattern in config.api.callback_allowed_hosts):
        raise SubmissionError(f"callback host {host!r} is not in api.callback_allowed_hosts")


class Intake:
    """Places spooled uploads and admits them, one at a time in this process, so two equal uploads give one job."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def accept(
        self, store: Store, config: Config, spool: Spool, name: str, choices: Choices, token_name: str
    ) -> Accepted:
        """On the thread pool: the spooled file into state_dir/uploads, then admitted as a job (or found a duplicate).

        Raises InputFileError when intake refuses the file; the placed file is removed then.
        """
        folder = uploads_folder(config.state_dir)
        with self._lock:
            path = spool.place(name)
            try:
                admission = admit(
                    store,
                    choices.inbox,
                    path,
                    path.stat(),
                    config.inputs,
                    inside=folder,
                    profile=choices.profile,
                    is_reprocess=choices.is_reprocess,
                )
            except BaseException:
                path.unlink(missing_ok=True)
                raise
            if admission.original is not None:
                path.unlink()
                return Accepted(admission.original, is_new=False)
            assert admission.job is not None
            store.uploads.record(admission.job.id, name, token_name, choices.formats, choices.callback_url)
            return Accepted(admission.job, is_new=True)


def upload_paths(job: Job, state_dir: Path) -> list[Path]:
    """The files of an uploaded job that are ours (in state_dir/uploads): the file and a failure report; none for an inbox file."""
    folder = uploads_folder(state_dir)
    found = []
    for candidate in (job.path, job.final_path):
        if candidate and Path(candidate).absolute().is_relative_to(folder):
            found += [Path(candidate), Path(f"{candidate}{ERROR_REPORT_SUFFIX}")]
    return found
