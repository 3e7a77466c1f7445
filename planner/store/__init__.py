"""Persistence for stride-back: API keys, rendered plans, their revisions and event logs.

The store keeps documents, not domain objects: it does not import ``planner.domain`` or
Flask, and returns plain frozen dataclasses. Schema changes go through the Alembic revisions
shipped in ``planner/store/migrations``.
"""

from planner.store.engine import database_url_from_env, default_database_url
from planner.store.errors import (
    AmbiguousKeyError,
    DuplicatePlanError,
    PlanMissing,
    StaleRevision,
    StoreError,
)
from planner.store.migrate import head_revision
from planner.store.records import (
    ApiKey,
    EventRecord,
    PlanRecord,
    RevisionRecord,
    strong_etag,
)
from planner.store.store import SETTABLE_PLAN_FIELDS, Store, hash_secret

__all__ = [
    "SETTABLE_PLAN_FIELDS",
    "AmbiguousKeyError",
    "ApiKey",
    "DuplicatePlanError",
    "EventRecord",
    "PlanMissing",
    "PlanRecord",
    "RevisionRecord",
    "StaleRevision",
    "Store",
    "StoreError",
    "database_url_from_env",
    "default_database_url",
    "hash_secret",
    "head_revision",
    "strong_etag",
]
