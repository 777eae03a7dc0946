"""Every error hwdaemon raises on purpose, each with the exit code the CLI maps it to.

HwdaemonError
 ├── ConfigError            78  bad or unreadable configuration (systemd: RestartPreventExitStatus=78)
 ├── StoreError             78  the job store is damaged, empty, unopenable or from a newer hwdaemon
 ├── StateDirInUseError     78  another `hwdaemon run` holds the state_dir's lock
 ├── InputFileError          1  one input could not be read; the others go on
 ├── NoInputError           66  nothing to process was found
 ├── ModelVersionError      66  `models rollback` names a version the profile does not have
 ├── ModelMissingError      69  model weights or an optional dependency are absent
 ├── PluginError            69  a plugin is missing or broken
 ├── RemoteError            69  `submit`: the daemon's API cannot be reached, or failed
 ├── RemoteAuthError        77  `submit`: the API refused the token (missing, wrong, revoked, lacking a scope)
 └── DeliveryError           -  raised by sinks, handled by delivery, never reaches the CLI
      ├── RetryableDeliveryError   try again later (network, 5xx, 429)
      └── PermanentDeliveryError   never succeeds as is (4xx, bad credentials)

Only `hwdaemon/cli/__init__.py` turns these into exit codes.
"""

from __future__ import annotations

from typing import ClassVar


class HwdaemonError(Exception):
    """Base class; `exit_code` is what the CLI exits with when this ends a command."""

    exit_code: ClassVar[int] = 1


class ConfigError(HwdaemonError):
    """The configuration is invalid; the message names the file, line and key."""

    exit_code = 78


class StoreError(HwdaemonError):
    """The job store cannot be used as it is; the message names the file and what to do.

    Config-class (78): restarting cannot mend a damaged file, so systemd must not loop on it.
    """

    exit_code = 78


class StateDirInUseError(HwdaemonError):
    """Another `hwdaemon run` holds `state_dir/daemon.lock`; the message names the state_dir and its pid.

    Config-class (78): two daemons on one state_dir is a deployment mistake, and a
    second instance restarted every few seconds would only fail again.
    """

    exit_code = 78


class InputFileError(HwdaemonError):
    """One input file cannot be turned into pages (not an image, truncated, too large)."""

    exit_code = 1

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class NoInputError(HwdaemonError):
    """The paths given hold no file hwdaemon can read."""

    exit_code = 66


class ModelVersionError(HwdaemonError):
    """A profile has no such model version to restore (or none at all); the message lists those it has."""

    exit_code = 66


class ModelMissingError(HwdaemonError):
    """Weights (or a library) a profile needs are not on disk."""

    exit_code = 69


class PluginError(HwdaemonError):
    """A pipeline piece or sink type named in the config is not provided by any plugin."""

    exit_code = 69


class RemoteError(HwdaemonError):
    """The daemon's HTTP API cannot be reached or answered with a server error; the message names the URL."""

    exit_code = 69


class RemoteAuthError(HwdaemonError):
    """The HTTP API refused the token (401) or its scope (403): EX_NOPERM, retrying will not help."""

    exit_code = 77


class DeliveryError(HwdaemonError):
    """Raised by a sink's `deliver`; the delivery loop decides what happens next."""


class RetryableDeliveryError(DeliveryError):
    """The delivery may succeed later. `retry_after_seconds` overrides the backoff when set."""

    def __init__(self, message: str, retry_after_seconds: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class PermanentDeliveryError(DeliveryError):
    """The delivery will never succeed as configured; it is dead-lettered at once."""
