"""Check-ins and phase gates → a decision and a revised plan (domain.md A3 exit
criteria, A5 pain rules).

``revise(plan, protocol, event, today=…, at=…)`` is pure: the previous plan, one event
and the current date give the next revision. History (sessions on or before the
horizon) never moves; the future is laid out again from the recorded progress. A
session that survives keeps its UID; if anything about it changed, its SEQUENCE rises.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import date, datetime, timedelta
from operator import attrgetter
from typing import TypeVar

from planner.domain.errors import PlannerError
from planner.domain.model import (
    Alert,
    GateRecord,
    Outcome,
    PainStop,
    Phase,
    Plan,
    PlanStatus,
    Progress,
    Protocol,
    RedFlag,
    Session,
    SessionKind,
    SessionStatus,
    SessionTemplate,
    Severity,
    TemplateProgress,
)
from planner.domain.risk import needs_clearance_review
from planner.domain.scheduling import schedule, session_uid
from planner.domain.selection import EMERGENCY_ALERT
from planner.domain.triad import apply_clearance

_Versioned = TypeVar("_Versioned", Session, Phase)

#: Days without running after which the programme drops back one level [R55].
MISSED_DAYS_PER_LEVEL = 5


class InvalidEvent(PlannerError):
    """The check-in or gate does not fit the plan (unknown session, future date …)."""

    code = "invalid_event"


class PlanNotActive(PlannerError):
    """The plan is stopped or cancelled: nothing more can be recorded on it."""

    code = "plan_not_active"


class EventConflict(PlannerError):
    """The event contradicts history already recorded (e.g. a gate dated before it)."""

    code = "event_conflict"


@dataclass(frozen=True, slots=True)
class CheckIn:
    """How a session went. Pain is 0–10; ``session_uid`` or ``on`` picks the session."""

    session_uid: str | None = None
    on: date | None = None
    completed: bool = True
    pain_during: int = 0
    pain_after: int = 0
    pain_next_morning: int = 0
    pain_building: bool = False
    gait_changed: bool = False
    morning_stiffness: bool = False
    red_flags: tuple[RedFlag, ...] = ()
    notes: str = ""


@dataclass(frozen=True, slots=True)
class Gate:
    """A clinician's verdict on a phase's exit criteria."""

    phase: str
    met: bool
    on: date
    criteria: tuple[str, ...] = ()
    extend_days: int = 7
    notes: str = ""


@dataclass(frozen=True, slots=True)
class Cancel:
    """The coach or clinician called the plan off."""

    on: date
    reason: str = ""


Event = CheckIn | Gate | Cancel


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome | None
    reason: str
    session_uid: str | None = None
    #: Accepted, but worth a second look (e.g. a protection gate met early).
    warning: str | None = None


#: What a stop tells the runner, whatever its cause: nothing loads the leg any more.
STOP_ADVICE = (
    "Walking, running and leg exercise are stopped from today; only upper-body or pool "
    "work that keeps the leg unloaded may go on."
)
EMERGENCY_ADVICE = "Do not walk on the leg: go to an emergency department now."


def severe_pain(
    check_in: CheckIn, pain_stop: PainStop | None, *, protection: bool = False
) -> str | None:
    """What makes this report severe pain under the protocol's ``pain_stop`` — pain at or
    above its severe level, or, in a protection phase, next-morning pain that has not
    settled — in words; ``None`` when it is not."""
    if pain_stop is None:
        return None
    worst = max(check_in.pain_during, check_in.pain_after, check_in.pain_next_morning)
    if worst >= pain_stop.severe_at_least:
        return f"severe pain ({worst}/10)"
    if protection and check_in.pain_next_morning >= pain_stop.unsettled_at_least:
        return (
            f"pain ({check_in.pain_next_morning}/10) that had not settled by the next morning "
            "while the leg is still protected"
        )
    return None


def decide(
    check_in: CheckIn, pain_stop: PainStop | None = None, *, protection: bool = False
) -> tuple[Outcome, str]:
    """Apply the A5 pain rules to one session report; with the protocol's ``pain_stop``,
    severe pain (and unsettled pain while the leg is protected) stops the plan too.

    >>> decide(CheckIn(pain_during=0))[0]
    <Outcome.COUNT: 'count'>
    >>> decide(CheckIn(pain_after=2))[0]
    <Outcome.REPEAT: 'repeat'>
    >>> decide(CheckIn(pain_during=3))[0]
    <Outcome.REGRESS: 'regress'>
    >>> decide(CheckIn(pain_during=8), PainStop(severe_at_least=7))[0]
    <Outcome.STOP_AND_REFER: 'stop_and_refer'>
    """
    if check_in.red_flags:
        flags = ", ".join(f.value.replace("_", " ") for f in check_in.red_flags)
        emergency = RedFlag.CANNOT_BEAR_WEIGHT in check_in.red_flags
        return Outcome.STOP_AND_REFER, (
            f"Red flag reported ({flags}): the plan is stopped. {STOP_ADVICE} "
            + (
                EMERGENCY_ADVICE
                if emergency
                else "See a clinician urgently, today if you can; an urgent review is booked."
            )
        )
    severe = severe_pain(check_in, pain_stop, protection=protection)
    if severe is not None:
        # the same advice as the protocols' pain rules give for the same sign: severe pain
        # is an emergency; pain that has not settled while protected is urgent
        assert pain_stop is not None
        worst = max(check_in.pain_during, check_in.pain_after, check_in.pain_next_morning)
        now = (
            "Go to an emergency department now."
            if worst >= pain_stop.severe_at_least
            else "If you cannot bear weight on the leg, go to an emergency department now; "
            "otherwise see a clinician today."
        )
        return Outcome.STOP_AND_REFER, (
            f"Stop: {severe} is not an ordinary setback, so the plan is stopped and an "
            f"urgent review is booked. {STOP_ADVICE} {now}"
        )
    worst = max(check_in.pain_during, check_in.pain_after, check_in.pain_next_morning)
    if worst >= 3 or check_in.pain_building or check_in.gait_changed:
        why = (
            f"pain {worst}/10"
            if worst >= 3
            else "pain that built during the session"
            if check_in.pain_building
            else "a change in gait"
        )
        return Outcome.REGRESS, f"Stop, rest a day, then go back one level: {why}."
    if worst > 0 or check_in.morning_stiffness:
        why = f"pain {worst}/10 that settled" if worst > 0 else "stiffness the next morning"
        return Outcome.REPEAT, f"Repeat the level: {why}; this session does not count."
    if not check_in.completed:
        return Outcome.REPEAT, "Repeat the level: the session was not completed."
    return Outcome.COUNT, "Pain-free: this session counts toward the next level."


def revise(
    plan: Plan,
    protocol: Protocol,
    event: Event,
    *,
    context: dict[str, object],
    today: date,
    at: datetime,
) -> tuple[Plan, Decision]:
    """The next revision of ``plan`` after ``event``, recorded ``today`` at ``at``.

    A stopped plan takes one event: its cancellation, so that a clinician can end it (or
    refer the runner on) rather than leave a stopped plan with its calendar standing.

    Raises:
        PlanNotActive: the plan is cancelled, or stopped and the event is no cancellation.
        InvalidEvent: the event names an unknown session or phase, or a future date.
        EventConflict: the event is dated before history already recorded.
    """
    ending_a_stop = plan.status is PlanStatus.STOPPED and isinstance(event, Cancel)
    if plan.status is not PlanStatus.ACTIVE and not ending_a_stop:
        raise PlanNotActive(f"The plan is {plan.status.value}; nothing more can be recorded.")
    protocol = apply_clearance(protocol, context)  # the Triad CRA's levels and gates
    previous = plan.progress
    if previous.horizon is not None and today < previous.horizon:
        today = previous.horizon

    if isinstance(event, Cancel):
        return _cancel(plan, today, at, event), Decision(None, event.reason or "Cancelled.")

    if isinstance(event, Gate):
        horizon, progress, decision = _apply_gate(plan, protocol, event, today)
    else:
        session = _session_for(plan, event, today)
        protection = protocol.pain_stop is not None and (
            session.phase in protocol.pain_stop.protection_phases
        )
        outcome, reason = decide(event, protocol.pain_stop, protection=protection)
        if outcome is Outcome.STOP_AND_REFER:  # red flags are always heard
            return _stop(plan, protocol, event, session, today, at, reason)
        _check_reportable(plan, session)
        # A setback reported about an earlier day changes today's sessions too (they have
        # not happened yet): history ends yesterday unless today's are already on record.
        horizon = today if outcome is Outcome.COUNT else _report_horizon(previous, session, today)
        progress = _missed_running(plan, protocol, previous, today)
        progress = _apply_outcome(plan, protocol, progress, session, outcome, today)
        progress = replace(progress, reported=(*progress.reported, session.uid))
        decision = Decision(outcome, reason, session.uid)

    progress = replace(progress, horizon=horizon, frozen_ends=_frozen_ends(plan, horizon))
    phases, sessions = schedule(
        protocol,
        context,
        plan.start_date,
        plan.request.preferences,
        plan.id,
        clearance_before_running=needs_clearance_review(plan.request.risk_factors),
        progress=progress,
        history=plan.sessions,
    )
    sessions = _rest_from_walking(sessions, progress)
    revised = replace(
        plan,
        revision=plan.revision + 1,
        updated_at=at,
        phases=_carry_phases(plan.phases, phases, at),
        sessions=_carry_sessions(plan.sessions, sessions, at),
        progress=progress,
    )
    return revised, decision


def _report_horizon(previous: Progress, session: Session, today: date) -> date:
    """The last day of history after a report on ``session``: yesterday, so that today's
    sessions follow the report, unless the session itself is today's (or today is
    already on record); never before the previous horizon."""
    horizon = max(session.date, today - timedelta(days=1))
    return horizon if previous.horizon is None else max(horizon, previous.horizon)


def _rest_from_walking(sessions: tuple[Session, ...], progress: Progress) -> tuple[Session, ...]:
    """After a painful walk, the walks of the rest day are cancelled: a walk gets the
    same rest day as a run (domain.md A5), and the scheduler rests only running."""
    rest, horizon = progress.walk_rest_until, progress.horizon
    if rest is None or horizon is None or rest <= horizon:
        return sessions
    return tuple(
        replace(s, status=SessionStatus.CANCELLED, notes=REST_DAY_NOTE)
        if s.kind is SessionKind.WALK and horizon < s.date <= rest
        else s
        for s in sessions
    )


REST_DAY_NOTE = "Rest day after a painful walk: no walk today; the next one is a level lower."


# ----------------------------------------------------------------------------- events


def _session_for(plan: Plan, check_in: CheckIn, today: date) -> Session:
    if check_in.session_uid is not None:
        try:
            session = plan.session(check_in.session_uid)
        except KeyError:
            raise InvalidEvent(
                "No such session in this plan.",
                {"session_uid": [f"Unknown session {check_in.session_uid!r}."]},
            ) from None
    elif check_in.on is not None:
        on_day = [s for s in plan.sessions if s.date == check_in.on]
        if not on_day:
            raise InvalidEvent(
                "No session on that date.", {"date": [f"No session on {check_in.on}."]}
            )
        running = [s for s in on_day if s.kind.is_running or s.kind is SessionKind.WALK]
        session = (running or on_day)[0]
    else:
        raise InvalidEvent("Say which session.", {"session_uid": ["Give session_uid or date."]})
    if session.date > today:
        raise InvalidEvent(
            "That session is in the future.",
            {"session_uid": [f"The session is on {session.date}; today is {today}."]},
        )
    if session.status is SessionStatus.CANCELLED:
        raise InvalidEvent("That session was cancelled.", {"session_uid": ["Cancelled."]})
    return session


def _check_reportable(plan: Plan, session: Session) -> None:
    """A session counts once, and only once its phase has begun (no earlier phase still
    waits for its clinician's gate)."""
    if session.uid in plan.progress.reported:
        raise EventConflict(
            "That session was already reported.",
            {"session_uid": ["Already reported; a session counts once."]},
        )
    for phase in plan.phases:
        if phase.key == session.phase:
            return
        waiting = (
            _gated(plan, phase)
            and plan.progress.met_on(phase.key) is None
            and plan.progress.frozen_end(phase.key) is None
        )
        if waiting:
            raise EventConflict(
                f"The {session.phase} phase has not begun: {phase.key} still waits for its gate.",
                {"session_uid": [f"Record the {phase.key} gate first."]},
            )


def _apply_gate(
    plan: Plan, protocol: Protocol, gate: Gate, today: date
) -> tuple[date, Progress, Decision]:
    try:
        phase = plan.phase(gate.phase)
    except KeyError:
        raise InvalidEvent(
            "No such phase in this plan.", {"phase": [f"Unknown phase {gate.phase!r}."]}
        ) from None
    progress = plan.progress
    if gate.on > today:
        raise InvalidEvent("A gate cannot be dated in the future.", {"date": ["In the future."]})
    if progress.horizon is not None and gate.on < progress.horizon:
        raise EventConflict(
            f"Events up to {progress.horizon} are already recorded; date the gate on or after it.",
            {"date": [f"Must be on or after {progress.horizon}."]},
        )
    if gate.on < phase.start_date:
        raise EventConflict(
            f"The {phase.key} phase has not started (it starts {phase.start_date}).",
            {"date": [f"Must be on or after {phase.start_date}."]},
        )
    if progress.met_on(phase.key) is not None or progress.frozen_end(phase.key) is not None:
        raise EventConflict(f"The {phase.key} phase is already over.", {"phase": ["Over."]})
    waiting = next(
        (
            p
            for p in plan.phases[: plan.phases.index(phase)]
            if _gated(plan, p) and progress.met_on(p.key) is None
        ),
        None,
    )
    if waiting is not None:
        raise EventConflict(
            f"The {phase.key} phase has not started: the {waiting.key} phase still waits "
            "for its gate.",
            {"phase": [f"Record the {waiting.key} gate first."]},
        )
    later = [p for p in plan.phases if p.start_date > phase.start_date]
    if later and progress.horizon is not None and later[0].start_date <= progress.horizon:
        raise EventConflict(
            f"The {later[0].key} phase has already begun.", {"phase": ["Not current."]}
        )
    if not _has_review(plan, phase):
        raise InvalidEvent(
            f"The {phase.key} phase has no clinical review, so it has no gate to record: "
            "it ends on its own date.",
            {"phase": [f"{phase.key} ends without a review; there is no gate."]},
        )
    record = GateRecord(
        phase=phase.key,
        met=gate.met,
        on=gate.on,
        criteria=gate.criteria,
        extend_days=0 if gate.met else gate.extend_days,
        notes=gate.notes,
    )
    warning = None
    if gate.met:
        reason = f"Gate met on {gate.on}: the next phase starts on {gate.on + timedelta(days=1)}."
        warning = _early_protection(protocol, phase, gate.on)
    else:
        _check_extension(protocol, phase, progress, gate)
        reason = (
            f"Gate not met on {gate.on}: {phase.key} is extended by {gate.extend_days} days "
            "with a new review at its new end."
        )
    return (
        gate.on,
        replace(progress, gates=(*progress.gates, record)),
        Decision(None, reason, warning=warning),
    )


def _has_review(plan: Plan, phase: Phase) -> bool:
    """Whether the phase has a clinical review in the plan, whose verdict a gate records."""
    return any(s.phase == phase.key and s.kind is SessionKind.REVIEW for s in plan.sessions)


#: How much longer than planned a phase with no evidence range may be made by gates that
#: were not met: twelve weeks. A product default (no source gives a number): past it the
#: plan no longer describes the runner's recovery, and a clinician should re-plan from a
#: new assessment or refer on.
MAX_EXTENSION_DAYS = 84


def _check_extension(protocol: Protocol, phase: Phase, progress: Progress, gate: Gate) -> None:
    """Refuse an extension that takes a phase past the longest the protocol allows: its
    evidence range (``range_days``) where it states one, else :data:`MAX_EXTENSION_DAYS`
    more than planned. Without a bound, repeated "not met" gates grew a plan for decades."""
    template = next((p for p in protocol.phases if p.key == phase.key), None)
    new_end = max(phase.end_date, gate.on) + timedelta(days=gate.extend_days)
    length = (new_end - phase.start_date).days + 1
    if template is not None and template.range_days is not None:
        longest = template.range_days[1]
        if length <= longest:
            return
        why = f"beyond the {longest} days the protocol's evidence range allows"
    else:
        extended = sum(g.extend_days for g in progress.unmet_gates(phase.key)) + gate.extend_days
        if extended <= MAX_EXTENSION_DAYS:
            return
        why = f"{extended} days more than planned, beyond the {MAX_EXTENSION_DAYS} days allowed"
    raise InvalidEvent(
        f"Extending {phase.key} to {length} days ({why}) is not a plan any more: re-plan "
        "from a new assessment, or refer the runner on, instead of extending it again.",
        {"extend_days": [f"The {phase.key} phase cannot be extended this far."]},
    )


def _early_protection(protocol: Protocol, phase: Phase, on: date) -> str | None:
    """A warning when a protection phase's gate is met before the shortest protection
    the protocol's evidence range allows."""
    pain_stop = protocol.pain_stop
    if pain_stop is None or phase.key not in pain_stop.protection_phases:
        return None
    template = next((p for p in protocol.phases if p.key == phase.key), None)
    if template is None or template.range_days is None:
        return None
    shortest, days = template.range_days[0], (on - phase.start_date).days + 1
    if days >= shortest:
        return None
    return (
        f"The {phase.key} gate was met after {days} days of protection, fewer than the "
        f"protocol's minimum of {shortest} days: check that the clinician meant to end "
        "protection this early."
    )


def _template(protocol: Protocol, key: str) -> SessionTemplate | None:
    phase_key, template_key = key.split("/", 1)
    for phase in protocol.phases:
        if phase.key == phase_key:
            return next((t for t in phase.sessions if t.key == template_key), None)
    return None


def _recorded_or_implied(plan: Plan, progress: Progress, session: Session) -> TemplateProgress:
    """The template's state just before ``session``: as recorded, or as projected."""
    recorded = progress.template(session.template_key)
    if recorded is not None:
        return recorded
    level = (session.level or 1) - 1
    before = [
        s
        for s in plan.sessions
        if s.template_key == session.template_key and s.number < session.number
    ]
    return TemplateProgress(
        session.template_key,
        level=level,
        counted=sum(1 for s in before if s.level == session.level),
    )


def _with_template(progress: Progress, state: TemplateProgress) -> Progress:
    others = tuple(t for t in progress.templates if t.template != state.template)
    return replace(progress, templates=tuple(sorted((*others, state), key=lambda t: t.template)))


def _apply_outcome(
    plan: Plan,
    protocol: Protocol,
    progress: Progress,
    session: Session,
    outcome: Outcome,
    today: date,
) -> Progress:
    template = _template(protocol, session.template_key)
    if session.kind.is_running:
        last = progress.last_running
        progress = replace(progress, last_running=max(last, session.date) if last else session.date)
    # The rest day is the day after the session, or the day of the report when it comes
    # later: nothing loads the leg on the day pain is reported (domain.md A5).
    rest = max(session.date + timedelta(days=1), today)
    if outcome is Outcome.REGRESS and session.kind.is_running:
        current = progress.rest_until
        progress = replace(progress, rest_until=max(current, rest) if current else rest)
    if outcome is Outcome.REGRESS and session.kind is SessionKind.WALK:
        current = progress.walk_rest_until
        progress = replace(progress, walk_rest_until=max(current, rest) if current else rest)
    if template is None or len(template.levels) < 2:
        return progress
    state = _recorded_or_implied(plan, progress, session)
    if template.advance == "weekly":
        if outcome is Outcome.REPEAT:
            state = replace(state, offset=state.offset + 1)
        elif outcome is Outcome.REGRESS:
            state = replace(state, offset=state.offset + 2)
        return _with_template(progress, state)
    spl, last_level = template.sessions_per_level or 1, len(template.levels) - 1
    if outcome is Outcome.COUNT:
        counted = state.counted + 1
        if counted >= spl and state.level < last_level:
            state = replace(state, level=state.level + 1, counted=0)
        else:
            state = replace(state, counted=counted)
    elif outcome is Outcome.REGRESS:
        state = replace(state, level=max(0, state.level - 1), counted=0)
    return _with_template(progress, state)


def _missed_running(plan: Plan, protocol: Protocol, progress: Progress, today: date) -> Progress:
    """Back one level for each 5 days without a running check-in while running
    sessions were scheduled (domain.md A5 [R55])."""
    running = [s for s in plan.sessions if s.kind.is_running and s.status is SessionStatus.PLANNED]
    started = [s for s in running if s.date < today]
    if not started:
        return progress
    since = progress.last_running or (started[0].date - timedelta(days=1))
    gap = (today - since).days
    missed = [s for s in started if s.date > since]
    if gap < MISSED_DAYS_PER_LEVEL or not missed:
        return progress
    drops = gap // MISSED_DAYS_PER_LEVEL
    session = missed[-1]
    template = _template(protocol, session.template_key)
    if template is not None and len(template.levels) > 1:
        state = _recorded_or_implied(plan, progress, session)
        if template.advance == "weekly":
            state = replace(state, offset=state.offset + drops * 2)
        else:
            state = replace(state, level=max(0, state.level - drops), counted=0)
        progress = _with_template(progress, state)
    return replace(progress, last_running=today)


def _frozen_ends(plan: Plan, horizon: date) -> tuple[tuple[str, date], ...]:
    """Phases over before the horizon keep their end — up to the first one that still
    waits for a clinician's gate (the phases after it have not begun)."""
    ends = list(plan.progress.frozen_ends)
    known = {key for key, _ in ends}
    for phase in plan.phases:
        if phase.end_date >= horizon:
            break
        if _gated(plan, phase) and plan.progress.met_on(phase.key) is None:
            break
        if phase.key not in known:
            ends.append((phase.key, phase.end_date))
    return tuple(ends)


def _gated(plan: Plan, phase: Phase) -> bool:
    """Whether the phase ends with a review: the next one waits for its gate."""
    return any(
        s.phase == phase.key and s.kind is SessionKind.REVIEW and s.date == phase.end_date
        for s in plan.sessions
    )


# ----------------------------------------------------------------------------- stop, cancel


def _stop(
    plan: Plan,
    protocol: Protocol,
    check_in: CheckIn,
    session: Session,
    today: date,
    at: datetime,
    reason: str,
) -> tuple[Plan, Decision]:
    """A red flag or severe pain: from today on nothing loads the leg — walks, runs, leg
    strength and the reviews of a programme that no longer runs are cancelled; only
    the protocol's unloaded (upper-body or pool) cross-training stays, labelled as
    such — and an urgent review is booked (today when the runner cannot bear weight:
    emergency care, domain.md A2 rule 1)."""
    emergency = RedFlag.CANNOT_BEAR_WEIGHT in check_in.red_flags
    # History ends yesterday (or where it already ended): today's sessions are stopped.
    yesterday = today - timedelta(days=1)
    previous = plan.progress.horizon
    horizon = yesterday if previous is None else max(previous, yesterday)
    review_day = max(today, horizon + timedelta(days=1)) if emergency else today + timedelta(days=1)
    phases = list(plan.phases)
    index = next((i for i, p in enumerate(phases) if p.contains(review_day)), len(phases) - 1)
    if not phases[index].contains(review_day):
        phases[index] = replace(phases[index], end_date=review_day)
    phases = [
        replace(p, status=SessionStatus.CANCELLED)
        if p.start_date > review_day
        else replace(p, title=f"On hold: {p.title}", guidance=(STOP_ADVICE, *p.guidance))
        if i == index
        else p
        for i, p in enumerate(phases)
    ]
    phase = phases[index]
    unloaded = _unloaded_templates(protocol)
    done = {*plan.progress.reported, session.uid}
    sessions: list[Session] = []
    for s in plan.sessions:
        if s.date < today or s.uid in done or s.status is SessionStatus.CANCELLED:
            sessions.append(s)
        elif s.template_key in unloaded:  # relabelled once it is no longer history
            relabel = s.date > horizon
            sessions.append(replace(s, title=UNLOADED_TITLE, notes=UNLOADED_NOTE) if relabel else s)
        else:
            sessions.append(replace(s, status=SessionStatus.CANCELLED))
    key = f"{phase.key}/urgent_review/1"
    flags = tuple(f.value.replace("_", " ") for f in check_in.red_flags)
    what = ", ".join(flags) if flags else _pain_words(check_in)
    sessions.append(
        Session(
            uid=session_uid(plan.id, key),
            key=key,
            date=review_day,
            phase=phase.key,
            kind=SessionKind.REVIEW,
            title="Emergency department now" if emergency else "Urgent clinical review",
            notes=(
                f"{EMERGENCY_ADVICE} Walking, running and leg exercise are stopped."
                if emergency
                else "Walking, running and leg exercise are on hold until a clinician has seen you."
            ),
            criteria=tuple(f"Reported: {flag}" for flag in flags) or (f"Reported: {what}",),
        )
    )
    sessions.sort(key=lambda s: s.date)
    alerts = [
        Alert(
            code="stop_and_refer",
            severity=Severity.URGENT,
            message=(
                f"Stopped on {today} after what was reported about {session.date} ({what}): "
                "walking, running and leg exercise are stopped; see a clinician urgently, "
                "today if you can."
            ),
            references=("R1", "R20"),
        )
    ]
    if emergency:
        alerts.insert(0, EMERGENCY_ALERT)
    progress = replace(
        plan.progress,
        horizon=horizon,
        stopped_on=today,
        reported=tuple(dict.fromkeys((*plan.progress.reported, session.uid))),
    )
    revised = replace(
        plan,
        revision=plan.revision + 1,
        status=PlanStatus.STOPPED,
        updated_at=at,
        phases=_carry_phases(plan.phases, tuple(phases), at),
        sessions=_carry_sessions(plan.sessions, tuple(sessions), at),
        alerts=(*alerts, *plan.alerts),
        progress=progress,
    )
    return revised, Decision(Outcome.STOP_AND_REFER, reason, session.uid)


#: What an unloaded session says once the plan is stopped, whatever the protocol wrote.
UNLOADED_TITLE = "Upper-body or pool cross-training (non-weight-bearing)"
UNLOADED_NOTE = (
    "Upper body or pool only, non-weight-bearing: keep the injured leg unloaded (no "
    "push-offs or kicks with it). Stop if anything hurts the leg."
)


def _unloaded_templates(protocol: Protocol) -> frozenset[str]:
    """``phase/template`` of every template the protocol declares unloaded."""
    return frozenset(
        f"{phase.key}/{template.key}"
        for phase in protocol.phases
        for template in phase.sessions
        if template.unloaded
    )


def _pain_words(check_in: CheckIn) -> str:
    worst = max(check_in.pain_during, check_in.pain_after, check_in.pain_next_morning)
    return f"pain {worst}/10"


def _cancel(plan: Plan, today: date, at: datetime, event: Cancel) -> Plan:
    """Every session after today, and every phase not over by today, is cancelled."""
    sessions = tuple(
        replace(s, status=SessionStatus.CANCELLED) if s.date > today else s for s in plan.sessions
    )
    phases = tuple(
        replace(p, status=SessionStatus.CANCELLED) if p.end_date > today else p for p in plan.phases
    )
    return replace(
        plan,
        revision=plan.revision + 1,
        status=PlanStatus.CANCELLED,
        updated_at=at,
        phases=_carry_phases(plan.phases, phases, at),
        sessions=_carry_sessions(plan.sessions, sessions, at),
        progress=replace(plan.progress, horizon=today, cancelled_on=today),
    )


# ----------------------------------------------------------------------------- identity


def _carry(
    old: tuple[_Versioned, ...], new: tuple[_Versioned, ...], at: datetime, key: str
) -> tuple[_Versioned, ...]:
    """Keep SEQUENCE and modification time of what did not change; bump what did.

    ``key`` names the identity attribute (``uid`` for sessions, ``key`` for phases). An
    unchanged item is the prior object itself: equal content, its own version.
    """
    before = {getattr(item, key): item for item in old}
    carried = []
    for item in new:
        prior = before.get(getattr(item, key))
        if prior is None:
            carried.append(replace(item, sequence=0, modified_at=at))
        elif _same(prior, item):
            carried.append(prior)
        else:
            carried.append(replace(item, sequence=prior.sequence + 1, modified_at=at))
    return tuple(carried)


def _carry_sessions(
    old: tuple[Session, ...], new: tuple[Session, ...], at: datetime
) -> tuple[Session, ...]:
    return _carry(old, new, at, "uid")


def _carry_phases(
    old: tuple[Phase, ...], new: tuple[Phase, ...], at: datetime
) -> tuple[Phase, ...]:
    return _carry(old, new, at, "key")


def _same(a: Session | Phase, b: Session | Phase) -> bool:
    """Equal in everything but the version (SEQUENCE and modification time)."""
    content = _CONTENT[type(a)]
    return type(a) is type(b) and content(a) == content(b)


#: Per class, a getter of every field but the version ones; comparing these tuples costs a
#: fraction of building two version-less copies, and a revision compares every session.
_CONTENT = {
    cls: attrgetter(*(f.name for f in fields(cls) if f.name not in ("sequence", "modified_at")))
    for cls in (Session, Phase)
}
