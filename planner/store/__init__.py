"""Persistence for stride-back: API keys and rendered plan documents.

The store keeps documents, not domain objects: it does not import ``planner.domain`` or
Flask, and returns plain frozen dataclasses. Schema changes go through the Alembic revisions
shipped in ``planner/store/migrations``.
"""

from planner.store.engine import database_url_from_env, default_database_url
from planner.store.errors import AmbiguousKeyError, DuplicatePlanError, StoreError
from planner.store.migrate import head_revision
from planner.store.records import ApiKey, PlanRecord, strong_etag
from planner.store.store import Store, hash_secret

__all__ = [
    "AmbiguousKeyError",
    "ApiKey",
    "DuplicatePlanError",
    "PlanRecord",
    "Store",
    "StoreError",
    "database_url_from_env",
    "default_database_url",
    "hash_secret",
    "head_revision",
    "strong_etag",
]
