"""A3: the conservative compression-side plan made with the shipped protocol defaults."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from typing import Any

import pytest

from planner.domain import Plan, SessionKind, Weekday
from planner.domain.model import Step
from tests.builders import (
    CONSERVATIVE_PHASES,
    DIAGNOSIS_DATE,
    injury,
    plan,
    preferences,
    running,
    sessions,
)

WITH_LINE = [
    pytest.param({"fracture_line": True}, id="line-stated"),
    pytest.param({"mri_grade": 4}, id="grade-4"),
    pytest.param({"fracture_line_pct": 20}, id="pct-20"),
]
OEDEMA_ONLY = [
    pytest.param({}, id="unstated"),
    pytest.param({"mri_grade": 2, "fracture_line": False}, id="grade-2"),
    pytest.param({"mri_grade": 3}, id="grade-3"),
]
DEFAULT_RUN_DAYS = {Weekday.MO.iso_index, Weekday.WE.iso_index, Weekday.FR.iso_index}


def _plan(**fields: Any) -> Plan:
    return plan(injury_=injury(**fields))


def _days(made: Plan, key: str) -> int:
    return made.phase(key).days


# ------------------------------------------------------------------ phases


@pytest.mark.parametrize("fields", WITH_LINE + OEDEMA_ONLY)
def test_conservative_plan_has_the_five_phases_in_order(fields: dict[str, Any]) -> None:
    assert tuple(p.key for p in _plan(**fields).phases) == CONSERVATIVE_PHASES


@pytest.mark.parametrize("fields", WITH_LINE)
def test_non_weight_bearing_lasts_six_weeks_with_a_fracture_line(fields: dict[str, Any]) -> None:
    assert _days(_plan(**fields), "non_weight_bearing") == 42


@pytest.mark.parametrize("fields", OEDEMA_ONLY)
def test_non_weight_bearing_lasts_four_weeks_for_oedema_only(fields: dict[str, Any]) -> None:
    assert _days(_plan(**fields), "non_weight_bearing") == 28


@pytest.mark.parametrize("fields", [{"fracture_line": True}, {}])
def test_fixed_phase_lengths(fields: dict[str, Any]) -> None:
    made = _plan(**fields)
    assert _days(made, "protected_weight_bearing") == 14
    assert _days(made, "walking") == 21
    assert _days(made, "return_to_training") == 56


def test_start_date_defaults_to_the_diagnosis_date() -> None:
    made = plan(diagnosis_date=date(2027, 5, 12))
    assert made.request.start_date is None
    assert made.start_date == date(2027, 5, 12)
    assert made.phases[0].start_date == date(2027, 5, 12)


def test_explicit_start_date_is_day_zero() -> None:
    made = plan(diagnosis_date=date(2027, 5, 12), start_date=date(2027, 5, 20))
    assert made.phases[0].start_date == date(2027, 5, 20)


# ------------------------------------------------------------------ non-weight-bearing


@pytest.mark.parametrize("start", [DIAGNOSIS_DATE + timedelta(days=n) for n in range(7)])
@pytest.mark.parametrize("fields", [{"fracture_line": True}, {}])
def test_non_weight_bearing_has_three_cross_training_and_two_strength_sessions_a_week(
    start: date, fields: dict[str, Any]
) -> None:
    made = plan(injury_=injury(**fields), diagnosis_date=start)
    phase = made.phase("non_weight_bearing")
    phase_sessions = sessions(made, phase="non_weight_bearing")
    for week in range(phase.days // 7):
        first = phase.start_date + timedelta(weeks=week)
        in_week = [s for s in phase_sessions if first <= s.date < first + timedelta(days=7)]
        kinds = Counter(s.kind for s in in_week if s.kind is not SessionKind.REVIEW)
        assert kinds == {SessionKind.CROSS_TRAINING: 3, SessionKind.STRENGTH: 2}
        assert {s.date.weekday() for s in in_week if s.kind is SessionKind.CROSS_TRAINING} == (
            DEFAULT_RUN_DAYS
        )
        assert all(
            s.date.weekday() not in DEFAULT_RUN_DAYS
            for s in in_week
            if s.kind is SessionKind.STRENGTH
        )


def test_non_weight_bearing_ends_with_a_review_and_interval_mri_when_a_line_was_present() -> None:
    made = _plan(fracture_line=True)
    phase = made.phase("non_weight_bearing")
    reviews = sessions(made, phase="non_weight_bearing", kind=SessionKind.REVIEW)
    assert [r.date for r in reviews] == [phase.end_date]
    assert any("interval mri" in c.lower() for c in reviews[0].criteria)


def test_non_weight_bearing_review_without_interval_mri_for_oedema_only() -> None:
    made = _plan()
    phase = made.phase("non_weight_bearing")
    reviews = sessions(made, phase="non_weight_bearing", kind=SessionKind.REVIEW)
    assert [r.date for r in reviews] == [phase.end_date]
    assert not any("mri" in c.lower() for c in reviews[0].criteria)
    assert "mri" not in reviews[0].title.lower()


def test_non_weight_bearing_has_no_walks_or_running() -> None:
    kinds = {s.kind for s in sessions(_plan(fracture_line=True), phase="non_weight_bearing")}
    assert kinds == {SessionKind.CROSS_TRAINING, SessionKind.STRENGTH, SessionKind.REVIEW}


# ------------------------------------------------------------------ protected weight bearing


def test_protected_weight_bearing_has_strength_three_times_a_week() -> None:
    made = _plan(fracture_line=True)
    strength = sessions(made, phase="protected_weight_bearing", kind=SessionKind.STRENGTH)
    assert len(strength) == 6
    assert {s.date.weekday() for s in strength} == DEFAULT_RUN_DAYS
    assert running(made)[0].date > made.phase("protected_weight_bearing").end_date


# ------------------------------------------------------------------ walking


def test_walking_has_daily_walks_from_10_to_brisk_30_minutes_and_ends_with_a_review() -> None:
    made = _plan(fracture_line=True)
    phase = made.phase("walking")
    walks = sessions(made, phase="walking", kind=SessionKind.WALK)
    assert [w.date for w in walks] == [phase.start_date + timedelta(days=n) for n in range(21)]
    assert [w.duration_min for w in walks[:18:3]] == [10, 15, 20, 25, 30, 30]
    assert [w.level for w in walks] == [lv for lv in range(1, 7) for _ in range(3)] + [6] * 3
    assert "brisk" in walks[-1].title.lower()
    assert "brisk" not in walks[0].title.lower()
    strength = sessions(made, phase="walking", kind=SessionKind.STRENGTH)
    assert len(strength) == 9
    reviews = sessions(made, phase="walking", kind=SessionKind.REVIEW)
    assert [r.date for r in reviews] == [phase.end_date]
    assert any("30 minutes of brisk walking" in c for c in reviews[0].criteria)
    assert not [s for s in sessions(made, phase="walking") if s.kind.is_running]


# ------------------------------------------------------------------ graded running


@pytest.mark.parametrize("fields", [{"fracture_line": True}, {}])
def test_graded_running_climbs_five_levels_of_three_sessions(fields: dict[str, Any]) -> None:
    runs = sessions(_plan(**fields), phase="graded_running")
    runs = [s for s in runs if s.kind.is_running]
    assert [s.level for s in runs] == [lv for lv in range(1, 6) for _ in range(3)]
    intervals = [(5, 1), (4, 2), (3, 3), (2, 4)]  # walk / run minutes
    for level, (walk_min, run_min) in enumerate(intervals, start=1):
        at_level = [s for s in runs if s.level == level]
        assert {s.kind for s in at_level} == {SessionKind.RUN_WALK}
        assert {s.steps for s in at_level} == {(Step("walk", walk_min), Step("run", run_min))}
        assert {s.repeat for s in at_level} == {5}
        assert {s.duration_min for s in at_level} == {30}
        assert (walk_min + run_min) * 5 == 30
    final = [s for s in runs if s.level == 5]
    assert {s.kind for s in final} == {SessionKind.RUN}
    assert {s.steps for s in final} == {(Step("run", 30),)}
    assert {s.duration_min for s in final} == {30}


def test_graded_running_ends_with_the_third_continuous_run() -> None:
    made = _plan(fracture_line=True)
    phase = made.phase("graded_running")
    runs = [s for s in sessions(made, phase="graded_running") if s.kind.is_running]
    assert runs[0].date >= phase.start_date
    assert runs[-1].date == phase.end_date


@pytest.mark.parametrize(
    "run_days",
    [
        ("MO", "WE", "FR"),
        ("TU", "TH", "SA"),
        ("SA", "SU"),
        ("MO", "TU", "WE", "TH"),
        ("MO", "TU", "WE", "TH", "FR", "SA", "SU"),
        ("TH",),
    ],
)
def test_running_only_on_run_days_and_never_on_consecutive_days(run_days: tuple[str, ...]) -> None:
    made = plan(prefs=preferences(run_days=run_days))
    allowed = {Weekday(d).iso_index for d in run_days}
    runs = running(made)
    assert runs
    assert all(s.date.weekday() in allowed for s in runs)
    gaps = [(b.date - a.date).days for a, b in zip(runs, runs[1:], strict=False)]
    assert min(gaps) >= 2


def test_running_only_in_graded_running_and_return_to_training() -> None:
    made = _plan(fracture_line=True)
    assert {s.phase for s in running(made)} == {"graded_running", "return_to_training"}


def test_return_to_training_builds_from_30_to_45_minutes_and_ends_with_a_review() -> None:
    made = _plan(fracture_line=True)
    phase = made.phase("return_to_training")
    runs = [s for s in sessions(made, phase="return_to_training") if s.kind.is_running]
    assert {s.kind for s in runs} == {SessionKind.RUN}
    minutes = [s.duration_min or 0 for s in runs]
    assert minutes[0] == 30 and minutes[-1] == 45
    assert minutes == sorted(minutes)
    weekly = Counter((s.date - phase.start_date).days // 7 for s in runs)
    volume = [
        sum(s.duration_min or 0 for s in runs if (s.date - phase.start_date).days // 7 == w)
        for w in sorted(weekly)
    ]
    full_weeks = volume[: phase.days // 7]
    assert all(b <= a * 1.1 + 1e-9 for a, b in zip(full_weeks, full_weeks[1:], strict=False))
    reviews = sessions(made, phase="return_to_training", kind=SessionKind.REVIEW)
    assert [r.date for r in reviews] == [phase.end_date]


# ------------------------------------------------------------------ first run


def test_first_run_is_at_week_11_with_a_fracture_line() -> None:
    made = _plan(fracture_line=True)
    assert made.expected_return_to_run_date == DIAGNOSIS_DATE + timedelta(weeks=11)


def test_first_run_is_at_week_9_for_oedema_only() -> None:
    made = _plan()
    assert made.expected_return_to_run_date == DIAGNOSIS_DATE + timedelta(weeks=9)


@pytest.mark.parametrize("offset", range(7))
@pytest.mark.parametrize(("fields", "weeks"), [({"fracture_line": True}, 11), ({}, 9)])
def test_first_run_is_within_the_week_after_the_walking_phase_on_any_start_day(
    offset: int, fields: dict[str, Any], weeks: int
) -> None:
    start = DIAGNOSIS_DATE + timedelta(days=offset)
    made = plan(injury_=injury(**fields), diagnosis_date=start)
    first_run = made.expected_return_to_run_date
    assert first_run is not None
    assert timedelta(weeks=weeks) <= first_run - start < timedelta(weeks=weeks, days=7)
    assert first_run >= made.phase("graded_running").start_date


@pytest.mark.parametrize(("fields", "weeks"), [({"fracture_line": True}, 16), ({}, 14)])
def test_thirty_minutes_continuous_is_reached_around_the_expected_week(
    fields: dict[str, Any], weeks: int
) -> None:
    made = _plan(**fields)
    first_continuous = next(s for s in running(made) if s.kind is SessionKind.RUN)
    assert abs((first_continuous.date - made.start_date).days - weeks * 7) <= 7


def test_expected_return_to_run_date_is_the_first_run_walk_session() -> None:
    made = _plan(fracture_line=True)
    first = running(made)[0]
    assert first.kind is SessionKind.RUN_WALK
    assert first.level == 1
    assert first.phase == "graded_running"
    assert made.expected_return_to_run_date == first.date
    assert first.date.weekday() in DEFAULT_RUN_DAYS
