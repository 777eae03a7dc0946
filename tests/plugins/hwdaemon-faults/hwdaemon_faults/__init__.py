"""Installed only by tests: steps that misbehave on purpose (`stall` hangs, `crash` raises,
`exit` ends its thread, `kill` its process),
and event hooks that record what they saw in $HWDAEMON_TEST_EVENTS (JSON Lines)."""

import json
import os
import time

from pydantic import Field

from hwdaemon.plugin_api import PieceOptions, Step, hookimpl


class StallOptions(PieceOptions):
    seconds: float = Field(default=3600, gt=0)


class Stall(Step[StallOptions]):
    """Sleeps inside the pipeline, as a wedged model or a stuck NFS read would."""

    name = "stall"
    Options = StallOptions

    def apply(self, image):
        time.sleep(self.options.seconds)
        return image


class Crash(Step):
    """Raises an unexpected error, as a bug in a plugin would."""

    name = "crash"

    def apply(self, image):
        raise RuntimeError("injected crash")


class Exit(Step):
    """Raises SystemExit, which no `except Exception` catches: the thread it runs on ends."""

    name = "exit"

    def apply(self, image):
        raise SystemExit(3)


class Kill(Step):
    """SIGKILLs its own process, as the kernel's OOM killer would on a memory bomb."""

    name = "kill"

    def apply(self, image):
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


@hookimpl
def hwdaemon_register_steps():
    return [Stall, Crash, Exit, Kill]


def _record(event):
    path = os.environ.get("HWDAEMON_TEST_EVENTS")
    if path:
        with open(path, "a", encoding="utf-8") as stream:
            stream.write(json.dumps(event) + "\n")


@hookimpl
def hwdaemon_job_done(result):
    _record({"hook": "hwdaemon_job_done", "source": result.source, "lines": len(result.lines)})


@hookimpl
def hwdaemon_job_failed(job, error):
    _record(
        {
            "hook": "hwdaemon_job_failed",
            "path": job.path,
            "error": error,
            "job_error": job.error,
            "attempts": job.attempts,
        }
    )
