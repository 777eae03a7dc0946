"""What the daemon runs with: config, plugins, pipelines and sinks. Swapped whole on SIGHUP.

Threads read `service.runtime` once per job or delivery, so a reload never
changes the rules halfway through one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwdaemon.config import Config, InboxConfig
from hwdaemon.plugins import Registry
from hwdaemon.sinks import Sink

if TYPE_CHECKING:
    from hwdaemon.pipeline import Pipeline


@dataclass
class Runtime:
    config: Config
    registry: Registry
    _pipelines: dict[str, Pipeline] = field(default_factory=dict)
    _sinks: dict[str, Sink[Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def inbox_for(self, inbox_key: str) -> InboxConfig | None:
        return inbox_for(self.config, inbox_key)

    def pipeline(self, profile: str) -> Pipeline:
        from hwdaemon.pipeline import Pipeline

        with self._lock:
            if profile not in self._pipelines:
                self._pipelines[profile] = Pipeline.from_profile(
                    profile, self.config.profile(profile), self.config.models, self.registry
                )
            return self._pipelines[profile]

    def sink(self, name: str) -> Sink[Any] | None:
        with self._lock:
            if name not in self._sinks:
                piece = self.config.sinks.get(name)
                if piece is None:
                    return None
                self._sinks[name] = self.registry.create("sink", piece, name)
            return self._sinks[name]

    def close(self) -> None:
        with self._lock:
            for sink in self._sinks.values():
                sink.close()
            self._sinks.clear()


def inbox_for(config: Config, inbox_key: str) -> InboxConfig | None:
    """The inbox the store names `inbox_key`, if the config still has it."""
    return next((inbox for inbox in config.inboxes if inbox_key_of(inbox) == inbox_key), None)


def inbox_key_of(inbox: InboxConfig) -> str:
    """How the store names an inbox: its absolute path."""
    return str(Path(inbox.path).absolute())
