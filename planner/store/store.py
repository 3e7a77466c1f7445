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
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self, cast

from alembic import command
from sqlalchemy import CursorResult, Engine, func, or_, select, update
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import sessionmaker

from planner.store.engine import make_engine
from planner.store.errors import AmbiguousKeyError, DuplicatePlanError
from planner.store.migrate import alembic_config, current_revision
from planner.store.models import ApiKeyRow, PlanRow
from planner.store.records import ApiKey, PlanRecord

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
# PostgreSQL advisory lock key taken while migrating (any constant unique to this app).
_MIGRATION_LOCK_ID = 7306418532017131


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
        with self._engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            elif connection.dialect.name == "postgresql":
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_ID})")
            command.upgrade(alembic_config(connection), "head")
            connection.commit()

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

    def add_plan(self, plan: PlanRecord) -> None:
        """Store a new plan in one transaction; on any failure nothing is stored.

        Raises :class:`DuplicatePlanError` if a plan with the same id exists, and the
        underlying ``ValueError``/``TypeError`` (not SQLAlchemy's wrapper) for values that
        cannot be stored, such as a naive datetime or a request that is not JSON.
        """
        try:
            with self._sessions.begin() as session:
                session.add(_plan_row(plan))
        except IntegrityError as exc:
            if self._plan_exists(plan.id):
                raise DuplicatePlanError(plan.id) from exc
            raise
        except StatementError as exc:
            if isinstance(exc.orig, ValueError | TypeError):
                raise exc.orig from exc
            raise

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

    def list_plans(
        self, organisation: str, *, limit: int, offset: int
    ) -> tuple[list[PlanRecord], int]:
        """Return one page of ``organisation``'s plans, newest first, and their total count.

        Ties on ``created_at`` are broken by id (descending) so that pages never overlap or
        skip a plan.
        """
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must not be negative")
        with self._sessions.begin() as session:
            total = session.scalar(
                select(func.count())
                .select_from(PlanRow)
                .where(PlanRow.organisation == organisation)
            )
            rows = session.scalars(
                select(PlanRow)
                .where(PlanRow.organisation == organisation)
                .order_by(PlanRow.created_at.desc(), PlanRow.id.desc())
                .limit(limit)
                .offset(offset)
            )
            return [_plan_record(row) for row in rows], total or 0

    def _plan_exists(self, plan_id: str) -> bool:
        with self._sessions.begin() as session:
            return session.get(PlanRow, plan_id) is not None


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


def _plan_row(plan: PlanRecord) -> PlanRow:
    return PlanRow(
        id=plan.id,
        organisation=plan.organisation,
        revision=plan.revision,
        status=plan.status,
        created_at=plan.created_at,
        updated_at=plan.updated_at,
        athlete_reference=plan.athlete_reference,
        protocol_id=plan.protocol_id,
        protocol_version=plan.protocol_version,
        request=plan.request,
        document=plan.document,
        ics=plan.ics,
        etag=plan.etag,
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
    )
