"""The `hwdaemon` command line: the group, and the one place where an error becomes an exit code.

Commands live by audience: daemon.py (run the daemon and look after its
store), reading.py (read scans once, measure profiles), training.py (make
models), models.py (the versions continuous learning kept, rollback), submit.py
(send scans to a remote daemon's HTTP API). Each parses its options, calls the library and prints; loading.py
loads the config, the store and pipelines one way for all of them.
"""

from __future__ import annotations

from typing import Any

import click

from hwdaemon import __version__
from hwdaemon.cli import daemon, models, reading, submit, training
from hwdaemon.errors import HwdaemonError


class HwdaemonGroup(click.Group):
    """Turns HwdaemonError into its message on stderr and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HwdaemonError as exc:
            click.echo(f"hwdaemon: error: {exc}", err=True)
            ctx.exit(exc.exit_code)


@click.group(
    cls=HwdaemonGroup,
    commands=[*daemon.COMMANDS, *reading.COMMANDS, *submit.COMMANDS, *training.COMMANDS, *models.COMMANDS],
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="hwdaemon")
def cli() -> None:
    """Turn handwritten scans into text: watch inbox folders, or process files once."""


def main() -> None:
    """The `hwdaemon` console script and `python -m hwdaemon`."""
    cli(prog_name="hwdaemon")
