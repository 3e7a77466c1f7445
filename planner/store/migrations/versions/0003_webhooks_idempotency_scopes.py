"""Webhooks and their delivery outbox, idempotency keys, API key scopes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04

Hand-written. ``api_keys`` gains ``scopes`` (NOT NULL): added nullable, backfilled with every
scope that exists today (keys made before scopes could do everything, and still can), then
tightened, which on SQLite is one batch-mode rebuild of ``api_keys``. Plan revisions and
events reference ``api_keys``; ``Store.upgrade()`` switches SQLite's foreign keys off while
migrating, so the rebuild does not touch them (and checks them before committing).

Three new tables: ``webhooks`` (subscriptions), ``webhook_outbox`` (one row per event and
webhook, written in the transaction of the change it announces; the worker's index leads
with ``delivered_at, gave_up_at``) and ``idempotency_keys``.

As in 0001 and 0002, only plain SQLAlchemy types are used, never ``planner.store.models``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: What existing keys may do: every scope there is at this revision.
_ALL_SCOPES_JSON = '["plans:read", "plans:write", "feeds:manage", "webhooks:manage", "admin"]'
_OUTBOX_DUE_INDEX = "ix_webhook_outbox_delivered_at_gave_up_at_next_attempt_at"
_OUTBOX_LIST_INDEX = "ix_webhook_outbox_webhook_id_created_at"


def _api_keys_0002(*, nullable_scopes: bool) -> sa.Table:
    """``api_keys`` as 0002 left it plus ``scopes``.

    Only used in offline (``--sql``) mode, where batch mode cannot reflect the table it
    rebuilds; online runs reflect the real table instead.
    """
    table = sa.Table(
        "api_keys",
        sa.MetaData(),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("organisation", sa.String(length=200), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("scopes", sa.JSON(), nullable=nullable_scopes),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
    )
    sa.Index("ix_api_keys_key_hash", table.c.key_hash, unique=True)
    sa.Index("ix_api_keys_organisation", table.c.organisation)
    return table


def _copy_from(*, nullable_scopes: bool) -> sa.Table | None:
    if not context.is_offline_mode():
        return None
    return _api_keys_0002(nullable_scopes=nullable_scopes)


def upgrade() -> None:
    """Add ``api_keys.scopes`` (all scopes for existing keys) and the webhook/idempotency
    tables."""
    # SQLite can ADD COLUMN in place: no rebuild for this batch.
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scopes", sa.JSON(), nullable=True))

    op.execute(f"UPDATE api_keys SET scopes = '{_ALL_SCOPES_JSON}'")

    with op.batch_alter_table(
        "api_keys", schema=None, copy_from=_copy_from(nullable_scopes=True)
    ) as batch_op:
        batch_op.alter_column("scopes", existing_type=sa.JSON(), nullable=False)

    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("organisation", sa.String(length=200), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("event_types", sa.JSON(), nullable=False),
        sa.Column("secret", sa.String(length=100), nullable=False),
        sa.Column("previous_secret", sa.String(length=100), nullable=True),
        sa.Column("previous_secret_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhooks")),
    )
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhooks_organisation"), ["organisation"], unique=False
        )

    op.create_table(
        "webhook_outbox",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("webhook_id", sa.String(length=36), nullable=False),
        sa.Column("organisation", sa.String(length=200), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("gave_up_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["webhooks.id"],
            name=op.f("fk_webhook_outbox_webhook_id_webhooks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_outbox")),
    )
    with op.batch_alter_table("webhook_outbox", schema=None) as batch_op:
        batch_op.create_index(
            _OUTBOX_DUE_INDEX, ["delivered_at", "gave_up_at", "next_attempt_at"], unique=False
        )
        batch_op.create_index(_OUTBOX_LIST_INDEX, ["webhook_id", "created_at"], unique=False)

    op.create_table(
        "idempotency_keys",
        sa.Column("organisation", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("headers", sa.JSON(), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint(
            "organisation", "key", "method", "path", name=op.f("pk_idempotency_keys")
        ),
    )
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_idempotency_keys_created_at"), ["created_at"], unique=False
        )


def downgrade() -> None:
    """Drop the new tables (subscriptions, pending deliveries and stored responses are
    lost), then ``api_keys.scopes`` (every key can do everything again)."""
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_keys_created_at"))
    op.drop_table("idempotency_keys")

    with op.batch_alter_table("webhook_outbox", schema=None) as batch_op:
        batch_op.drop_index(_OUTBOX_LIST_INDEX)
        batch_op.drop_index(_OUTBOX_DUE_INDEX)
    op.drop_table("webhook_outbox")

    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhooks_organisation"))
    op.drop_table("webhooks")

    with op.batch_alter_table(
        "api_keys", schema=None, copy_from=_copy_from(nullable_scopes=False)
    ) as batch_op:
        batch_op.drop_column("scopes")
