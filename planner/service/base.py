"""What every use case of a deployment shares: its catalog, store, clock and id sources.

The services are mixins over these attributes, one module per aggregate (plans, feeds,
webhooks, keys, idempotency), composed into :class:`planner.service.Planner` the way the
store composes its aggregates into ``Store``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING

from planner.catalog import Catalog
from planner.clock import Clock
from planner.export import Exporters
from planner.service.cache import RecentPlans
from planner.store import Store

if TYPE_CHECKING:
    from planner.service.writes import WriteRetry


def new_token() -> str:
    """A feed capability token: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


class ServiceBase:
    """The attributes the service mixins work with (set by :class:`Planner`)."""

    catalog: Catalog
    store: Store
    clock: Clock
    new_id: Callable[[], str]
    new_token: Callable[[], str]
    #: Plans this process committed lately, decoded (see :class:`RecentPlans` for why
    #: several processes on one database can share it safely).
    recent: RecentPlans
    exporters: Exporters
    #: How writes that named no revision wait out concurrent writers.
    write_retry: WriteRetry
    #: The deployment's public origin (``PUBLIC_BASE_URL``): feed and page links are
    #: absolute under it; ``None``: relative.
    public_base_url: str | None
