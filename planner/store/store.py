"""The ``Store``: API keys, plan documents, webhooks with their delivery outbox, and
idempotency keys, behind a handful of methods.

Each method runs in its own short-lived session and transaction and returns plain frozen
dataclasses, so one ``Store`` can be shared by all threads of a process. Processes forked
after the ``Store`` was created (gunicorn workers with ``preload_app``) must call
:meth:`Store.after_fork` first, so that no two processes share a pooled connection.

The ``Store`` is composed of one mixin per aggregate (as flask-smorest composes its ``Api``),
each in its own module over :class:`~planner.store.base.StoreBase`: callers keep one object
with one set of methods, while each part can be read, and changed, on its own.
"""

from __future__ import annotations

from planner.store.base import StoreBase
from planner.store.idempotency import IdempotencyStore
from planner.store.keys import KeyStore
from planner.store.plans import PlanStore
from planner.store.webhooks import WebhookStore


class Store(KeyStore, PlanStore, WebhookStore, IdempotencyStore, StoreBase):
    """Persistence for API keys, plans, webhooks and idempotency keys (SQLite file by
    default, PostgreSQL by URL)."""
