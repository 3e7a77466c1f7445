"""The plan's decoded state, so a write resumes from the current revision.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-11

Hand-written. ``plans`` gains ``state`` (nullable binary): the current revision's domain
plan as written by ``planner.plan_state``, stored in the same transaction as the revision.
It is a derived cache of the event log — ``NULL`` (every existing plan, and the state of
any plan after a downgrade and upgrade) only means the next write replays the events once.
No backfill is needed.

Adding a nullable column without a default is an in-place ``ADD COLUMN`` on SQLite and
PostgreSQL alike; dropping it again is a batch-mode rebuild of ``plans`` on SQLite (with
foreign keys off, see ``Store.upgrade()``), a plain ``DROP COLUMN`` on PostgreSQL.

As in 0001–0003, only plain SQLAlchemy types are used, never ``planner.store.models``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _plans_0004() -> sa.Table:
    """``plans`` as this revision leaves it.

    Only used in offline (``--sql``) mode, where batch mode cannot reflect the table it
    rebuilds; online runs reflect the real table instead.
    """
    table = sa.Table(
        "plans",
        sa.MetaData(),
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
        sa.Column("feed_token", sa.String(length=64), nullable=True),
        sa.Column("feed_token_hash", sa.String(length=64), nullable=True),
        sa.Column("busy_token", sa.String(length=64), nullable=True),
        sa.Column("busy_token_hash", sa.String(length=64), nullable=True),
        sa.Column("busy_ics", sa.LargeBinary(), nullable=True),
        sa.Column("busy_etag", sa.String(length=80), nullable=True),
        sa.Column("last_modified", sa.DateTime(timezone=True), nullable=False),
        sa.Column("feed_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("protocol_snapshot", sa.JSON(), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_plans"),
    )
    sa.Index(
        "ix_plans_organisation_athlete_reference", table.c.organisation, table.c.athlete_reference
    )
    sa.Index(
        "ix_plans_organisation_created_at_id",
        table.c.organisation,
        table.c.created_at,
        table.c.id,
    )
    sa.Index("ix_plans_feed_token_hash", table.c.feed_token_hash, unique=True)
    sa.Index("ix_plans_busy_token_hash", table.c.busy_token_hash, unique=True)
    return table


def upgrade() -> None:
    """Add ``plans.state`` (``NULL`` for existing plans: their next write replays)."""
    # SQLite can ADD COLUMN in place: no rebuild for this batch.
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.add_column(sa.Column("state", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    """Drop ``plans.state`` (nothing is lost: it is derived from the event log)."""
    copy_from = _plans_0004() if context.is_offline_mode() else None
    with op.batch_alter_table("plans", schema=None, copy_from=copy_from) as batch_op:
        batch_op.drop_column("state")
