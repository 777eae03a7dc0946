"""The durable store: jobs, results, reviews and deliveries in one SQLite file (WAL). The only package with SQL.

Every step that must survive a crash is a row here, so `kill -9` at any point
loses nothing: on start `store.jobs.recover()` re-queues jobs left
`processing`, and pending deliveries are simply still pending. `Store` is one
connection (open one per thread) with a table object per concern:

    store.jobs         intake, claiming, outcomes, results      (jobs.py)
    store.dispatch     jobs out with Celery workers             (dispatch.py)
    store.review       revisions, approvals, the review list    (review.py)
    store.deliveries   one row per result version per sink      (deliveries.py)
    store.reporting    counts for `status` and /metrics         (reporting.py)
    store.uploads      the HTTP API's uploads, list, forgetting (uploads.py)

Opening, integrity and refusals are in database.py, the schema in migrations.py.
"""

from __future__ import annotations

from pathlib import Path

from hwdaemon.store.database import DATABASE_NAME, Database
from hwdaemon.store.deliveries import Deliveries, Delivery, DeliveryState, delivery_key
from hwdaemon.store.dispatch import Dispatch
from hwdaemon.store.jobs import Job, Jobs, JobState
from hwdaemon.store.migrations import MIGRATIONS, SCHEMA_VERSION
from hwdaemon.store.reporting import Reporting
from hwdaemon.store.review import Review, ReviewFilter, ReviewRow, Revision
from hwdaemon.store.uploads import JobBusyError, UploadRecord, Uploads

__all__ = [
    "DATABASE_NAME",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Delivery",
    "DeliveryState",
    "Job",
    "JobBusyError",
    "JobState",
    "ReviewFilter",
    "ReviewRow",
    "Revision",
    "Store",
    "UploadRecord",
    "delivery_key",
]


class Store:
    """One connection to the state database and its tables; open one per thread.

    Raises StoreError (exit 78), naming the file and what to do, for a store that
    is empty, damaged, unopenable or newer than this code; see `Database`.
    """

    def __init__(self, state_dir: Path, verify: bool = False) -> None:
        self._database = Database(state_dir, verify)
        self.path = self._database.path
        self.jobs = Jobs(self._database)
        self.dispatch = Dispatch(self._database)
        self.review = Review(self._database)
        self.deliveries = Deliveries(self._database)
        self.reporting = Reporting(self._database)
        self.uploads = Uploads(self._database)

    @property
    def schema_version(self) -> int:
        return self._database.schema_version

    def close(self) -> None:
        self._database.close()
