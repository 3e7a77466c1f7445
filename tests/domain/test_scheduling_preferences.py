"""Scheduling with preferences: session time, IANA time zone, DST, run days, validation."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from planner.domain import InvalidRequest, Plan, PlanRequest, Session, SessionKind, Weekday
from planner.domain.scheduling import weekdays_in_order
from tests.builders import injury, plan, plan_request, preferences, running

NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
SYDNEY = ZoneInfo("Australia/Sydney")


def _timed(made: Plan) -> list[Session]:
    return [s for s in made.sessions if s.start is not None]


def _first_of_each_day(made: Plan) -> dict[date, Session]:
    by_day: dict[date, list[Session]] = defaultdict(list)
    for s in _timed(made):
        by_day[s.date].append(s)
    return {
        day: min(day_sessions, key=lambda s: _start(s).astimezone(UTC))
        for day, day_sessions in by_day.items()
    }


def _start(session: Session) -> datetime:
    """The session's aware start (the test fails if it is all-day)."""
    assert session.start is not None, f"{session.key} is all-day"
    return session.start


def _end(session: Session) -> datetime:
    assert session.end is not None, f"{session.key} is all-day"
    return session.end


def _wall(moment: datetime | Session) -> time:
    """Local wall-clock time of a datetime or of a session's start."""
    if isinstance(moment, Session):
        moment = _start(moment)
    return moment.replace(tzinfo=None).time()


# ------------------------------------------------------------------ wall time across DST


def test_session_time_keeps_local_wall_time_across_new_york_spring_forward() -> None:
    made = plan(prefs=preferences(session_time="07:00", timezone="America/New_York"))
    firsts = _first_of_each_day(made)
    assert firsts, "timed sessions expected"
    assert all(_wall(s) == time(7, 0) for s in firsts.values())
    assert all(_start(s).tzinfo == NEW_YORK for s in _timed(made))
    before, after = firsts[date(2027, 3, 13)], firsts[date(2027, 3, 15)]
    assert _start(before).utcoffset() == timedelta(hours=-5)
    assert _start(after).utcoffset() == timedelta(hours=-4)
    assert _start(before).astimezone(UTC).hour == 12
    assert _start(after).astimezone(UTC).hour == 11


def test_session_time_keeps_local_wall_time_across_berlin_spring_forward() -> None:
    made = plan(injury_=injury(), prefs=preferences(session_time="18:30", timezone="Europe/Berlin"))
    firsts = _first_of_each_day(made)
    assert all(_wall(s) == time(18, 30) for s in firsts.values())
    offsets = {_start(s).utcoffset() for s in firsts.values()}
    assert offsets == {timedelta(hours=1), timedelta(hours=2)}
    assert _start(firsts[date(2027, 3, 26)]).utcoffset() == timedelta(hours=1)
    assert _start(firsts[date(2027, 3, 29)]).utcoffset() == timedelta(hours=2)


def test_session_time_keeps_local_wall_time_across_sydney_fall_back() -> None:
    made = plan(prefs=preferences(session_time="06:15", timezone="Australia/Sydney"))
    firsts = _first_of_each_day(made)
    assert all(_wall(s) == time(6, 15) for s in firsts.values())
    # Southern hemisphere: daylight time ends on 4 April 2027 (+11 → +10).
    assert _start(firsts[date(2027, 4, 2)]).utcoffset() == timedelta(hours=11)
    assert _start(firsts[date(2027, 4, 5)]).utcoffset() == timedelta(hours=10)


def test_session_end_is_start_plus_duration_in_real_time() -> None:
    made = plan(prefs=preferences(session_time="07:00", timezone="Europe/Berlin"))
    for s in _timed(made):
        elapsed = _end(s).astimezone(UTC) - _start(s).astimezone(UTC)
        assert elapsed == timedelta(minutes=s.duration_min or 30)


# ------------------------------------------------------------------ DST gap and overlap


@pytest.mark.parametrize(
    ("fields", "run_days", "kind"),
    [
        # Oedema only from Mon 4 Jan 2027: graded running starts Mon 8 Mar; with run
        # days WE and SU the second run falls on Sunday 14 March, the DST day.
        pytest.param({}, ("WE", "SU"), SessionKind.RUN_WALK, id="run-on-dst-day"),
        # Fracture line: the daily walks of the walking phase cover 1–21 March.
        pytest.param({"fracture_line": True}, ("MO", "WE", "FR"), SessionKind.WALK, id="walk"),
    ],
)
def test_nonexistent_session_time_on_spring_forward_day_becomes_the_real_instant(
    fields: dict[str, Any], run_days: tuple[str, ...], kind: SessionKind
) -> None:
    made = plan(
        injury_=injury(**fields),
        prefs=preferences(run_days=run_days, session_time="02:30", timezone="America/New_York"),
    )
    on_dst_day = [s for s in _timed(made) if s.date == date(2027, 3, 14)]
    assert [s.kind for s in on_dst_day] == [kind]
    start = on_dst_day[0].start
    assert start is not None
    assert start.astimezone(UTC) == datetime(2027, 3, 14, 7, 30, tzinfo=UTC)
    assert _wall(start) == time(3, 30)
    assert start.utcoffset() == timedelta(hours=-4)
    assert start == start.astimezone(UTC).astimezone(NEW_YORK)  # a real, round-trippable time
    firsts = _first_of_each_day(made)
    for other_day in (date(2027, 3, 13), date(2027, 3, 15)):
        if other_day in firsts:
            assert _wall(firsts[other_day]) == time(2, 30)


def test_ambiguous_session_time_on_fall_back_day_keeps_wall_time() -> None:
    # Fracture line from 1 Sep 2027: walking covers 27 Oct – 16 Nov; 7 Nov is the fall-back day.
    made = plan(
        diagnosis_date=date(2027, 9, 1),
        prefs=preferences(run_days=("SU", "WE"), session_time="01:30", timezone="America/New_York"),
    )
    assert made.phase("walking").contains(date(2027, 11, 7))
    day = sorted(
        (s for s in _timed(made) if s.date == date(2027, 11, 7)),
        key=lambda s: _start(s).astimezone(UTC),
    )
    assert [s.kind for s in day] == [SessionKind.WALK, SessionKind.STRENGTH]
    assert _wall(day[0]) == time(1, 30)
    assert _start(day[0]).utcoffset() == timedelta(hours=-4)  # the first 01:30 of the day
    assert _start(day[1]).astimezone(UTC) == _end(day[0]).astimezone(UTC)


def test_sessions_on_the_same_day_follow_one_another() -> None:
    made = plan(prefs=preferences(session_time="07:00", timezone="America/New_York"))
    monday = date(2027, 3, 1)  # walking phase: a walk and a strength session
    day = [s for s in made.sessions if s.date == monday]
    assert [s.kind for s in day] == [SessionKind.WALK, SessionKind.STRENGTH]
    walk, strength = day
    assert _wall(walk) == time(7, 0)
    assert _end(walk) == _start(walk) + timedelta(minutes=walk.duration_min or 0)
    assert _start(strength) == _end(walk)
    assert _end(strength) == _start(strength) + timedelta(minutes=30)


def test_session_that_would_start_after_midnight_goes_before_the_days_first() -> None:
    made = plan(prefs=preferences(session_time="23:50", timezone="Europe/Berlin"))
    walk, strength = [s for s in made.sessions if s.date == date(2027, 3, 1)]
    assert (walk.kind, strength.kind) == (SessionKind.WALK, SessionKind.STRENGTH)
    assert _start(walk) == datetime(2027, 3, 1, 23, 50, tzinfo=BERLIN)
    assert _end(strength) == _start(walk)
    assert _start(strength) == datetime(2027, 3, 1, 23, 20, tzinfo=BERLIN)


@pytest.mark.parametrize("tz", ["UTC", "America/New_York", "Australia/Lord_Howe"])
@pytest.mark.parametrize("at", ["00:00", "07:00", "23:45"])
def test_timed_sessions_never_overlap_and_stay_on_their_date(tz: str, at: str) -> None:
    made = plan(
        prefs=preferences(run_days=[d.value for d in Weekday], session_time=at, timezone=tz)
    )
    by_day: dict[date, list[Session]] = defaultdict(list)
    for s in _timed(made):
        assert s.start is not None
        assert s.start.date() == s.date, f"{s.key} labelled {s.date} starts {s.start}"
        by_day[s.date].append(s)
    assert any(len(day) > 1 for day in by_day.values())
    for day_sessions in by_day.values():
        spans = sorted((_start(s).astimezone(UTC), _end(s).astimezone(UTC)) for s in day_sessions)
        for (_, end), (next_start, _) in zip(spans, spans[1:], strict=False):
            assert next_start >= end


# ------------------------------------------------------------------ all-day


def test_without_session_time_every_session_is_all_day() -> None:
    made = plan(prefs=preferences(timezone="America/New_York"))
    assert made.sessions
    assert all(s.start is None and s.end is None for s in made.sessions)


@pytest.mark.parametrize("fields", [{"fracture_line": True}, {"type": "tension"}])
def test_reviews_stay_all_day_with_a_session_time(fields: dict[str, Any]) -> None:
    made = plan(
        injury_=injury(**fields),
        risk_factors=["low_bone_density"],
        prefs=preferences(session_time="07:00", timezone="Europe/Berlin"),
    )
    reviews = [s for s in made.sessions if s.kind is SessionKind.REVIEW]
    assert reviews
    assert all(r.start is None and r.end is None for r in reviews)
    assert all(s.start is not None for s in made.sessions if s.kind is not SessionKind.REVIEW)


def test_utc_is_the_default_time_zone() -> None:
    made = plan(prefs=preferences(session_time="07:00"))
    assert all(_start(s).utcoffset() == timedelta(0) for s in _timed(made))


def test_run_days_preference_moves_the_running_sessions() -> None:
    made = plan(prefs=preferences(run_days=("TU", "SA")))
    assert {s.date.weekday() for s in running(made)} == {1, 5}


# ------------------------------------------------------------------ refusals


def _refused(request: PlanRequest) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        plan(request)
    assert caught.value.code == "invalid_request"
    return caught.value


@pytest.mark.parametrize("tz", ["Mars/Olympus", "", "America", "Etc", "../etc/passwd", "x" * 300])
def test_unknown_time_zone_is_refused_naming_the_field(tz: str) -> None:
    refusal = _refused(plan_request(prefs=preferences(timezone=tz)))
    assert list(refusal.errors) == ["timezone"]


@pytest.mark.parametrize("at", ["7:00", "07:0", "24:00", "07:60", "07:00:00", "0700", "noon", ""])
def test_invalid_session_time_is_refused_naming_the_field(at: str) -> None:
    refusal = _refused(plan_request(prefs=preferences(session_time=at)))
    assert list(refusal.errors) == ["schedule.session_time"]


def test_empty_run_days_are_refused_naming_the_field() -> None:
    refusal = _refused(plan_request(prefs=preferences(run_days=())))
    assert list(refusal.errors) == ["schedule.run_days"]


def test_start_before_diagnosis_is_refused_naming_the_field() -> None:
    refusal = _refused(plan_request(diagnosis_date=date(2027, 1, 10), start_date=date(2027, 1, 9)))
    assert list(refusal.errors) == ["start_date"]


def test_start_on_the_diagnosis_day_is_accepted() -> None:
    made = plan(diagnosis_date=date(2027, 1, 10), start_date=date(2027, 1, 10))
    assert made.start_date == date(2027, 1, 10)


def test_every_bad_preference_is_reported_at_once() -> None:
    refusal = _refused(
        plan_request(
            diagnosis_date=date(2027, 1, 10),
            start_date=date(2027, 1, 1),
            prefs=preferences(run_days=(), session_time="25:00", timezone="Nowhere/Town"),
        )
    )
    assert set(refusal.errors) == {
        "start_date",
        "timezone",
        "schedule.session_time",
        "schedule.run_days",
    }


def test_weekday_codes_parse_in_iso_order_without_duplicates() -> None:
    assert weekdays_in_order(["fr", " MO", "WE", "mo", ""]) == (
        Weekday.MO,
        Weekday.WE,
        Weekday.FR,
    )


def test_unknown_weekday_code_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidRequest) as caught:
        weekdays_in_order(["MO", "XX"])
    assert list(caught.value.errors) == ["schedule.run_days"]


def test_no_run_days_stated_gives_none_and_weekday_values_are_taken_as_they_are() -> None:
    assert weekdays_in_order(None) == ()
    assert weekdays_in_order([]) == ()
    assert weekdays_in_order([Weekday.SU, Weekday.MO, Weekday.SU]) == (Weekday.MO, Weekday.SU)
