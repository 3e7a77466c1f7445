"""Lay a protocol out on the calendar: contiguous dated phases holding dated sessions.

Rules this module guarantees (design.md §3–4, domain.md A3):

* the first phase starts on the start date; each next phase starts the day after
  the previous one ends; ``end_date`` is inclusive;
* every session lies inside its phase;
* running falls only on the runner's run days and never on two consecutive days;
* weekly running volume rises by at most 10 % a week, whatever the run days (A3,
  ``return_to_training``: "volume ≤ +10 %/week" [R20][R37][R41]); see below;
* timed sessions keep their local wall-clock time across DST changes; a time that
  does not exist on a spring-forward day moves to the first valid instant after it.

Date arithmetic is the standard library's, not dateutil's, on purpose:

* Run-day recurrence (:func:`days_on_weekdays`) is ``FREQ=WEEKLY;BYDAY=…`` and the
  tests check it against ``dateutil.rrule.rrule``, but the scheduler does not call
  ``rrule``: it costs about 3 µs per occurrence against a fraction of that for a day
  step, which made ``make_plan`` some 40 % slower (its budget is in the README's
  bench); it also yields ``datetime`` rather than ``date``, silently recurs on the
  start's weekday when BYDAY is empty, and takes the week start from the global
  ``calendar.firstweekday()`` unless ``wkst`` is given.
* Durations are whole days (phase lengths, gate extensions) and a weekly template's
  level is whole weeks since its phase began, ``(day - phase_start).days // 7``;
  ``timedelta`` is exact for both. No rule counts months, and
  ``relativedelta(day, start).weeks`` counts only the weeks left after whole months.
* Zones are ``zoneinfo``.

Weekly volume (domain.md A3). A running template that advances weekly
(``advance = "weekly"``: the continuous-running build of ``return_to_training``) is
laid out on alternate run days, and with many run days that alone gives 4 runs in one
week and 3 in the next (seven run days: 90 → 132 → 108 → 156 … minutes). So the
scheduler caps each week instead: a run is left out when it would take the week's
running minutes above 110 % of the previous week's; never more, and a week with fewer
runs is always allowed. How it counts:

* a *week* is the same 7-day block that sets the template's level: whole weeks since
  the phase began, ``(day - phase_start).days // 7``;
* *running minutes* are the minutes of running in a session
  (:func:`running_minutes`): a continuous run's duration, the run steps of a walk/run
  session times its repeats; the walking around them does not count;
* the first week of the build is its baseline and is not capped: it runs the first
  level (30 min) on the alternate run days, after the runner has met the
  ``graded_running`` exit criterion (30 min continuous, pain-free, three times);
* after a week without running (a rest the runner was told to take) the cap is taken
  from the last week that had running, so a break never lets volume jump;
* history counts: in a re-plan the cap for a week uses the sessions kept from the
  previous revision (cancelled ones did not happen and do not count);
* walk/run weeks (templates that advance by pain-free sessions, ``graded_running``)
  are not capped: their levels are A3's published progression (5/1, 4/2, 3/3, 2/4,
  then 30 min continuous), gated by pain-free sessions per level, and each level
  doubles the running minutes by design.

Only whole runs are left out (a session never changes its level's length): run days
fill in date order until the next run would break the cap, so plans stay
deterministic.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
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
    Progress,
    Protocol,
    Session,
    SessionKind,
    SessionStatus,
    SessionTemplate,
    Step,
    TemplateProgress,
    Weekday,
)
from planner.domain.risk import CLEARANCE_CRITERIA
from planner.domain.triad import apply_clearance

#: Namespace for session UIDs: uuid5(namespace, "<plan id>/<session key>").
UID_NAMESPACE = uuid.UUID("8f3b1c2e-5d0a-4e61-9a57-2c4f0e7d9b13")
UID_DOMAIN = "stride-back"
_UID_NAMESPACE_BYTES = UID_NAMESPACE.bytes
_ONE_DAY = timedelta(days=1)
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
    """The VEVENT UID of a logical session: stable for the life of the plan.

    ``f"{uuid.uuid5(UID_NAMESPACE, f'{plan_id}/{key}')}@{UID_DOMAIN}"``, computed
    without building a UUID object (a third of the cost of a plan otherwise):
    SHA-1 of namespace + name, version nibble 5, variant bits 10.
    """
    h = hashlib.sha1(_UID_NAMESPACE_BYTES + f"{plan_id}/{key}".encode()).hexdigest()
    variant = "89ab"[int(h[16], 16) & 3]
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{variant}{h[17:20]}-{h[20:32]}@{UID_DOMAIN}"


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


@dataclass(frozen=True, slots=True)
class _Inputs:
    """What every phase is laid out from."""

    context: Mapping[str, object]
    run_days: frozenset[int]
    progress: Progress
    #: The previous revision's sessions on or before the horizon.
    past: Sequence[Session]


@dataclass(frozen=True, slots=True)
class _Position:
    """Where the layout has got to before a phase."""

    #: The phase's first day: the day after the previous phase ends.
    start: date
    last_run: date | None
    #: False once a phase that has begun still waits for its clinician's gate: the
    #: history of the phases after it was only projected and is laid out again.
    history_counts: bool = True


def schedule(
    protocol: Protocol,
    context: Mapping[str, object],
    start: date,
    preferences: Preferences,
    plan_id: str,
    *,
    clearance_before_running: bool = False,
    progress: Progress | None = None,
    history: Sequence[Session] = (),
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
        progress: what has been recorded so far (re-planning); empty for a new plan.
        history: the previous revision's sessions; those on or before
            ``progress.horizon`` are kept exactly as they were.

    Returns:
        The phases in order and the sessions sorted by date. A ``hold`` phase whose
        gate is not met is the last phase: nothing after it is laid out yet.
    """
    protocol = apply_clearance(protocol, context)  # Triad CRA effects; idempotent
    progress = progress or Progress()
    inputs = _Inputs(context, _run_day_indexes(preferences), progress, _past(history, progress))
    first_running = next(
        (i for i, p in enumerate(protocol.phases) if _has_running(p, context)), None
    )
    position = _Position(start, last_run=_last_run(inputs.past))
    phases: list[Phase] = []
    drafts: list[_Draft] = []
    kept: list[Session] = []
    for index, template in enumerate(protocol.phases):
        clearance = _clearance_review(index, first_running) if clearance_before_running else None
        active = _active_templates(template, context, clearance)
        phase, phase_drafts, phase_history, position = _lay_out_phase(
            template, active, inputs, position
        )
        phases.append(phase)
        drafts.extend(phase_drafts)
        kept.extend(phase_history)
        if template.hold and progress.met_on(template.key) is None:
            break  # the later phases wait for a clinician's gate

    # History keeps its order; everything new comes after the horizon.
    return tuple(phases), (
        *_in_order_of(history, kept),
        *_time_sessions(drafts, preferences, plan_id),
    )


def _run_day_indexes(preferences: Preferences) -> frozenset[int]:
    """The run days as weekday numbers (Monday = 0); at least one is required."""
    run_days = frozenset(d.iso_index for d in preferences.run_days)
    if not run_days:
        raise InvalidRequest(
            "No run days.", {"schedule.run_days": ["Give at least one day, e.g. MO,WE,FR."]}
        )
    return run_days


def _past(history: Sequence[Session], progress: Progress) -> list[Session]:
    """The sessions of the previous revision that are history: on or before the horizon."""
    horizon = progress.horizon
    return [s for s in history if horizon is not None and s.date <= horizon]


def _last_run(sessions: Iterable[Session]) -> date | None:
    return max((s.date for s in sessions if s.kind.is_running), default=None)


def _in_order_of(history: Sequence[Session], kept: Sequence[Session]) -> list[Session]:
    """``kept`` in the order the sessions had in ``history``."""
    position = {id(s): i for i, s in enumerate(history)}
    return sorted(kept, key=lambda s: position[id(s)])


def _clearance_review(index: int, first_running: int | None) -> SessionTemplate | None:
    """The medical-clearance review phase ``index`` adds: on the last day of the phase
    before the first with running, or on day 0 when running starts at once."""
    if first_running is None:
        return None
    if index + 1 == first_running:
        return CLEARANCE_TEMPLATE
    if index == first_running == 0:
        return replace(CLEARANCE_TEMPLATE, at="start")
    return None


def _active_templates(
    template: PhaseTemplate, context: Mapping[str, object], clearance: SessionTemplate | None
) -> list[SessionTemplate]:
    """The phase's session templates whose condition holds, plus the clearance review
    unless the phase already has one."""
    active = [t for t in template.sessions if holds(t.when, context)]
    if clearance is not None and not any(t.key == CLEARANCE_TEMPLATE.key for t in active):
        active.append(clearance)
    return active


def _lay_out_phase(
    template: PhaseTemplate,
    active: Sequence[SessionTemplate],
    inputs: _Inputs,
    at: _Position,
) -> tuple[Phase, list[_Draft], list[Session], _Position]:
    """Date one phase: the phase, its new sessions' drafts, the history it keeps and
    where the next phase starts."""
    horizon = inputs.progress.horizon
    # A phase's past sessions are history only once the phase has begun: sessions
    # projected before its (now later) start never happened and are laid out again.
    history = (
        [s for s in inputs.past if s.phase == template.key and s.date >= at.start]
        if at.history_counts
        else []
    )
    future_from = horizon + _ONE_DAY if horizon is not None and horizon >= at.start else at.start
    end = _phase_end(template, active, inputs, at, future_from, history)
    end, history_counts = _wait_for_gate(template, active, inputs.progress, at, end)
    drafts, last_run = _draft_sessions(template, active, inputs, at, future_from, end, history)
    phase = Phase(
        key=template.key,
        title=template.title,
        start_date=at.start,
        end_date=end,
        goals=template.goals,
        advance_criteria=template.advance_criteria,
        guidance=template.guidance,
    )
    return phase, drafts, history, _Position(end + _ONE_DAY, last_run, history_counts)


def _wait_for_gate(
    template: PhaseTemplate,
    active: Sequence[SessionTemplate],
    progress: Progress,
    at: _Position,
    end: date,
) -> tuple[date, bool]:
    """A gated phase whose end-of-phase review has passed without a clinician's verdict
    lasts until the day after the horizon; and while it waits, the later phases'
    history no longer counts. Returns the end and whether history still counts."""
    gated = any(t.kind is SessionKind.REVIEW and t.at == "end" for t in active)
    horizon = progress.horizon
    if not gated or horizon is None or progress.met_on(template.key) is not None:
        return end, at.history_counts
    if at.start <= horizon and progress.frozen_end(template.key) is None and end <= horizon:
        end = horizon + _ONE_DAY
    if end > horizon:
        return end, at.history_counts and at.start > horizon
    return end, at.history_counts


def _draft_sessions(
    template: PhaseTemplate,
    active: Sequence[SessionTemplate],
    inputs: _Inputs,
    at: _Position,
    future_from: date,
    end: date,
    history: Sequence[Session],
) -> tuple[list[_Draft], date | None]:
    """The drafts of the phase's new sessions, numbered after its history, and the
    day of the last run so far."""
    drafts: list[_Draft] = []
    last_run = at.last_run
    for order, session_template in enumerate(active):
        key = f"{template.key}/{session_template.key}"
        done = [s for s in history if s.template_key == key]
        placed = _place(
            session_template,
            future_from,
            end,
            inputs.run_days,
            last_run,
            state=_state(inputs.progress, key, session_template, done),
            phase_start=at.start,
            rest_until=inputs.progress.rest_until,
            single_done=bool(done),
            done=done,
        )
        drafts.extend(
            _Draft(
                key=f"{key}/{n}",
                day=day,
                phase=template.key,
                order=order,
                template=session_template,
                level_index=level_index,
            )
            for n, (day, level_index) in enumerate(placed, start=len(done) + 1)
        )
        if _is_running(session_template) and placed:
            last_run = placed[-1][0]
    return drafts, last_run


def _phase_end(
    template: PhaseTemplate,
    active: Sequence[SessionTemplate],
    inputs: _Inputs,
    at: _Position,
    future_from: date,
    history: Sequence[Session],
) -> date:
    """The phase's last day (inclusive): frozen when over, the gate's day when a
    clinician met it, else its length — or its programme's last session — plus any
    extensions from unmet gates."""
    progress = inputs.progress
    frozen = progress.frozen_end(template.key)
    if frozen is not None:
        return frozen
    met = progress.met_on(template.key)
    if met is not None:
        return max(met, max((s.date for s in history), default=met))
    days = phase_days(template, inputs.context)
    if days is None:
        programme = _programme_template(template, active)
        key = f"{template.key}/{programme.key}"
        done = [s for s in history if s.template_key == key]
        placed = _place(
            programme,
            future_from,
            None,
            inputs.run_days,
            at.last_run,
            state=_state(progress, key, programme, done),
            phase_start=at.start,
            rest_until=progress.rest_until,
        )
        end = max([day for day, _ in placed] + [s.date for s in history], default=at.start)
    else:
        end = at.start + timedelta(days=days - 1)
    for gate in progress.unmet_gates(template.key):
        end = max(end, gate.on) + timedelta(days=gate.extend_days)
    return end


def _state(
    progress: Progress, key: str, template: SessionTemplate, done: Sequence[Session]
) -> TemplateProgress:
    """The recorded level state of a template, or — before any check-in on it — the
    state the projection implies: every past session counted."""
    recorded = progress.template(key)
    if recorded is not None:
        return recorded
    spl = template.sessions_per_level
    if not spl or template.advance == "weekly":
        return TemplateProgress(key)
    count, last = len(done), len(template.levels) - 1
    level = min(count // spl, last)
    return TemplateProgress(key, level=level, counted=count - level * spl)


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


def remaining_sessions(template: SessionTemplate, state: TemplateProgress) -> int:
    """Sessions a programme still needs from ``state`` if every one of them counts."""
    spl, final = template.sessions_per_level or 1, template.final_level_sessions or 0
    last = len(template.levels) - 1
    if state.level >= last:
        return max(final - state.counted, 0)
    return (spl - state.counted) + spl * (last - state.level - 1) + final


def _place(
    template: SessionTemplate,
    start: date,
    end: date | None,
    run_days: frozenset[int],
    last_run: date | None,
    *,
    state: TemplateProgress,
    phase_start: date,
    rest_until: date | None,
    single_done: bool = False,
    done: Sequence[Session] = (),
) -> list[tuple[date, int]]:
    """Days (and level indexes) of one template's sessions from ``start`` to ``end``
    inclusive; with ``end`` of ``None`` until its programme is complete.

    Levels continue from ``state`` and assume every new session counts. Running never
    lands on or before ``rest_until`` nor the day after another run, and a weekly
    running build never rises above 110 % of the previous week (``done``: the
    template's sessions kept from history, which count toward their weeks).
    """
    if template.at is not None:
        return _place_single(template, start, end, phase_start, single_done)
    total = None if end is not None else remaining_sessions(template, state)
    running = _is_running(template)
    previous = last_run if running else None
    placed: list[tuple[date, int]] = []
    weekdays = frozenset(_candidate_weekdays(template, run_days))
    cap = _WeeklyCap(phase_start, done) if running and template.advance == "weekly" else None
    for day in days_on_weekdays(weekdays, start, end):
        if total is not None and len(placed) >= total:
            return placed
        if end is None and (day - start).days > MAX_PROGRAMME_DAYS:
            break
        if template.no_consecutive_days and previous is not None and day - previous == _ONE_DAY:
            continue
        if running and rest_until is not None and day <= rest_until:
            continue
        level_index = _level_index(template, state, day, phase_start, len(placed))
        if cap is not None and not cap.take(day, template, level_index):
            continue
        placed.append((day, level_index))
        previous = day
    if total is not None and len(placed) < total:
        raise InvalidRequest(
            "The running programme cannot be laid out on these run days.",
            {"schedule.run_days": ["Choose run days with a rest day between them."]},
        )
    return placed


def running_minutes(session: Session) -> int:
    """Minutes of running in a session (domain.md A3's weekly volume): a continuous
    run's duration, or a walk/run session's run steps times its repeats; 0 for
    anything that is not running.

    >>> from planner.domain.model import Step
    >>> running_minutes(Session(uid="u", key="k", date=date(2027, 1, 4), phase="p",
    ...     kind=SessionKind.RUN_WALK, title="t", duration_min=30, repeat=5,
    ...     steps=(Step("walk", 4), Step("run", 2))))
    10
    """
    return _minutes(session.kind, session.duration_min, session.steps, session.repeat)


def _minutes(
    kind: SessionKind, duration_min: int | None, steps: Sequence[Step], repeat: int | None
) -> int:
    if not kind.is_running:
        return 0
    if steps:
        return sum(s.minutes for s in steps if s.activity == "run") * (repeat or 1)
    return duration_min or 0


class _WeeklyCap:
    """Running minutes per week of a phase; a run is taken only while its week stays
    within 110 % of the last earlier week that had running (the module docstring)."""

    __slots__ = ("_phase_start", "_weeks")

    def __init__(self, phase_start: date, done: Iterable[Session]) -> None:
        self._phase_start = phase_start
        self._weeks: dict[int, int] = {}
        for session in done:
            if session.status is not SessionStatus.CANCELLED:
                self._add(self._week(session.date), running_minutes(session))

    def _week(self, day: date) -> int:
        return (day - self._phase_start).days // 7

    def _add(self, week: int, minutes: int) -> None:
        self._weeks[week] = self._weeks.get(week, 0) + minutes

    def take(self, day: date, template: SessionTemplate, level_index: int) -> bool:
        """Count a run on ``day`` at this level if the cap allows it."""
        level = template.levels[level_index]
        minutes = _minutes(
            level.kind or template.kind, level.duration_min, level.steps, level.repeat
        )
        week = self._week(day)
        earlier = [w for w, v in self._weeks.items() if w < week and v > 0]
        if earlier:  # the first week with running is the baseline
            last = self._weeks[max(earlier)]
            if (self._weeks.get(week, 0) + minutes) * 10 > last * 11:
                return False
        self._add(week, minutes)
        return True


def _place_single(
    template: SessionTemplate, start: date, end: date | None, phase_start: date, done: bool
) -> list[tuple[date, int]]:
    """A single session on the phase's first or last day, unless that day is past or
    (first day) it has already happened."""
    assert end is not None, "single sessions need a phase of known length"
    day = phase_start if template.at == "start" else end
    if day < start or (done and template.at == "start"):
        return []
    return [(day, 0)]


def days_on_weekdays(
    weekdays: Collection[int], start: date, end: date | None = None
) -> Iterator[date]:
    """The days from ``start`` to ``end`` inclusive (without ``end``, for ever) that
    fall on ``weekdays`` (Monday = 0): what ``FREQ=WEEKLY;BYDAY=…`` from ``start``
    yields. The tests hold it to dateutil's ``rrule``; why it is not that, see the
    module docstring.

    >>> [d.isoformat() for d in days_on_weekdays({0, 2}, date(2027, 1, 1), date(2027, 1, 11))]
    ['2027-01-04', '2027-01-06', '2027-01-11']
    """
    day = start
    while weekdays and (end is None or day <= end):
        if day.weekday() in weekdays:
            yield day
        day += _ONE_DAY


def _level_index(
    template: SessionTemplate, state: TemplateProgress, day: date, phase_start: date, placed: int
) -> int:
    """The level of a session on ``day`` after ``placed`` new sessions: by whole weeks
    into the phase (weekly templates) or by sessions counted, within the levels."""
    if template.advance == "weekly":
        level = (day - phase_start).days // 7 - state.offset
    elif template.sessions_per_level:
        level = state.level + (state.counted + placed) // template.sessions_per_level
    else:
        level = 0
    return max(0, min(level, len(template.levels) - 1))


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


def weekdays_in_order(days: Iterable[Weekday | str] | None) -> tuple[Weekday, ...]:
    """Run days in Monday-first order without repeats, whatever order they came in.

    Takes :class:`Weekday` values or their RFC 5545 codes (any case; blank codes are
    skipped); ``None`` or no days give an empty tuple.

    >>> weekdays_in_order(["fr", " MO", Weekday.WE, "mo"])
    (<Weekday.MO: 'MO'>, <Weekday.WE: 'WE'>, <Weekday.FR: 'FR'>)

    Raises:
        InvalidRequest: a code names no weekday (field ``schedule.run_days``).
    """
    try:
        chosen = {Weekday(day.strip().upper()) for day in days or () if day.strip()}
    except ValueError as exc:
        raise InvalidRequest(
            "Unknown weekday.",
            {"schedule.run_days": [f"{exc}; use MO, TU, WE, TH, FR, SA or SU."]},
        ) from None
    return tuple(day for day in Weekday if day in chosen)
