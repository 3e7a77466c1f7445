"""Persistence for stride-back: API keys, rendered plans, their revisions and event logs,
webhook subscriptions and their outbox, and idempotency keys.

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
from planner.store.idempotency import IDEMPOTENCY_TTL, IDEMPOTENT_HEADERS
from planner.store.keys import hash_secret
from planner.store.migrate import head_revision
from planner.store.plans import SETTABLE_PLAN_FIELDS
from planner.store.records import (
    SCOPES,
    ApiKey,
    Claim,
    ClaimedDelivery,
    ClaimState,
    DeliveryRecord,
    DeliveryState,
    EventRecord,
    FeedHead,
    OutboxEvent,
    PlanDocument,
    PlanRecord,
    RevisionRecord,
    StoredResponse,
    WebhookRecord,
    strong_etag,
)
from planner.store.store import Store
from planner.store.webhooks import new_webhook_secret

__all__ = [
    "IDEMPOTENCY_TTL",
    "IDEMPOTENT_HEADERS",
    "SCOPES",
    "SETTABLE_PLAN_FIELDS",
    "AmbiguousKeyError",
    "ApiKey",
    "Claim",
    "ClaimState",
    "ClaimedDelivery",
    "DeliveryRecord",
    "DeliveryState",
    "DuplicatePlanError",
    "EventRecord",
    "FeedHead",
    "OutboxEvent",
    "PlanMissing",
    "PlanDocument",
    "PlanRecord",
    "RevisionRecord",
    "StaleRevision",
    "Store",
    "StoreError",
    "StoredResponse",
    "WebhookRecord",
    "database_url_from_env",
    "default_database_url",
    "hash_secret",
    "head_revision",
    "new_webhook_secret",
    "strong_etag",
]
