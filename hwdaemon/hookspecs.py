"""The hooks of hwdaemon, on one page: the markers, every spec, and the record a hook is handed.

A plugin is a module (or object) with functions marked `@hookimpl` whose names
match the specs below; install it with an entry point in the group "hwdaemon":

    [project.entry-points.hwdaemon]
    my_engine = "my_package.plugin"

Registration hooks return classes, which the host instantiates from config with
the class's own `Options` model: a pipeline piece as `cls(options, context)`
(a `PieceContext`), a sink as `cls(options, instance_name)` (its key under
`sinks:`). hwdaemon registers its built-in pieces and file sink through these
same hooks. Plugin authors import `hookimpl` and the classes named here from
`hwdaemon.plugin_api`. Hook arguments are added, never renamed. pluggy never calls
a spec, so those that return a list end in `raise NotImplementedError` (a body mypy accepts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from hwdaemon.model import Result
    from hwdaemon.pipeline.stages import Detector, Postprocessor, Recognizer, Step
    from hwdaemon.sinks import Sink

PROJECT_NAME = "hwdaemon"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@dataclass(frozen=True, slots=True)
class FailedJob:
    """A job that failed for good, as `hwdaemon_job_failed` hands it to plugins.

    `path` is where the scan was read from (it has since moved to failed/),
    `inbox` the inbox folder, `error` the last failure, as in the .error.json report.
    """

    id: int
    path: str
    inbox: str
    profile: str
    sha256: str
    attempts: int
    error: str


@hookspec
def hwdaemon_register_steps() -> list[type[Step[Any]]]:
    """Return preprocessing step classes (subclasses of `Step`).

    Called once when the plugin manager is built; each class is built per
    profile as `cls(options, context)`. A profile names a step by its
    class's `name` in `preprocess:`. Not firstresult: every plugin's list counts;
    a name registered twice keeps the first (built-ins come first).
    """
    raise NotImplementedError


@hookspec
def hwdaemon_register_detectors() -> list[type[Detector[Any]]]:
    """Return line detector classes (subclasses of `Detector`), named in a profile's `detector:`.

    A detector with weights raises `ModelMissingError` from `check_ready()`, as a recognizer does.
    """
    raise NotImplementedError


@hookspec
def hwdaemon_register_recognizers() -> list[type[Recognizer[Any]]]:
    """Return recognizer classes (subclasses of `Recognizer`), named in a profile's `recognizer:`.

    A recognizer's `check_ready()` must raise `ModelMissingError` naming any
    missing weights, so `hwdaemon check-config` can report them before work starts.
    """
    raise NotImplementedError


@hookspec
def hwdaemon_register_postprocessors() -> list[type[Postprocessor[Any]]]:
    """Return post-processing classes (subclasses of `Postprocessor`), named in `postprocess:`."""
    raise NotImplementedError


@hookspec
def hwdaemon_register_sinks() -> list[type[Sink[Any]]]:
    """Return sink classes (subclasses of `Sink`); `sinks.NAME.type` names one.

    The host builds one instance per configured sink as `cls(options, instance_name)`
    and calls `deliver(result, artifacts)` from its delivery thread. `deliver`
    raises `RetryableDeliveryError` (the host retries with backoff; set
    `retry_after_seconds` to honour a server's Retry-After) or
    `PermanentDeliveryError` (dead-lettered at once); any other exception is
    retried with its traceback recorded.
    """
    raise NotImplementedError


@hookspec
def hwdaemon_job_done(result: Result) -> None:
    """Called in the daemon after a job's result is stored and its deliveries queued.

    It runs on the thread that ended the job: a local worker, or the Celery
    dispatcher for a result read on another host. For observing (metrics,
    notifications): keep it quick; an exception here is logged and ignored.
    """


@hookspec
def hwdaemon_job_failed(job: FailedJob, error: str) -> None:
    """Called in the daemon after a job failed for good and its file went to failed/.

    It runs on the thread that ended the job, as `hwdaemon_job_done` does (or at
    start-up, for a job that crashed the process too often). `error` is
    `job.error`, an argument of its own since before `FailedJob`. For observing;
    an exception here is logged and ignored.
    """
