"""Row classes for the planner's database (SQLAlchemy 2.x typed declarative mapping).

These classes are private to ``planner.store``: the rest of the service only ever sees the
frozen dataclasses in ``planner.store.records``, so no ORM object (and no session) escapes a
store call. Every schema change needs an Alembic revision in ``migrations/versions``; a test
checks that the migrated schema and these models agree.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Explicit constraint names keep Alembic's batch mode (SQLite table rebuilds) and future
# "drop constraint" migrations working the same on SQLite and PostgreSQL.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Store aware datetimes as UTC and always hand back aware UTC datetimes.

    PostgreSQL has ``timestamptz``, but SQLite has no time zone support: SQLAlchemy writes the
    wall-clock digits and reads back a naive value. Normalising to UTC on the way in (and
    dropping the offset for SQLite, so that text ordering is time ordering) and re-attaching
    UTC on the way out gives callers the same aware values on both databases. Naive values
    are refused, because guessing their zone is how off-by-hours bugs start.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert an aware datetime to UTC (naive UTC wall time on SQLite)."""
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware datetime (UTC)")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return the stored instant as an aware UTC datetime."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base carrying the shared metadata (and its naming convention)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ApiKeyRow(Base):
    """An API key: only a SHA-256 of the secret is kept, plus a short prefix for display."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    organisation: Mapped[str] = mapped_column(String(200), index=True)
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # What the key may do: a JSON list of scope names (see ``planner.store.records.SCOPES``).
    scopes: Mapped[list[str]] = mapped_column(JSON)


class PlanRow(Base):
    """The current revision of a plan: a few indexed columns plus the rendered documents.

    The JSON and iCalendar bytes are rendered once when a revision is made and served as
    stored (see design §8: rendering costs milliseconds, reading bytes costs microseconds).
    Earlier revisions live in ``plan_revisions``, the events that made them in
    ``plan_events``.
    """

    __tablename__ = "plans"
    # Both composite indexes lead with ``organisation``, so they also serve every
    # "this organisation's plans" lookup; a separate single-column index would only cost writes.
    __table_args__ = (
        Index("ix_plans_organisation_athlete_reference", "organisation", "athlete_reference"),
        # Newest-first listing: both SQLite and PostgreSQL scan this index backwards.
        Index("ix_plans_organisation_created_at_id", "organisation", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    organisation: Mapped[str] = mapped_column(String(200))
    revision: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    athlete_reference: Mapped[str | None] = mapped_column(String(200))
    protocol_id: Mapped[str] = mapped_column(String(200))
    protocol_version: Mapped[str] = mapped_column(String(64))
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    document: Mapped[bytes] = mapped_column(LargeBinary)
    ics: Mapped[bytes] = mapped_column(LargeBinary)
    etag: Mapped[str] = mapped_column(String(80))
    # Calendar feeds. The tokens are capabilities kept only to show the feed URLs; requests
    # are matched on the (unique, indexed) SHA-256 hex digests.
    feed_token: Mapped[str | None] = mapped_column(String(64))
    feed_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    busy_token: Mapped[str | None] = mapped_column(String(64))
    busy_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    busy_ics: Mapped[bytes | None] = mapped_column(LargeBinary)
    busy_etag: Mapped[str | None] = mapped_column(String(80))
    last_modified: Mapped[datetime] = mapped_column(UTCDateTime())
    feed_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    protocol_snapshot: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The current revision's domain plan (``planner.service.state``), a cache of the event log
    # that writes resume from. Deferred: only the write path reads it
    # (``Store.get_plan_with_state``); raiseload makes any other access an error, not a
    # hidden extra query per row.
    state: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True, deferred_raiseload=True)


class PlanRevisionRow(Base):
    """One revision of a plan, kept for audit and for serving ``?revision=N``."""

    __tablename__ = "plan_revisions"

    plan_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("plans.id", ondelete="CASCADE"), primary_key=True
    )
    revision: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    key_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("api_keys.id"))
    kind: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    document: Mapped[bytes] = mapped_column(LargeBinary)


class PlanEventRow(Base):
    """One entry of a plan's event log (``seq`` counts from 1 per plan).

    The log is what a plan is replayed from, so it is append-only: the store never updates
    or deletes an event (only deleting the plan removes its events).
    """

    __tablename__ = "plan_events"

    plan_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("plans.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(32))
    today: Mapped[date] = mapped_column(Date)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    key_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("api_keys.id"))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    # none_as_null: "no decision" is SQL NULL, not the JSON text 'null'.
    decision: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    revision: Mapped[int] = mapped_column(Integer)


class WebhookRow(Base):
    """A webhook subscription of one organisation: where to POST which event types.

    The signing secret is kept in clear (``whsec_`` + base64): HMAC needs the key itself.
    After a rotation the previous secret still signs alongside the new one until
    ``previous_secret_expires_at``. ``disabled_at`` is set when the receiver answers
    ``410 Gone``; a disabled webhook gets no new deliveries.
    """

    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    organisation: Mapped[str] = mapped_column(String(200), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    event_types: Mapped[list[str]] = mapped_column(JSON)
    secret: Mapped[str] = mapped_column(String(100))
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WebhookOutboxRow(Base):
    """One event to deliver to one webhook: the transactional outbox.

    Rows are written in the same transaction as the change they announce, so an event is
    never lost or sent for a change that was rolled back. ``id`` is the Standard Webhooks
    ``webhook-id`` and stays the same across retries and replays. A worker claims a due
    row by moving ``next_attempt_at`` into the future (a lease), so several workers never
    hold the same row at once; ``attempts`` counts claims.
    """

    __tablename__ = "webhook_outbox"
    __table_args__ = (
        # The worker's "what is due" scan: undelivered, not given up, oldest due first.
        Index(
            "ix_webhook_outbox_delivered_at_gave_up_at_next_attempt_at",
            "delivered_at",
            "gave_up_at",
            "next_attempt_at",
        ),
        # A webhook's deliveries, newest first.
        Index("ix_webhook_outbox_webhook_id_created_at", "webhook_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    webhook_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("webhooks.id", ondelete="CASCADE")
    )
    organisation: Mapped[str] = mapped_column(String(200))
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    gave_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A manual replay starts a new retry window (retries stop 24 h after this or creation).
    replayed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class IdempotencyKeyRow(Base):
    """A client's ``Idempotency-Key`` and the response it got, kept for 24 hours.

    The row is inserted as a placeholder (``status`` NULL) before the request runs, so of
    two concurrent requests with the same key exactly one inserts it and proceeds.
    """

    __tablename__ = "idempotency_keys"

    organisation: Mapped[str] = mapped_column(String(200), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    method: Mapped[str] = mapped_column(String(10), primary_key=True)
    path: Mapped[str] = mapped_column(String(500), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    status: Mapped[int | None] = mapped_column(Integer)
    headers: Mapped[dict[str, str] | None] = mapped_column(JSON(none_as_null=True))
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
