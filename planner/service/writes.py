"""The unit of work every plan write goes through: read the current revision, decide
the next one, render it once and store it — retried when another writer got there first.

Check-ins, gates, cancellations, confirmations and feed changes are all revisions, so they
serialise on the plan's revision number: the store's ``update_plan`` stores revision
``n + 1`` only while the plan is still at ``n`` (else :class:`StaleRevision`).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime

from planner.domain.model import Plan, Protocol
from planner.domain.planning import RecordedEvent, replay
from planner.domain.progress import Decision
from planner.service import state
from planner.service.base import ServiceBase
from planner.service.cache import SNAPSHOT_PROTOCOLS
from planner.service.errors import PlanNotFound, RevisionConflict
from planner.service.rendering import (
    Feed,
    encode_state,
    render_record,
    shows_cancelled,
    with_feed_last_modified,
)
from planner.service.requests import event_from_payload, request_from_document
from planner.service.webhooks import CheckInRecorded, plan_events
from planner.store import EventRecord, PlanRecord, RevisionRecord, StaleRevision

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WriteRetry:
    """How a write that named no revision waits out others writing the same plan: it is
    decided again on the newest revision after a short, growing, jittered pause, until
    ``deadline`` seconds have passed — a client that set no precondition should not see
    a conflict someone else caused."""

    deadline: float = 10.0
    first_pause: float = 0.002
    max_pause: float = 0.1

    def pauses(self) -> Iterator[float]:
        """Pauses to sleep between attempts; ends when the deadline would be passed."""
        started, pause = time.monotonic(), self.first_pause
        while True:
            jittered = pause * (0.5 + random.random() / 2)
            if time.monotonic() + jittered - started > self.deadline:
                return
            yield jittered
            pause = min(pause * 2, self.max_pause)


@dataclass(frozen=True, slots=True)
class Change:
    """The next revision of a plan: what it shows and why, and what moves with it."""

    plan: Plan
    kind: str
    reason: str
    feed: Feed
    confirmed_at: datetime | None
    #: The API key that made the change (``None``: the command line, a test).
    key_id: int | None
    event: EventRecord | None = None
    #: What the event meant for the runner (check-ins, gates, cancellations).
    decision: Decision | None = None
    check_in: CheckInRecorded | None = None


@dataclass(frozen=True, slots=True)
class Written:
    """What a write left: the current record, and the change and event it stored
    (``None`` when there was nothing to change)."""

    record: PlanRecord
    change: Change | None = None
    event: EventRecord | None = None


#: Decides the next revision from the current record, its plan and protocol; ``None``:
#: nothing to change (the write answers the current record).
Decide = Callable[[PlanRecord, Plan, Protocol], Change | None]


class PlanWrites(ServiceBase):
    """Loading a plan's current revision and writing its next one."""

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
        2. the state stored with the revision (``state.resume`` checks its model
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
            blob = record.state
            if blob is None and not state_loaded:
                blob = self.store.get_plan_state(record.organisation, record.id)
            plan = state.resume(
                blob, plan_id=record.id, revision=record.revision, updated_at=record.updated_at
            )
            if plan is None:
                if blob is not None:
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

    def _revise(
        self, organisation: str, plan_id: str, decide: Decide, *, named: bool = False
    ) -> Written:
        """Write the revision ``decide`` makes of the current one.

        ``named``: the client named the revision it saw (``If-Match`` or ``revision``), so
        a concurrent write is a :class:`RevisionConflict` for it to resolve; otherwise the
        write is decided again on the newest revision until :attr:`write_retry`'s deadline.
        """
        pauses = self.write_retry.pauses()
        while True:
            record = self._writable(organisation, plan_id)
            plan, protocol = self._current(record, state_loaded=True)
            change = decide(record, plan, protocol)
            if change is None:
                return Written(record)
            try:
                new_record, stored = self._commit(record, plan, change)
            except StaleRevision:
                if named:
                    raise RevisionConflict(
                        "The plan changed while this was being recorded: retry."
                    ) from None
                pause = next(pauses, None)
                if pause is None:
                    raise RevisionConflict("The plan is being changed by others: retry.") from None
                time.sleep(pause)
                continue
            return Written(new_record, change, stored)

    def _commit(
        self, record: PlanRecord, previous: Plan, change: Change
    ) -> tuple[PlanRecord, EventRecord | None]:
        """Render the next revision once and store it with its state and the events it
        announces, if the plan is still at ``record.revision`` (else :class:`StaleRevision`)."""
        now = self.clock()
        plan = replace(change.plan, revision=record.revision + 1, updated_at=now)
        new_record = render_record(
            plan,
            record.organisation,
            feed=change.feed,
            snapshot=record.protocol_snapshot,
            last_modified=now,
            show_cancelled=shows_cancelled(plan, change.feed, now),
            confirmed_at=change.confirmed_at or record.confirmed_at,
            request=record.request,  # the request never changes: no need to dump it again
            plan_state=encode_state(plan),
            exporters=self.exporters,
        )
        new_record = with_feed_last_modified(record, new_record, now)
        stored = self.store.update_plan(
            new_record,
            expected_revision=record.revision,
            revision=RevisionRecord(
                plan_id=record.id,
                revision=new_record.revision,
                created_at=now,
                key_id=change.key_id,
                kind=change.kind,
                reason=change.reason,
                document=new_record.document,
            ),
            event=change.event,
            outbox=plan_events(
                record.organisation,
                plan,
                previous=previous,
                kind=change.kind,
                reason=change.reason,
                check_in=change.check_in,
                now=now,
            ),
        )
        self.recent.put(plan)  # committed: from now on this is revision n + 1
        return new_record, stored
