"""Plan revisions, the event log and calendar-feed tokens.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

Hand-written. ``plans`` gains its feed columns; ``last_modified``, ``settings`` and
``protocol_snapshot`` are NOT NULL, so they are added nullable, backfilled (``last_modified``
from ``updated_at``, the JSON documents as ``{}``) and then tightened, which on SQLite is one
batch-mode table rebuild. The rebuild happens before ``plan_revisions``/``plan_events``
reference ``plans`` (and the downgrade drops them first), so it never touches their rows.

As in 0001, only plain SQLAlchemy types are used, never ``planner.store.models``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import context, op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The columns this revision adds to ``plans`` (the three NOT NULL ones start nullable).
_NEW_PLAN_COLUMNS: tuple[tuple[str, sa.types.TypeEngine[Any]], ...] = (
    ("feed_token", sa.String(length=64)),
    ("feed_token_hash", sa.String(length=64)),
    ("busy_token", sa.String(length=64)),
    ("busy_token_hash", sa.String(length=64)),
    ("busy_ics", sa.LargeBinary()),
    ("busy_etag", sa.String(length=80)),
    ("last_modified", sa.DateTime(timezone=True)),
    ("feed_expires_at", sa.DateTime(timezone=True)),
    ("settings", sa.JSON()),
    ("protocol_snapshot", sa.JSON()),
    ("confirmed_at", sa.DateTime(timezone=True)),
)
_NOT_NULL_AFTER_BACKFILL: tuple[tuple[str, sa.types.TypeEngine[Any]], ...] = (
    ("last_modified", sa.DateTime(timezone=True)),
    ("settings", sa.JSON()),
    ("protocol_snapshot", sa.JSON()),
)
_TOKEN_HASH_INDEXES = (
    ("ix_plans_feed_token_hash", "feed_token_hash"),
    ("ix_plans_busy_token_hash", "busy_token_hash"),
)


def _plans_0001(metadata: sa.MetaData, *, with_new_columns: bool) -> sa.Table:
    """``plans`` as 0001 left it (optionally plus this revision's columns, all nullable).

    Only used in offline (``--sql``) mode, where batch mode cannot reflect the table it
    rebuilds; online runs reflect the real table instead.
    """
    table = sa.Table(
        "plans",
        metadata,
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("organisation", sa.String(length=200), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("athlete_reference", sa.String(length=200), nullable=True),
        sa.Column("protocol_id", sa.String(length=200), nullable=False),
        sa.Column("protocol_version", sa.String(length=64), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("document", sa.LargeBinary(), nullable=False),
        sa.Column("ics", sa.LargeBinary(), nullable=False),
        sa.Column("etag", sa.String(length=80), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_plans"),
        sa.Index("ix_plans_organisation_athlete_reference", "organisation", "athlete_reference"),
        sa.Index("ix_plans_organisation_created_at_id", "organisation", "created_at", "id"),
    )
    if with_new_columns:
        for name, type_ in _NEW_PLAN_COLUMNS:
            table.append_column(sa.Column(name, type_, nullable=True))
        for index_name, column in _TOKEN_HASH_INDEXES:
            sa.Index(index_name, table.c[column], unique=True)
    return table


def _copy_from(*, with_new_columns: bool) -> sa.Table | None:
    if not context.is_offline_mode():
        return None
    return _plans_0001(sa.MetaData(), with_new_columns=with_new_columns)


def upgrade() -> None:
    """Add the feed columns to ``plans``, then create ``plan_revisions`` and ``plan_events``."""
    # SQLite can ADD COLUMN and CREATE INDEX in place: no rebuild for this batch.
    with op.batch_alter_table("plans", schema=None) as batch_op:
        for name, type_ in _NEW_PLAN_COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=True))
        for index_name, column in _TOKEN_HASH_INDEXES:
            batch_op.create_index(index_name, [column], unique=True)

    # Existing plans: the feed was last modified when the plan was; no options, no snapshot.
    op.execute(
        "UPDATE plans SET last_modified = updated_at, settings = '{}', protocol_snapshot = '{}'"
    )

    # NOT NULL needs the rebuild on SQLite (an ALTER COLUMN on PostgreSQL).
    with op.batch_alter_table(
        "plans", schema=None, copy_from=_copy_from(with_new_columns=True)
    ) as batch_op:
        for name, type_ in _NOT_NULL_AFTER_BACKFILL:
            batch_op.alter_column(name, existing_type=type_, nullable=False)

    op.create_table(
        "plan_revisions",
        sa.Column("plan_id", sa.String(length=36), nullable=False),
        sa.Column("revision", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("document", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"], ["api_keys.id"], name=op.f("fk_plan_revisions_key_id_api_keys")
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["plans.id"],
            name=op.f("fk_plan_revisions_plan_id_plans"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("plan_id", "revision", name=op.f("pk_plan_revisions")),
    )
    op.create_table(
        "plan_events",
        sa.Column("plan_id", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("today", sa.Date(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("decision", sa.JSON(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"], ["api_keys.id"], name=op.f("fk_plan_events_key_id_api_keys")
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["plans.id"],
            name=op.f("fk_plan_events_plan_id_plans"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("plan_id", "seq", name=op.f("pk_plan_events")),
    )


def downgrade() -> None:
    """Drop the new tables (revisions and events are lost), then the new ``plans`` columns."""
    op.drop_table("plan_events")
    op.drop_table("plan_revisions")

    with op.batch_alter_table(
        "plans", schema=None, copy_from=_copy_from(with_new_columns=True)
    ) as batch_op:
        for index_name, _ in reversed(_TOKEN_HASH_INDEXES):
            batch_op.drop_index(index_name)
        for name, _ in reversed(_NEW_PLAN_COLUMNS):
            batch_op.drop_column(name)
