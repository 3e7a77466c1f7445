"""Plans: make one, read it, list them, and revise it with check-ins, gates, a cancellation
or a clinician's confirmation."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from planner.domain.model import Plan, PlanStatus, Protocol
from planner.domain.planning import planning_context
from planner.domain.progress import Decision, revise
from planner.schemas.api import DecisionSchema
from planner.service.errors import PlanNotFound, PreconditionFailed, RevisionConflict
from planner.service.rendering import (
    DEFAULT_FEED_SETTINGS,
    Feed,
    encode_state,
    render_record,
    served,
    served_tail,
)
from planner.service.requests import as_replayed, build_plan, event_from_payload, json_ready
from planner.service.requests import request_document as make_request_document
from planner.service.webhooks import CheckInRecorded, plan_events
from planner.service.writes import Change, PlanWrites
from planner.store import EventRecord, PlanDocument, PlanRecord, RevisionRecord

#: Cancelled sessions stay in the feed as STATUS:CANCELLED this long, then drop out,
#: so subscribed calendars remove them in place instead of keeping ghosts.
CANCELLED_GRACE = timedelta(days=14)

#: Whether a client's precondition (``If-Match``) holds for the plan's current ETag.
Precondition = Callable[[str], bool]

_DECISION_SCHEMA = DecisionSchema()


@dataclass(frozen=True, slots=True)
class Recorded:
    """What a write answers: the decision, the stored event and the new plan."""

    decision: Decision
    event: EventRecord
    record: PlanRecord


class PlanService(PlanWrites):
    """Plans of one deployment, organisation by organisation."""

    # ---------------------------------------------------------------- create / read

    def create_plan(
        self, organisation: str, payload: Mapping[str, Any], key_id: int | None = None
    ) -> PlanRecord:
        """Make, render and store a plan in one transaction; on error nothing is kept."""
        plan = build_plan(payload, self.catalog, plan_id=self.new_id(), created_at=self.clock())
        settings = dict(payload.get("feed") or DEFAULT_FEED_SETTINGS)
        feed = Feed(
            settings=settings,
            token=self.new_token(),
            busy_token=self.new_token() if settings.get("busy") else None,
        )
        request = make_request_document(plan)
        # The state holds the request as a replay reads it back from the stored document
        # (e.g. an omitted start_date comes back as the diagnosis date), so resuming and
        # replaying give the very same plan, not merely the same rendering.
        resumable = as_replayed(plan, request)
        record = render_record(
            plan,
            organisation,
            feed=feed,
            snapshot=self.catalog.document(plan.protocol.id),
            last_modified=plan.updated_at,
            request=request,
            plan_state=None if resumable is None else encode_state(resumable),
            exporters=self.exporters,
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
            outbox=plan_events(organisation, plan, now=plan.created_at),
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
        before: tuple[datetime, str] | None = None,
        athlete_reference: str | None = None,
        external_id: str | None = None,
        status: str | None = None,
    ) -> tuple[list[PlanRecord], int, bool]:
        """One page, newest first, of the plans made before ``before`` (``created_at``,
        ``id``); how many plans the filters match; and whether more pages follow."""
        records, total = self.store.list_plans(
            organisation,
            limit=page_size + 1,
            offset=0,
            athlete_reference=athlete_reference,
            external_id=external_id,
            status=status,
            before=before,
        )
        return records[:page_size], total, len(records) > page_size

    def revision_document(self, organisation: str, plan_id: str, revision: int) -> bytes:
        """Revision ``revision`` of the plan as it was served, with today's feed links."""
        record = self.get_plan(organisation, plan_id)
        found = self.store.get_revision(organisation, plan_id, revision)
        if found is None:
            raise PlanNotFound(f"Plan {plan_id!r} has no revision {revision}.")
        return served(replace(record, document=found.document), self.public_base_url)[0]

    def events(self, organisation: str, plan_id: str, kind: str | None = None) -> list[EventRecord]:
        self.get_plan(organisation, plan_id)
        return self.store.list_events(organisation, plan_id, kind=kind)

    def revisions(self, organisation: str, plan_id: str) -> list[RevisionRecord]:
        self.get_plan(organisation, plan_id)
        return self.store.list_revisions(organisation, plan_id)

    def key_names(self, key_ids: Iterable[int | None]) -> dict[int, str]:
        """The names of the API keys that made events or revisions, by id."""
        return self.store.key_names(key_ids)

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
        precondition: Precondition | None = None,
    ) -> Recorded:
        """Apply one event with optimistic concurrency on the plan's revision.

        A client that named what it saw (a ``precondition`` on the ETag, or ``revision``)
        gets 412/409 when the plan moved on; otherwise the write is retried on the newest
        revision.
        """
        expected = payload.get("revision")

        def decide(record: PlanRecord, plan: Plan, protocol: Protocol) -> Change:
            if precondition is not None and not precondition(
                served_tail(record, self.public_base_url)[1]
            ):
                raise PreconditionFailed(
                    "The plan has changed since you read it: fetch it again and retry.",
                )
            if expected is not None and expected != record.revision:
                raise RevisionConflict(
                    f"The plan is at revision {record.revision}, not {expected}.",
                    {"revision": [f"The current revision is {record.revision}."]},
                )
            now = self.clock()
            today = now.astimezone(ZoneInfo(plan.request.preferences.timezone)).date()
            given = payload if kind != "gate" or payload.get("date") else {**payload, "date": today}
            stored_payload = json_ready(given)
            event = event_from_payload(kind, stored_payload, today)
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
                payload=stored_payload,
                decision=_DECISION_SCHEMA.dump(decision),
                revision=record.revision + 1,
            )
            return Change(
                plan=revised,
                kind=kind,
                reason=decision.reason,
                feed=replace(
                    Feed.of(record), cancelled_until=now + CANCELLED_GRACE if ending else None
                ),
                confirmed_at=None,
                key_id=key_id,
                event=event_record,
                decision=decision,
                check_in=(
                    CheckInRecorded(
                        date=today.isoformat(),
                        session_uid=stored_payload.get("session_uid"),
                        decision=decision,
                    )
                    if kind == "check_in"
                    else None
                ),
            )

        named = precondition is not None or expected is not None
        written = self._revise(organisation, plan_id, decide, named=named)
        # decide always makes a change with an event and its decision, stored as given
        assert written.change is not None and written.change.decision is not None
        assert written.event is not None
        return Recorded(written.change.decision, written.event, written.record)

    def confirm(self, organisation: str, plan_id: str, key_id: int | None = None) -> PlanRecord:
        """A clinician confirms the plan: a revision, so it is in the history; confirming
        twice changes nothing."""

        def decide(record: PlanRecord, plan: Plan, _: Protocol) -> Change | None:
            if record.confirmed_at is not None:
                return None
            return Change(
                plan=plan,
                kind="confirm",
                reason="Confirmed by a clinician.",
                feed=Feed.of(record),
                confirmed_at=self.clock(),
                key_id=key_id,
            )

        return self._revise(organisation, plan_id, decide).record


__all__ = ["CANCELLED_GRACE", "PlanService", "Precondition", "Recorded"]
