"""Property tests: invariants of every plan over random valid inputs (design.md §3–4)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import assume, given, reject, settings
from hypothesis import strategies as st

from planner.domain import (
    Injury,
    InvalidInjury,
    Pathway,
    PlanRequest,
    RiskFactor,
    SessionKind,
    Weekday,
    classify,
)
from planner.domain.model import NO_RUNNING_PHASES, NO_WALKING_PHASES, Preferences
from tests.builders import plan

TIME_ZONES = [
    "UTC",
    "America/New_York",  # northern DST, 02:00 gap
    "Europe/Berlin",
    "Australia/Sydney",  # southern DST
    "America/Santiago",  # southern DST at midnight
    "Australia/Lord_Howe",  # half-hour DST shift
    "Asia/Kolkata",  # half-hour offset, no DST
    "Asia/Kathmandu",  # quarter-hour offset
    "America/St_Johns",  # half-hour offset with DST
    "Pacific/Chatham",  # +12:45 / +13:45
    "America/Havana",  # DST at midnight
]

#: Findings: mostly unstated or false, so that conservative plans are common.
finding = st.sampled_from([None, None, None, False, False, False, True])
VALID_GRADES = st.integers(1, 4)
#: Line lengths, weighted below the 50 % surgical threshold.
VALID_PCTS = st.one_of(st.integers(0, 49), st.integers(0, 100))


@st.composite
def injury_fields(
    draw: st.DrawFn,
    grades: st.SearchStrategy[int] = VALID_GRADES,
    pcts: st.SearchStrategy[int] = VALID_PCTS,
) -> dict[str, Any]:
    """Raw classification input as an API client might send it (may be contradictory)."""
    return {
        "site": "femoral_neck",
        "type": draw(st.sampled_from(["compression", "compression", "compression", "tension"])),
        "laterality": draw(st.sampled_from([None, "left", "right"])),
        "mri_grade": draw(st.one_of(st.none(), grades)),
        "fracture_line": draw(finding),
        "fracture_line_pct": draw(st.one_of(st.none(), pcts)),
        "complete": draw(finding),
        "displaced": draw(finding),
        "hip_effusion": draw(finding),
        "progression_on_imaging": draw(finding),
        "can_bear_weight": draw(st.sampled_from([None, None, None, True, True, False])),
    }


@st.composite
def injuries(draw: st.DrawFn) -> Injury:
    """A valid classification: contradictory draws are discarded."""
    try:
        return classify(**draw(injury_fields()))
    except InvalidInjury:
        reject()


session_times = st.one_of(
    st.none(),
    st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.integers(0, 59)),
    # times that DST gaps skip in the sampled zones
    st.sampled_from(["00:00", "00:30", "02:00", "02:15", "02:30", "02:45", "23:45"]),
)


@st.composite
def plan_requests(draw: st.DrawFn) -> PlanRequest:
    """A valid plan request over the whole input space."""
    diagnosis = draw(st.dates(date(2000, 1, 1), date(2060, 12, 31)))
    offset = draw(st.one_of(st.none(), st.integers(0, 30)))
    run_days = draw(st.sets(st.sampled_from(list(Weekday)), min_size=1))
    return PlanRequest(
        diagnosis_date=diagnosis,
        start_date=None if offset is None else diagnosis + timedelta(days=offset),
        injury=draw(injuries()),
        risk_factors=tuple(draw(st.sets(st.sampled_from(list(RiskFactor))))),
        preferences=Preferences(
            run_days=tuple(sorted(run_days, key=lambda d: d.iso_index)),
            session_time=draw(session_times),
            timezone=draw(st.sampled_from(TIME_ZONES)),
        ),
    )


PROPERTY = settings(max_examples=100, deadline=None)


# ------------------------------------------------------------------ classification


@PROPERTY
@given(injury_fields(grades=st.integers(-1, 6), pcts=st.integers(-10, 110)))
def test_classify_refuses_or_returns_a_consistent_injury(fields: dict[str, Any]) -> None:
    try:
        found = classify(**fields)
    except InvalidInjury as refusal:
        assert refusal.errors
        assert set(refusal.errors) <= set(fields)
        return
    if found.mri_grade == 4 or found.fracture_line_pct or found.complete or found.displaced:
        assert found.fracture_line
    if found.fracture_line_pct == 100:
        assert found.complete
    for name in ("fracture_line", "complete", "displaced", "hip_effusion", "can_bear_weight"):
        if fields[name] is not None:
            assert getattr(found, name) == fields[name]


# ------------------------------------------------------------------ phases


@PROPERTY
@given(plan_requests())
def test_phases_are_contiguous_from_the_start_date(request: PlanRequest) -> None:
    made = plan(request)
    assert made.phases[0].start_date == request.effective_start == made.start_date
    for phase in made.phases:
        assert phase.end_date >= phase.start_date
    for previous, following in zip(made.phases, made.phases[1:], strict=False):
        assert following.start_date == previous.end_date + timedelta(days=1)
    assert len({p.key for p in made.phases}) == len(made.phases)


@PROPERTY
@given(plan_requests())
def test_every_session_lies_inside_its_phase(request: PlanRequest) -> None:
    made = plan(request)
    phases = {p.key: p for p in made.phases}
    for s in made.sessions:
        assert phases[s.phase].contains(s.date), s.key
    assert [s.date for s in made.sessions] == sorted(s.date for s in made.sessions)


@PROPERTY
@given(plan_requests())
def test_no_running_or_walking_in_phases_that_forbid_it(request: PlanRequest) -> None:
    made = plan(request)
    for s in made.sessions:
        if s.phase in NO_RUNNING_PHASES:
            assert not s.kind.is_running, s.key
        if s.phase in NO_WALKING_PHASES:
            assert s.kind is not SessionKind.WALK, s.key


# ------------------------------------------------------------------ running


@PROPERTY
@given(plan_requests())
def test_running_only_on_run_days_and_never_on_consecutive_days(request: PlanRequest) -> None:
    made = plan(request)
    run_days = {d.iso_index for d in request.preferences.run_days}
    runs = [s for s in made.sessions if s.kind.is_running]
    assert all(s.date.weekday() in run_days for s in runs)
    for earlier, later in zip(runs, runs[1:], strict=False):
        assert (later.date - earlier.date).days >= 2, (earlier.key, later.key)


@PROPERTY
@given(plan_requests())
def test_surgical_pathway_if_and_only_if_no_running(request: PlanRequest) -> None:
    made = plan(request)
    runs = [s for s in made.sessions if s.kind.is_running]
    assert (made.pathway is Pathway.SURGICAL_REFERRAL) == (not runs)
    assert made.expected_return_to_run_date == (runs[0].date if runs else None)
    if runs:
        assert runs[0].kind is SessionKind.RUN_WALK


# ------------------------------------------------------------------ time


def _exists(day: date, at: time, tz: ZoneInfo) -> bool:
    """Whether the wall-clock time occurs on that day in that zone (not in a DST gap)."""
    wall = datetime.combine(day, at)
    return wall.replace(tzinfo=tz).astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall


@PROPERTY
@given(plan_requests())
def test_timed_sessions_keep_the_local_wall_time(request: PlanRequest) -> None:
    made = plan(request)
    prefs = request.preferences
    tz = ZoneInfo(prefs.timezone)
    if prefs.session_time is None:
        assert all(s.start is None and s.end is None for s in made.sessions)
        return
    at = time.fromisoformat(prefs.session_time)
    by_day: dict[date, list[tuple[datetime, datetime]]] = defaultdict(list)
    for s in made.sessions:
        if s.kind is SessionKind.REVIEW:
            assert s.start is None and s.end is None
            continue
        assert s.start is not None and s.end is not None
        assert s.start.tzinfo == tz
        assert s.start.date() == s.date, s.key
        assert s.start == s.start.astimezone(UTC).astimezone(tz)  # a real local time
        elapsed = s.end.astimezone(UTC) - s.start.astimezone(UTC)
        assert elapsed == timedelta(minutes=s.duration_min or 30)
        by_day[s.date].append((s.start, s.end))
    for day, spans in by_day.items():
        # The day's first session (in plan order) is at session_time; the others
        # follow it (or, near midnight, precede it) back to back, never overlapping.
        _assert_at_session_time(spans[0][0], day, at, tz)
        in_utc = sorted((start.astimezone(UTC), end.astimezone(UTC)) for start, end in spans)
        for (_, end), (next_start, _) in zip(in_utc, in_utc[1:], strict=False):
            assert next_start >= end


def _assert_at_session_time(start: datetime, day: date, at: time, tz: ZoneInfo) -> None:
    """``start`` is ``at`` on ``day``, or later by exactly the DST gap that skips it."""
    wall, requested = start.replace(tzinfo=None), datetime.combine(day, at)
    if _exists(day, at, tz):
        assert wall == requested
    else:
        before = (start.astimezone(UTC) - timedelta(hours=3)).astimezone(tz).utcoffset()
        assert before is not None and start.utcoffset() is not None
        assert wall - requested == start.utcoffset() - before > timedelta(0)


DST_ZONES = [
    "America/New_York",
    "Europe/Berlin",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "America/Santiago",
    "America/St_Johns",
    "Pacific/Chatham",
    "America/Havana",
]


@cache
def _spring_forward(zone: str, year: int) -> tuple[date, tuple[time, ...]] | None:
    """The year's first spring-forward day in ``zone`` and the quarter hours it skips."""
    tz = ZoneInfo(zone)
    day = date(year, 1, 1)
    while day.year == year:
        morning = datetime.combine(day, time(0, 0), tz).utcoffset()
        night = datetime.combine(day, time(23, 59), tz).utcoffset()
        if morning is not None and night is not None and night > morning:
            quarters = (time(h, m) for h in range(24) for m in (0, 15, 30, 45))
            skipped = tuple(t for t in quarters if not _exists(day, t, tz))
            if skipped:
                return day, skipped
        day += timedelta(days=1)
    return None


@st.composite
def spring_forward_requests(draw: st.DrawFn) -> tuple[PlanRequest, date]:
    """A fracture-line plan whose daily walks cover a spring-forward day, timed in its gap."""
    zone = draw(st.sampled_from(DST_ZONES))
    found = _spring_forward(zone, draw(st.integers(2000, 2060)))
    assume(found is not None)
    assert found is not None
    day, skipped = found
    # Walking covers days 56–76 of a fracture-line plan.
    start = day - timedelta(days=draw(st.integers(56, 76)))
    run_days = draw(st.sets(st.sampled_from(list(Weekday)), min_size=1))
    request = PlanRequest(
        diagnosis_date=start,
        injury=classify(site="femoral_neck", type="compression", fracture_line=True),
        preferences=Preferences(
            run_days=tuple(sorted(run_days, key=lambda d: d.iso_index)),
            session_time=draw(st.sampled_from(skipped)).strftime("%H:%M"),
            timezone=zone,
        ),
    )
    return request, day


@PROPERTY
@given(spring_forward_requests())
def test_session_time_skipped_by_dst_moves_to_the_real_instant(
    case: tuple[PlanRequest, date],
) -> None:
    request, day = case
    made = plan(request)
    tz = ZoneInfo(request.preferences.timezone)
    at = time.fromisoformat(request.preferences.session_time or "")
    on_day = [s for s in made.sessions if s.date == day]
    assert on_day and on_day[0].kind is SessionKind.WALK
    start = on_day[0].start
    assert start is not None and start.date() == day
    assert start.replace(tzinfo=None) > datetime.combine(day, at)
    _assert_at_session_time(start, day, at, tz)


# ------------------------------------------------------------------ determinism and alerts


@PROPERTY
@given(plan_requests())
def test_same_inputs_give_the_same_plan(request: PlanRequest) -> None:
    first = plan(request)
    assert first == plan(request)
    assert len({s.uid for s in first.sessions}) == len(first.sessions)


@PROPERTY
@given(plan_requests())
def test_every_plan_advises_avoiding_nsaids(request: PlanRequest) -> None:
    made = plan(request)
    codes = [a.code for a in made.alerts]
    assert codes.count("avoid_nsaids") == 1
    bone_health = {
        RiskFactor.PRIOR_BONE_STRESS_INJURY,
        RiskFactor.LOW_ENERGY_AVAILABILITY,
        RiskFactor.MENSTRUAL_IRREGULARITY,
        RiskFactor.LOW_BONE_DENSITY,
    }
    assert ("bone_health_referral" in codes) == bool(bone_health & set(request.risk_factors))
