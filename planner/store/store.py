"""The ``Store``: API keys and plan documents behind a handful of methods.

Each method runs in its own short-lived session and transaction and returns plain frozen
dataclasses, so one ``Store`` can be shared by all threads of a process. Processes forked
after the ``Store`` was created (gunicorn workers with ``preload_app``) must call
:meth:`Store.after_fork` first, so that no two processes share a pooled connection.
"""

from __future__ import annotations

import hashlib
import secrets
import string
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self, cast

from alembic import command
from sqlalchemy import Connection, CursorResult, Engine, func, or_, select, update
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import sessionmaker

from planner.store.engine import make_engine
from planner.store.errors import (
    AmbiguousKeyError,
    DuplicatePlanError,
    PlanMissing,
    StaleRevision,
    StoreError,
)
from planner.store.migrate import alembic_config, current_revision
from planner.store.models import ApiKeyRow, PlanEventRow, PlanRevisionRow, PlanRow
from planner.store.records import ApiKey, EventRecord, PlanRecord, RevisionRecord

#: Every secret starts with this, so a leaked key is recognisable (e.g. by secret scanners).
KEY_SCHEME = "sbk_"
#: Length of the display prefix that follows the scheme.
KEY_PREFIX_LENGTH = 8
#: Bytes of randomness in the secret's body (256 bits; the design asks for at least 160).
KEY_BODY_BYTES = 32
#: ``last_used_at`` is only rewritten when older than this, so authenticating a busy key
#: is a read, not a write (SQLite allows one writer at a time).
LAST_USED_RESOLUTION = timedelta(minutes=1)

# Letters and digits only: no "_" or "-" inside the prefix, so "sbk_<prefix>_…" splits cleanly.
_PREFIX_ALPHABET = string.ascii_letters + string.digits
# Longer inputs are not keys; refuse them before hashing attacker-sized strings.
_MAX_SECRET_LENGTH = 256
_MAX_TEXT_LENGTH = 200
# Token hashes are SHA-256 hex; anything longer cannot match, so it is not even looked up.
_TOKEN_HASH_LENGTH = 64
# PostgreSQL advisory lock key taken while migrating (any constant unique to this app).
_MIGRATION_LOCK_ID = 7306418532017131


#: Plan columns :meth:`Store.set_plan_fields` may change without making a new revision.
SETTABLE_PLAN_FIELDS: frozenset[str] = frozenset(
    {
        "feed_token",
        "feed_token_hash",
        "busy_token",
        "busy_token_hash",
        "busy_ics",
        "busy_etag",
        "last_modified",
        "feed_expires_at",
        "settings",
        "ics",
        "etag",
        "document",
        "confirmed_at",
    }
)
_NOT_NULL_FIELDS = frozenset({"last_modified", "settings", "ics", "etag", "document"})


def _utcnow() -> datetime:
    return datetime.now(UTC)


def hash_secret(secret: str) -> str:
    """Return the stored form of an API key secret (SHA-256, hex).

    A fast hash is enough here: the secret carries 256 random bits, so there is nothing to
    brute-force, unlike a password that needs a slow, salted hash.
    """
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _new_secret() -> tuple[str, str]:
    """Return ``(prefix, secret)`` for a new key."""
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(KEY_PREFIX_LENGTH))
    return prefix, f"{KEY_SCHEME}{prefix}_{secrets.token_urlsafe(KEY_BODY_BYTES)}"


def _checked_text(value: str, what: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError(f"{what} must not be empty")
    if len(value) > _MAX_TEXT_LENGTH:
        raise ValueError(f"{what} must be at most {_MAX_TEXT_LENGTH} characters")
    return value


class Store:
    """Persistence for API keys and plans (SQLite file by default, PostgreSQL by URL)."""

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """Create the engine for ``url`` (no connection is opened yet).

        ``clock`` returns the current aware time; tests pass a fake one. The schema is not
        touched here: call :meth:`upgrade` once at start-up (before forking workers).
        """
        self._engine = make_engine(url, echo=echo)
        # expire_on_commit=False: rows are converted after the commit without a reload.
        self._sessions = sessionmaker(self._engine, expire_on_commit=False)
        self._clock = clock or _utcnow

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

    # -- API keys --------------------------------------------------------------------------

    def create_key(self, name: str, organisation: str) -> tuple[ApiKey, str]:
        """Create an API key for ``organisation``; return the record and the secret.

        The secret is shown once to the caller and never stored: only its hash is kept.
        """
        prefix, secret = _new_secret()
        row = ApiKeyRow(
            name=_checked_text(name, "name"),
            organisation=_checked_text(organisation, "organisation"),
            prefix=prefix,
            key_hash=hash_secret(secret),
            created_at=self._now(),
        )
        with self._sessions.begin() as session:
            session.add(row)
            session.flush()  # assigns the id
            key = _api_key(row)
        return key, secret

    def authenticate(self, secret: str) -> ApiKey | None:
        """Return the active key whose secret this is, or ``None`` (unknown or revoked)."""
        if not secret.startswith(KEY_SCHEME) or len(secret) > _MAX_SECRET_LENGTH:
            return None
        digest = hash_secret(secret)
        now = self._now()
        with self._sessions.begin() as session:
            row = session.scalars(
                select(ApiKeyRow).where(ApiKeyRow.key_hash == digest)
            ).one_or_none()
            if row is None or row.revoked_at is not None:
                return None
            if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
                row.last_used_at = now
            return _api_key(row)

    def list_keys(self) -> list[ApiKey]:
        """Return every key, revoked ones included, oldest first."""
        with self._sessions.begin() as session:
            rows = session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.id))
            return [_api_key(row) for row in rows]

    def revoke_key(self, key_id_or_prefix: str) -> bool:
        """Revoke an active key named by id, display prefix (with or without ``sbk_``) or secret.

        Returns ``False`` when no active key matches (unknown, or already revoked). Raises
        :class:`AmbiguousKeyError` when a prefix matches several active keys.
        """
        reference = key_id_or_prefix.strip()
        matches = [ApiKeyRow.prefix == reference.removeprefix(KEY_SCHEME)]
        if reference.startswith(KEY_SCHEME):
            matches.append(ApiKeyRow.key_hash == hash_secret(reference))
        if reference.isdigit() and len(reference) <= 18:  # stays within a 64-bit integer
            matches.append(ApiKeyRow.id == int(reference))
        with self._sessions.begin() as session:
            ids = list(
                session.scalars(
                    select(ApiKeyRow.id).where(ApiKeyRow.revoked_at.is_(None), or_(*matches))
                )
            )
            if len(ids) > 1:
                raise AmbiguousKeyError(reference, ids)
            if not ids:
                return False
            # The revoked_at condition again: a concurrent revoke must not be reported twice.
            result = cast(
                "CursorResult[Any]",
                session.execute(
                    update(ApiKeyRow)
                    .where(ApiKeyRow.id == ids[0], ApiKeyRow.revoked_at.is_(None))
                    .values(revoked_at=self._now())
                ),
            )
            return result.rowcount == 1

    # -- plans -----------------------------------------------------------------------------

    def add_plan(self, plan: PlanRecord, revision: RevisionRecord | None = None) -> None:
        """Store a new plan (and its first revision) in one transaction; on failure, nothing.

        ``plan.last_modified`` of ``None`` is stored as ``plan.updated_at``. Raises
        :class:`DuplicatePlanError` if a plan with the same id exists, and the underlying
        ``ValueError``/``TypeError`` (not SQLAlchemy's wrapper) for values that cannot be
        stored, such as a naive datetime or a request that is not JSON.
        """
        if revision is not None:
            _check_plan_id(revision.plan_id, plan.id, "revision")
        try:
            with _unwrapped_value_errors(), self._sessions.begin() as session:
                session.add(_plan_row(plan))
                if revision is not None:
                    # Flush the plan first: nothing tells the unit of work about the FK.
                    session.flush()
                    session.add(_revision_row(revision))
        except IntegrityError as exc:
            if self._plan_exists(plan.id):
                raise DuplicatePlanError(plan.id) from exc
            raise

    def update_plan(
        self,
        plan: PlanRecord,
        *,
        expected_revision: int,
        revision: RevisionRecord | None = None,
        event: EventRecord | None = None,
    ) -> None:
        """Replace the plan's current state, if it is still at ``expected_revision``.

        Optimistic concurrency: one conditional ``UPDATE ... WHERE revision =
        :expected_revision`` both checks and claims the plan, so of two writers that read
        the same revision exactly one succeeds; the other gets :class:`StaleRevision` (with
        the current revision number) and should re-read and retry. :class:`PlanMissing` if
        the plan does not exist in ``plan.organisation``. The revision and event rows are
        written in the same transaction: on any error nothing at all is written.

        Every column except ``id``, ``organisation`` and ``created_at`` is taken from
        ``plan``. An event with ``seq=0`` gets the plan's next number; safe without further
        locking, because the successful UPDATE already holds this plan's row (and on SQLite
        the database) until the commit. A duplicate revision or event number raises
        SQLAlchemy's ``IntegrityError``.
        """
        if revision is not None:
            _check_plan_id(revision.plan_id, plan.id, "revision")
        if event is not None:
            _check_plan_id(event.plan_id, plan.id, "event")
            if event.seq < 0:
                raise ValueError(f"event seq must be positive, or 0 for the next one: {event.seq}")
        mine = (PlanRow.id == plan.id, PlanRow.organisation == plan.organisation)
        with _unwrapped_value_errors(), self._sessions.begin() as session:
            result = cast(
                "CursorResult[Any]",
                session.execute(
                    update(PlanRow)
                    .where(*mine, PlanRow.revision == expected_revision)
                    .values(_mutable_values(plan))
                    .execution_options(synchronize_session=False)
                ),
            )
            if result.rowcount != 1:
                current = session.scalar(select(PlanRow.revision).where(*mine))
                if current is None:
                    raise PlanMissing(plan.id)
                raise StaleRevision(plan.id, expected_revision, current)
            if revision is not None:
                session.add(_revision_row(revision))
            if event is not None:
                seq = event.seq
                if seq == 0:
                    last = session.scalar(
                        select(func.max(PlanEventRow.seq)).where(PlanEventRow.plan_id == plan.id)
                    )
                    seq = (last or 0) + 1
                session.add(_event_row(event, seq))

    def set_plan_fields(
        self,
        organisation: str,
        plan_id: str,
        *,
        expected_revision: int | None = None,
        **fields: Any,
    ) -> bool:
        """Change only the named columns, without making a new revision.

        For what may change between revisions: feed tokens, re-rendered calendars, feed
        options, ``last_modified``, ``feed_expires_at``, ``confirmed_at`` (see
        :data:`SETTABLE_PLAN_FIELDS`; anything else is a ``ValueError``). With
        ``expected_revision`` the change only applies while the plan is still at that
        revision, so a rendering made from revision N never overwrites revision N+1's.
        Returns whether a plan was changed (``False``: missing, another organisation's, or
        moved on).
        """
        if not fields:
            raise ValueError("set_plan_fields needs at least one field")
        unknown = sorted(set(fields) - SETTABLE_PLAN_FIELDS)
        if unknown:
            raise ValueError(f"not settable without a new revision: {', '.join(unknown)}")
        nulled = sorted(name for name in _NOT_NULL_FIELDS & set(fields) if fields[name] is None)
        if nulled:
            raise ValueError(f"must not be None: {', '.join(nulled)}")
        conditions = [PlanRow.id == plan_id, PlanRow.organisation == organisation]
        if expected_revision is not None:
            conditions.append(PlanRow.revision == expected_revision)
        with _unwrapped_value_errors(), self._sessions.begin() as session:
            result = cast(
                "CursorResult[Any]",
                session.execute(
                    update(PlanRow)
                    .where(*conditions)
                    .values(fields)
                    .execution_options(synchronize_session=False)
                ),
            )
            return result.rowcount == 1

    def get_plan(self, organisation: str, plan_id: str) -> PlanRecord | None:
        """Return the plan if it exists and belongs to ``organisation``, else ``None``.

        Both cases look the same to the caller on purpose: another organisation's plan must
        be indistinguishable from a missing one (design §4: 404).
        """
        with self._sessions.begin() as session:
            row = session.scalars(
                select(PlanRow).where(PlanRow.id == plan_id, PlanRow.organisation == organisation)
            ).one_or_none()
            return None if row is None else _plan_record(row)

    def get_plan_by_feed_token_hash(self, token_hash: str) -> tuple[PlanRecord, str] | None:
        """Return the plan whose full or busy feed has this token hash, and which feed it is.

        The second item is ``"full"`` or ``"busy"``. Feeds are not scoped by organisation:
        the token is the capability. Callers hash the token (SHA-256 hex) and should still
        compare the stored token in constant time; nothing here logs either.
        """
        if not token_hash or len(token_hash) > _TOKEN_HASH_LENGTH:
            return None
        with self._sessions.begin() as session:
            row = session.scalars(
                select(PlanRow).where(
                    or_(
                        PlanRow.feed_token_hash == token_hash, PlanRow.busy_token_hash == token_hash
                    )
                )
            ).first()
            if row is None:
                return None
            return _plan_record(row), "full" if row.feed_token_hash == token_hash else "busy"

    def list_plans(
        self,
        organisation: str,
        *,
        limit: int,
        offset: int,
        athlete_reference: str | None = None,
        status: str | None = None,
    ) -> tuple[list[PlanRecord], int]:
        """Return one page of ``organisation``'s plans, newest first, and their total count.

        ``athlete_reference`` and ``status`` narrow both the page and the count. Ties on
        ``created_at`` are broken by id (descending) so that pages never overlap or skip a
        plan.
        """
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must not be negative")
        conditions = [PlanRow.organisation == organisation]
        if athlete_reference is not None:
            conditions.append(PlanRow.athlete_reference == athlete_reference)
        if status is not None:
            conditions.append(PlanRow.status == status)
        with self._sessions.begin() as session:
            total = session.scalar(select(func.count()).select_from(PlanRow).where(*conditions))
            rows = session.scalars(
                select(PlanRow)
                .where(*conditions)
                .order_by(PlanRow.created_at.desc(), PlanRow.id.desc())
                .limit(limit)
                .offset(offset)
            )
            return [_plan_record(row) for row in rows], total or 0

    def count_plans(self, organisation: str) -> int:
        """Return how many plans ``organisation`` has."""
        with self._sessions.begin() as session:
            total = session.scalar(
                select(func.count())
                .select_from(PlanRow)
                .where(PlanRow.organisation == organisation)
            )
            return total or 0

    # -- revisions and events --------------------------------------------------------------

    def get_revision(self, organisation: str, plan_id: str, revision: int) -> RevisionRecord | None:
        """Return one revision of ``organisation``'s plan, or ``None``."""
        with self._sessions.begin() as session:
            row = session.scalars(
                select(PlanRevisionRow)
                .join(PlanRow, PlanRow.id == PlanRevisionRow.plan_id)
                .where(
                    PlanRevisionRow.plan_id == plan_id,
                    PlanRevisionRow.revision == revision,
                    PlanRow.organisation == organisation,
                )
            ).one_or_none()
            return None if row is None else _revision_record(row)

    def list_revisions(self, organisation: str, plan_id: str) -> list[RevisionRecord]:
        """Return every revision of ``organisation``'s plan, oldest first (``[]``: no plan)."""
        with self._sessions.begin() as session:
            rows = session.scalars(
                select(PlanRevisionRow)
                .join(PlanRow, PlanRow.id == PlanRevisionRow.plan_id)
                .where(PlanRevisionRow.plan_id == plan_id, PlanRow.organisation == organisation)
                .order_by(PlanRevisionRow.revision)
            )
            return [_revision_record(row) for row in rows]

    def list_events(
        self, organisation: str, plan_id: str, *, kind: str | None = None
    ) -> list[EventRecord]:
        """Return the event log of ``organisation``'s plan in ``seq`` order (or one kind of it)."""
        conditions = [PlanEventRow.plan_id == plan_id, PlanRow.organisation == organisation]
        if kind is not None:
            conditions.append(PlanEventRow.kind == kind)
        with self._sessions.begin() as session:
            rows = session.scalars(
                select(PlanEventRow)
                .join(PlanRow, PlanRow.id == PlanEventRow.plan_id)
                .where(*conditions)
                .order_by(PlanEventRow.seq)
            )
            return [_event_record(row) for row in rows]

    def _plan_exists(self, plan_id: str) -> bool:
        with self._sessions.begin() as session:
            return session.get(PlanRow, plan_id) is not None


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


def _check_plan_id(given: str, expected: str, what: str) -> None:
    if given != expected:
        raise ValueError(f"{what} belongs to plan {given!r}, not {expected!r}")


# -- row <-> record conversion ---------------------------------------------------------------


def _api_key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        id=row.id,
        name=row.name,
        organisation=row.organisation,
        prefix=row.prefix,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def _mutable_values(plan: PlanRecord) -> dict[str, Any]:
    """Column values :meth:`Store.update_plan` writes: all but id, organisation, created_at."""
    return {
        "revision": plan.revision,
        "status": plan.status,
        "updated_at": plan.updated_at,
        "athlete_reference": plan.athlete_reference,
        "protocol_id": plan.protocol_id,
        "protocol_version": plan.protocol_version,
        "request": plan.request,
        "document": plan.document,
        "ics": plan.ics,
        "etag": plan.etag,
        "feed_token": plan.feed_token,
        "feed_token_hash": plan.feed_token_hash,
        "busy_token": plan.busy_token,
        "busy_token_hash": plan.busy_token_hash,
        "busy_ics": plan.busy_ics,
        "busy_etag": plan.busy_etag,
        "last_modified": plan.updated_at if plan.last_modified is None else plan.last_modified,
        "feed_expires_at": plan.feed_expires_at,
        "settings": plan.settings,
        "protocol_snapshot": plan.protocol_snapshot,
        "confirmed_at": plan.confirmed_at,
    }


def _plan_row(plan: PlanRecord) -> PlanRow:
    return PlanRow(
        id=plan.id,
        organisation=plan.organisation,
        created_at=plan.created_at,
        **_mutable_values(plan),
    )


def _plan_record(row: PlanRow) -> PlanRecord:
    return PlanRecord(
        id=row.id,
        organisation=row.organisation,
        revision=row.revision,
        status=row.status,
        created_at=row.created_at,
        updated_at=row.updated_at,
        athlete_reference=row.athlete_reference,
        protocol_id=row.protocol_id,
        protocol_version=row.protocol_version,
        request=row.request,
        document=row.document,
        ics=row.ics,
        etag=row.etag,
        feed_token=row.feed_token,
        feed_token_hash=row.feed_token_hash,
        busy_token=row.busy_token,
        busy_token_hash=row.busy_token_hash,
        busy_ics=row.busy_ics,
        busy_etag=row.busy_etag,
        last_modified=row.last_modified,
        feed_expires_at=row.feed_expires_at,
        settings=row.settings,
        protocol_snapshot=row.protocol_snapshot,
        confirmed_at=row.confirmed_at,
    )


def _revision_row(revision: RevisionRecord) -> PlanRevisionRow:
    return PlanRevisionRow(
        plan_id=revision.plan_id,
        revision=revision.revision,
        created_at=revision.created_at,
        key_id=revision.key_id,
        kind=revision.kind,
        reason=revision.reason,
        document=revision.document,
    )


def _revision_record(row: PlanRevisionRow) -> RevisionRecord:
    return RevisionRecord(
        plan_id=row.plan_id,
        revision=row.revision,
        created_at=row.created_at,
        key_id=row.key_id,
        kind=row.kind,
        reason=row.reason,
        document=row.document,
    )


def _event_row(event: EventRecord, seq: int) -> PlanEventRow:
    return PlanEventRow(
        plan_id=event.plan_id,
        seq=seq,
        kind=event.kind,
        today=event.today,
        recorded_at=event.recorded_at,
        key_id=event.key_id,
        payload=event.payload,
        decision=event.decision,
        revision=event.revision,
    )


def _event_record(row: PlanEventRow) -> EventRecord:
    return EventRecord(
        plan_id=row.plan_id,
        seq=row.seq,
        kind=row.kind,
        today=row.today,
        recorded_at=row.recorded_at,
        key_id=row.key_id,
        payload=row.payload,
        decision=row.decision,
        revision=row.revision,
    )
