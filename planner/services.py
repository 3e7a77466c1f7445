"""Use cases: the glue between HTTP/CLI input, the domain, the exporters and the store.

No HTTP here: handlers and the command line call these functions and only translate
their inputs and outputs. Every write renders the new revision once (JSON and both
calendars) and stores the bytes, so reads — above all feed polling — serve bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from marshmallow import ValidationError

from planner import __version__, plan_state, webhooks
from planner.catalog import Catalog
from planner.domain.errors import InvalidInjury, PlannerError
from planner.domain.injury import classify
from planner.domain.model import (
    Athlete,
    Plan,
    PlanRequest,
    PlanStatus,
    Preferences,
    Protocol,
    RedFlag,
    RiskAssessment,
    RiskFactor,
    Weekday,
)
from planner.domain.planning import RecordedEvent, make_plan, planning_context, replay
from planner.domain.progress import Cancel, CheckIn, Decision, Event, Gate, revise
from planner.export import to_ical, to_json
from planner.plan_cache import SNAPSHOT_PROTOCOLS, RecentPlans
from planner.schemas.api import (
    RISK_ASSESSMENT_REQUEST_FIELDS,
    DecisionSchema,
    FeedSettingsSchema,
    PlanCreateSchema,
    PlanSchema,
)
from planner.store import (
    EventRecord,
    FeedHead,
    PlanDocument,
    PlanRecord,
    RevisionRecord,
    StaleRevision,
    Store,
    strong_etag,
)

#: Cancelled sessions stay in the feed as STATUS:CANCELLED this long, then drop out,
#: so subscribed calendars remove them in place instead of keeping ghosts.
CANCELLED_GRACE = timedelta(days=14)
#: Optimistic-concurrency retries for writes that did not name a revision.
WRITE_ATTEMPTS = 5

log = logging.getLogger(__name__)


class PlanNotFound(PlannerError):
    code = "plan_not_found"


class RevisionConflict(PlannerError):
    """The plan changed since the revision the client named (HTTP 409)."""

    code = "revision_conflict"


class PreconditionFailed(PlannerError):
    """``If-Match`` names another version of the plan (HTTP 412)."""

    code = "precondition_failed"


class InvalidCursor(PlannerError):
    code = "invalid_request"


class FeedNotFound(PlannerError):
    code = "feed_not_found"


def utcnow() -> datetime:
    """Whole seconds: the calendar's DTSTAMP has no finer resolution."""
    return datetime.now(UTC).replace(microsecond=0)


def new_token() -> str:
    """A feed capability token: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# ----------------------------------------------------------------------------- requests


def weekdays_in_order(days: Any) -> tuple[Weekday, ...]:
    """Run days in Monday-first order without repeats, whatever order they came in."""
    chosen = {Weekday(d) for d in days or ()}
    return tuple(d for d in Weekday if d in chosen)


def plan_request(payload: Mapping[str, Any]) -> PlanRequest:
    """Turn a request validated by ``PlanCreateSchema`` into the domain's request.

    Raises:
        InvalidInjury: with field paths prefixed ``injury.`` so clients can point at them.
    """
    try:
        injury = classify(**dict(payload["injury"]))
    except InvalidInjury as exc:
        raise InvalidInjury(
            exc.detail, {f"injury.{name}": msgs for name, msgs in exc.errors.items()}
        ) from None
    schedule = payload.get("schedule") or {}
    athlete = payload.get("athlete") or {}
    preferences = Preferences(
        run_days=weekdays_in_order(schedule.get("run_days")) or Preferences().run_days,
        session_time=schedule.get("session_time") or None,
        timezone=payload.get("timezone") or "UTC",
    )
    answers = payload.get("risk_assessment")
    return PlanRequest(
        diagnosis_date=payload["diagnosis_date"],
        start_date=payload.get("start_date"),
        injury=injury,
        athlete=Athlete(reference=athlete.get("reference"), name=athlete.get("name")),
        risk_factors=tuple(r for r in RiskFactor if r in set(payload.get("risk_factors") or ())),
        preferences=preferences,
        external_id=payload.get("external_id"),
        risk_assessment=None if answers is None else RiskAssessment(**dict(answers)),
    )


def build_plan(
    payload: Mapping[str, Any], catalog: Catalog, *, plan_id: str, created_at: datetime
) -> Plan:
    """The plan for a validated request: the one path both the API and the CLI take."""
    return make_plan(plan_request(payload), catalog, plan_id=plan_id, created_at=created_at)


_REQUEST_SCHEMA = PlanSchema(
    only=(
        "external_id",
        "diagnosis_date",
        "start_date",
        "timezone",
        "athlete",
        "injury",
        "risk_factors",
        "schedule",
        *RISK_ASSESSMENT_REQUEST_FIELDS,  # the answers only: the score is recomputed
    )
)


def request_document(plan: Plan) -> dict[str, Any]:
    """The normalised input, kept so the plan can be re-made and revised."""
    return _REQUEST_SCHEMA.dump(plan)


def request_from_document(document: Mapping[str, Any]) -> PlanRequest:
    """The inverse of :func:`request_document` (classification is idempotent)."""
    payload = _without_nulls(document)
    return plan_request(_CREATE_SCHEMA.load(payload))


_CREATE_SCHEMA = PlanCreateSchema()


def _as_replayed(plan: Plan, request: Mapping[str, Any]) -> Plan | None:
    """``plan`` with its request as :func:`request_from_document` reads ``request`` back
    (``None``: it does not read back, so there is nothing to resume from)."""
    try:
        return replace(plan, request=request_from_document(request))
    except (PlannerError, ValidationError):
        log.warning("plan %s: request does not read back, stored without state", plan.id)
        return None


def _without_nulls(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


# ----------------------------------------------------------------------------- events


def event_from_payload(kind: str, payload: Mapping[str, Any], today: date) -> Event:
    """A stored or submitted event payload (JSON-ready) → the domain event."""
    if kind == "check_in":
        on = payload.get("date")
        return CheckIn(
            session_uid=payload.get("session_uid"),
            on=date.fromisoformat(on) if isinstance(on, str) else on,
            completed=payload.get("completed", True),
            pain_during=payload.get("pain_during", 0),
            pain_after=payload.get("pain_after", 0),
            pain_next_morning=payload.get("pain_next_morning", 0),
            pain_building=payload.get("pain_building", False),
            gait_changed=payload.get("gait_changed", False),
            morning_stiffness=payload.get("morning_stiffness", False),
            red_flags=tuple(RedFlag(f) for f in payload.get("red_flags", ())),
            notes=payload.get("notes", ""),
        )
    if kind == "gate":
        on = payload.get("date")
        return Gate(
            phase=payload["phase"],
            met=payload["met"],
            on=date.fromisoformat(on) if isinstance(on, str) else (on or today),
            criteria=tuple(payload.get("criteria", ())),
            extend_days=payload.get("extend_days", 7),
            notes=payload.get("notes", ""),
        )
    if kind == "cancel":
        return Cancel(on=today, reason=payload.get("reason", ""))
    raise ValueError(f"unknown event kind {kind!r}")


def _json_ready(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Dates as ISO strings, enums as values: what the event log stores."""
    ready: dict[str, Any] = {}
    for key, value in payload.items():
        if key == "revision":
            continue
        if isinstance(value, date):
            value = value.isoformat()
        elif isinstance(value, list):
            value = [getattr(v, "value", v) for v in value]
        ready[key] = getattr(value, "value", value)
    return ready


# ----------------------------------------------------------------------------- service


@dataclass(frozen=True, slots=True)
class Recorded:
    """What a write answers: the decision, the stored event and the new plan."""

    decision: Decision
    event: EventRecord
    record: PlanRecord


@dataclass
class Planner:
    """Plans of one deployment: a catalog, a store, a clock and id sources."""

    catalog: Catalog
    store: Store
    clock: Callable[[], datetime] = utcnow
    new_id: Callable[[], str] = field(default=lambda: str(uuid.uuid4()))
    new_token: Callable[[], str] = field(default=new_token)
    #: Plans this process committed lately, decoded (see :class:`RecentPlans` for why
    #: several processes on one database can share it safely).
    recent: RecentPlans = field(default_factory=RecentPlans, repr=False, compare=False)

    # ---------------------------------------------------------------- create / read

    def create_plan(
        self, organisation: str, payload: Mapping[str, Any], key_id: int | None = None
    ) -> PlanRecord:
        """Make, render and store a plan in one transaction; on error nothing is kept."""
        plan = build_plan(payload, self.catalog, plan_id=self.new_id(), created_at=self.clock())
        settings = dict(payload.get("feed") or _DEFAULT_FEED_SETTINGS)
        feed_token = self.new_token()
        busy_token = self.new_token() if settings.get("busy") else None
        request = request_document(plan)
        # The state holds the request as a replay reads it back from the stored document
        # (e.g. an omitted start_date comes back as the diagnosis date), so resuming and
        # replaying give the very same plan, not merely the same rendering.
        resumable = _as_replayed(plan, request)
        record = render_record(
            plan,
            organisation,
            settings=settings,
            snapshot=self.catalog.document(plan.protocol.id),
            feed_token=feed_token,
            busy_token=busy_token,
            last_modified=plan.updated_at,
            request=request,
            state=None if resumable is None else encode_state(resumable),
        )
        self.store.add_plan(
            record,
            RevisionRecord(
                plan_id=plan.id,
                revision=1,
                created_at=plan.created_at,
                key_id=key_id,
                kind="created",
                reason="; ".join(plan.selection.reasons),
                document=record.document,
            ),
            outbox=webhooks.plan_events(record, now=plan.created_at),
        )
        if resumable is not None:
            self.recent.put(resumable)
        return record

    def get_plan(self, organisation: str, plan_id: str) -> PlanRecord:
        record = self.store.get_plan(organisation, plan_id)
        if record is None:
            raise PlanNotFound(f"No plan {plan_id!r} in your organisation.")
        return record

    def plan_document(self, organisation: str, plan_id: str) -> PlanDocument:
        """What serving the current plan JSON needs, and nothing more (plan GETs)."""
        found = self.store.get_plan_document(organisation, plan_id)
        if found is None:
            raise PlanNotFound(f"No plan {plan_id!r} in your organisation.")
        return found

    def list_plans(
        self,
        organisation: str,
        *,
        page_size: int,
        cursor: str | None = None,
        athlete_reference: str | None = None,
        external_id: str | None = None,
        status: str | None = None,
    ) -> tuple[list[PlanRecord], int, str | None]:
        """One page, newest first, and the cursor of the next page (None: last page)."""
        records, total = self.store.list_plans(
            organisation,
            limit=page_size + 1,
            offset=0,
            athlete_reference=athlete_reference,
            external_id=external_id,
            status=status,
            before=decode_cursor(cursor) if cursor else None,
        )
        more = len(records) > page_size
        records = records[:page_size]
        return records, total, encode_cursor(records[-1]) if more else None

    def revision_document(self, organisation: str, plan_id: str, revision: int) -> bytes:
        record = self.get_plan(organisation, plan_id)
        found = self.store.get_revision(organisation, plan_id, revision)
        if found is None:
            raise PlanNotFound(f"Plan {plan_id!r} has no revision {revision}.")
        return served_document(replace(record, document=found.document))

    def load(self, record: PlanRecord) -> Plan:
        """The domain plan of a stored record: the revision's stored state (or this
        process's copy of it) when there is one that fits, else replayed from its events."""
        return self._current(record, state_loaded=record.state is not None)[0]

    def _writable(self, organisation: str, plan_id: str) -> PlanRecord:
        """The current record with its stored state: what every write starts from."""
        record = self.store.get_plan_with_state(organisation, plan_id)
        if record is None:
            raise PlanNotFound(f"No plan {plan_id!r} in your organisation.")
        return record

    def _current(self, record: PlanRecord, *, state_loaded: bool) -> tuple[Plan, Protocol]:
        """The plan at ``record.revision`` and the protocol it follows, as cheaply as it
        can be had and always exactly what replaying the event log gives:

        1. the plan this process committed as that revision (:class:`RecentPlans`);
        2. the state stored with the revision (``plan_state.resume`` checks its model
           fingerprint, plan id, revision and ``updated_at``);
        3. otherwise — no state yet (a plan older than the column), another model shape
           (a deploy changed the domain model), anything that does not decode — a replay
           of the events, as before.

        ``state_loaded``: ``record.state`` is what the database holds (else it is read).
        """
        snapshot = record.protocol_snapshot
        protocol = SNAPSHOT_PROTOCOLS.get(self.catalog, snapshot, record.protocol_id)
        plan = self.recent.get(record.id, record.revision, record.updated_at)
        if plan is None:
            state = record.state
            if state is None and not state_loaded:
                state = self.store.get_plan_state(record.organisation, record.id)
            plan = plan_state.resume(
                state, plan_id=record.id, revision=record.revision, updated_at=record.updated_at
            )
            if plan is None:
                if state is not None:
                    log.debug("plan %s: stored state unusable, replaying its events", record.id)
                plan = self._replay(record, protocol)
        # The record's number and instant are the truth (and the same instant in UTC).
        return replace(plan, revision=record.revision, updated_at=record.updated_at), protocol

    def _replay(self, record: PlanRecord, protocol: Protocol) -> Plan:
        """The plan re-made from its request and every recorded event."""
        events = [
            RecordedEvent(
                event=event_from_payload(e.kind, e.payload, e.today),
                today=e.today,
                at=e.recorded_at,
            )
            for e in self.store.list_events(record.organisation, record.id)
        ]
        plan, _ = replay(
            request_from_document(record.request),
            protocol,
            events,
            plan_id=record.id,
            created_at=record.created_at,
        )
        # Feed changes are revisions without events: the caller sets the record's number.
        return plan

    # ---------------------------------------------------------------- events

    def check_in(
        self, organisation: str, plan_id: str, payload: Mapping[str, Any], **kw: Any
    ) -> Recorded:
        return self._record(organisation, plan_id, "check_in", payload, **kw)

    def gate(
        self, organisation: str, plan_id: str, phase: str, payload: Mapping[str, Any], **kw: Any
    ) -> Recorded:
        return self._record(organisation, plan_id, "gate", {**payload, "phase": phase}, **kw)

    def cancel(
        self, organisation: str, plan_id: str, payload: Mapping[str, Any], **kw: Any
    ) -> Recorded:
        return self._record(organisation, plan_id, "cancel", payload, **kw)

    def _record(
        self,
        organisation: str,
        plan_id: str,
        kind: str,
        payload: Mapping[str, Any],
        *,
        key_id: int | None = None,
        if_match: str | None = None,
    ) -> Recorded:
        """Apply one event with optimistic concurrency on the plan's revision.

        A client that named what it saw (``If-Match`` or ``revision``) gets 412/409
        when the plan moved on; otherwise the write is retried on the newest revision.
        """
        expected = payload.get("revision")
        for _ in range(WRITE_ATTEMPTS):
            record = self._writable(organisation, plan_id)
            if if_match is not None and not etag_matches(if_match, served_etag(record)):
                raise PreconditionFailed(
                    "The plan has changed since you read it: fetch it again and retry.",
                )
            if expected is not None and expected != record.revision:
                raise RevisionConflict(
                    f"The plan is at revision {record.revision}, not {expected}.",
                    {"revision": [f"The current revision is {record.revision}."]},
                )
            plan, protocol = self._current(record, state_loaded=True)
            now = self.clock()
            today = now.astimezone(ZoneInfo(plan.request.preferences.timezone)).date()
            if kind == "gate" and not payload.get("date"):
                payload = {**payload, "date": today}
            event = event_from_payload(kind, _json_ready(payload), today)
            context = planning_context(plan.request.injury, plan.selection)
            revised, decision = revise(plan, protocol, event, context=context, today=today, at=now)
            ending = revised.status is not PlanStatus.ACTIVE
            event_record = EventRecord(
                plan_id=plan_id,
                seq=0,
                kind=kind,
                today=today,
                recorded_at=now,
                key_id=key_id,
                payload=_json_ready(payload),
                decision=_DECISION_SCHEMA.dump(decision),
                revision=record.revision + 1,
            )
            try:
                new_record, stored = self._commit(
                    record,
                    revised,
                    kind=kind,
                    reason=decision.reason,
                    key_id=key_id,
                    event=event_record,
                    feed_expires_at=now + CANCELLED_GRACE if ending else None,
                )
            except StaleRevision:
                if if_match is not None or expected is not None:
                    raise RevisionConflict(
                        "The plan changed while this was being recorded: retry."
                    ) from None
                continue
            assert stored is not None  # update_plan returns the event it stored
            return Recorded(decision, stored, new_record)
        raise RevisionConflict("The plan is being changed by others: retry.")

    def events(self, organisation: str, plan_id: str, kind: str | None = None) -> list[EventRecord]:
        self.get_plan(organisation, plan_id)
        return self.store.list_events(organisation, plan_id, kind=kind)

    def revisions(self, organisation: str, plan_id: str) -> list[RevisionRecord]:
        self.get_plan(organisation, plan_id)
        return self.store.list_revisions(organisation, plan_id)

    # ---------------------------------------------------------------- feeds

    def rotate_feed(self, organisation: str, plan_id: str, key_id: int | None = None) -> PlanRecord:
        """New feed tokens: the old URLs answer 404 from now on."""
        return self._feed_change(
            organisation,
            plan_id,
            key_id,
            reason="Feed token rotated.",
            tokens=lambda r: (
                self.new_token(),
                self.new_token() if r.settings.get("busy") else None,
            ),
        )

    def revoke_feed(self, organisation: str, plan_id: str, key_id: int | None = None) -> PlanRecord:
        """No URL serves the plan's calendars until a token is made again."""
        return self._feed_change(
            organisation, plan_id, key_id, reason="Feed revoked.", tokens=lambda r: (None, None)
        )

    def configure_feed(
        self,
        organisation: str,
        plan_id: str,
        settings: Mapping[str, Any],
        key_id: int | None = None,
    ) -> PlanRecord:
        """Change what the calendars show; a busy feed gets its own token when enabled."""

        def tokens(record: PlanRecord) -> tuple[str | None, str | None]:
            busy = record.busy_token or self.new_token() if settings.get("busy") else None
            return record.feed_token, busy

        return self._feed_change(
            organisation,
            plan_id,
            key_id,
            reason="Feed settings changed.",
            tokens=tokens,
            settings=dict(settings),
        )

    def confirm(self, organisation: str, plan_id: str, key_id: int | None = None) -> PlanRecord:
        """A clinician confirms the plan: a revision, so it is in the history."""
        for _ in range(WRITE_ATTEMPTS):
            record = self._writable(organisation, plan_id)
            if record.confirmed_at is not None:
                return record
            try:
                return self._commit(
                    record,
                    self._current(record, state_loaded=True)[0],
                    kind="confirm",
                    reason="Confirmed by a clinician.",
                    key_id=key_id,
                    feed_expires_at=record.feed_expires_at,
                    confirmed_at=self.clock(),
                )[0]
            except StaleRevision:
                continue
        raise RevisionConflict("The plan is being changed by others: retry.")

    def _feed_change(
        self,
        organisation: str,
        plan_id: str,
        key_id: int | None,
        *,
        reason: str,
        tokens: Callable[[PlanRecord], tuple[str | None, str | None]],
        settings: dict[str, Any] | None = None,
    ) -> PlanRecord:
        """Feed changes are revisions too, so they serialise with check-ins and gates."""
        for _ in range(WRITE_ATTEMPTS):
            record = self._writable(organisation, plan_id)
            feed_token, busy_token = tokens(record)
            try:
                return self._commit(
                    record,
                    self._current(record, state_loaded=True)[0],
                    kind="feed",
                    reason=reason,
                    key_id=key_id,
                    settings=settings,
                    feed_token=feed_token,
                    busy_token=busy_token,
                    feed_expires_at=record.feed_expires_at,
                )[0]
            except StaleRevision:
                continue
        raise RevisionConflict("The plan is being changed by others: retry.")

    def _commit(
        self,
        record: PlanRecord,
        plan: Plan,
        *,
        kind: str,
        reason: str,
        key_id: int | None,
        event: EventRecord | None = None,
        settings: dict[str, Any] | None = None,
        feed_token: str | None | object = ...,
        busy_token: str | None | object = ...,
        feed_expires_at: datetime | None = None,
        confirmed_at: datetime | None = None,
    ) -> tuple[PlanRecord, EventRecord | None]:
        """Render the next revision once and store it with its state, if the plan is
        still at ``record.revision`` (else :class:`StaleRevision`); the new record and the
        event as stored."""
        now = self.clock()
        plan = replace(plan, revision=record.revision + 1, updated_at=now)
        new_record = render_record(
            plan,
            record.organisation,
            settings=record.settings if settings is None else settings,
            snapshot=record.protocol_snapshot,
            feed_token=record.feed_token if feed_token is ... else feed_token,  # type: ignore[arg-type]
            busy_token=record.busy_token if busy_token is ... else busy_token,  # type: ignore[arg-type]
            last_modified=max(record.last_modified or now, now),
            feed_expires_at=feed_expires_at,
            confirmed_at=confirmed_at or record.confirmed_at,
            request=record.request,  # the request never changes: no need to dump it again
            state=encode_state(plan),
        )
        stored = self.store.update_plan(
            new_record,
            expected_revision=record.revision,
            revision=RevisionRecord(
                plan_id=record.id,
                revision=new_record.revision,
                created_at=now,
                key_id=key_id,
                kind=kind,
                reason=reason,
                document=new_record.document,
            ),
            event=event,
            outbox=webhooks.plan_events(
                new_record, previous=record, kind=kind, reason=reason, event=event, now=now
            ),
        )
        self.recent.put(plan)  # committed: from now on this is revision n + 1
        return new_record, stored

    def feed_head(self, token: str, *, body: bool = False) -> FeedHead:
        """Who and what a feed token names, and the feed's validators — without loading
        the plan. An expired grace period is handled by :meth:`feed` first."""
        head = self._feed_token_head(token, body=body)
        if head is None:
            raise FeedNotFound("No such feed.")
        if self._due_for_rerender(head):
            self.feed(token)  # re-renders once without the cancelled events
            return self.feed_head(token, body=body)
        return head

    def current_feed_head(self, token: str, *, body: bool = False) -> FeedHead | None:
        """The feed's head (and stored calendar, with ``body``) when it can be served as
        stored; ``None`` for an unknown token or a feed due for its re-render."""
        head = self._feed_token_head(token, body=body)
        return None if head is None or self._due_for_rerender(head) else head

    def _feed_token_head(self, token: str, *, body: bool) -> FeedHead | None:
        head = self.store.get_feed_head(token_hash(token), body=body)
        if head is None or head.token is None:
            return None
        if not secrets.compare_digest(head.token.encode(), token.encode()):
            return None
        return head

    def _due_for_rerender(self, head: FeedHead) -> bool:
        """Cancelled sessions drop out once the grace period is over (see :meth:`feed`)."""
        return head.feed_expires_at is not None and self.clock() >= head.feed_expires_at

    def feed(self, token: str) -> tuple[PlanRecord, str]:
        """The record behind a feed token and which feed it is (``full``/``busy``).

        Cancelled sessions drop out of the feed once their grace period is over; that
        re-render happens here, once, on the first request after it.
        """
        found = self.store.get_plan_by_feed_token_hash(token_hash(token))
        if found is None:
            raise FeedNotFound("No such feed.")
        record, kind = found
        stored = record.feed_token if kind == "full" else record.busy_token
        if stored is None or not secrets.compare_digest(stored.encode(), token.encode()):
            raise FeedNotFound("No such feed.")
        now = self.clock()
        if record.feed_expires_at is not None and now >= record.feed_expires_at:
            plan = self.load(record)
            rendered = render_record(
                plan,
                record.organisation,
                settings=record.settings,
                snapshot=record.protocol_snapshot,
                feed_token=record.feed_token,
                busy_token=record.busy_token,
                last_modified=max(record.last_modified or now, now),
                show_cancelled=False,
                confirmed_at=record.confirmed_at,
            )
            self.store.set_plan_fields(
                record.organisation,
                record.id,
                expected_revision=record.revision,
                ics=rendered.ics,
                etag=rendered.etag,
                busy_ics=rendered.busy_ics,
                busy_etag=rendered.busy_etag,
                last_modified=rendered.last_modified,
                feed_expires_at=None,
            )
            record = self.store.get_plan(record.organisation, record.id) or record
        return record, kind


# ----------------------------------------------------------------------------- rendering


def feed_options(
    settings: Mapping[str, Any], *, show_cancelled: bool = True
) -> to_ical.FeedOptions:
    return to_ical.FeedOptions(
        detail=settings.get("detail", "activity"),
        reminder_minutes=settings.get("reminder_minutes"),
        show_cancelled=show_cancelled,
    )


def render_record(
    plan: Plan,
    organisation: str,
    *,
    settings: Mapping[str, Any],
    snapshot: Mapping[str, Any],
    feed_token: str | None,
    busy_token: str | None,
    last_modified: datetime,
    feed_expires_at: datetime | None = None,
    show_cancelled: bool = True,
    confirmed_at: datetime | None = None,
    request: Mapping[str, Any] | None = None,
    state: bytes | None = None,
) -> PlanRecord:
    """Render the revision once — JSON and iCalendar bytes — so reads serve bytes.

    ``request``: the plan's request document when the caller has it already (it never
    changes between revisions); ``state``: :func:`encode_state` of ``plan``, to store with it.
    """
    options = feed_options(settings, show_cancelled=show_cancelled)
    ics = to_ical.render(plan, options)
    busy_ics = to_ical.render(plan, replace(options, busy=True)) if busy_token else None
    return PlanRecord(
        id=plan.id,
        organisation=organisation,
        revision=plan.revision,
        status=plan.status.value,
        created_at=plan.created_at,
        updated_at=plan.updated_at,
        athlete_reference=plan.request.athlete.reference,
        protocol_id=plan.protocol.id,
        protocol_version=plan.protocol.version,
        request=request_document(plan) if request is None else dict(request),
        document=to_json.render_bytes(plan),
        ics=ics,
        etag=strong_etag(ics),
        feed_token=feed_token,
        feed_token_hash=token_hash(feed_token) if feed_token else None,
        busy_token=busy_token,
        busy_token_hash=token_hash(busy_token) if busy_token else None,
        busy_ics=busy_ics,
        busy_etag=strong_etag(busy_ics) if busy_ics else None,
        last_modified=last_modified,
        feed_expires_at=feed_expires_at,
        settings=dict(settings),
        protocol_snapshot=dict(snapshot),
        confirmed_at=confirmed_at,
        state=state,
    )


def encode_state(plan: Plan) -> bytes | None:
    """The plan's state blob, or ``None`` (the next write replays) if it cannot be encoded:
    the state is only a cache, so it never fails a write."""
    try:
        return plan_state.encode(plan)
    except Exception:
        log.warning("plan %s: state not encodable, stored without it", plan.id, exc_info=True)
        return None


def encode_cursor(record: PlanRecord) -> str:
    """An opaque, URL-safe position after ``record`` in newest-first order."""
    raw = json.dumps([record.created_at.isoformat(), record.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, plan_id = json.loads(raw)
        return datetime.fromisoformat(created), str(plan_id)
    except (ValueError, TypeError) as exc:
        raise InvalidCursor(
            "Invalid cursor.", {"cursor": ["Use the links.next of the previous page."]}
        ) from exc


def plan_links(record: PlanRecord | PlanDocument) -> dict[str, Any]:
    """Where the plan lives; feed URLs only while their tokens exist."""
    return {
        "self": f"/v1/plans/{record.id}",
        "ical": f"/v1/plans/{record.id}.ics",
        "feed": f"/feeds/{record.feed_token}.ics" if record.feed_token else None,
        "busy_feed": f"/feeds/{record.busy_token}.ics" if record.busy_token else None,
        "page": f"/p/{record.feed_token}" if record.feed_token else None,
    }


_FEED_SETTINGS = FeedSettingsSchema()
_DEFAULT_FEED_SETTINGS = _FEED_SETTINGS.load({})
#: ``_FEED_SETTINGS.dump`` compiled once (every plan read dumps the settings: ~40 µs by
#: marshmallow, a few by the compiled dumper; a test holds them equal).
dump_feed_settings = to_json.compile_dumper(_FEED_SETTINGS)
_DECISION_SCHEMA = DecisionSchema()


def served_document(record: PlanRecord | PlanDocument) -> bytes:
    """The plan JSON as served: stored bytes plus current feed settings and links."""
    return served(record)[0]


def served_etag(record: PlanRecord | PlanDocument) -> str:
    return served(record)[1]


def served(record: PlanRecord | PlanDocument) -> tuple[bytes, str]:
    """The served plan JSON and its strong ETag.

    A revision's stored document never changes (every write that changes it makes a new
    revision), so the ETag hashes what names it — plan, revision, this service's version
    (which fixes how a document is served) — plus the part added on serving, instead of
    the ~70 KB document on every read. Two different bodies never share an ETag.
    """
    settings = dump_feed_settings(record.settings or _DEFAULT_FEED_SETTINGS)
    tail = to_json.served_tail(settings, plan_links(record))
    named = f"{record.id}/{record.revision}/{__version__}/".encode()
    return to_json.splice(record.document, tail), strong_etag(named + tail)


def etag_matches(header: str, etag: str) -> bool:
    """``If-Match``: ``*`` or a list of strong ETags, one of which is current."""
    candidates = [part.strip() for part in header.split(",")]
    return "*" in candidates or etag in candidates


__all__ = [
    "FeedNotFound",
    "PlanNotFound",
    "Planner",
    "PreconditionFailed",
    "Recorded",
    "RevisionConflict",
    "build_plan",
    "encode_state",
    "plan_request",
    "render_record",
    "served_document",
    "utcnow",
]
