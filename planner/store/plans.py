"""Plans: their current state, revisions, event logs and calendar feeds.

A write replaces the plan's row under optimistic concurrency (``revision``) and adds its
revision, event and webhook outbox rows in the same transaction. The reads every feed or
API request makes go through prepared statements (:class:`_HotReads`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, bindparam, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from planner.store.base import (
    StoreBase,
    _add_outbox_rows,
    _by_name,
    _field_names,
    _rows_changed,
    _unwrapped_value_errors,
)
from planner.store.errors import DuplicatePlanError, PlanMissing, StaleRevision
from planner.store.models import PlanEventRow, PlanRevisionRow, PlanRow
from planner.store.prepared import PreparedRead
from planner.store.records import (
    EventRecord,
    FeedHead,
    OutboxEvent,
    PlanDocument,
    PlanRecord,
    RevisionRecord,
)

# Token hashes are SHA-256 hex; anything longer cannot match, so it is not even looked up.
_TOKEN_HASH_LENGTH = 64

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


def _check_plan_id(given: str, expected: str, what: str) -> None:
    if given != expected:
        raise ValueError(f"{what} belongs to plan {given!r}, not {expected!r}")


# -- row <-> record conversion ---------------------------------------------------------------


#: Plan columns set once, at insert: everything else is rewritten by ``update_plan``.
_IMMUTABLE_PLAN_FIELDS = frozenset({"id", "organisation", "created_at"})
#: ``PlanRecord`` fields mirror ``plans`` columns one to one, by name. ``state`` is left out
#: of what reads select (it is deferred, see ``PlanRow.state``): only
#: :meth:`Store.get_plan_with_state` and :meth:`Store.get_plan_state` read it, and every
#: write (:func:`_mutable_values`) writes it.
_PLAN_FIELDS = tuple(f.name for f in fields(PlanRecord) if f.name != "state")
_REVISION_FIELDS = _field_names(RevisionRecord)
_EVENT_FIELDS = _field_names(EventRecord)


def _mutable_values(plan: PlanRecord) -> dict[str, Any]:
    """Column values :meth:`Store.update_plan` writes: all but id, organisation, created_at."""
    values = {
        name: getattr(plan, name) for name in _PLAN_FIELDS if name not in _IMMUTABLE_PLAN_FIELDS
    }
    if values["last_modified"] is None:
        values["last_modified"] = plan.updated_at
    values["state"] = plan.state  # None: the next write replays the plan's events
    return values


def _plan_row(plan: PlanRecord) -> PlanRow:
    return PlanRow(
        id=plan.id,
        organisation=plan.organisation,
        created_at=plan.created_at,
        **_mutable_values(plan),
    )


def _plan_record(row: PlanRow) -> PlanRecord:
    return PlanRecord(**{name: getattr(row, name) for name in _PLAN_FIELDS})


def _revision_row(revision: RevisionRecord) -> PlanRevisionRow:
    return _by_name(revision, PlanRevisionRow, _REVISION_FIELDS)


def _revision_record(row: PlanRevisionRow) -> RevisionRecord:
    return _by_name(row, RevisionRecord, _REVISION_FIELDS)


def _event_row(event: EventRecord, seq: int) -> PlanEventRow:
    return _by_name(event, PlanEventRow, _EVENT_FIELDS, seq=seq)


def _event_record(row: PlanEventRow) -> EventRecord:
    return _by_name(row, EventRecord, _EVENT_FIELDS)


# -- prepared reads --------------------------------------------------------------------------


class _HotReads:
    """The plans' hot reads — those feed and API requests make, and the write path's read
    of a plan with its state — prepared once per engine. (The API key lookup is
    :class:`~planner.store.keys.KeyStore`'s.)"""

    _FEED_HEAD_COLUMNS = (
        PlanRow.id,
        PlanRow.organisation,
        PlanRow.revision,
        PlanRow.feed_token_hash,
        PlanRow.feed_token,
        PlanRow.busy_token,
        PlanRow.etag,
        PlanRow.busy_etag,
        PlanRow.last_modified,
        PlanRow.updated_at,
        PlanRow.feed_expires_at,
    )

    def __init__(self, engine: Engine) -> None:
        by_token = or_(
            PlanRow.feed_token_hash == bindparam("token_hash"),
            PlanRow.busy_token_hash == bindparam("token_hash"),
        )
        self.feed_head = PreparedRead(engine, select(*self._FEED_HEAD_COLUMNS).where(by_token))
        self.feed_with_body = PreparedRead(
            engine,
            select(*self._FEED_HEAD_COLUMNS, PlanRow.ics, PlanRow.busy_ics).where(by_token),
        )
        self.feed_body = PreparedRead(
            engine,
            select(PlanRow.ics, PlanRow.busy_ics).where(PlanRow.id == bindparam("plan_id")),
        )
        mine = (
            PlanRow.id == bindparam("plan_id"),
            PlanRow.organisation == bindparam("organisation"),
        )
        plan = [getattr(PlanRow, name) for name in _PLAN_FIELDS]
        self.plan = PreparedRead(engine, select(*plan).where(*mine))
        # The write path's reads of the (deferred) state: see Store.get_plan_with_state.
        self.plan_with_state = PreparedRead(engine, select(*plan, PlanRow.state).where(*mine))
        self.state = PreparedRead(engine, select(PlanRow.state).where(*mine))
        self.plan_document = PreparedRead(
            engine, select(*(getattr(PlanRow, f.name) for f in fields(PlanDocument))).where(*mine)
        )


class PlanStore(StoreBase):
    """The plans part of the :class:`~planner.store.Store`: plans with their revisions,
    event logs and feeds."""

    _reads: _HotReads

    def _prepare_reads(self) -> None:
        super()._prepare_reads()
        self._reads = _HotReads(self._engine)

    def add_plan(
        self,
        plan: PlanRecord,
        revision: RevisionRecord | None = None,
        *,
        outbox: Sequence[OutboxEvent] = (),
    ) -> None:
        """Store a new plan (and its first revision) in one transaction; on failure, nothing.

        ``outbox`` events become webhook outbox rows (one per enabled webhook of their
        organisation subscribed to the event type) in the same transaction, so a webhook
        announces exactly the plans that were stored.

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
                _add_outbox_rows(session, outbox)
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
        outbox: Sequence[OutboxEvent] = (),
    ) -> EventRecord | None:
        """Replace the plan's current state, if it is still at ``expected_revision``.

        Optimistic concurrency: one conditional ``UPDATE ... WHERE revision =
        :expected_revision`` both checks and claims the plan, so of two writers that read
        the same revision exactly one succeeds; the other gets :class:`StaleRevision` (with
        the current revision number) and should re-read and retry. :class:`PlanMissing` if
        the plan does not exist in ``plan.organisation``. The revision and event rows, and
        the webhook outbox rows of the ``outbox`` events (see :meth:`add_plan`), are
        written in the same transaction: on any error nothing at all is written.

        Every column except ``id``, ``organisation`` and ``created_at`` is taken from
        ``plan``. An event with ``seq=0`` gets the plan's next number; safe without further
        locking, because the successful UPDATE already holds this plan's row (and on SQLite
        the database) until the commit. A duplicate revision or event number raises
        SQLAlchemy's ``IntegrityError``. Returns the event as stored (with its number), so
        the caller need not read the log back.
        """
        if revision is not None:
            _check_plan_id(revision.plan_id, plan.id, "revision")
        if event is not None:
            _check_plan_id(event.plan_id, plan.id, "event")
            if event.seq < 0:
                raise ValueError(f"event seq must be positive, or 0 for the next one: {event.seq}")
        mine = (PlanRow.id == plan.id, PlanRow.organisation == plan.organisation)
        with _unwrapped_value_errors(), self._sessions.begin() as session:
            changed = _rows_changed(
                session,
                update(PlanRow)
                .where(*mine, PlanRow.revision == expected_revision)
                .values(_mutable_values(plan)),
            )
            if changed != 1:
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
                event = replace(event, seq=seq)
            _add_outbox_rows(session, outbox)
        return event

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
            changed = _rows_changed(session, update(PlanRow).where(*conditions).values(fields))
            return changed == 1

    def get_plan(self, organisation: str, plan_id: str) -> PlanRecord | None:
        """Return the plan if it exists and belongs to ``organisation``, else ``None``.

        Both cases look the same to the caller on purpose: another organisation's plan must
        be indistinguishable from a missing one (design §4: 404).
        """
        values = self._reads.plan.one(plan_id=plan_id, organisation=organisation)
        return None if values is None else PlanRecord(**values)

    def get_plan_with_state(self, organisation: str, plan_id: str) -> PlanRecord | None:
        """:meth:`get_plan` plus ``state``, in one read: what a write starts from."""
        values = self._reads.plan_with_state.one(plan_id=plan_id, organisation=organisation)
        return None if values is None else PlanRecord(**values)

    def get_plan_state(self, organisation: str, plan_id: str) -> bytes | None:
        """Only the plan's ``state`` (``None``: none stored, or no such plan)."""
        values = self._reads.state.one(plan_id=plan_id, organisation=organisation)
        return None if values is None else values["state"]

    def get_plan_document(self, organisation: str, plan_id: str) -> PlanDocument | None:
        """The columns serving the plan's JSON needs (see :class:`PlanDocument`), under the
        same organisation rule as :meth:`get_plan`."""
        values = self._reads.plan_document.one(plan_id=plan_id, organisation=organisation)
        return None if values is None else PlanDocument(**values)

    def get_feed_head(self, token_hash: str, *, body: bool = False) -> FeedHead | None:
        """The few columns a feed request needs first (see :class:`FeedHead`): a poll
        answered with 304 never loads the plan's documents. ``body=True`` also reads the
        feed's calendar in the same query (a request without validators needs it anyway).
        """
        if not token_hash or len(token_hash) > _TOKEN_HASH_LENGTH:
            return None
        query = self._reads.feed_with_body if body else self._reads.feed_head
        row = query.one(token_hash=token_hash)
        if row is None:
            return None
        full = row["feed_token_hash"] == token_hash
        return FeedHead(
            plan_id=row["id"],
            organisation=row["organisation"],
            revision=row["revision"],
            kind="full" if full else "busy",
            token=row["feed_token"] if full else row["busy_token"],
            etag=row["etag"] if full else row["busy_etag"],
            last_modified=row["last_modified"] or row["updated_at"],
            feed_expires_at=row["feed_expires_at"],
            body=(row["ics"] if full else row["busy_ics"]) if body else None,
        )

    def get_feed_body(self, plan_id: str, kind: str) -> bytes | None:
        """The stored calendar of one feed (``full`` or ``busy``)."""
        row = self._reads.feed_body.one(plan_id=plan_id)
        if row is None:
            return None
        return row["ics"] if kind == "full" else row["busy_ics"]

    def list_plans(
        self,
        organisation: str,
        *,
        limit: int,
        offset: int,
        athlete_reference: str | None = None,
        status: str | None = None,
        external_id: str | None = None,
        before: tuple[datetime, str] | None = None,
    ) -> tuple[list[PlanRecord], int]:
        """Return one page of ``organisation``'s plans, newest first, and their total count.

        ``athlete_reference``, ``external_id`` and ``status`` narrow both the page and the
        count. Ties on ``created_at`` are broken by id (descending) so that pages never
        overlap or skip a plan. ``before`` (a plan's ``created_at`` and id) is a keyset
        cursor: only plans after it in that order, so pages stay stable while plans are added.
        """
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must not be negative")
        conditions = [PlanRow.organisation == organisation]
        if athlete_reference is not None:
            conditions.append(PlanRow.athlete_reference == athlete_reference)
        if external_id is not None:  # kept in the request document (JSON on both databases)
            conditions.append(PlanRow.request["external_id"].as_string() == external_id)
        if status is not None:
            conditions.append(PlanRow.status == status)
        page_conditions = list(conditions)
        if before is not None:
            created, plan_id = before
            page_conditions.append(
                or_(
                    PlanRow.created_at < created,
                    and_(PlanRow.created_at == created, PlanRow.id < plan_id),
                )
            )
        with self._sessions.begin() as session:
            total = session.scalar(select(func.count()).select_from(PlanRow).where(*conditions))
            rows = session.scalars(
                select(PlanRow)
                .where(*page_conditions)
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
