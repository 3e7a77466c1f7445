"""The fast exporters against their oracles.

* ``to_ical.render`` writes iCalendar bytes directly; ``to_ical.render_reference``
  builds the same calendar with icalendar (the model and parser of record). For
  random plans — every pathway, time zones, session times, check-ins, gates,
  stopped and cancelled plans, sequences, odd timestamps and hostile or non-ASCII
  text — and random feed options, the bytes must be identical, and icalendar must
  parse them back into components that it writes out to the same bytes again.
* ``to_json.render`` runs a dumper compiled from ``PlanSchema``; it must give
  exactly ``PlanSchema().dump`` (same keys, same order, same types), and
  ``to_json.render_bytes`` (orjson when installed) exactly ``to_json.dumps`` of it.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from icalendar import Calendar
from icalendar.parser import Contentline
from marshmallow import Schema, fields, post_dump

from planner.domain import (
    InvalidRequest,
    Plan,
    PlanRequest,
    Preferences,
    RiskFactor,
    Weekday,
    classify,
    make_plan,
)
from planner.domain.model import (
    Athlete,
    EnergyAvailability,
    RedFlag,
    RiskAssessment,
    SessionStatus,
)
from planner.domain.planning import planning_context
from planner.domain.progress import (
    Cancel,
    CheckIn,
    EventConflict,
    Gate,
    InvalidEvent,
    PlanNotActive,
    revise,
)
from planner.export import to_ical, to_json
from planner.export.to_ical import FeedOptions
from tests.builders import shipped_catalog

REFUSED = (InvalidEvent, EventConflict, PlanNotActive)
TIME_ZONES = [
    "UTC",
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",  # 30-minute DST shift
    "Asia/Kolkata",
    "Pacific/Chatham",  # +12:45/+13:45
    "America/Sao_Paulo",
]
#: Femoral-neck findings covering every shipped pathway.
INJURIES: list[dict[str, Any]] = [
    {"type": "compression", "fracture_line_pct": 20},
    {"type": "compression"},
    {"type": "compression", "mri_grade": 2},
    {"type": "tension"},
    {"type": "compression", "displaced": True},
    {"type": "compression", "fracture_line_pct": 60},
]

#: Text that exercises escaping and folding: RFC 5545 specials, every line ending,
#: a literal "\N", carets, multi-byte UTF-8 (2, 3 and 4 octets), controls.
texts = st.text(
    alphabet=st.one_of(
        st.sampled_from(list("\\;,:\"'^\r\n\t NnaZ0.-é—日🏃\u2028\x7f\x01")),
        st.characters(blacklist_categories=("Cs",)),
    ),
    max_size=160,
)
timestamps = st.datetimes(
    min_value=datetime(2019, 1, 1),
    max_value=datetime(2041, 1, 1),
    timezones=st.sampled_from(
        [
            None,
            UTC,
            ZoneInfo("Europe/Berlin"),
            ZoneInfo("Pacific/Chatham"),
            timezone(timedelta(hours=-3, minutes=-30)),
        ]
    ),
)


# --------------------------------------------------------------------------- plans


@st.composite
def requests(draw: st.DrawFn) -> PlanRequest:
    findings = dict(draw(st.sampled_from(INJURIES)))
    findings["laterality"] = draw(st.sampled_from([None, "left", "right"]))
    findings = {k: v for k, v in findings.items() if v is not None}
    diagnosis = draw(st.dates(date(2020, 1, 1), date(2038, 12, 31)))
    run_days = draw(st.sets(st.sampled_from(list(Weekday)), min_size=1))
    assessment = None
    if draw(st.integers(0, 3)) == 0:
        assessment = RiskAssessment(
            energy_availability=draw(st.sampled_from([None, *EnergyAvailability])),
            bmi=draw(st.one_of(st.none(), st.floats(15, 35), st.sampled_from([17.5, 18.0]))),
            menses_last_12_months=draw(st.one_of(st.none(), st.integers(0, 12))),
        )
    return PlanRequest(
        diagnosis_date=diagnosis,
        start_date=draw(st.sampled_from([None, diagnosis + timedelta(days=3)])),
        injury=classify(site="femoral_neck", **findings),
        athlete=Athlete(
            reference=draw(st.one_of(st.none(), texts)), name=draw(st.one_of(st.none(), texts))
        ),
        risk_factors=tuple(draw(st.sets(st.sampled_from(list(RiskFactor)), max_size=2))),
        preferences=Preferences(
            run_days=tuple(sorted(run_days, key=lambda d: d.iso_index)),
            session_time=draw(st.sampled_from([None, "07:00", "02:30", "12:00", "23:45"])),
            timezone=draw(st.sampled_from(TIME_ZONES)),
        ),
        risk_assessment=assessment,
    )


check_ins = st.builds(
    CheckIn,
    pain_during=st.sampled_from([0, 0, 0, 1, 4]),
    pain_after=st.sampled_from([0, 0, 2]),
    pain_next_morning=st.just(0),
    completed=st.sampled_from([True, True, False]),
    red_flags=st.sampled_from([()] * 8 + [(RedFlag.NIGHT_PAIN,), (RedFlag.CANNOT_BEAR_WEIGHT,)]),
)


@st.composite
def revised_plans(draw: st.DrawFn) -> Plan:
    """A plan as made, then some days of check-ins, gates and perhaps a cancellation."""
    request = draw(requests())
    created = draw(timestamps)
    try:
        plan = make_plan(request, shipped_catalog(), plan_id=draw(plan_ids), created_at=created)
    except InvalidRequest:
        assume(False)
    protocol = shipped_catalog().get(plan.protocol.id)
    context = planning_context(request.injury, plan.selection)
    today = plan.start_date
    for step in range(draw(st.integers(0, 6))):
        today += timedelta(days=draw(st.integers(0, 30)))
        past = [s for s in plan.sessions if s.date <= today]
        action = draw(st.sampled_from(["check_in"] * 4 + ["gate"] * 2 + ["cancel"]))
        event: CheckIn | Gate | Cancel
        if action == "check_in" and past:
            session = draw(st.sampled_from(past))
            event = replace(draw(check_ins), session_uid=session.uid)
        elif action == "gate":
            phase = draw(st.sampled_from(plan.phases))
            event = Gate(phase.key, draw(st.booleans()), today, criteria=(draw(texts),))
        else:
            event = Cancel(today, reason=draw(texts))
        at = datetime.combine(today, time(12), UTC) + timedelta(seconds=step, microseconds=7)
        try:
            plan, _ = revise(plan, protocol, event, context=context, today=today, at=at)
        except REFUSED:
            continue
    return plan


plan_ids = st.one_of(st.uuids().map(str), texts.filter(bool))


@st.composite
def hostile_plans(draw: st.DrawFn) -> Plan:
    """A revised plan whose texts, sequences and timestamps are then rewritten at
    random: what a clinic's own protocol files or a store could hand the exporters."""
    plan = draw(revised_plans())
    if draw(st.booleans()):
        return plan
    sessions = list(plan.sessions)
    for index in draw(st.lists(st.integers(0, len(sessions) - 1), max_size=8)):
        session = sessions[index]
        sessions[index] = replace(
            session,
            title=draw(st.one_of(st.just(session.title), texts)),
            notes=draw(st.one_of(st.just(session.notes), texts)),
            criteria=tuple(draw(st.lists(texts, max_size=3))),
            sequence=draw(
                st.one_of(st.integers(0, 10**6), st.sampled_from([-1, 2**31 - 1, 2**31]))
            ),
            status=draw(st.sampled_from(list(SessionStatus))),
            modified_at=draw(st.one_of(st.none(), timestamps)),
        )
    phases = list(plan.phases)
    for index in draw(st.lists(st.integers(0, len(phases) - 1), max_size=3)):
        phases[index] = replace(
            phases[index],
            title=draw(texts),
            goals=tuple(draw(st.lists(texts, max_size=3))),
            guidance=tuple(draw(st.lists(texts, max_size=2))),
            sequence=draw(st.integers(0, 99)),
            modified_at=draw(st.one_of(st.none(), timestamps)),
        )
    return replace(
        plan,
        sessions=tuple(sessions),
        phases=tuple(phases),
        pain_rules=tuple(draw(st.lists(texts, max_size=3))),
        revision=draw(st.one_of(st.just(plan.revision), st.integers(1, 2**70))),
    )


class Case:
    """A generated plan with a short repr: a failing example stays readable (and
    under hypothesis's repr limit, which filterwarnings=error would turn into an error).
    Hypothesis replays the failure itself from its example database."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan

    def __repr__(self) -> str:
        plan = self.plan
        return (
            f"Case({plan.protocol.id} r{plan.revision} {plan.status.value}, "
            f"{len(plan.sessions)} sessions, tz {plan.request.preferences.timezone}, "
            f"at {plan.request.preferences.session_time}, id {plan.id[:20]!r})"
        )


feed_options = st.builds(
    FeedOptions,
    detail=st.sampled_from(["activity", "full"]),
    busy=st.booleans(),
    reminder_minutes=st.one_of(st.none(), st.integers(1, 1440)),
    show_cancelled=st.booleans(),
)


# --------------------------------------------------------------------------- iCalendar


def assert_same_ics(plan: Plan, options: FeedOptions) -> bytes:
    try:
        expected = to_ical.render_reference(plan, options)
    except (ValueError, TypeError) as refused:
        with pytest.raises(type(refused)) as raised:
            to_ical.render(plan, options)
        assert type(raised.value) is type(refused)
        return b""
    fast = to_ical.render(plan, options)
    assert fast == expected
    # icalendar reads it back into the same components: written out again, same bytes
    assert Calendar.from_ical(fast).to_ical() == fast
    return fast


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=revised_plans().map(Case), options=feed_options)
def test_ics_is_byte_identical_to_icalendar_for_any_plan(case: Case, options: FeedOptions) -> None:
    assert_same_ics(case.plan, options)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=hostile_plans().map(Case), options=feed_options)
def test_ics_is_byte_identical_for_hostile_texts_and_timestamps(
    case: Case, options: FeedOptions
) -> None:
    data = assert_same_ics(case.plan, options)
    for line in data.split(b"\r\n"):
        assert len(line) <= 75
        line.decode()  # no fold inside a UTF-8 sequence


def test_ics_every_option_on_the_default_plans() -> None:
    options = [
        FeedOptions(),
        FeedOptions("full", reminder_minutes=30),
        FeedOptions(busy=True),
        FeedOptions(reminder_minutes=1440, show_cancelled=False),
        FeedOptions("full", busy=True, reminder_minutes=90),
    ]
    for findings in INJURIES:
        for session_time in (None, "07:00"):
            plan = make_plan(
                PlanRequest(
                    diagnosis_date=date(2026, 11, 20),
                    injury=classify(site="femoral_neck", **findings),
                    preferences=Preferences(session_time=session_time, timezone="America/New_York"),
                ),
                shipped_catalog(),
                plan_id="plan-1",
                created_at=datetime(2026, 11, 23, 9, 0, 0, 123456, tzinfo=UTC),
            )
            for option in options:
                assert_same_ics(plan, option)


def test_naive_session_times_are_refused_the_same_way() -> None:
    plan = make_plan(
        PlanRequest(
            diagnosis_date=date(2026, 11, 20),
            injury=classify(site="femoral_neck", type="compression"),
            preferences=Preferences(session_time="07:00"),
        ),
        shipped_catalog(),
        plan_id="plan-1",
        created_at=datetime(2026, 11, 23, tzinfo=UTC),
    )
    index, session = next((i, s) for i, s in enumerate(plan.sessions) if s.start)
    sessions = list(plan.sessions)
    sessions[index] = replace(session, start=session.start.replace(tzinfo=None))
    naive = replace(plan, sessions=tuple(sessions))
    with pytest.raises(ValueError, match="timezone-aware") as reference:
        to_ical.render_reference(naive)
    with pytest.raises(ValueError, match="timezone-aware") as fast:
        to_ical.render(naive)
    assert str(fast.value) == str(reference.value)


@pytest.mark.parametrize("size", range(60, 160))
@pytest.mark.parametrize("filler", ["a", "é", "日", "🏃", "\\", "^", "a\\", "é^", ",;"])
def test_folding_matches_icalendar_at_every_boundary(size: int, filler: str) -> None:
    for prefix in ("", "x", "xy", "xyz"):
        line = f"DESCRIPTION:{prefix}{(filler * size)[:size]}"
        assert to_ical._fold(line).encode() == Contentline(line).to_ical()


@settings(max_examples=300, deadline=None)
@given(text=texts)
def test_escaping_and_folding_match_icalendar(text: str) -> None:
    from icalendar.prop import vText

    line = to_ical._text_line("SUMMARY", text)
    assert (
        line.encode()
        == Contentline(f"SUMMARY:{vText(text).to_ical().decode()}").to_ical() + b"\r\n"
    )


# --------------------------------------------------------------------------- JSON


def assert_same_json(plan: Plan) -> None:
    expected = to_json.render_reference(plan)
    fast = to_json.render(plan)
    assert fast == expected
    # == ignores key order and 1 == 1.0 == True: the encoded bytes do not
    assert to_json.dumps(fast) == to_json.dumps(expected)
    assert to_json.render_bytes(plan) == to_json.dumps(expected)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=revised_plans().map(Case))
def test_json_equals_the_marshmallow_dump_for_any_plan(case: Case) -> None:
    assert_same_json(case.plan)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=hostile_plans().map(Case))
def test_json_equals_the_marshmallow_dump_for_hostile_plans(case: Case) -> None:
    assert_same_json(case.plan)


def test_json_of_stopped_and_cancelled_plans() -> None:
    made = make_plan(
        PlanRequest(
            diagnosis_date=date(2026, 11, 2),
            injury=classify(site="femoral_neck", type="compression", fracture_line_pct=20),
            risk_factors=(RiskFactor.LOW_BONE_DENSITY,),
            preferences=Preferences(session_time="07:00", timezone="Europe/Berlin"),
        ),
        shipped_catalog(),
        plan_id="plan-1",
        created_at=datetime(2026, 11, 2, 8, tzinfo=UTC),
    )
    protocol = shipped_catalog().get(made.protocol.id)
    context = planning_context(made.request.injury, made.selection)
    today = made.start_date + timedelta(days=3)
    at = datetime(2026, 11, 5, 12, tzinfo=UTC)
    first = made.sessions[0]
    counted, _ = revise(
        made, protocol, CheckIn(session_uid=first.uid), context=context, today=today, at=at
    )
    stopped, _ = revise(
        counted,
        protocol,
        CheckIn(session_uid=first.uid, red_flags=(RedFlag.LIMP,)),
        context=context,
        today=today,
        at=at,
    )
    cancelled, _ = revise(
        counted, protocol, Cancel(today, "moved away"), context=context, today=today, at=at
    )
    assert stopped.progress.stopped_on and cancelled.progress.cancelled_on
    for plan in (made, counted, stopped, cancelled):
        assert_same_json(plan)
        assert_same_ics(plan, FeedOptions(reminder_minutes=15))


@pytest.mark.parametrize(
    "bmi", [17.0, 1e-05, 0.0001, 123456789.125, 1e16, float("inf"), float("nan")]
)
def test_json_floats_orjson_would_spell_differently_take_the_stdlib(bmi: float) -> None:
    plan = make_plan(
        PlanRequest(
            diagnosis_date=date(2026, 11, 2),
            injury=classify(site="femoral_neck", type="compression"),
            risk_assessment=RiskAssessment(bmi=18.0),
        ),
        shipped_catalog(),
        plan_id="plan-1",
        created_at=datetime(2026, 11, 2, 8, tzinfo=UTC),
    )
    triad = plan.selection.triad
    assert triad is not None
    odd = replace(
        plan,
        selection=replace(plan.selection, triad=replace(triad, inputs=RiskAssessment(bmi=bmi))),
    )
    expected = to_json.dumps(to_json.render_reference(odd))
    assert to_json.render_bytes(odd) == expected
    assert json.dumps(bmi).encode() in expected


class _Point:
    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


class _Inner(Schema):
    n = fields.Integer(data_key="number")
    when = fields.DateTime(format="%Y")
    plucked = fields.Method("pluck")

    def pluck(self, obj: Any) -> str:
        return "m"


class _Hooked(Schema):
    a = fields.String()

    @post_dump
    def shout(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        return {k: v.upper() for k, v in data.items()}


class _Outer(Schema):
    name = fields.String()
    deep = fields.Integer(attribute="inner.n")
    inner = fields.Nested(_Inner)
    many = fields.List(fields.Nested(_Inner(only=("n",))))
    hooked = fields.Nested(_Hooked, allow_none=True)
    flag = fields.Boolean(dump_default=True)
    missing_one = fields.String()
    raw = fields.Raw()
    constant = fields.Constant(3)
    ratio = fields.Float()


@pytest.mark.parametrize(
    "obj",
    [
        _Point(
            name="x",
            inner=_Point(n=True, when=datetime(2020, 1, 2)),
            many=[_Point(n=2.9), {"n": 4}],
            hooked=_Point(a="hi"),
            raw=(1, 2),
            ratio=2,
        ),
        {"name": 1, "inner": None, "many": [], "hooked": None, "flag": 0, "raw": None},
        _Point(name=None, inner=_Point(n=None, when=None), many=(), hooked=None),
    ],
)
def test_the_compiler_agrees_with_marshmallow_beyond_the_plan_schema(obj: Any) -> None:
    schema = _Outer()
    assert to_json.compile_dumper(schema)(obj) == schema.dump(obj)
    many = _Outer(many=True)
    assert to_json.compile_dumper(many)([obj, obj]) == many.dump([obj, obj])
