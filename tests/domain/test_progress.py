"""Check-ins, gates and re-planning (domain.md A3 exit criteria, A5 pain rules).

The default plan (fracture line, runs on MO/WE/FR, start Monday 2027-01-04):
non_weight_bearing 01-04…02-14 (review 02-14), protected_weight_bearing 02-15…02-28,
walking 03-01…03-21 (review 03-21), graded_running 03-22…04-23 (15 runs, 3 a level),
return_to_training 04-24…06-18.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from planner.domain import Plan, SessionKind
from planner.domain.model import (
    Outcome,
    PlanStatus,
    RedFlag,
    Session,
    SessionStatus,
    Severity,
)
from planner.domain.planning import RecordedEvent, planning_context, replay
from planner.domain.progress import (
    MISSED_DAYS_PER_LEVEL,
    Cancel,
    CheckIn,
    Decision,
    Event,
    EventConflict,
    Gate,
    InvalidEvent,
    PlanNotActive,
    decide,
    revise,
)
from tests.builders import (
    CREATED_AT,
    PLAN_ID,
    injury,
    plan,
    plan_request,
    preferences,
    sessions,
    shipped_catalog,
)

NWB_REVIEW = date(2027, 2, 14)
WALKING_REVIEW = date(2027, 3, 21)
FIRST_RUN = date(2027, 3, 22)


def at(day: date, minute: int = 0) -> datetime:
    """When an event recorded on ``day`` reached the service (aware, UTC)."""
    return datetime.combine(day, time(18, minute), UTC)


def record(
    made: Plan, event: Event, today: date, *, when: datetime | None = None
) -> tuple[Plan, Decision]:
    """``revise`` with the plan's own protocol and context."""
    return revise(
        made,
        shipped_catalog().get(made.protocol.id),
        event,
        context=planning_context(made.request.injury, made.selection),
        today=today,
        at=when or at(today),
    )


def runs(made: Plan) -> list[Session]:
    """Planned running sessions in date order."""
    return [s for s in made.sessions if s.kind.is_running and s.status is SessionStatus.PLANNED]


def programme(made: Plan) -> list[Session]:
    """The graded-running walk/run programme, in date order."""
    return [s for s in runs(made) if s.phase == "graded_running"]


def running_plan(**request: Any) -> Plan:
    """The default plan with both clinical gates met on their review days."""
    made = plan(**request)
    for key in ("non_weight_bearing", "walking"):
        review = made.phase(key).end_date
        made, _ = record(made, Gate(key, True, review), review)
    return made


def report(made: Plan, session: Session, today: date | None = None, **how: Any) -> Plan:
    """Check in on ``session`` (by UID) on its own day unless told otherwise."""
    revised, decision = record(made, CheckIn(session_uid=session.uid, **how), today or session.date)
    assert decision.session_uid == session.uid
    return revised


def count_sessions(made: Plan, n: int) -> Plan:
    """Report the next ``n`` programme sessions pain-free, each on its day."""
    for _ in range(n):
        horizon = made.progress.horizon
        made = report(made, next(s for s in programme(made) if s.date > horizon))
    return made


def level_state(made: Plan, template: str = "graded_running/run_walk") -> tuple[int, int]:
    state = made.progress.template(template)
    assert state is not None
    return state.level, state.counted


def assert_history_kept(before: Plan, after: Plan) -> None:
    """Every session on or before the new horizon is exactly as it was — unless its
    phase has not begun (it waited for a gate): such sessions were only projections."""
    horizon = after.progress.horizon
    assert horizon is not None
    begun = {p.key for p in after.phases if p.start_date <= horizon}
    new = {s.uid: s for s in after.sessions}
    for s in before.sessions:
        if s.date <= horizon and s.phase in begun:
            assert new.get(s.uid) == s, s.key
    old = {s.uid for s in before.sessions}
    assert all(s.date > horizon for s in after.sessions if s.uid not in old)


def assert_sequences(before: Plan, after: Plan, when: datetime) -> None:
    """SEQUENCE rises exactly for sessions and phases that changed; new sessions start
    at 0."""
    old = {s.uid: s for s in before.sessions}
    for s in after.sessions:
        prior = old.get(s.uid)
        if prior is None:
            assert (s.sequence, s.modified_at) == (0, when), s.key
        elif replace(prior, sequence=0, modified_at=None) == replace(
            s, sequence=0, modified_at=None
        ):
            assert (s.sequence, s.modified_at) == (prior.sequence, prior.modified_at), s.key
        else:
            assert prior.key == s.key
            assert (s.sequence, s.modified_at) == (prior.sequence + 1, when), s.key
    phases = {p.key: p for p in before.phases}
    for phase in after.phases:
        prior_phase = phases[phase.key]
        if (prior_phase.start_date, prior_phase.end_date) == (phase.start_date, phase.end_date):
            assert (phase.sequence, phase.modified_at) == (
                prior_phase.sequence,
                prior_phase.modified_at,
            )
        else:
            assert (phase.sequence, phase.modified_at) == (prior_phase.sequence + 1, when)


# ============================================================================ decide (A5)

DECISIONS = [
    # pain-free sessions count
    pytest.param({}, Outcome.COUNT, id="pain-free"),
    pytest.param({"notes": "felt great"}, Outcome.COUNT, id="pain-free-with-notes"),
    # pain ≤ 2 that settles, or stiffness next morning: repeat the level
    pytest.param({"pain_during": 1}, Outcome.REPEAT, id="during-1"),
    pytest.param({"pain_during": 2}, Outcome.REPEAT, id="during-2"),
    pytest.param({"pain_after": 2}, Outcome.REPEAT, id="after-2"),
    pytest.param({"pain_next_morning": 2}, Outcome.REPEAT, id="morning-2"),
    pytest.param({"pain_next_morning": 1}, Outcome.REPEAT, id="morning-1"),
    pytest.param({"morning_stiffness": True}, Outcome.REPEAT, id="stiffness"),
    pytest.param({"completed": False}, Outcome.REPEAT, id="not-completed"),
    pytest.param(
        {"pain_during": 2, "pain_after": 2, "pain_next_morning": 2, "morning_stiffness": True},
        Outcome.REPEAT,
        id="all-2-and-stiffness",
    ),
    # pain ≥ 3, building pain or changed gait: regress
    pytest.param({"pain_during": 3}, Outcome.REGRESS, id="during-3"),
    pytest.param({"pain_after": 3}, Outcome.REGRESS, id="after-3"),
    pytest.param({"pain_next_morning": 3}, Outcome.REGRESS, id="morning-3"),
    pytest.param({"pain_during": 10}, Outcome.REGRESS, id="during-10"),
    pytest.param({"pain_building": True}, Outcome.REGRESS, id="building-without-score"),
    pytest.param({"gait_changed": True}, Outcome.REGRESS, id="gait"),
    # regress wins over repeat
    pytest.param({"pain_during": 1, "pain_building": True}, Outcome.REGRESS, id="building-1"),
    pytest.param({"pain_after": 2, "gait_changed": True}, Outcome.REGRESS, id="gait-and-2"),
    pytest.param({"pain_during": 2, "pain_after": 3}, Outcome.REGRESS, id="2-then-3"),
    pytest.param(
        {"morning_stiffness": True, "pain_next_morning": 3}, Outcome.REGRESS, id="stiff-3"
    ),
    pytest.param({"completed": False, "pain_during": 4}, Outcome.REGRESS, id="stopped-in-pain"),
    # any red flag stops the plan — whatever else was reported
    *(
        pytest.param({"red_flags": (flag,)}, Outcome.STOP_AND_REFER, id=f"flag-{flag.value}")
        for flag in RedFlag
    ),
    pytest.param(
        {"red_flags": (RedFlag.NIGHT_PAIN,), "pain_during": 9, "gait_changed": True},
        Outcome.STOP_AND_REFER,
        id="flag-beats-regress",
    ),
    pytest.param(
        {"red_flags": (RedFlag.LIMP,), "pain_after": 1, "morning_stiffness": True},
        Outcome.STOP_AND_REFER,
        id="flag-beats-repeat",
    ),
    pytest.param(
        {"red_flags": (RedFlag.PAIN_AT_REST, RedFlag.CANNOT_BEAR_WEIGHT)},
        Outcome.STOP_AND_REFER,
        id="two-flags",
    ),
]


@pytest.mark.parametrize(("fields", "expected"), DECISIONS)
def test_decide_applies_the_a5_pain_rules(fields: dict[str, Any], expected: Outcome) -> None:
    outcome, reason = decide(CheckIn(**fields))
    assert outcome is expected
    assert reason


@pytest.mark.parametrize("field", ["pain_during", "pain_after", "pain_next_morning"])
def test_two_out_of_ten_repeats_and_three_regresses_for_every_pain_score(field: str) -> None:
    assert decide(CheckIn(**{field: 2}))[0] is Outcome.REPEAT
    assert decide(CheckIn(**{field: 3}))[0] is Outcome.REGRESS


def test_the_worst_score_decides() -> None:
    for during in range(11):
        for after in range(11):
            worst = max(during, after)
            expected = (
                Outcome.COUNT if worst == 0 else Outcome.REPEAT if worst <= 2 else Outcome.REGRESS
            )
            assert decide(CheckIn(pain_during=during, pain_after=after))[0] is expected


def test_reasons_say_what_to_do() -> None:
    assert "count" in decide(CheckIn())[1]
    assert "Repeat" in decide(CheckIn(pain_after=1))[1]
    assert "back one level" in decide(CheckIn(gait_changed=True))[1]
    assert "night pain" in decide(CheckIn(red_flags=(RedFlag.NIGHT_PAIN,)))[1]


# ============================================================================ counting levels


def test_three_pain_free_sessions_advance_one_level() -> None:
    made = running_plan()
    first = programme(made)
    assert [s.level for s in first[:4]] == [1, 1, 1, 2]

    after_two = count_sessions(made, 2)
    assert level_state(after_two) == (0, 2)
    after_three = count_sessions(after_two, 1)
    assert level_state(after_three) == (1, 0)
    # Everything went as projected: no session moved or changed.
    assert [(s.uid, s.date, s.level) for s in programme(after_three)] == [
        (s.uid, s.date, s.level) for s in first
    ]
    assert all(s.sequence == 0 for s in after_three.sessions)


def test_sessions_per_level_comes_from_the_protocol() -> None:
    protocol = shipped_catalog().get(running_plan().protocol.id)
    graded = next(p for p in protocol.phases if p.key == "graded_running")
    template = next(t for t in graded.sessions if t.key == "run_walk")
    assert template.sessions_per_level == 3
    made = count_sessions(running_plan(), 3 * 2)
    assert level_state(made) == (2, 0)


def test_a_repeat_does_not_count_and_adds_a_session_at_the_same_level() -> None:
    made = running_plan()
    before = programme(made)
    first = before[0]
    repeated = report(made, first, pain_after=2)

    assert level_state(repeated) == (0, 0)
    after = programme(repeated)
    assert [s.level for s in after[:5]] == [1, 1, 1, 1, 2]
    assert len(after) == len(before) + 1
    # Same UIDs, moved where needed; the new last session has a new UID.
    assert [s.uid for s in after[: len(before)]] == [s.uid for s in before]
    assert after[-1].uid not in {s.uid for s in made.sessions}
    assert repeated.phase("graded_running").end_date > made.phase("graded_running").end_date


@pytest.mark.parametrize(
    "how",
    [{"morning_stiffness": True}, {"pain_next_morning": 1}, {"completed": False}],
    ids=["stiffness", "morning-pain", "not-completed"],
)
def test_other_repeats_do_not_count_either(how: dict[str, Any]) -> None:
    made = count_sessions(running_plan(), 2)
    session = programme(made)[2]
    assert level_state(report(made, session, **how)) == (0, 2)


def test_a_regress_goes_back_one_level_after_a_rest_day() -> None:
    made = count_sessions(running_plan(), 4)  # level 2, one session counted
    assert level_state(made) == (1, 1)
    session = programme(made)[4]
    assert session.level == 2

    regressed = report(made, session, pain_during=3)
    assert level_state(regressed) == (0, 0)
    assert regressed.progress.rest_until == session.date + timedelta(days=1)
    after = [s for s in programme(regressed) if s.date > session.date]
    assert after[0].level == 1
    assert after[0].date >= session.date + timedelta(days=2)
    assert [s.level for s in after[:4]] == [1, 1, 1, 2]


def test_no_running_the_day_after_a_regress_even_with_running_every_day() -> None:
    every_day = preferences(run_days=("MO", "TU", "WE", "TH", "FR", "SA", "SU"))
    made = running_plan(prefs=every_day)
    first = programme(made)[0]
    regressed = report(made, first, gait_changed=True)
    day_after = first.date + timedelta(days=1)
    assert not any(s.date == day_after for s in runs(regressed))
    assert min(s.date for s in runs(regressed) if s.date > first.date) == first.date + timedelta(
        days=2
    )


def test_a_regress_at_the_first_level_stays_at_the_first_level() -> None:
    made = running_plan()
    regressed = report(made, programme(made)[0], pain_building=True)
    assert level_state(regressed) == (0, 0)
    assert [s.level for s in programme(regressed)[:4]] == [1, 1, 1, 1]


def test_a_regress_on_a_walk_steps_the_walking_programme_back() -> None:
    made = plan()
    made, _ = record(made, Gate("non_weight_bearing", True, NWB_REVIEW), NWB_REVIEW)
    walks = sessions(made, phase="walking", kind=SessionKind.WALK)
    assert [w.level for w in walks[:7]] == [1, 1, 1, 2, 2, 2, 3]
    for walk in walks[:4]:
        made = report(made, walk)
    assert level_state(made, "walking/walk") == (1, 1)
    made = report(made, walks[4], pain_after=5)
    assert level_state(made, "walking/walk") == (0, 0)
    assert sessions(made, phase="walking", kind=SessionKind.WALK)[5].level == 1


def test_check_in_by_date_picks_the_running_session_of_the_day() -> None:
    made = running_plan()
    first = programme(made)[0]
    revised, decision = record(made, CheckIn(on=first.date), first.date)
    assert decision == Decision(Outcome.COUNT, decision.reason, first.uid)
    assert level_state(revised) == (0, 1)


def test_check_in_by_date_picks_the_walk_over_strength() -> None:
    made = plan()
    made, _ = record(made, Gate("non_weight_bearing", True, NWB_REVIEW), NWB_REVIEW)
    day = date(2027, 3, 1)  # a Monday: walk and strength
    assert {s.kind for s in made.sessions if s.date == day} == {
        SessionKind.WALK,
        SessionKind.STRENGTH,
    }
    _, decision = record(made, CheckIn(on=day), day)
    assert made.session(decision.session_uid or "").kind is SessionKind.WALK


# ============================================================================ refused check-ins


def test_check_ins_that_do_not_fit_the_plan_are_invalid() -> None:
    made = running_plan()
    first, second = programme(made)[:2]
    for event in (
        CheckIn(session_uid="nope@stride-back"),  # unknown session
        CheckIn(),  # which session?
        CheckIn(session_uid=second.uid),  # in the future
        CheckIn(on=second.date),  # in the future, by date
    ):
        with pytest.raises(InvalidEvent) as refused:
            record(made, event, first.date)
        assert refused.value.errors


def test_a_date_without_sessions_is_invalid() -> None:
    made = running_plan()
    busy = {s.date for s in made.sessions}
    free = next(
        FIRST_RUN - timedelta(days=n)
        for n in range(1, 60)
        if FIRST_RUN - timedelta(days=n) not in busy
    )
    with pytest.raises(InvalidEvent):
        record(made, CheckIn(on=free), FIRST_RUN)


def test_an_event_cannot_move_the_horizon_back() -> None:
    made = count_sessions(running_plan(), 2)
    horizon = made.progress.horizon
    assert horizon is not None
    earlier = next(
        s for s in made.sessions if s.date < horizon and s.uid not in made.progress.reported
    )
    late, _ = record(made, CheckIn(session_uid=earlier.uid), horizon - timedelta(days=5))
    assert late.progress.horizon == horizon
    assert_history_kept(made, late)


# ============================================================================ red flags


@pytest.mark.parametrize("flag", list(RedFlag), ids=lambda f: f.value)
def test_a_red_flag_stops_the_plan_and_refers(flag: RedFlag) -> None:
    made = count_sessions(running_plan(), 2)
    session = programme(made)[2]
    today = session.date
    when = at(today, 5)
    stopped, decision = record(
        made, CheckIn(session_uid=session.uid, red_flags=(flag,)), today, when=when
    )

    assert decision.outcome is Outcome.STOP_AND_REFER
    assert decision.session_uid == session.uid
    assert stopped.status is PlanStatus.STOPPED
    assert stopped.progress.stopped_on == today
    assert stopped.revision == made.revision + 1
    assert stopped.updated_at == when

    codes = [a.code for a in stopped.alerts]
    assert codes.count("stop_and_refer") == 1
    stop_alert = next(a for a in stopped.alerts if a.code == "stop_and_refer")
    assert stop_alert.severity is Severity.URGENT
    assert ("emergency_care" in codes) == (flag is RedFlag.CANNOT_BEAR_WEIGHT)
    if flag is RedFlag.CANNOT_BEAR_WEIGHT:
        assert next(a for a in stopped.alerts if a.code == "emergency_care").severity is (
            Severity.URGENT
        )
    assert set(codes) >= {a.code for a in made.alerts}

    # From the stop on, nothing loads the leg: walks, runs, leg strength and the reviews
    # of the programme are cancelled (this plan has no unloaded session after today).
    old = {s.uid: s for s in made.sessions}
    for s in stopped.sessions:
        prior = old.get(s.uid)
        if prior is None:
            continue
        if s.date >= today and s.uid != session.uid:
            assert s.status is SessionStatus.CANCELLED, s.key
            assert s.sequence == prior.sequence + 1 and s.modified_at == when
        else:
            assert s == prior, s.key
    assert not any(s.date > today for s in runs(stopped))
    assert stopped.expected_return_to_run_date is None or (
        stopped.expected_return_to_run_date <= today
    )

    (review,) = [s for s in stopped.sessions if s.uid not in old]
    assert review.kind is SessionKind.REVIEW
    emergency = flag is RedFlag.CANNOT_BEAR_WEIGHT
    assert review.date == (today if emergency else today + timedelta(days=1))
    assert ("emergency department" in review.title.lower()) == emergency
    assert review.status is SessionStatus.PLANNED
    assert review.sequence == 0 and review.modified_at == when
    assert stopped.phase(review.phase).contains(review.date)
    # No phase after the review still reads as planned.
    for p in stopped.phases:
        if p.start_date > review.date:
            assert p.status is SessionStatus.CANCELLED, p.key


def test_a_red_flag_on_the_last_day_keeps_the_review_inside_a_phase() -> None:
    made = plan()
    last = made.phases[-1].end_date
    final = [s for s in made.sessions if s.date == last]
    stopped, _ = record(
        made, CheckIn(session_uid=final[0].uid, red_flags=(RedFlag.PAIN_WORSENING,)), last
    )
    review = stopped.sessions[-1]
    assert review.date == last + timedelta(days=1)
    assert stopped.phases[-1].end_date == review.date
    assert stopped.phase(review.phase).contains(review.date)


def test_a_red_flag_beats_any_pain_score() -> None:
    made = running_plan()
    stopped, decision = record(
        made,
        CheckIn(
            session_uid=programme(made)[0].uid,
            pain_during=8,
            gait_changed=True,
            red_flags=(RedFlag.LIMP,),
        ),
        FIRST_RUN,
    )
    assert decision.outcome is Outcome.STOP_AND_REFER
    assert stopped.status is PlanStatus.STOPPED


# ============================================================================ inactive plans


def _stopped() -> Plan:
    made = running_plan()
    return record(
        made,
        CheckIn(session_uid=programme(made)[0].uid, red_flags=(RedFlag.NIGHT_PAIN,)),
        FIRST_RUN,
    )[0]


def _cancelled() -> Plan:
    return record(running_plan(), Cancel(on=FIRST_RUN, reason="moved abroad"), FIRST_RUN)[0]


@pytest.mark.parametrize("make", [_stopped, _cancelled], ids=["stopped", "cancelled"])
def test_stopped_and_cancelled_plans_refuse_every_report_and_gate(make: Any) -> None:
    inactive = make()
    later = FIRST_RUN + timedelta(days=3)
    for event in (
        CheckIn(on=FIRST_RUN),
        CheckIn(session_uid=inactive.sessions[0].uid),
        Gate("graded_running", True, later),
    ):
        with pytest.raises(PlanNotActive):
            record(inactive, event, later)


def test_a_cancelled_plan_cannot_be_cancelled_again() -> None:
    with pytest.raises(PlanNotActive):
        record(_cancelled(), Cancel(on=FIRST_RUN + timedelta(days=3)), FIRST_RUN)


def test_a_clinician_can_end_a_stopped_plan() -> None:
    """A stop is not a dead end: cancelling ends the plan, and nothing after the day of
    the cancellation stays planned, the booked review and cross-training included."""
    stopped = _stopped()
    later = FIRST_RUN + timedelta(days=3)

    ended, decision = record(stopped, Cancel(on=later, reason="referred on"), later)

    assert ended.status is PlanStatus.CANCELLED and decision.reason == "referred on"
    assert not [s for s in ended.sessions if s.date > later and s.status is SessionStatus.PLANNED]
    assert all(p.status is SessionStatus.CANCELLED for p in ended.phases if p.end_date > later)
    kept = {s.uid: s for s in stopped.sessions if s.date <= later}
    assert all(s == kept[s.uid] for s in ended.sessions if s.uid in kept)  # the past stays


def test_cancel_cancels_every_future_session_and_keeps_the_past() -> None:
    made = count_sessions(running_plan(), 1)
    today = FIRST_RUN + timedelta(days=1)
    when = at(today, 7)
    cancelled, decision = record(made, Cancel(on=today, reason="moved abroad"), today, when=when)

    assert decision.outcome is None and decision.reason == "moved abroad"
    assert cancelled.status is PlanStatus.CANCELLED
    assert cancelled.progress.cancelled_on == today
    # Every phase not over by today is cancelled, with a higher SEQUENCE; dates stay.
    for before, after in zip(made.phases, cancelled.phases, strict=True):
        assert (after.start_date, after.end_date) == (before.start_date, before.end_date)
        if before.end_date > today:
            assert after.status is SessionStatus.CANCELLED, after.key
            assert (after.sequence, after.modified_at) == (before.sequence + 1, when)
        else:
            assert after == before
    old = {s.uid: s for s in made.sessions}
    assert [s.uid for s in cancelled.sessions] == [s.uid for s in made.sessions]
    for s in cancelled.sessions:
        if s.date > today:
            assert s.status is SessionStatus.CANCELLED, s.key
            assert (s.sequence, s.modified_at) == (old[s.uid].sequence + 1, when)
        else:
            assert s == old[s.uid]
    assert cancelled.expected_return_to_run_date == FIRST_RUN


# ============================================================================ gates


def test_a_gate_met_on_the_review_day_changes_no_date() -> None:
    made = plan()
    revised, decision = record(made, Gate("non_weight_bearing", True, NWB_REVIEW), NWB_REVIEW)
    assert decision.outcome is None and "2027-02-15" in decision.reason
    assert [(p.start_date, p.end_date) for p in revised.phases] == [
        (p.start_date, p.end_date) for p in made.phases
    ]
    assert revised.sessions == made.sessions
    assert revised.progress.met_on("non_weight_bearing") == NWB_REVIEW


@pytest.mark.parametrize("days", [-10, -1, 1, 4], ids=["10-early", "1-early", "1-late", "4-late"])
def test_a_gate_met_starts_the_next_phase_the_next_day(days: int) -> None:
    made = plan()
    on = NWB_REVIEW + timedelta(days=days)
    revised, _ = record(made, Gate("non_weight_bearing", True, on), on)

    assert revised.phase("non_weight_bearing").end_date == on
    assert revised.phase("protected_weight_bearing").start_date == on + timedelta(days=1)
    for before, after in zip(made.phases[1:], revised.phases[1:], strict=True):
        if before.key != "graded_running":  # its length depends on the run days
            assert after.days == before.days
    assert revised.phase("walking").start_date == date(2027, 3, 1) + timedelta(days=days)
    assert_history_kept(made, revised)
    assert_sequences(made, revised, at(on))
    # Every later session keeps its UID and moves with its phase.
    old = {s.key: s for s in made.sessions if s.phase != "non_weight_bearing"}
    moved = [s for s in revised.sessions if s.key in old and s.date != old[s.key].date]
    assert moved
    assert all(s.uid == old[s.key].uid and s.sequence == 1 for s in moved)
    assert revised.expected_return_to_run_date is not None
    assert revised.phase("graded_running").contains(revised.expected_return_to_run_date)


def test_a_gate_met_late_never_lets_the_next_phase_start_in_the_past() -> None:
    made = plan()
    late = NWB_REVIEW + timedelta(days=3)
    revised, _ = record(made, Gate("non_weight_bearing", True, late), late)
    phase = revised.phase("protected_weight_bearing")
    assert phase.start_date == late + timedelta(days=1)
    assert all(phase.contains(s.date) for s in revised.sessions if s.phase == phase.key)


@pytest.mark.parametrize("extend", [7, 1, 14], ids=["default", "one-day", "two-weeks"])
def test_a_gate_not_met_extends_the_phase_with_a_new_review(extend: int) -> None:
    made = plan()
    gate = Gate("non_weight_bearing", False, NWB_REVIEW, extend_days=extend)
    if extend == 7:
        gate = Gate("non_weight_bearing", False, NWB_REVIEW)
    revised, decision = record(made, gate, NWB_REVIEW)

    assert decision.outcome is None and f"{extend} days" in decision.reason
    new_end = NWB_REVIEW + timedelta(days=extend)
    assert revised.phase("non_weight_bearing").end_date == new_end
    assert revised.phase("protected_weight_bearing").start_date == new_end + timedelta(days=1)
    reviews = sessions(revised, phase="non_weight_bearing", kind=SessionKind.REVIEW)
    old_review = sessions(made, phase="non_weight_bearing", kind=SessionKind.REVIEW)[0]
    assert [r.date for r in reviews] == [NWB_REVIEW, new_end]
    assert reviews[0] == old_review  # held, so history
    assert reviews[1].uid != old_review.uid
    assert reviews[1].uid not in {s.uid for s in made.sessions}
    assert reviews[1].sequence == 0
    for key in ("protected_weight_bearing", "walking", "graded_running"):
        assert revised.phase(key).start_date == made.phase(key).start_date + timedelta(days=extend)
    assert_history_kept(made, revised)
    assert_sequences(made, revised, at(NWB_REVIEW))


def test_two_unmet_gates_extend_twice_each_with_its_own_review() -> None:
    made = plan()
    made, _ = record(made, Gate("non_weight_bearing", False, NWB_REVIEW), NWB_REVIEW)
    second = NWB_REVIEW + timedelta(days=7)
    made, _ = record(made, Gate("non_weight_bearing", False, second), second)
    assert made.phase("non_weight_bearing").end_date == second + timedelta(days=7)
    reviews = sessions(made, phase="non_weight_bearing", kind=SessionKind.REVIEW)
    assert [r.date for r in reviews] == [NWB_REVIEW, second, second + timedelta(days=7)]
    assert len({r.uid for r in reviews}) == 3
    met = second + timedelta(days=7)
    made, _ = record(made, Gate("non_weight_bearing", True, met), met)
    assert made.phase("protected_weight_bearing").start_date == met + timedelta(days=1)


def test_protection_cannot_be_extended_past_its_evidence_range() -> None:
    """Protection is 3–8 weeks [R20][R46]: 6 weeks planned, so two more weeks at most;
    past that the answer is to re-plan or refer, not a longer plan."""
    made = plan()
    assert made.phase("non_weight_bearing").days == 42
    made, _ = record(
        made, Gate("non_weight_bearing", False, NWB_REVIEW, extend_days=14), NWB_REVIEW
    )
    assert made.phase("non_weight_bearing").days == 56
    again = NWB_REVIEW + timedelta(days=14)

    with pytest.raises(InvalidEvent, match="re-plan") as refused:
        record(made, Gate("non_weight_bearing", False, again, extend_days=1), again)

    assert "extend_days" in refused.value.errors
    met, _ = record(made, Gate("non_weight_bearing", True, again), again)  # meeting it is fine
    assert met.phase("protected_weight_bearing").start_date == again + timedelta(days=1)


def test_a_phase_without_a_range_takes_at_most_twelve_weeks_of_extensions() -> None:
    made = plan()
    made, _ = record(made, Gate("non_weight_bearing", True, NWB_REVIEW), NWB_REVIEW)
    review = made.phase("walking").end_date
    for _ in range(3):  # 3 × 28 = 84 days: the limit, reached but not passed
        made, _ = record(made, Gate("walking", False, review, extend_days=28), review)
        review = made.phase("walking").end_date

    with pytest.raises(InvalidEvent, match="84 days allowed"):
        record(made, Gate("walking", False, review, extend_days=1), review)


def test_a_gate_not_met_on_the_walking_phase_holds_running_back() -> None:
    made = plan()
    made, _ = record(made, Gate("non_weight_bearing", True, NWB_REVIEW), NWB_REVIEW)
    held, _ = record(made, Gate("walking", False, WALKING_REVIEW, extend_days=14), WALKING_REVIEW)
    assert held.phase("graded_running").start_date == WALKING_REVIEW + timedelta(days=15)
    assert held.expected_return_to_run_date is not None
    assert held.expected_return_to_run_date > WALKING_REVIEW + timedelta(days=14)
    # The walking programme keeps going at its top level meanwhile.
    extra = [
        s for s in sessions(held, phase="walking", kind=SessionKind.WALK) if s.date > WALKING_REVIEW
    ]
    assert len(extra) == 14 and {s.level for s in extra} == {6}


GATE_ERRORS = [
    pytest.param(
        "original",
        Gate("surgery", True, NWB_REVIEW),
        NWB_REVIEW,
        InvalidEvent,
        "No such phase",
        id="unknown-phase",
    ),
    pytest.param(
        "original",
        Gate("non_weight_bearing", True, NWB_REVIEW + timedelta(days=1)),
        NWB_REVIEW,
        InvalidEvent,
        "future",
        id="in-the-future",
    ),
    pytest.param(
        "gated",
        Gate("protected_weight_bearing", True, NWB_REVIEW - timedelta(days=1)),
        NWB_REVIEW + timedelta(days=3),
        EventConflict,
        "already recorded",
        id="before-recorded-history",
    ),
    pytest.param(
        "gated",
        Gate("walking", True, NWB_REVIEW + timedelta(days=3)),
        NWB_REVIEW + timedelta(days=3),
        EventConflict,
        "has not started",
        id="phase-not-started",
    ),
    pytest.param(
        "gated",
        Gate("non_weight_bearing", False, NWB_REVIEW + timedelta(days=2)),
        NWB_REVIEW + timedelta(days=2),
        EventConflict,
        "already over",
        id="phase-over",
    ),
]


@pytest.mark.parametrize(("which", "gate", "today", "error", "says"), GATE_ERRORS)
def test_gates_that_do_not_fit_are_refused(
    which: str, gate: Gate, today: date, error: type[Exception], says: str
) -> None:
    made = plan()
    if which == "gated":
        made, _ = record(made, Gate("non_weight_bearing", True, NWB_REVIEW), NWB_REVIEW)
    with pytest.raises(error) as refused:
        record(made, gate, today)
    assert says in str(refused.value)


def test_a_phase_whose_successor_has_begun_is_over() -> None:
    made = running_plan()
    today = FIRST_RUN + timedelta(days=2)
    made = report(made, programme(made)[0], today)
    with pytest.raises(EventConflict):
        record(made, Gate("protected_weight_bearing", True, today), today)


def test_no_gate_for_a_phase_behind_a_gate_still_pending() -> None:
    """The review ending protection passed without a gate: the next phases have not
    begun, whatever the first projection said, so none of them can be gated."""
    made = plan()
    for key, on in (("protected_weight_bearing", date(2027, 2, 16)), ("walking", date(2027, 3, 5))):
        assert made.phase(key).start_date <= on
        with pytest.raises(EventConflict) as refused:
            record(made, Gate(key, True, on), on)
        assert "non_weight_bearing" in refused.value.detail


# ============================================================================ waiting for a gate


def test_a_review_passed_without_a_gate_holds_the_next_phase_back() -> None:
    made = plan()
    today = NWB_REVIEW + timedelta(days=3)
    # A check-in on the last cross-training of protection, reported three days late.
    session = [s for s in sessions(made, phase="non_weight_bearing") if s.date < NWB_REVIEW][-1]
    revised = report(made, session, today)

    nwb = revised.phase("non_weight_bearing")
    assert nwb.end_date == today + timedelta(days=1)
    assert revised.phase("protected_weight_bearing").start_date == today + timedelta(days=2)
    reviews = sessions(revised, phase="non_weight_bearing", kind=SessionKind.REVIEW)
    assert reviews[0].date == NWB_REVIEW
    assert reviews[-1].date == nwb.end_date and reviews[-1].uid != reviews[0].uid
    # Projected sessions of the phase that never began are laid out again, same UIDs.
    old = {s.key: s for s in made.sessions if s.phase == "protected_weight_bearing"}
    for s in sessions(revised, phase="protected_weight_bearing"):
        assert s.date > today
        if s.key in old:
            assert s.uid == old[s.key].uid
    # Sessions of the phase that had begun are history.
    for s in made.sessions:
        if s.phase == "non_weight_bearing" and s.date <= today:
            assert revised.session(s.uid) == s

    # The gate met later starts the next phase the day after it.
    met_on = today + timedelta(days=1)
    gated, _ = record(revised, Gate("non_weight_bearing", True, met_on), met_on)
    assert gated.phase("protected_weight_bearing").start_date == met_on + timedelta(days=1)


def test_running_never_starts_before_the_walking_gate() -> None:
    made = plan()
    made, _ = record(made, Gate("non_weight_bearing", True, NWB_REVIEW), NWB_REVIEW)
    walk = sessions(made, phase="walking", kind=SessionKind.WALK)[-1]
    today = WALKING_REVIEW + timedelta(days=4)
    revised = report(made, walk, today)
    assert revised.phase("walking").end_date == today + timedelta(days=1)
    assert revised.expected_return_to_run_date is not None
    assert revised.expected_return_to_run_date > today + timedelta(days=1)
    assert all(s.date > today for s in runs(revised))


# ============================================================================ identity


def test_sessions_keep_their_uid_and_bump_sequence_only_when_they_change() -> None:
    made = count_sessions(running_plan(), 2)
    session = programme(made)[2]
    when = at(session.date, 9)
    repeated, _ = record(
        made, CheckIn(session_uid=session.uid, pain_after=1), session.date, when=when
    )
    assert_history_kept(made, repeated)
    assert_sequences(made, repeated, when)
    changed = [s for s in repeated.sessions if s.sequence]
    assert changed and all(s.modified_at == when for s in changed)
    # Strength sessions of the programme phase and all reviews were not touched.
    assert all(s.sequence == 0 for s in sessions(repeated, phase="non_weight_bearing"))

    # A second revision bumps again only what changes again.
    again_at = at(session.date + timedelta(days=2), 1)
    later = programme(repeated)[3]
    twice, _ = record(
        repeated, CheckIn(session_uid=later.uid, pain_during=2), later.date, when=again_at
    )
    assert_sequences(repeated, twice, again_at)
    assert max(s.sequence for s in twice.sessions) == 2


def test_phases_carry_sequence_like_sessions() -> None:
    made = plan()
    early = NWB_REVIEW - timedelta(days=3)
    when = at(early, 3)
    revised, _ = record(made, Gate("non_weight_bearing", True, early), early, when=when)
    for before, after in zip(made.phases, revised.phases, strict=True):
        assert (after.sequence, after.modified_at) == (1, when)
        assert before.sequence == 0
    same = report(revised, sessions(revised)[3], early)
    assert [p.sequence for p in same.phases] == [p.sequence for p in revised.phases]
    assert [p.modified_at for p in same.phases] == [p.modified_at for p in revised.phases]


# ============================================================================ missed running


def test_five_days_without_running_drops_one_level() -> None:
    made = count_sessions(running_plan(), 4)  # level 2, one counted
    assert level_state(made) == (1, 1)
    last = made.progress.last_running
    assert last is not None
    today = last + timedelta(days=MISSED_DAYS_PER_LEVEL + 1)
    missed = [s for s in programme(made) if last < s.date < today]
    assert missed, "running sessions were scheduled in the gap"
    revised = report(made, missed[-1], today, pain_after=1)  # a repeat: no count
    assert level_state(revised) == (0, 0)
    assert revised.progress.last_running == today
    assert next(s for s in programme(revised) if s.date > today).level == 1


def test_each_five_days_without_running_drops_another_level() -> None:
    made = count_sessions(running_plan(), 7)  # level 3, one counted
    assert level_state(made) == (2, 1)
    last = made.progress.last_running
    assert last is not None
    today = last + timedelta(days=2 * MISSED_DAYS_PER_LEVEL)
    other = next(
        s
        for s in made.sessions
        if s.date <= today and s.kind is SessionKind.STRENGTH and s.date > last
    )
    revised = report(made, other, today)
    assert level_state(revised) == (0, 0)


def test_fewer_than_five_days_without_running_keeps_the_level() -> None:
    made = count_sessions(running_plan(), 4)
    last = made.progress.last_running
    assert last is not None
    today = last + timedelta(days=MISSED_DAYS_PER_LEVEL - 1)
    other = next(s for s in made.sessions if last < s.date <= today)
    revised = report(made, other, today)
    assert level_state(revised) == (1, 1)


def test_no_drop_before_running_has_started() -> None:
    made = plan()
    made, _ = record(made, Gate("non_weight_bearing", True, NWB_REVIEW), NWB_REVIEW)
    walk = sessions(made, phase="walking", kind=SessionKind.WALK)[10]
    revised = report(made, walk)
    assert revised.progress.template("graded_running/run_walk") is None


# ============================================================================ determinism


def _story() -> tuple[Plan, list[RecordedEvent]]:
    """A plan through its gates and a few weeks of check-ins, incrementally."""
    made = plan(prefs=preferences(session_time="07:00", timezone="Europe/Berlin"))
    events: list[RecordedEvent] = []

    def add(event: Event, today: date) -> None:
        nonlocal made
        when = at(today, len(events))
        made, _ = record(made, event, today, when=when)
        events.append(RecordedEvent(event, today, when))

    add(Gate("non_weight_bearing", False, NWB_REVIEW), NWB_REVIEW)
    second = NWB_REVIEW + timedelta(days=7)
    add(Gate("non_weight_bearing", True, second - timedelta(days=2)), second)
    review = made.phase("walking").end_date
    add(Gate("walking", True, review), review)
    pains = [0, 0, 2, 0, 3, 0, 0, 0, 1]
    for pain in pains:
        nxt = next(s for s in programme(made) if s.date > (made.progress.horizon or review))
        add(CheckIn(session_uid=nxt.uid, pain_during=pain), nxt.date)
    last = made.progress.horizon or review
    unreported = next(
        s
        for s in reversed(made.sessions)
        if s.date <= last and s.uid not in made.progress.reported and s.phase == "graded_running"
    )
    add(CheckIn(session_uid=unreported.uid), last + timedelta(days=8))
    return made, events


def test_replaying_the_events_gives_the_same_plan_as_revising_step_by_step() -> None:
    incremental, events = _story()
    request = incremental.request
    protocol = shipped_catalog().get(incremental.protocol.id)
    first, decisions = replay(request, protocol, events, plan_id=PLAN_ID, created_at=CREATED_AT)
    second, again = replay(request, protocol, events, plan_id=PLAN_ID, created_at=CREATED_AT)
    assert first == second == incremental
    assert decisions == again
    assert [d.outcome for d in decisions[3:12]] == [
        Outcome.COUNT,
        Outcome.COUNT,
        Outcome.REPEAT,
        Outcome.COUNT,
        Outcome.REGRESS,
        Outcome.COUNT,
        Outcome.COUNT,
        Outcome.COUNT,
        Outcome.REPEAT,
    ]
    assert incremental.revision == 1 + len(events)


def test_revise_is_pure() -> None:
    made = count_sessions(running_plan(), 3)
    session = programme(made)[3]
    event = CheckIn(session_uid=session.uid, pain_during=4)
    snapshot = made
    assert record(made, event, session.date) == record(made, event, session.date)
    assert made == snapshot


def test_the_plan_id_only_changes_uids() -> None:
    def story(plan_id: str) -> Plan:
        made = plan(plan_request(injury(fracture_line=True)), plan_id=plan_id)
        made, _ = record(made, Gate("non_weight_bearing", False, NWB_REVIEW), NWB_REVIEW)
        return made

    one, other = story("plan-a"), story("plan-b")
    assert [(s.key, s.date) for s in one.sessions] == [(s.key, s.date) for s in other.sessions]
    assert not {s.uid for s in one.sessions} & {s.uid for s in other.sessions}


# =================================================================== from the day of the report


def _walking_plan() -> Plan:
    made = plan()
    made, _ = record(made, Gate("non_weight_bearing", True, NWB_REVIEW), NWB_REVIEW)
    return made


def test_a_stop_reported_today_about_yesterday_cancels_todays_loading_sessions() -> None:
    made = _walking_plan()
    walks = sessions(made, phase="walking", kind=SessionKind.WALK)
    yesterday, today = walks[1].date, walks[2].date  # Tuesday, then Wednesday (a run day)
    assert any(s.kind is SessionKind.STRENGTH for s in made.sessions if s.date == today)

    stopped, decision = record(
        made, CheckIn(session_uid=walks[1].uid, red_flags=(RedFlag.PAIN_AT_REST,)), today
    )

    assert decision.outcome is Outcome.STOP_AND_REFER and yesterday < today
    for s in stopped.sessions:
        if s.date >= today and s.kind in (
            SessionKind.WALK,
            SessionKind.RUN_WALK,
            SessionKind.RUN,
            SessionKind.STRENGTH,
        ):
            assert s.status is SessionStatus.CANCELLED, s.key
    assert stopped.session(walks[1].uid) == made.session(walks[1].uid)  # it happened


def test_after_a_stop_only_unloaded_cross_training_stays_and_says_so() -> None:
    made = plan()  # protection: upper-body/pool cross-training and strength
    first = sessions(made, phase="non_weight_bearing", kind=SessionKind.CROSS_TRAINING)[0]
    today = first.date + timedelta(days=1)

    stopped, _ = record(
        made, CheckIn(session_uid=first.uid, red_flags=(RedFlag.CANNOT_BEAR_WEIGHT,)), today
    )

    kept = [
        s
        for s in stopped.sessions
        if s.date >= today
        and s.status is SessionStatus.PLANNED
        and s.kind is not SessionKind.REVIEW
    ]
    assert kept and {s.kind for s in kept} == {SessionKind.CROSS_TRAINING}
    for s in kept:
        assert "upper-body or pool" in s.title.lower() and "non-weight-bearing" in s.title
        assert "non-weight-bearing" in s.notes
    assert all(
        s.status is SessionStatus.CANCELLED
        for s in stopped.sessions
        if s.date >= today and s.kind is SessionKind.STRENGTH
    )
    (emergency,) = [s for s in stopped.sessions if s.key.endswith("urgent_review/1")]
    assert emergency.date == today and "Emergency department" in emergency.title


def test_severe_pain_thresholds_come_from_the_protocol() -> None:
    protocol = shipped_catalog().get(plan().protocol.id)
    stop = protocol.pain_stop
    assert stop is not None and stop.severe_at_least == 7
    assert set(stop.evidence) <= {r.key for r in protocol.references}
    assert decide(CheckIn(pain_during=6), stop)[0] is Outcome.REGRESS
    outcome, reason = decide(CheckIn(pain_after=7), stop)
    assert outcome is Outcome.STOP_AND_REFER
    assert "severe pain (7/10)" in reason and "emergency department" in reason
    assert decide(CheckIn(pain_next_morning=1), stop)[0] is Outcome.REPEAT
    outcome, reason = decide(CheckIn(pain_next_morning=1), stop, protection=True)
    assert outcome is Outcome.STOP_AND_REFER and "not settled" in reason


def test_severe_pain_gets_the_advice_the_pain_rules_give() -> None:
    """No two texts advise differently for the same sign: the pain rules send severe pain
    to an emergency department now, and so does the decision."""
    protocol = shipped_catalog().get(plan().protocol.id)
    rule = next(r for r in protocol.pain_rules if "severe pain" in r.lower())
    assert "emergency department now" in rule
    _, reason = decide(CheckIn(pain_during=8), protocol.pain_stop)
    assert "Go to an emergency department now." in reason and "clinician today" not in reason


def test_severe_pain_stops_the_plan_the_day_after() -> None:
    made = running_plan()
    first, second = programme(made)[:2]
    today = first.date + timedelta(days=1)
    stopped, decision = record(made, CheckIn(session_uid=first.uid, pain_during=8), today)
    assert decision.outcome is Outcome.STOP_AND_REFER
    assert stopped.status is PlanStatus.STOPPED
    assert stopped.session(second.uid).status is SessionStatus.CANCELLED
    assert any(s.title == "Urgent clinical review" for s in stopped.sessions)


def test_unsettled_pain_while_protected_stops_the_plan() -> None:
    made = plan()
    first = sessions(made, phase="non_weight_bearing")[0]
    stopped, decision = record(
        made, CheckIn(session_uid=first.uid, pain_next_morning=2), first.date + timedelta(days=1)
    )
    assert decision.outcome is Outcome.STOP_AND_REFER
    assert stopped.status is PlanStatus.STOPPED


def test_a_regress_reported_before_todays_run_lowers_it_after_a_rest_day() -> None:
    made = count_sessions(running_plan(), 4)  # level 2, one counted
    painful, today_run = programme(made)[4], programme(made)[5]
    assert painful.level == today_run.level == 2
    today = today_run.date

    regressed = report(made, painful, today, pain_after=3)

    assert regressed.progress.rest_until == today  # the rest day counts from the report
    assert not any(s.date == today for s in runs(regressed))
    moved = regressed.session(today_run.uid)
    assert moved.status is SessionStatus.PLANNED
    assert moved.date > today and moved.level == 1
    assert [s.level for s in programme(regressed) if s.date > today][:3] == [1, 1, 1]
    # The day after, nothing moves back: today's history now holds the lower plan.
    nxt = report(regressed, moved, moved.date)
    assert not any(s.date == today for s in runs(nxt))


def test_a_painful_walk_gets_a_rest_day_before_the_next_walk() -> None:
    made = _walking_plan()
    walks = sessions(made, phase="walking", kind=SessionKind.WALK)
    for walk in walks[:3]:
        made = report(made, walk)
    painful = walks[3]
    rest = painful.date + timedelta(days=1)

    regressed = report(made, painful, rest, gait_changed=True)

    assert regressed.progress.walk_rest_until == rest
    on_rest = [s for s in regressed.sessions if s.kind is SessionKind.WALK and s.date == rest]
    assert on_rest and all(s.status is SessionStatus.CANCELLED for s in on_rest)
    after = [
        s
        for s in regressed.sessions
        if s.kind is SessionKind.WALK and s.date > rest and s.status is SessionStatus.PLANNED
    ]
    assert after[0].level == 1
    # Reported on the day itself, the rest day is the next one.
    same_day = report(made, painful, painful.date, pain_during=4)
    assert same_day.progress.walk_rest_until == rest
    assert all(
        s.status is SessionStatus.CANCELLED
        for s in same_day.sessions
        if s.kind is SessionKind.WALK and s.date == rest
    )


def test_a_gate_on_a_phase_without_a_review_is_refused() -> None:
    made = _walking_plan()
    day = made.phase("protected_weight_bearing").start_date
    with pytest.raises(InvalidEvent) as refused:
        record(made, Gate("protected_weight_bearing", True, day), day)
    assert "no clinical review" in str(refused.value)


def test_a_protection_gate_met_early_warns_but_is_accepted() -> None:
    made = plan()
    early = made.start_date + timedelta(days=13)
    gated, decision = record(made, Gate("non_weight_bearing", True, early), early)
    assert gated.progress.met_on("non_weight_bearing") == early
    assert decision.warning is not None and "14 days" in decision.warning
    _, on_time = record(plan(), Gate("non_weight_bearing", True, NWB_REVIEW), NWB_REVIEW)
    assert on_time.warning is None
