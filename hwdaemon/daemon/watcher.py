"""Noticing files: watchdog observers feed paths into a queue; the settle tracker decides when a file is whole.

Handlers run on watchdog's threads, so they only `queue.put`. The service's
main loop drains the queue into `SettleTracker` and takes settled files. One
settle rule serves events, the start-up scan and the periodic rescan alike:
no event for `settle_seconds`, and two stats that many seconds apart agree.
"""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from hwdaemon.config import InboxConfig
from hwdaemon.daemon.filters import is_candidate

Seen = tuple[int, Path]  # (inbox index, absolute path)


class _Forward(FileSystemEventHandler):
    """Puts every touched path of one inbox on the queue; nothing else on watchdog's thread."""

    def __init__(self, inbox_index: int, sink: queue.Queue[Seen]) -> None:
        self._inbox_index = inbox_index
        self._sink = sink

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type in ("deleted", "opened", "closed_no_write"):
            return
        path = getattr(event, "dest_path", "") or event.src_path
        self._sink.put((self._inbox_index, Path(os.fsdecode(path))))


def start_observers(inboxes: list[InboxConfig], sink: queue.Queue[Seen]) -> list[BaseObserver]:
    """One observer per inbox: inotify by default, polling where `polling: true` (NFS, SMB)."""
    observers: list[BaseObserver] = []
    for index, inbox in enumerate(inboxes):
        inbox.path.mkdir(parents=True, exist_ok=True)
        observer = PollingObserver(timeout=inbox.poll_interval_seconds) if inbox.polling else Observer()
        observer.schedule(_Forward(index, sink), str(inbox.path), recursive=inbox.recursive)
        observer.daemon = True
        observer.start()
        observers.append(observer)
    return observers


def scan_inbox(inbox: InboxConfig) -> Iterator[Path]:
    """Every candidate file now in the inbox (start-up and periodic rescans)."""
    root = inbox.path
    walker = root.rglob("*") if inbox.recursive else root.glob("*")
    for path in walker:
        if is_candidate(path.relative_to(root), inbox.patterns, inbox.ignore, inbox.recursive) and (
            path.is_file() or path.is_symlink()
        ):
            yield path


@dataclass(slots=True)
class _Pending:
    inbox_index: int
    last_event: float
    stat: tuple[int, int] | None = None  # (size, mtime_ns) at the last check


class SettleTracker:
    """Files seen but not yet settled. `settled()` returns those that stopped changing."""

    def __init__(self, settle_seconds: Callable[[int], float], clock: Callable[[], float] = time.monotonic) -> None:
        self._settle_seconds = settle_seconds
        self._clock = clock
        self._pending: dict[Path, _Pending] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def touch(self, inbox_index: int, path: Path) -> None:
        """An event (or a scan) saw `path`: restart its quiet period."""
        entry = self._pending.get(path)
        if entry is None:
            self._pending[path] = _Pending(inbox_index, self._clock(), _stat(path))
        else:
            entry.last_event = self._clock()

    def settled(self) -> list[Seen]:
        now = self._clock()
        ready: list[Seen] = []
        for path, entry in list(self._pending.items()):
            if now - entry.last_event < self._settle_seconds(entry.inbox_index):
                continue
            stat = _stat(path)
            if stat is None:
                del self._pending[path]  # gone before it settled (moved away, deleted)
                continue
            if stat != entry.stat:
                entry.stat, entry.last_event = stat, now  # changed (or first look): wait another period
                continue
            del self._pending[path]
            ready.append((entry.inbox_index, path))
        return ready


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None
    return (info.st_size, info.st_mtime_ns)
