"""The whole plugin contract of hwdaemon, on one page.

A plugin is a module (or object) with functions marked `@hookimpl` whose names
match the specs below; install it with an entry point in the group "hwdaemon":

    [project.entry-points.hwdaemon]
    my_engine = "my_package.plugin"

Registration hooks return classes; the host instantiates them from config as
`cls(options, context)`, where `options` is the class's own `Options` model.
hwdaemon registers its built-in pieces through these same hooks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from hwdaemon.pipeline.stages import Detector, Postprocessor, Recognizer, Step
    from hwdaemon.store import Job
    from hwdaemon.model import Result
    from hwdaemon.sinks import Sink

PROJECT_NAME = "hwdaemon"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def hwdaemon_register_steps() -> list[type[Step]]:
    """Return preprocessing step classes (subclasses of `Step`).

    Called once when the plugin manager is built. A profile names a step by its
    class's `name` in `preprocess:`. Not firstresult: every plugin's list counts;
    a name registered twice keeps the first (built-ins come first).
    """


@hookspec
def hwdaemon_register_detectors() -> list[type[Detector]]:
    """Return line detector classes (subclasses of `Detector`), named in a profile's `detector:`.

    A detector with weights raises `ModelMissingError` from `check_ready()`, as a recognizer does.
    """


@hookspec
def hwdaemon_register_recognizers() -> list[type[Recognizer]]:
    """Return recognizer classes (subclasses of `Recognizer`), named in a profile's `recognizer:`.

    A recognizer's `check_ready()` must raise `ModelMissingError` naming any
    missing weights, so `hwdaemon check-config` can report them before work starts.
    """


@hookspec
def hwdaemon_register_postprocessors() -> list[type[Postprocessor]]:
    """Return post-processing classes (subclasses of `Postprocessor`), named in `postprocess:`."""


@hookspec
def hwdaemon_register_sinks() -> list[type[Sink]]:
    """Return sink classes (subclasses of `hwdaemon.sinks.Sink`); `sinks.NAME.type` names one.

    The host builds one instance per configured sink as `cls(options, instance_name)`
    and calls `deliver(result, artifacts)` from its delivery thread. `deliver`
    raises `RetryableDeliveryError` (the host retries with backoff; set
    `retry_after_seconds` to honour a server's Retry-After) or
    `PermanentDeliveryError` (dead-lettered at once); any other exception is
    retried with its traceback recorded.
    """


@hookspec
def hwdaemon_job_done(result: Result) -> None:
    """Called on the worker thread after a job's result is stored and its deliveries queued.

    For observing (metrics, notifications); an exception here is logged and ignored.
    """


@hookspec
def hwdaemon_job_failed(job: Job, error: str) -> None:
    """Called on the worker thread after a job failed for good and its file went to failed/."""
