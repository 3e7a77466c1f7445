"""Lay a protocol out on the calendar: contiguous dated phases holding dated sessions.

Rules this module guarantees (design.md §3–4, domain.md A3):

* the first phase starts on the start date; each next phase starts the day after
  the previous one ends; ``end_date`` is inclusive;
* every session lies inside its phase;
* running falls only on the runner's run days and never on two consecutive days;
* timed sessions keep their local wall-clock time across DST changes; a time that
  does not exist on a spring-forward day moves to the first valid instant after it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from planner.domain.errors import InvalidProtocol, InvalidRequest
from planner.domain.model import (
    Condition,
    Level,
    Phase,
    PhaseTemplate,
    Preferences,
    Protocol,
    Session,
    SessionKind,
    SessionTemplate,
    Weekday,
)
from planner.domain.risk import CLEARANCE_CRITERIA

#: Namespace for session UIDs: uuid5(namespace, "<plan id>/<session key>").
UID_NAMESPACE = uuid.UUID("8f3b1c2e-5d0a-4e61-9a57-2c4f0e7d9b13")
UID_DOMAIN = "stride-back"
#: A programme-length phase that needs longer than this cannot be laid out sensibly.
MAX_PROGRAMME_DAYS = 366

CLEARANCE_TEMPLATE = SessionTemplate(
    key="medical_clearance",
    kind=SessionKind.REVIEW,
    levels=(
        Level(
            title="Medical clearance before running",
            notes=(
                "Bone-health risk factors were reported: running starts only after a "
                "sports physician has reviewed energy availability and bone health."
            ),
        ),
    ),
    at="end",
    criteria=CLEARANCE_CRITERIA,
)


def holds(condition: Condition, context: Mapping[str, object]) -> bool:
    """Whether every fact the condition names has one of its allowed values."""
    return all(context.get(name) in allowed for name, allowed in condition)


def session_uid(plan_id: str, key: str) -> str:
    """The VEVENT UID of a logical session: stable for the life of the plan."""
    return f"{uuid.uuid5(UID_NAMESPACE, f'{plan_id}/{key}')}@{UID_DOMAIN}"


def parse_session_time(value: str) -> time:
    """Parse ``HH:MM`` (24-hour) or raise :class:`InvalidRequest`."""
    try:
        parsed = time.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or len(value) != 5 or parsed.second or parsed.microsecond:
        raise InvalidRequest(
            "Invalid session time.",
            {"schedule.session_time": ["Must be a 24-hour local time HH:MM, e.g. 07:00."]},
        )
    return parsed


def local_instant(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The aware datetime for a wall-clock time, normalised through UTC so that a
    time skipped by a DST change becomes the real instant it names."""
    return datetime.combine(day, at, tz).astimezone(UTC).astimezone(tz)


@dataclass(frozen=True, slots=True)
class _Draft:
    key: str
    day: date
    phase: str
    order: int
    template: SessionTemplate
    level_index: int

    @property
    def level(self) -> Level:
        return self.template.levels[self.level_index]


def schedule(
    protocol: Protocol,
    context: Mapping[str, object],
    start: date,
    preferences: Preferences,
    plan_id: str,
    *,
    clearance_before_running: bool = False,
) -> tuple[tuple[Phase, ...], tuple[Session, ...]]:
    """Date every phase and session of ``protocol`` from ``start``.

    Parameters:
        protocol: the validated protocol.
        context: facts that protocol conditions test (injury findings, triage …).
        start: day 0 of the plan.
        preferences: run days, session time and IANA time zone.
        plan_id: the plan's id, from which session UIDs are derived.
        clearance_before_running: add a medical-clearance review on the last day
            before the first phase that contains running (domain.md A4).

    Returns:
        The phases in order and the sessions sorted by date.
    """
    run_days = frozenset(d.iso_index for d in preferences.run_days)
    if not run_days:
        raise InvalidRequest(
            "No run days.", {"schedule.run_days": ["Give at least one day, e.g. MO,WE,FR."]}
        )
    first_running = next(
        (i for i, p in enumerate(protocol.phases) if _has_running(p, context)), None
    )

    phases: list[Phase] = []
    drafts: list[_Draft] = []
    last_run: date | None = None
    cursor = start
    for index, template in enumerate(protocol.phases):
        active = [t for t in template.sessions if holds(t.when, context)]
        days = phase_days(template, context)
        if days is None:
            programme = _programme_template(template, active)
            programme_days = _place(programme, cursor, None, run_days, last_run)
            end = programme_days[-1][0]
        else:
            end = cursor + timedelta(days=days - 1)
        if clearance_before_running and first_running is not None:
            if index + 1 == first_running:
                active.append(CLEARANCE_TEMPLATE)
            elif index == first_running == 0:
                active.append(replace(CLEARANCE_TEMPLATE, at="start"))
        for order, session_template in enumerate(active):
            placed = _place(session_template, cursor, end, run_days, last_run)
            for n, (day, level_index) in enumerate(placed, start=1):
                drafts.append(
                    _Draft(
                        key=f"{template.key}/{session_template.key}/{n}",
                        day=day,
                        phase=template.key,
                        order=order,
                        template=session_template,
                        level_index=level_index,
                    )
                )
            if _is_running(session_template) and placed:
                last_run = placed[-1][0]
        phases.append(
            Phase(
                key=template.key,
                title=template.title,
                start_date=cursor,
                end_date=end,
                goals=template.goals,
                advance_criteria=template.advance_criteria,
                guidance=template.guidance,
            )
        )
        cursor = end + timedelta(days=1)

    sessions = _time_sessions(drafts, preferences, plan_id)
    return tuple(phases), sessions


def phase_days(template: PhaseTemplate, context: Mapping[str, object]) -> int | None:
    """The phase length in days: the first duration rule whose condition holds, else
    the default; ``None`` when the phase lasts as long as its programme."""
    for rule in template.duration_rules:
        if holds(rule.when, context):
            return rule.days
    return template.days


def _is_running(template: SessionTemplate) -> bool:
    return template.kind.is_running or any(
        level.kind is not None and level.kind.is_running for level in template.levels
    )


def _has_running(template: PhaseTemplate, context: Mapping[str, object]) -> bool:
    return any(_is_running(t) and holds(t.when, context) for t in template.sessions)


def _programme_template(phase: PhaseTemplate, active: Sequence[SessionTemplate]) -> SessionTemplate:
    programmes = [t for t in active if t.final_level_sessions is not None]
    if len(programmes) != 1:
        raise InvalidProtocol(
            f"Phase {phase.key!r} has no fixed length, so exactly one of its session "
            "templates must set final_level_sessions.",
            {f"phases.{phase.key}.sessions": ["Exactly one programme template required."]},
        )
    return programmes[0]


def _candidate_weekdays(template: SessionTemplate, run_days: frozenset[int]) -> list[int]:
    if template.days == "run_days":
        weekdays = sorted(run_days)
    elif template.days == "off_days":
        weekdays = [d for d in range(7) if d not in run_days] or list(range(7))
    else:
        weekdays = list(range(7))
    if template.per_week is not None and template.per_week < len(weekdays):
        count = template.per_week
        weekdays = [weekdays[(i * len(weekdays)) // count] for i in range(count)]
    return weekdays


def _place(
    template: SessionTemplate,
    start: date,
    end: date | None,
    run_days: frozenset[int],
    last_run: date | None,
) -> list[tuple[date, int]]:
    """Days (and level indexes) of one template's sessions from ``start`` to ``end``
    inclusive; with ``end`` of ``None`` until its programme is complete."""
    if template.at is not None:
        assert end is not None, "single sessions need a phase of known length"
        return [(start if template.at == "start" else end, 0)]

    levels = len(template.levels)
    total: int | None = None
    if end is None:
        assert template.sessions_per_level is not None and template.final_level_sessions
        total = template.sessions_per_level * (levels - 1) + template.final_level_sessions

    weekdays = set(_candidate_weekdays(template, run_days))
    previous = last_run if _is_running(template) else None
    placed: list[tuple[date, int]] = []
    day = start
    while (end is None or day <= end) and (total is None or len(placed) < total):
        if end is None and (day - start).days > MAX_PROGRAMME_DAYS:
            raise InvalidRequest(
                "The running programme cannot be laid out on these run days.",
                {"schedule.run_days": ["Choose run days with a rest day between them."]},
            )
        consecutive = previous is not None and (day - previous).days == 1
        if day.weekday() in weekdays and not (template.no_consecutive_days and consecutive):
            if template.advance == "weekly":
                level = (day - start).days // 7
            elif template.sessions_per_level:
                level = len(placed) // template.sessions_per_level
            else:
                level = 0
            placed.append((day, min(level, levels - 1)))
            previous = day
        day += timedelta(days=1)
    return placed


def _time_sessions(
    drafts: Sequence[_Draft], preferences: Preferences, plan_id: str
) -> tuple[Session, ...]:
    """Turn drafts into sessions; with a session time, the day's sessions follow one
    another from that time (reviews stay all-day: the clinic sets their time). A
    session that would start after midnight goes just before the day's first one
    instead, so every session starts on its own date."""
    tz = ZoneInfo(preferences.timezone)
    at = parse_session_time(preferences.session_time) if preferences.session_time else None
    ordered = sorted(drafts, key=lambda d: (d.day, d.order, d.key))
    sessions: list[Session] = []
    day_span: dict[date, tuple[datetime, datetime]] = {}  # first start, last end (UTC)
    for draft in ordered:
        level = draft.level
        start = end = None
        if at is not None and draft.template.kind is not SessionKind.REVIEW:
            length = timedelta(minutes=level.duration_min or 30)
            span = day_span.get(draft.day)
            if span is None:
                begin = local_instant(draft.day, at, tz).astimezone(UTC)
            elif span[1].astimezone(tz).date() == draft.day:
                begin = span[1]
            else:
                begin = span[0] - length
            start, end = begin.astimezone(tz), (begin + length).astimezone(tz)
            first, last = span or (begin, begin + length)
            day_span[draft.day] = (min(first, begin), max(last, begin + length))
        sessions.append(
            Session(
                uid=session_uid(plan_id, draft.key),
                key=draft.key,
                date=draft.day,
                phase=draft.phase,
                kind=level.kind or draft.template.kind,
                title=level.title,
                start=start,
                end=end,
                duration_min=level.duration_min,
                steps=level.steps,
                repeat=level.repeat,
                level=draft.level_index + 1 if len(draft.template.levels) > 1 else None,
                notes=level.notes,
                criteria=draft.template.criteria,
            )
        )
    return tuple(sessions)


def weekdays_from_codes(codes: Sequence[str]) -> tuple[Weekday, ...]:
    """Parse RFC 5545 weekday codes into ISO order without duplicates."""
    try:
        days = {Weekday(code.strip().upper()) for code in codes if code.strip()}
    except ValueError as exc:
        raise InvalidRequest(
            "Unknown weekday.",
            {"schedule.run_days": [f"{exc}; use MO, TU, WE, TH, FR, SA or SU."]},
        ) from None
    return tuple(sorted(days, key=lambda d: d.iso_index))
