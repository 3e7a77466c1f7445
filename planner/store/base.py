"""What every part of the :class:`~planner.store.Store` stands on: the engine and its
sessions, the schema's lifecycle, and the few helpers that several aggregates use.

Each aggregate (keys, plans, webhooks, idempotency keys) is a mixin subclassing
:class:`StoreBase`, so it sees ``self._sessions``, ``self._now()`` and the rest with their
types, and the mixins share no code but what is here.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, TypeVar, cast

from alembic import command
from sqlalchemy import Connection, CursorResult, Engine, select
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.expression import Executable

from planner.clock import Clock, now
from planner.store.engine import make_engine
from planner.store.errors import StoreError
from planner.store.migrate import alembic_config, current_revision
from planner.store.models import WebhookOutboxRow, WebhookRow
from planner.store.records import OutboxEvent

_MAX_TEXT_LENGTH = 200

_T = TypeVar("_T")
# PostgreSQL advisory lock key taken while migrating (any constant unique to this app).
_MIGRATION_LOCK_ID = 7306418532017131


class StoreBase:
    """The engine, its sessions and the clock, and the schema's lifecycle (SQLite file by
    default, PostgreSQL by URL)."""

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        clock: Clock | None = None,
        pool_size: int | None = None,
    ) -> None:
        """Create the engine for ``url`` (no connection is opened yet).

        ``clock`` returns the current aware time; tests pass a fake one. The schema is not
        touched here: call :meth:`upgrade` once at start-up (before forking workers).
        """
        self._engine = make_engine(url, echo=echo, pool_size=pool_size)
        # expire_on_commit=False: rows are converted after the commit without a reload.
        self._sessions = sessionmaker(self._engine, expire_on_commit=False)
        self._clock = clock or now
        self._prepare_reads()

    def _prepare_reads(self) -> None:
        """Compile the hot reads for this engine, once: each mixin that has some extends
        this (calling ``super()``), so the engine is created in one place only."""

    def __repr__(self) -> str:
        return f"Store({self._engine.url.render_as_string(hide_password=True)!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.dispose()

    @property
    def engine(self) -> Engine:
        """The underlying engine, for migrations tooling and diagnostics."""
        return self._engine

    def _now(self) -> datetime:
        return self._clock().astimezone(UTC)

    # -- lifecycle -------------------------------------------------------------------------

    def upgrade(self) -> None:
        """Bring the schema to the newest revision; a no-op when it is already there.

        The whole upgrade runs in one transaction that also serialises concurrent upgraders
        (several processes starting at once): SQLite takes its write lock up front and
        PostgreSQL an advisory lock, so the second process waits and then finds nothing to do.
        """
        with self._migration_connection() as connection:
            command.upgrade(alembic_config(connection), "head")

    def downgrade(self, target: str) -> None:
        """Take the schema back to revision ``target`` (``"base"``: no tables at all).

        Whatever the undone revisions added is dropped with its data. Runs in one
        transaction, like :meth:`upgrade`.
        """
        with self._migration_connection() as connection:
            command.downgrade(alembic_config(connection), target)

    @contextmanager
    def _migration_connection(self) -> Iterator[Connection]:
        """Yield a connection holding the migration lock; commit when the block succeeds.

        On SQLite, foreign keys are switched off for the duration, as SQLite's documented
        procedure for schema changes asks: batch mode rebuilds a table by dropping it, and
        with foreign keys on, dropping ``plans`` would first delete every row of it and so
        cascade to all revisions and events. ``PRAGMA foreign_key_check`` then verifies the
        result before the commit. The pragma only works outside a transaction, hence before
        ``BEGIN IMMEDIATE``, and is restored before the connection goes back to the pool.
        """
        with self._engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            elif connection.dialect.name == "postgresql":
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_ID})")
            try:
                yield connection
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        tables = sorted({str(row[0]) for row in broken})
                        raise StoreError(
                            f"migration left dangling foreign keys in {', '.join(tables)}; "
                            "nothing was changed"
                        )
                connection.commit()
            finally:
                if sqlite:
                    connection.rollback()  # a no-op after the commit
                    try:
                        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                        connection.commit()
                    except BaseException:
                        connection.invalidate()  # never pool a connection without FKs
                        raise

    def current_revision(self) -> str | None:
        """Return the schema revision of the database (``None`` if never upgraded)."""
        with self._engine.connect() as connection:
            return current_revision(connection)

    def after_fork(self) -> None:
        """Drop pooled connections inherited from the parent process without closing them.

        Closing would also close the parent's sockets/file handles; ``close=False`` just
        forgets them so this process opens its own.
        """
        self._engine.dispose(close=False)

    def dispose(self) -> None:
        """Close all pooled connections (call on shutdown and at the end of tests)."""
        self._engine.dispose()


# -- statements and values -------------------------------------------------------------------


def _rows_changed(session: Session, statement: Executable) -> int:
    """How many rows an UPDATE or DELETE changed. The ORM session is not synchronised:
    the store never holds on to rows that it changes this way."""
    result = session.execute(statement.execution_options(synchronize_session=False))
    return cast("CursorResult[Any]", result).rowcount


@contextmanager
def _unwrapped_value_errors() -> Iterator[None]:
    """Re-raise a bad value's own ``ValueError``/``TypeError`` instead of SQLAlchemy's wrapper.

    A naive datetime or a non-JSON payload is the caller's mistake, and the caller should be
    able to catch it as such. (The transaction has been rolled back by then.)
    """
    try:
        yield
    except StatementError as exc:
        if isinstance(exc.orig, ValueError | TypeError):
            raise exc.orig from exc
        raise


def _checked_text(value: str, what: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError(f"{what} must not be empty")
    if len(value) > _MAX_TEXT_LENGTH:
        raise ValueError(f"{what} must be at most {_MAX_TEXT_LENGTH} characters")
    return value


# -- the webhook outbox, written by plan writes and by ``enqueue_webhook_events`` alike ------


_uuid7_lock = threading.Lock()
_uuid7_last = (0, 0)  # (milliseconds, counter) of the last id made in this process


def _uuid7() -> str:
    """A time-ordered UUID (RFC 9562 version 7, with a 12-bit counter within a millisecond).

    Outbox rows due at the same instant are sent in id order, so ids that sort by creation
    keep one write's events (``plan.revised`` before ``checkin.recorded``) in the order
    they were made, at least within one process.
    """
    global _uuid7_last
    with _uuid7_lock:
        millis = time.time_ns() // 1_000_000
        last_millis, counter = _uuid7_last
        if millis <= last_millis:
            millis, counter = last_millis, counter + 1
            if counter > 0xFFF:  # 4096 ids in one millisecond: borrow the next one
                millis, counter = millis + 1, 0
        else:
            counter = 0
        _uuid7_last = (millis, counter)
    value = (millis & (2**48 - 1)) << 80
    value |= 0x7 << 76 | counter << 64
    value |= 0b10 << 62 | int.from_bytes(secrets.token_bytes(8)) & (2**62 - 1)
    return str(uuid.UUID(int=value))


def _add_outbox_rows(session: Session, events: Sequence[OutboxEvent]) -> list[str]:
    """Insert one outbox row per (event, subscribed enabled webhook); return the row ids.

    Subscriptions are read in the caller's transaction, so a webhook deleted meanwhile
    cannot leave a row pointing nowhere (the insert would fail the whole write instead of
    half-announcing it).
    """
    ids: list[str] = []
    subscribers: dict[str, list[WebhookRow]] = {}
    for event in events:
        if event.organisation not in subscribers:
            subscribers[event.organisation] = list(
                session.scalars(
                    select(WebhookRow)
                    .where(
                        WebhookRow.organisation == event.organisation,
                        WebhookRow.disabled_at.is_(None),
                    )
                    .order_by(WebhookRow.created_at, WebhookRow.id)
                )
            )
        for webhook in subscribers[event.organisation]:
            if event.event_type not in webhook.event_types:
                continue
            row = WebhookOutboxRow(
                id=_uuid7(),
                webhook_id=webhook.id,
                organisation=event.organisation,
                event_type=event.event_type,
                payload=dict(event.payload),
                created_at=event.occurred_at,
                attempts=0,
                next_attempt_at=event.occurred_at,
                delivered_at=None,
                last_status=None,
                last_error=None,
                gave_up_at=None,
                replayed_at=None,
            )
            session.add(row)
            ids.append(row.id)
    if ids:
        session.flush()
    return ids


# -- row <-> record conversion ---------------------------------------------------------------


def _by_name(source: Any, target: Callable[..., _T], names: Iterable[str], **given: Any) -> _T:
    """``target`` built from the same-named attributes of ``source`` (records mirror their
    rows field by field), ``given`` values taking precedence."""
    return target(**{name: getattr(source, name) for name in names if name not in given}, **given)


def _field_names(record_type: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(record_type))
