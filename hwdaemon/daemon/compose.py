"""The daemon put together, in one place: context, outcomes, the executor for `queue.backend`, the side servers.

`hwdaemon run` calls `build_service`; nothing else builds these pieces, so
the Service itself imports neither the review page nor Celery.
"""

from __future__ import annotations

from pathlib import Path

from hwdaemon.config import Config
from hwdaemon.daemon.context import ThreadContext
from hwdaemon.daemon.executor import Executor
from hwdaemon.daemon.notify import Notifier
from hwdaemon.daemon.outcomes import Outcomes
from hwdaemon.daemon.runtime import Runtime
from hwdaemon.daemon.service import Service, SideServer
from hwdaemon.export import process_umask
from hwdaemon.metrics import Metrics, MetricsServer
from hwdaemon.plugins import Registry
from hwdaemon.store import Store


def build_service(
    config_path: Path | None, config: Config, registry: Registry, notifier: Notifier | None = None
) -> Service:
    process_umask()  # read once, before any thread exists
    context = ThreadContext(
        Runtime(config=config, registry=registry), Metrics(lambda: Store(context.runtime.config.state_dir))
    )
    outcomes = Outcomes(context)
    side_servers: list[SideServer] = []
    service = Service(config_path, context, outcomes, _executor(context, outcomes), side_servers, notifier)
    if config.metrics.enabled:
        side_servers.append(MetricsServer(context.metrics, service.health, config.metrics.host, config.metrics.port))
    if config.ui.enabled:
        from hwdaemon.ui.server import UiServer

        side_servers.append(UiServer(lambda: context.runtime.config, on_job_queued=context.work_available.set))
    _add_learning(context, side_servers)
    return service


def _add_learning(context: ThreadContext, side_servers: list[SideServer]) -> None:
    """The learner thread (idle unless a profile's `learning.enabled`) and its figures on /metrics."""
    from hwdaemon.learning.learner import Learner
    from hwdaemon.learning.summary import LearningCollector

    def config_of() -> Config:
        return context.runtime.config

    side_servers.append(Learner(config_of))
    context.metrics.registry.register(LearningCollector(config_of, lambda: Store(config_of().state_dir)))


def _executor(context: ThreadContext, outcomes: Outcomes) -> Executor:
    if context.runtime.config.queue.backend == "celery":
        from hwdaemon.distributed.coordinator import celery_executor

        return celery_executor(context, outcomes)
    from hwdaemon.daemon.worker import local_executor

    return local_executor(context, outcomes)
