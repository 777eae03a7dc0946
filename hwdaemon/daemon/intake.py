"""Taking a file in: the one rule that makes a settled inbox file, or an uploaded one, a queued job.

The size before anything reads the file, then its sha256; bytes a job has read
or is about to read (done, queued, processing) are a duplicate of that job,
unless asked to read them again. The daemon's intake (`Service._take_in`) and
the HTTP API's uploads both come here, so a file gets the same checks, the same
dedup and the same job whichever way it arrived; what each does with a
duplicate or a refusal (file it, answer the client) is the caller's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from hwdaemon.config import InboxConfig, InputsConfig
from hwdaemon.daemon.runtime import inbox_key_of
from hwdaemon.inputs import check_file_size, sha256_of
from hwdaemon.store import Job, Store


@dataclass(frozen=True, slots=True)
class Admission:
    """What intake made of a file: a new queued job, or the job that has these bytes already."""

    sha256: str
    job: Job | None = None
    original: Job | None = None


def admit(
    store: Store,
    inbox: InboxConfig,
    path: Path,
    info: os.stat_result,
    inputs: InputsConfig,
    inside: Path,
    profile: str | None = None,
    is_reprocess: bool = False,
) -> Admission:
    """Queue `path` as a job of `inbox` (read with `profile`, default the inbox's), unless its bytes are known.

    `inside` is the folder the file must resolve into. Raises InputFileError
    (too large, unreadable, outside `inside`, not a regular file): the caller records the refusal.
    """
    check_file_size(str(path), info.st_size, inputs)  # the size first: a sparse 1 TB file is not hashed
    sha256 = sha256_of(path, inside=inside)
    original = None if is_reprocess else store.jobs.original_with_sha256(sha256)
    if original is not None:
        return Admission(sha256, original=original)
    job = store.jobs.add(
        str(path), inbox_key_of(inbox), profile or inbox.profile, sha256, info.st_size, info.st_mtime_ns
    )
    return Admission(sha256, job=job)
