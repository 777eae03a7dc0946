"""Steps that misbehave on purpose, installed only by tests: `stall` hangs, `crash` raises."""

import time

from pydantic import Field

from hwdaemon.hookspecs import hookimpl
from hwdaemon.pipeline.stages import PieceOptions, Step


class StallOptions(PieceOptions):
    seconds: float = Field(default=3600, gt=0)


class Stall(Step):
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


@hookimpl
def hwdaemon_register_steps():
    return [Stall, Crash]
