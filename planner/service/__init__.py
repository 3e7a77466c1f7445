"""Use cases: the glue between HTTP/CLI input, the domain, the exporters and the store.

No HTTP here: handlers and the command line call :class:`Planner` and only translate its
inputs and outputs. One module per aggregate — :mod:`~planner.service.plans`,
:mod:`~planner.service.feeds`, :mod:`~planner.service.webhooks` (and its
:mod:`~planner.service.delivery`), :mod:`~planner.service.keys`,
:mod:`~planner.service.idempotency` — each a mixin over the attributes of
:class:`~planner.service.base.ServiceBase`; every plan write goes through the one unit of
work in :mod:`~planner.service.writes` and renders its revision once
(:mod:`~planner.service.rendering`).

The records the services hand out are the store's plain frozen values, re-exported here so
that callers depend on this package alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planner.catalog import Catalog
from planner.clock import Clock
from planner.clock import now_whole_seconds as utcnow
from planner.export import FAST_EXPORTERS, Exporters
from planner.service.base import new_token
from planner.service.cache import RecentPlans
from planner.service.delivery import BackgroundDelivery, Deliverer
from planner.service.errors import (
    DeliveryNotFound,
    FeedNotFound,
    InvalidWebhook,
    PlanNotFound,
    PreconditionFailed,
    RevisionConflict,
    WebhookDisabled,
    WebhookNotFound,
)
from planner.service.feeds import FeedService
from planner.service.idempotency import IdempotencyService
from planner.service.keys import KeyService
from planner.service.plans import CANCELLED_GRACE, PlanService, Precondition, Recorded
from planner.service.rendering import plan_links, served, served_tail
from planner.service.requests import build_plan
from planner.service.webhooks import EVENT_TYPES, WebhookService
from planner.service.writes import WriteRetry
from planner.store import (
    ApiKey,
    Claim,
    ClaimState,
    DeliveryRecord,
    DeliveryState,
    EventRecord,
    FeedHead,
    PlanDocument,
    PlanRecord,
    RevisionRecord,
    Store,
    WebhookRecord,
    default_database_url,
)


def open_store(
    url: str | None, data_dir: Path, *, pool_size: int | None = None, upgrade: bool = True
) -> Store:
    """The deployment's store: ``url``, else the embedded SQLite file under ``data_dir``;
    its schema created or upgraded first when ``upgrade``."""
    store = Store(url or default_database_url(data_dir), pool_size=pool_size)
    if upgrade:
        store.upgrade()
    return store


@dataclass
class Planner(PlanService, FeedService, WebhookService, KeyService, IdempotencyService):
    """The use cases of one deployment: a catalog, a store, a clock and id sources."""

    catalog: Catalog
    store: Store
    clock: Clock = utcnow
    new_id: Callable[[], str] = field(default=lambda: str(uuid.uuid4()))
    new_token: Callable[[], str] = field(default=new_token)
    recent: RecentPlans = field(default_factory=RecentPlans, repr=False, compare=False)
    #: Which exporters render revisions (the ``PLANNER_EXPORTERS`` setting).
    exporters: Exporters = field(default=FAST_EXPORTERS, repr=False)
    write_retry: WriteRetry = field(default_factory=WriteRetry, repr=False)
    public_base_url: str | None = None

    def served(self, record: PlanRecord | PlanDocument) -> tuple[bytes, str]:
        """The plan JSON as this deployment serves it, and its strong ETag."""
        return served(record, self.public_base_url)

    def served_tail(self, record: PlanRecord | PlanDocument) -> tuple[bytes, str]:
        """What serving adds to the stored plan JSON here, and the served ETag: enough to
        answer a revalidation without building the body."""
        return served_tail(record, self.public_base_url)

    def plan_links(self, record: PlanRecord | PlanDocument) -> dict[str, Any]:
        """Where the plan lives, as this deployment serves its links."""
        return plan_links(record, self.public_base_url)

    def database_revision(self) -> str | None:
        """The schema revision the database is at (fails when it is unreachable)."""
        return self.store.current_revision()

    def start_delivery(
        self, *, in_process: bool | None, allow_private: bool = False, interval: float = 1.0
    ) -> BackgroundDelivery | None:
        """Deliver webhooks from a daemon thread of this process, if ``in_process`` (or,
        when it is ``None``, on the embedded SQLite database, where one ``planner serve``
        is the whole deployment; with PostgreSQL run ``planner worker`` processes instead).
        Call it once per process *after* forking: several at once are safe, claims keep
        them apart. ``allow_private``: receivers on private addresses are sent to."""
        if in_process is None:
            in_process = self.store.engine.dialect.name == "sqlite"
        if not in_process:
            return None
        deliverer = Deliverer(self.store, allow_private=allow_private)
        return BackgroundDelivery(deliverer, interval=interval).start()


__all__ = [
    "CANCELLED_GRACE",
    "EVENT_TYPES",
    "ApiKey",
    "BackgroundDelivery",
    "Claim",
    "ClaimState",
    "DeliveryNotFound",
    "DeliveryRecord",
    "DeliveryState",
    "EventRecord",
    "FeedHead",
    "FeedNotFound",
    "InvalidWebhook",
    "PlanDocument",
    "PlanNotFound",
    "PlanRecord",
    "Planner",
    "Precondition",
    "PreconditionFailed",
    "Recorded",
    "RevisionConflict",
    "RevisionRecord",
    "Store",
    "WebhookDisabled",
    "WebhookNotFound",
    "WebhookRecord",
    "WriteRetry",
    "build_plan",
    "open_store",
    "served",
    "utcnow",
]
