"""The one entry point of the core: a plan request and a catalog → a dated plan."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from planner.domain.errors import InvalidRequest
from planner.domain.model import (
    Injury,
    Plan,
    PlanRequest,
    PlanStatus,
    Protocol,
    ProtocolRef,
    Selection,
)
from planner.domain.progress import Decision, Event, revise
from planner.domain.risk import contradictions, needs_clearance_review, risk_alerts
from planner.domain.scheduling import parse_session_time, schedule
from planner.domain.selection import select_protocol, triage
from planner.domain.triad import assess, context_facts, triad_alerts


def make_plan(
    request: PlanRequest,
    catalog: Iterable[Protocol],
    *,
    plan_id: str,
    created_at: datetime,
    protocol: Protocol | None = None,
    today: date | None = None,
) -> Plan:
    """Triage, select a protocol and schedule it.

    Identity and time are inputs, never read from a clock, so the same request,
    catalog, id and timestamp always give the same plan. ``protocol`` pins the exact
    protocol (re-planning uses the version the plan was made from). ``today`` is the
    local date in the plan's time zone when the request is made (see
    :func:`local_date`): a diagnosis after it is refused. Re-making a stored plan
    passes none, since its diagnosis date was checked when the plan was made.

    Raises:
        InvalidRequest: dates, time zone or schedule preferences are unusable.
        NoMatchingProtocol: no protocol covers the triaged injury.
    """
    validate_request(request, today=today)
    selection, triage_alerts = triage(request.injury)
    if request.risk_assessment is not None:
        selection = replace(selection, triad=assess(request.risk_assessment, request.injury))
    if protocol is None:
        protocol = select_protocol(request.injury, selection, catalog)
    phases, sessions = schedule(
        protocol,
        planning_context(request.injury, selection),
        request.effective_start,
        request.preferences,
        plan_id,
        clearance_before_running=needs_clearance_review(request.risk_factors),
    )
    return Plan(
        id=plan_id,
        revision=1,
        status=PlanStatus.ACTIVE,
        created_at=created_at,
        updated_at=created_at,
        request=request,
        pathway=selection.pathway,
        selection=selection,
        protocol=ProtocolRef(
            id=protocol.id,
            version=protocol.version,
            title=protocol.title,
            references=protocol.references,
        ),
        phases=phases,
        sessions=sessions,
        alerts=triage_alerts + triad_alerts(selection.triad) + risk_alerts(request.risk_factors),
        pain_rules=protocol.pain_rules,
    )


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event as it was recorded: on which day (the plan's local date) and when."""

    event: Event
    today: date
    at: datetime


def replay(
    request: PlanRequest,
    protocol: Protocol,
    events: Sequence[RecordedEvent],
    *,
    plan_id: str,
    created_at: datetime,
) -> tuple[Plan, tuple[Decision, ...]]:
    """The plan after every recorded event, re-made from scratch: the stored history
    is the source of truth, so the same events always give the same revision."""
    plan = make_plan(request, (), plan_id=plan_id, created_at=created_at, protocol=protocol)
    context = planning_context(request.injury, plan.selection)
    decisions = []
    for recorded in events:
        plan, decision = revise(
            plan, protocol, recorded.event, context=context, today=recorded.today, at=recorded.at
        )
        decisions.append(decision)
    return plan, tuple(decisions)


def planning_context(injury: Injury, selection: Selection) -> dict[str, object]:
    """The facts protocol conditions (``when``) may test, plus the Triad clearance
    (``triad_clearance``, ``triad_score``) that the scheduler applies to every protocol."""
    return {
        "site": injury.site.value,
        "type": injury.type.value if injury.type else None,
        "mri_grade": injury.mri_grade,
        "grading_system": injury.grading_system.value if injury.grading_system else None,
        "fracture_line": injury.fracture_line,
        "complete": injury.complete,
        "displaced": injury.displaced,
        "hip_effusion": injury.hip_effusion,
        "progression_on_imaging": injury.progression_on_imaging,
        "can_bear_weight": injury.can_bear_weight,
        "triage": selection.triage.value,
        **context_facts(selection.triad),
    }


#: The facts a protocol condition may name; the protocol loader checks against it.
CONTEXT_FACTS = frozenset(
    {
        "site",
        "type",
        "mri_grade",
        "grading_system",
        "fracture_line",
        "complete",
        "displaced",
        "hip_effusion",
        "progression_on_imaging",
        "can_bear_weight",
        "triage",
    }
)


def local_date(moment: datetime, timezone: str) -> date | None:
    """The date ``moment`` falls on in the IANA zone ``timezone`` ("today" for a plan);
    ``None`` for a zone that does not exist (:func:`validate_request` names it).

    >>> from datetime import UTC
    >>> local_date(datetime(2026, 12, 2, 3, 0, tzinfo=UTC), "America/New_York")
    datetime.date(2026, 12, 1)
    """
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None
    return moment.astimezone(zone).date()


def validate_request(request: PlanRequest, *, today: date | None = None) -> None:
    """Refuse requests no plan can honour, naming every bad field at once.

    ``today`` (the local date in the plan's time zone) marks a new request, and two
    rules apply only then, so that plans stored before them still re-make:

    * a diagnosis date after ``today`` is refused: an injury cannot be diagnosed in
      the future (a start date in the future is fine: a plan may be made ahead);
    * risk factors that the risk assessment contradicts are refused, naming both
      fields (:func:`planner.domain.risk.contradictions`).
    """
    errors: dict[str, list[str]] = {}
    if request.start_date is not None and request.start_date < request.diagnosis_date:
        errors["start_date"] = ["Must not be before diagnosis_date."]
    if request.diagnosis_date < date(1900, 1, 1) or request.effective_start > date(9000, 1, 1):
        errors["diagnosis_date"] = ["Out of range."]
    if today is not None and request.diagnosis_date > today:
        errors.setdefault("diagnosis_date", []).append(
            f"{request.diagnosis_date.isoformat()} is in the future: today is "
            f"{today.isoformat()} in {request.preferences.timezone}. Give the day the "
            "injury was diagnosed."
        )
    if today is not None:
        for name, messages in contradictions(request.risk_factors, request.risk_assessment).items():
            errors.setdefault(name, []).extend(messages)
    try:
        ZoneInfo(request.preferences.timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: e.g. a directory name
        errors["timezone"] = [
            f"Unknown time zone {request.preferences.timezone!r}: use an IANA name "
            "such as 'America/New_York' or 'UTC'."
        ]
    if request.preferences.session_time is not None:
        try:
            parse_session_time(request.preferences.session_time)
        except InvalidRequest as exc:
            errors.update(exc.errors)
    if not request.preferences.run_days:
        errors["schedule.run_days"] = ["Give at least one day, e.g. MO,WE,FR."]
    if errors:
        raise InvalidRequest("The plan request cannot be scheduled.", errors)
