"""Property and stateful tests of re-planning (domain.md A3 gates, A5 pain rules).

The state machine starts from a random valid conservative plan and then, step by step,
lets time pass, records check-ins on past sessions, clinicians' gates and (rarely) a
cancellation. Whatever the domain refuses is skipped; after every accepted event the
plan must keep the invariants below, and replaying the recorded events from scratch
must give the same plan.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as statistic
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from planner.domain import (
    Plan,
    PlanRequest,
    Protocol,
    RiskFactor,
    Session,
    SessionKind,
    Weekday,
)
from planner.domain.model import (
    NO_RUNNING_PHASES,
    NO_WALKING_PHASES,
    Outcome,
    PlanStatus,
    Preferences,
    RedFlag,
    SessionStatus,
)
from planner.domain.planning import RecordedEvent, planning_context, replay
from planner.domain.progress import (
    Cancel,
    CheckIn,
    EventConflict,
    Gate,
    InvalidEvent,
    PlanNotActive,
    decide,
    revise,
)
from tests.builders import CONSERVATIVE_PHASES, injury, plan, shipped_catalog

REFUSED = (InvalidEvent, EventConflict, PlanNotActive)
TIME_ZONES = [
    "UTC",
    "America/New_York",
    "Europe/Berlin",
    "Australia/Sydney",
    "Asia/Kolkata",
    "Pacific/Chatham",
]

pain = st.integers(0, 10)
red_flags = st.one_of(
    st.just(()), st.lists(st.sampled_from(list(RedFlag)), min_size=1, max_size=2, unique=True)
).map(tuple)


@st.composite
def check_ins(
    draw: st.DrawFn, flags: st.SearchStrategy[tuple[RedFlag, ...]] = red_flags
) -> CheckIn:
    """A session report over the whole A5 input space (without the session choice)."""
    return CheckIn(
        completed=draw(st.booleans()),
        pain_during=draw(pain),
        pain_after=draw(pain),
        pain_next_morning=draw(pain),
        pain_building=draw(st.booleans()),
        gait_changed=draw(st.booleans()),
        morning_stiffness=draw(st.booleans()),
        red_flags=draw(flags),
    )


@st.composite
def mild_check_ins(draw: st.DrawFn) -> CheckIn:
    """Mostly pain-free reports, so that programmes actually progress (the lists weight
    the draws: a red flag, which ends the run, comes about once in thirty reports)."""
    low_pain = st.sampled_from([0, 0, 0, 0, 1, 2, 2, 3])
    return CheckIn(
        completed=draw(st.sampled_from([True, True, True, True, False])),
        pain_during=draw(low_pain),
        pain_after=draw(low_pain),
        pain_next_morning=draw(st.sampled_from([0, 0, 0, 0, 0, 1, 3])),
        pain_building=draw(st.sampled_from([False] * 9 + [True])),
        gait_changed=draw(st.sampled_from([False] * 9 + [True])),
        morning_stiffness=draw(st.sampled_from([False] * 5 + [True])),
        red_flags=draw(
            st.sampled_from([()] * 60 + [(RedFlag.NIGHT_PAIN,), (RedFlag.CANNOT_BEAR_WEIGHT,)])
        ),
    )


@st.composite
def conservative_requests(draw: st.DrawFn) -> PlanRequest:
    """A valid request that triages to the conservative pathway."""
    line = draw(st.booleans())
    fields: dict[str, object] = {"laterality": draw(st.sampled_from(["left", "right"]))}
    if line:
        fields["fracture_line"] = True
        fields["fracture_line_pct"] = draw(st.one_of(st.none(), st.integers(1, 49)))
    else:
        fields["mri_grade"] = draw(st.one_of(st.none(), st.integers(1, 3)))
    diagnosis = draw(st.dates(date(2020, 1, 1), date(2040, 12, 31)))
    run_days = draw(st.sets(st.sampled_from(list(Weekday)), min_size=1))
    return PlanRequest(
        diagnosis_date=diagnosis,
        start_date=diagnosis + timedelta(days=draw(st.integers(0, 10))),
        injury=injury(**fields),
        risk_factors=tuple(draw(st.sets(st.sampled_from(list(RiskFactor)), max_size=2))),
        preferences=Preferences(
            run_days=tuple(sorted(run_days, key=lambda d: d.iso_index)),
            session_time=draw(st.sampled_from([None, "06:30", "12:00", "18:45", "23:30"])),
            timezone=draw(st.sampled_from(TIME_ZONES)),
        ),
    )


def _protocol(made: Plan) -> Protocol:
    return shipped_catalog().get(made.protocol.id)


def _at(today: date, step: int) -> datetime:
    return datetime.combine(today, time(12), UTC) + timedelta(seconds=step)


# ------------------------------------------------------------------ invariants of one plan


def _gated(made: Plan, phase_key: str) -> bool:
    """A phase with a review on its last day waits for a clinician's gate."""
    phase = made.phase(phase_key)
    return any(
        s.phase == phase_key and s.kind is SessionKind.REVIEW and s.date == phase.end_date
        for s in made.sessions
    )


def assert_plan_invariants(made: Plan) -> None:
    """What holds for every revision of every plan."""
    phases = made.phases
    assert tuple(p.key for p in phases) == CONSERVATIVE_PHASES
    assert phases[0].start_date == made.start_date
    for phase in phases:
        assert phase.end_date >= phase.start_date, phase
    for earlier, later in zip(phases, phases[1:], strict=False):
        assert later.start_date == earlier.end_date + timedelta(days=1), (earlier, later)

    by_key = {p.key: p for p in phases}
    for s in made.sessions:
        assert by_key[s.phase].contains(s.date), (s.key, s.date, by_key[s.phase])
        if s.phase in NO_RUNNING_PHASES:
            assert not s.kind.is_running, s.key
        if s.phase in NO_WALKING_PHASES:
            assert s.kind is not SessionKind.WALK, s.key

    uids = [s.uid for s in made.sessions]
    assert len(set(uids)) == len(uids), Counter(uids).most_common(3)
    assert len({s.key for s in made.sessions}) == len(made.sessions)

    run_days = {d.iso_index for d in made.request.preferences.run_days}
    runs = sorted(
        (s for s in made.sessions if s.kind.is_running and s.status is SessionStatus.PLANNED),
        key=lambda s: s.date,
    )
    for s in runs:
        assert s.date.weekday() in run_days, s.key
    for earlier, later in zip(runs, runs[1:], strict=False):
        assert (later.date - earlier.date).days >= 2, (earlier.key, later.key)

    stopped_on = made.progress.stopped_on
    if made.status is PlanStatus.STOPPED:
        assert stopped_on is not None
        # From the day of the stop nothing that loads the leg is planned (the reported
        # session itself happened); this protocol declares its cross-training unloaded.
        for s in made.sessions:
            if s.date >= stopped_on and s.uid not in made.progress.reported:
                if s.kind is SessionKind.CROSS_TRAINING:
                    continue
                if s.kind is SessionKind.REVIEW and s.status is SessionStatus.PLANNED:
                    assert "urgent_review" in s.key, s.key
                    continue
                assert s.status is SessionStatus.CANCELLED, s.key
        assert [a.code for a in made.alerts].count("stop_and_refer") == 1
    if made.status is PlanStatus.CANCELLED:
        cancelled_on = made.progress.cancelled_on
        assert cancelled_on is not None
        for s in made.sessions:
            if s.date > cancelled_on:
                assert s.status is SessionStatus.CANCELLED, s.key

    # A started phase never follows a gated phase whose gate was not met.
    horizon = made.progress.horizon
    if horizon is not None and made.status is PlanStatus.ACTIVE:
        for earlier, later in zip(phases, phases[1:], strict=False):
            if later.start_date <= horizon and _gated(made, earlier.key):
                met = made.progress.met_on(earlier.key)
                assert met is not None, f"{later.key} began without the {earlier.key} gate"
                assert earlier.end_date == met

    # The programme never skips a level: between consecutive planned running sessions
    # (and consecutive walks) the level rises by one at most.
    walks = [s for s in made.sessions if s.kind is SessionKind.WALK]
    for series in (runs, sorted(walks, key=lambda s: s.date)):
        levels = [s.level for s in series if s.status is SessionStatus.PLANNED]
        for before, after in zip(levels, levels[1:], strict=False):
            assert before is not None and after is not None
            assert after <= before + 1, levels


def assert_revision_invariants(before: Plan, after: Plan, at: datetime) -> None:
    """What a revision keeps of the previous one."""
    assert after.revision == before.revision + 1
    assert after.updated_at == at
    assert after.id == before.id and after.request == before.request
    if after.status is PlanStatus.ACTIVE:
        assert after.alerts == before.alerts
    horizon = after.progress.horizon
    assert horizon is not None
    if before.progress.horizon is not None:
        assert horizon >= before.progress.horizon

    old = {s.uid: s for s in before.sessions}
    new = {s.uid: s for s in after.sessions}
    # History: every session on or before the horizon is exactly as it was — except
    # sessions of a phase that (in the new revision) has not begun, because the phase
    # before it still waits for its gate: those were only ever projections.
    started = {p.key for p in after.phases if p.start_date <= horizon}
    # A stop is heard from the day it is reported: that day's sessions not yet reported
    # are cancelled even when the day was already on record.
    stop_day = after.progress.stopped_on if after.status is PlanStatus.STOPPED else None
    for s in before.sessions:
        if s.date <= horizon and s.phase in started:
            kept = new.get(s.uid)
            assert kept is not None, f"history lost: {s.key} on {s.date}"
            if s.date == stop_day and s.uid not in after.progress.reported:
                assert kept == s or kept.status is SessionStatus.CANCELLED, (s, kept)
                continue
            assert kept == s, (s, kept)
    for s in after.sessions:
        if s.uid not in old:
            assert s.date > horizon, f"new session in the past: {s.key} on {s.date}"

    # Identity: a UID names one logical session; SEQUENCE rises exactly on change.
    for uid, s in new.items():
        prior = old.get(uid)
        if prior is None:
            assert s.sequence == 0 and s.modified_at == at, s.key
            continue
        assert prior.key == s.key
        unchanged = replace(prior, sequence=0, modified_at=None) == replace(
            s, sequence=0, modified_at=None
        )
        if unchanged:
            assert (s.sequence, s.modified_at) == (prior.sequence, prior.modified_at), s.key
        else:
            assert (s.sequence, s.modified_at) == (prior.sequence + 1, at), s.key
    old_phases = {p.key: p for p in before.phases}
    for p in after.phases:
        prior_phase = old_phases[p.key]
        unchanged = replace(prior_phase, sequence=0, modified_at=None) == replace(
            p, sequence=0, modified_at=None
        )
        if unchanged:
            assert p.sequence == prior_phase.sequence, p.key
        else:
            assert (p.sequence, p.modified_at) == (prior_phase.sequence + 1, at), p.key


# ------------------------------------------------------------------ the state machine


class Replanning(RuleBasedStateMachine):
    """Random check-ins, gates and the passage of time on a random conservative plan."""

    def __init__(self) -> None:
        super().__init__()
        self.plan: Plan
        self.protocol: Protocol
        self.context: dict[str, object]
        self.today: date
        self.step = 0
        self.events: list[RecordedEvent] = []
        self.regressed: list[date] = []

    @initialize(
        request=conservative_requests(),
        weeks=st.sampled_from([0, 3, 6, 8, 10, 11, 12, 13, 14, 15, 17, 20]),
        days=st.integers(0, 6),
        on_time=st.sampled_from([True, True, True, False]),
    )
    def start(self, request: PlanRequest, weeks: int, days: int, on_time: bool) -> None:
        """A plan looked at some time after its start; usually every review due by then
        was held on its day and its gate met, so that any phase may be current."""
        self.plan = plan(request)
        self.protocol = _protocol(self.plan)
        self.context = planning_context(request.injury, self.plan.selection)
        self.today = self.plan.start_date + timedelta(weeks=weeks, days=days)
        for phase in self.plan.phases if on_time else ():
            if _gated(self.plan, phase.key) and phase.end_date <= self.today:
                self._record(Gate(phase.key, True, phase.end_date), today=phase.end_date)

    # -------------------------------------------------------------- helpers

    def _record(self, event: CheckIn | Gate | Cancel, today: date | None = None) -> Outcome | None:
        today = today or self.today
        self.step += 1
        at = _at(today, self.step)
        before = self.plan
        try:
            after, decision = revise(
                before, self.protocol, event, context=self.context, today=today, at=at
            )
        except REFUSED as refusal:
            statistic(f"refused: {type(refusal).__name__}")
            return None
        statistic(f"accepted: {type(event).__name__}")
        ends_a_stop = before.status is PlanStatus.STOPPED and isinstance(event, Cancel)
        if before.status is not PlanStatus.ACTIVE and not ends_a_stop:
            raise AssertionError("an inactive plan accepted an event other than ending a stop")
        if ends_a_stop:
            assert after.status is PlanStatus.CANCELLED
        assert_revision_invariants(before, after, at)
        self.plan = after
        self.events.append(RecordedEvent(event, today, at))
        return decision.outcome

    def _past(self) -> list[Session]:
        return [
            s
            for s in self.plan.sessions
            if s.date <= self.today and s.status is SessionStatus.PLANNED
        ]

    def _phase_today(self) -> str:
        return next((p.key for p in self.plan.phases if p.contains(self.today)), "after")

    # -------------------------------------------------------------- rules

    @rule(days=st.integers(0, 6))
    def time_passes(self, days: int) -> None:
        self.today += timedelta(days=days)

    @precondition(lambda self: self.plan.status is PlanStatus.ACTIVE)
    @rule(
        data=st.data(),
        report=st.one_of(mild_check_ins(), check_ins(flags=st.just(()))),
        recent=st.booleans(),
    )
    def check_in(self, data: st.DataObject, report: CheckIn, recent: bool) -> None:
        past = self._past()
        if recent:
            past = [s for s in past if s.date >= self.today - timedelta(days=3)] or past
        if not past:
            return
        session = data.draw(st.sampled_from(past), label="session")
        by_date = data.draw(st.booleans(), label="by date")
        event = (
            replace(report, on=session.date)
            if by_date
            else replace(report, session_uid=session.uid)
        )
        outcome = self._record(event)
        if outcome is Outcome.REGRESS and session.kind.is_running:
            self.regressed.append(session.date)

    @rule(
        phase=st.sampled_from([*CONSERVATIVE_PHASES, "nowhere"]),
        met=st.booleans(),
        back=st.integers(-1, 8),
        extend=st.integers(1, 21),
    )
    def gate(self, phase: str, met: bool, back: int, extend: int) -> None:
        event = Gate(phase, met, self.today - timedelta(days=back), extend_days=extend)
        self._record(event)

    @rule()
    def gate_the_current_review(self) -> None:
        """Meet the gate of the first gated phase whose review is due — how plans move on."""
        for phase in self.plan.phases:
            if self.plan.progress.met_on(phase.key) is None and _gated(self.plan, phase.key):
                if phase.end_date <= self.today:
                    self._record(Gate(phase.key, True, self.today))
                return

    @rule(reports=st.lists(mild_check_ins(), min_size=1, max_size=3))
    def keep_up(self, reports: list[CheckIn]) -> None:
        """The runner reports every walk and run since the last event, in order."""
        horizon = self.plan.progress.horizon or self.plan.start_date - timedelta(days=1)
        due = [
            s
            for s in self._past()
            if s.date > horizon and (s.kind.is_running or s.kind is SessionKind.WALK)
        ]
        for n, session in enumerate(due[-6:]):
            if self.plan.status is not PlanStatus.ACTIVE:
                return
            report = replace(reports[n % len(reports)], session_uid=session.uid)
            if self._record(report) is Outcome.REGRESS and session.kind.is_running:
                self.regressed.append(session.date)

    @precondition(lambda self: len(self.events) >= 5)
    @rule(data=st.data(), flag=st.sampled_from(list(RedFlag)))
    def red_flag(self, data: st.DataObject, flag: RedFlag) -> None:
        """Now and then, once the plan is under way, a red flag on a recent session."""
        past = self._past()[-6:]
        if past and data.draw(st.integers(0, 3), label="now and then") == 3:
            session = data.draw(st.sampled_from(past), label="session")
            self._record(CheckIn(session_uid=session.uid, pain_during=2, red_flags=(flag,)))

    @precondition(lambda self: len(self.events) >= 5)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        if data.draw(st.integers(0, 7), label="rarely") == 7:
            self._record(Cancel(on=self.today, reason="stopped by the coach"))

    @rule()
    def refused_when_not_active(self) -> None:
        if self.plan.status is PlanStatus.ACTIVE:
            return
        for event in (Gate("walking", True, self.today), CheckIn(on=self.plan.start_date)):
            try:
                revise(
                    self.plan,
                    self.protocol,
                    event,
                    context=self.context,
                    today=self.today,
                    at=_at(self.today, 0),
                )
            except PlanNotActive:
                continue
            raise AssertionError("an inactive plan accepted an event")

    # -------------------------------------------------------------- invariants

    @invariant()
    def plan_holds_together(self) -> None:
        assert_plan_invariants(self.plan)

    @invariant()
    def no_running_the_day_after_a_regression(self) -> None:
        for day in self.regressed:
            after = day + timedelta(days=1)
            assert not any(
                s.kind.is_running and s.status is SessionStatus.PLANNED and s.date == after
                for s in self.plan.sessions
            ), day

    def teardown(self) -> None:
        statistic(f"ends in {self._phase_today()}, {self.plan.status.value}")
        if not self.events:
            return
        again, _ = replay(
            self.plan.request,
            self.protocol,
            self.events,
            plan_id=self.plan.id,
            created_at=self.plan.created_at,
        )
        assert again == self.plan


Replanning.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestReplanning = Replanning.TestCase


# ------------------------------------------------------------------ single-event properties


SETTINGS = settings(max_examples=60, deadline=None)


@SETTINGS
@given(check_ins())
def test_decide_follows_the_a5_rules(report: CheckIn) -> None:
    outcome, reason = decide(report)
    worst = max(report.pain_during, report.pain_after, report.pain_next_morning)
    if report.red_flags:
        expected = Outcome.STOP_AND_REFER
    elif worst >= 3 or report.pain_building or report.gait_changed:
        expected = Outcome.REGRESS
    elif worst > 0 or report.morning_stiffness or not report.completed:
        expected = Outcome.REPEAT
    else:
        expected = Outcome.COUNT
    assert outcome is expected
    assert reason


@SETTINGS
@given(conservative_requests(), st.integers(7, 160), check_ins())
def test_revise_is_pure(request: PlanRequest, offset: int, report: CheckIn) -> None:
    made = plan(request)
    today = made.start_date + timedelta(days=offset)
    past = [s for s in made.sessions if s.date <= today]
    event = replace(report, session_uid=past[-1].uid)
    context = planning_context(request.injury, made.selection)
    at = _at(today, 1)
    try:
        first = revise(made, _protocol(made), event, context=context, today=today, at=at)
    except EventConflict:  # e.g. a session whose phase waits for a gate: refused, purely
        with pytest.raises(EventConflict):
            revise(made, _protocol(made), event, context=context, today=today, at=at)
        return
    again = revise(made, _protocol(made), event, context=context, today=today, at=at)
    assert first == again
    assert_plan_invariants(first[0])
    assert_revision_invariants(made, first[0], at)
