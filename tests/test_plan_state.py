"""The persisted plan state (``planner.service.state``) and the write path that resumes from it.

* encode → decode gives back exactly the plan — same types (a ``StrEnum`` member is equal
  to its string, so ``==`` alone would not notice), same time zones, same folds — for
  random plans of every pathway, before and after random check-ins, gates and
  cancellations, all-day and timed, in zones with DST;
* a plan written N times through the state path stores, revision by revision, the same
  document, calendars and event decisions as the same writes with a replay every time;
* a state that is missing, stale, from another model shape or corrupt is ignored: the
  write replays the events and gives the same result.
"""

from __future__ import annotations

import dataclasses
import doctest
import itertools
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from planner.catalog import protocol_from_document
from planner.domain.errors import InvalidInjury, InvalidProtocol, PlannerError
from planner.domain.model import (
    EnergyAvailability,
    GradingSystem,
    Plan,
    PlanRequest,
    PlanStatus,
    Preferences,
    Protocol,
    RiskAssessment,
    RiskFactor,
    SessionKind,
    SessionStatus,
    Site,
    Step,
    Weekday,
)
from planner.domain.planning import planning_context
from planner.domain.progress import Cancel, CheckIn, Gate, revise
from planner.schemas.api import PlanCreateSchema
from planner.service import Planner
from planner.service import state as plan_state
from planner.service.cache import RecentPlans, SnapshotProtocols
from planner.service.rendering import encode_state
from planner.store import PlanRecord, Store
from planner.store.models import PlanRow
from tests.builders import injury, plan, shipped_catalog
from tests.clock import Clock
from tests.domain.test_progress_properties import TIME_ZONES, conservative_requests

# ----------------------------------------------------------------------------- helpers


def assert_identical(a: Any, b: Any, path: str = "plan") -> None:
    """``a == b``, and the same in every way a renderer could see: types all the way
    down (``Site.FIBULA == "fibula"``), time zones and folds."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} != {type(b).__name__}"
    if dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            assert_identical(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
    elif isinstance(a, tuple):
        assert len(a) == len(b), f"{path}: {len(a)} != {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_identical(x, y, f"{path}[{i}]")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"
        if isinstance(a, datetime):
            assert a.fold == b.fold, path
            assert type(a.tzinfo) is type(b.tzinfo), path
            assert a.tzinfo == b.tzinfo, path
            assert a.utcoffset() == b.utcoffset(), path
            assert a.tzname() == b.tzname(), path


def round_trip(made: Plan) -> Plan:
    blob = plan_state.encode(made)
    back = plan_state.decode(blob)
    assert_identical(made, back)
    assert plan_state.encode(back) == blob  # and stable
    return back


def _protocol(made: Plan) -> Protocol:
    return shipped_catalog().get(made.protocol.id)


# ----------------------------------------------------------------------------- strategies

WIDE_SITES = [s for s in Site if s is not Site.FEMORAL_NECK]
#: What a JSON request can carry (lone surrogates cannot be stored: see the test below).
_TEXT = st.characters(blacklist_categories=("Cs",))


@st.composite
def risk_assessments(draw: st.DrawFn) -> RiskAssessment | None:
    if draw(st.booleans()):
        return None
    maybe = st.none
    return RiskAssessment(
        energy_availability=draw(st.one_of(maybe(), st.sampled_from(list(EnergyAvailability)))),
        bmi=draw(st.one_of(maybe(), st.floats(14, 30, allow_nan=False))),
        weight_loss_pct_month=draw(st.one_of(maybe(), st.floats(0, 15, allow_nan=False))),
        menarche_age=draw(st.one_of(maybe(), st.floats(9, 18, allow_nan=False))),
        menses_last_12_months=draw(st.one_of(maybe(), st.integers(0, 13))),
        bmd_z_score=draw(st.one_of(maybe(), st.floats(-3, 2, allow_nan=False))),
        prior_bsi_count=draw(st.one_of(maybe(), st.integers(0, 3))),
        prior_high_risk_bsi=draw(st.one_of(maybe(), st.booleans())),
    )


@st.composite
def wide_requests(draw: st.DrawFn) -> PlanRequest:
    """Requests for any site and pathway (referrals too), with or without a Triad CRA."""
    femoral = draw(st.booleans())
    fields: dict[str, object] = {
        "site": "femoral_neck" if femoral else draw(st.sampled_from(WIDE_SITES)).value,
        "laterality": draw(st.sampled_from([None, "left", "right"])),
        "mri_grade": draw(st.one_of(st.none(), st.integers(1, 4))),
    }
    if femoral:
        fields["type"] = draw(st.sampled_from(["compression", "tension"]))
        fields["fracture_line_pct"] = draw(st.one_of(st.none(), st.integers(0, 100)))
        fields["displaced"] = draw(st.sampled_from([None, False, True]))
    elif draw(st.booleans()):
        fields["grading_system"] = draw(st.sampled_from(list(GradingSystem))).value
    try:
        injured = injury(**fields) if femoral else _classified(fields)
    except InvalidInjury:
        assume(False)
        raise
    diagnosis = draw(st.dates(date(2021, 1, 1), date(2035, 12, 31)))
    run_days = draw(st.sets(st.sampled_from(list(Weekday)), min_size=1))
    return PlanRequest(
        diagnosis_date=diagnosis,
        start_date=draw(st.one_of(st.none(), st.just(diagnosis + timedelta(days=2)))),
        injury=injured,
        risk_factors=tuple(draw(st.sets(st.sampled_from(list(RiskFactor)), max_size=3))),
        preferences=Preferences(
            run_days=tuple(sorted(run_days, key=lambda d: d.iso_index)),
            session_time=draw(st.sampled_from([None, "00:30", "02:30", "07:00", "23:59"])),
            timezone=draw(st.sampled_from(TIME_ZONES)),
        ),
        risk_assessment=draw(risk_assessments()),
        external_id=draw(st.one_of(st.none(), st.text(_TEXT, min_size=1, max_size=8))),
    )


def _classified(fields: dict[str, object]) -> Any:
    from planner.domain.injury import classify

    return classify(**{k: v for k, v in fields.items() if v is not None})


def _at(today: date, step: int) -> datetime:
    return datetime.combine(today, time(12), UTC) + timedelta(seconds=step)


@st.composite
def revised_plans(draw: st.DrawFn) -> list[Plan]:
    """A random plan and every revision random events make of it."""
    request = draw(st.one_of(conservative_requests(), wide_requests()))
    try:
        made = plan(request)
    except PlannerError:
        assume(False)
        raise
    revisions = [made]
    protocol = _protocol(made)
    context = planning_context(request.injury, made.selection)
    today = made.start_date + timedelta(days=draw(st.integers(0, 120)))
    for step in range(draw(st.integers(1, 12))):
        if made.status is not PlanStatus.ACTIVE:
            break
        today += timedelta(days=draw(st.integers(0, 9)))
        past = [s for s in made.sessions if s.date <= today]
        kind = draw(st.sampled_from(["check_in"] * 6 + ["gate"] * 3 + ["cancel"]))
        if kind == "check_in" and past:
            session = draw(st.sampled_from(past[-8:]))
            pains = st.sampled_from([0, 0, 0, 1, 3])
            event: CheckIn | Gate | Cancel = CheckIn(
                session_uid=session.uid,
                pain_during=draw(pains),
                pain_after=draw(pains),
                completed=draw(st.booleans()),
            )
        elif kind == "gate":
            # Mostly the review that is due (how plans move on), now and then any phase.
            due = [
                p.key
                for p in made.phases
                if p.end_date <= today and made.progress.met_on(p.key) is None
            ]
            phases = due[:1] if due and draw(st.booleans()) else [p.key for p in made.phases]
            phase = draw(st.sampled_from(phases))
            event = Gate(phase, draw(st.booleans()), today, ("criteria met",), 7, "note")
        else:
            event = Cancel(today, "stopped")
        try:
            made, _ = revise(
                made, protocol, event, context=context, today=today, at=_at(today, step)
            )
        except PlannerError:
            continue
        revisions.append(made)
    return revisions


# ----------------------------------------------------------------------------- round trips


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(revised_plans())
def test_every_revision_of_random_plans_round_trips_exactly(revisions: list[Plan]) -> None:
    for made in revisions:
        round_trip(made)


def test_timed_sessions_keep_their_zone_across_dst() -> None:
    for zone in ("America/New_York", "Europe/Berlin", "Australia/Sydney", "Pacific/Chatham"):
        made = plan(
            prefs=Preferences(session_time="02:30", timezone=zone),
            diagnosis_date=date(2026, 9, 7),
        )
        back = round_trip(made)
        timed = [s for s in back.sessions if s.start is not None]
        assert timed and all(s.start.tzinfo is ZoneInfo(zone) for s in timed)
        offsets = {s.start.utcoffset() for s in timed}
        assert len(offsets) == 2, f"{zone}: the plan should cross a DST change"


def test_all_day_sessions_round_trip() -> None:
    made = plan(prefs=Preferences(session_time=None, timezone="Asia/Kolkata"))
    assert all(s.start is None for s in made.sessions)
    round_trip(made)


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 11, 1, 1, 30, tzinfo=ZoneInfo("America/New_York")),  # EDT, fold 0
        datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=ZoneInfo("America/New_York")),  # EST
        datetime(2026, 3, 8, 2, 30, tzinfo=ZoneInfo("America/New_York")),  # skipped hour
        datetime(2026, 3, 8, 2, 30, fold=1, tzinfo=ZoneInfo("America/New_York")),
        datetime(2027, 4, 4, 2, 45, fold=1, tzinfo=ZoneInfo("Pacific/Chatham")),
        datetime(2026, 11, 2, 7, 0, 0, 123456, tzinfo=ZoneInfo("UTC")),
        datetime(2026, 11, 2, 7, tzinfo=UTC),
        datetime(2026, 11, 2, 7, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(1890, 1, 1, 12, tzinfo=ZoneInfo("Europe/Amsterdam")),  # LMT, seconds offset
        datetime(2026, 11, 2, 7),
    ],
)
def test_datetimes_round_trip_with_zone_offset_and_fold(value: datetime) -> None:
    text = plan_state.encode_datetime(value)
    back = plan_state.decode_datetime(text)
    assert_identical(value, back, text)
    if isinstance(value.tzinfo, ZoneInfo):
        assert text.endswith(f"[{value.tzinfo.key}]")


def test_rfc_9557_form() -> None:
    value = datetime(2026, 11, 2, 7, tzinfo=ZoneInfo("America/New_York"))
    assert plan_state.encode_datetime(value) == "2026-11-02T07:00:00-05:00[America/New_York]"


def test_unknown_time_zone_kinds_are_refused() -> None:
    named = timezone(timedelta(hours=1), "CET")  # the name would be lost
    with pytest.raises(TypeError):
        plan_state.encode_datetime(datetime(2026, 1, 1, tzinfo=named))


def test_the_examples_in_plan_state_hold() -> None:
    # planner/ outside planner/domain is not collected for doctests: run these here.
    results = doctest.testmod(plan_state, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert results.attempted >= 4 and results.failed == 0


# ----------------------------------------------------------------------------- fingerprint


def test_the_fingerprint_follows_the_model_shape() -> None:
    def toy(*fields: tuple[Any, ...]) -> type:
        return dataclasses.make_dataclass("Toy", list(fields), frozen=True)

    base = plan_state.fingerprint(toy(("a", int), ("b", str, dataclasses.field(default=""))))
    assert base == plan_state.fingerprint(
        toy(("a", int), ("b", str, dataclasses.field(default="")))
    )
    for changed in (
        toy(("a", int), ("c", str, dataclasses.field(default=""))),  # renamed
        toy(("a", float), ("b", str, dataclasses.field(default=""))),  # retyped
        toy(("a", int), ("b", str, dataclasses.field(default="x"))),  # new default
        toy(("a", int), ("b", str | None, dataclasses.field(default=""))),
        toy(("a", int)),  # removed
    ):
        assert plan_state.fingerprint(changed) != base
    assert "Site{FEMORAL_NECK='femoral_neck'" in plan_state.shape(Plan)
    assert plan_state.FINGERPRINT == plan_state.fingerprint(Plan)


def test_a_blob_of_another_shape_or_a_corrupt_one_is_refused() -> None:
    made = plan()
    blob = plan_state.encode(made)
    document = orjson.loads(blob)
    foreign = orjson.dumps({**document, "fingerprint": "0" * 24})
    bad_enum = blob.replace(b'"status":"active"', b'"status":"paused"')
    missing_field = orjson.dumps({**document, "plan": {**document["plan"], "phases": None}})
    for unusable in (foreign, bad_enum, missing_field, blob[:-20], b"\x00garbage", b"[]"):
        with pytest.raises(plan_state.UnusableState):
            plan_state.decode(unusable)
        args = {"plan_id": made.id, "revision": 1, "updated_at": made.updated_at}
        assert plan_state.resume(unusable, **args) is None


def test_resume_wants_the_exact_revision() -> None:
    made = plan()
    blob = plan_state.encode(made)
    at = made.updated_at
    assert plan_state.resume(blob, plan_id=made.id, revision=1, updated_at=at) == made
    assert plan_state.resume(blob, plan_id="other", revision=1, updated_at=at) is None
    assert plan_state.resume(blob, plan_id=made.id, revision=2, updated_at=at) is None
    later = at + timedelta(seconds=1)
    assert plan_state.resume(blob, plan_id=made.id, revision=1, updated_at=later) is None
    assert plan_state.resume(None, plan_id=made.id, revision=1, updated_at=at) is None


def test_the_codec_refuses_types_it_does_not_know() -> None:
    @dataclasses.dataclass
    class Odd:
        value: Path

    with pytest.raises(TypeError, match="does not know"):
        plan_state._make_converter(Odd)
    assert plan_state.leaf_types(Step) == {int, str}


# ----------------------------------------------------------------------------- caches


def test_recent_plans_answer_only_for_the_revision_read() -> None:
    recent = RecentPlans(maxsize=2)
    made = plan()
    recent.put(made)
    assert recent.get(made.id, 1, made.updated_at) is made
    # The same instant in another zone is the same commit.
    assert recent.get(made.id, 1, made.updated_at.astimezone(ZoneInfo("Asia/Tokyo"))) is made
    assert recent.get(made.id, 2, made.updated_at) is None
    assert recent.get(made.id, 1, made.updated_at + timedelta(microseconds=1)) is None
    recent.put(replace(made, id="b"))
    recent.put(replace(made, id="c"))
    assert len(recent) == 2 and recent.get(made.id, 1, made.updated_at) is None
    assert RecentPlans(maxsize=0).get(made.id, 1, made.updated_at) is None


def test_snapshot_protocols_reuse_the_catalog_and_cache_by_content() -> None:
    catalog = shipped_catalog()
    protocols = SnapshotProtocols(maxsize=4)
    some = catalog.protocols[0]
    document = catalog.document(some.id)
    assert protocols.get(catalog, dict(document), some.id) is some
    edited = {**document, "title": "An older edition"}
    parsed = protocols.get(catalog, edited, some.id)
    assert parsed == protocol_from_document(edited, some.id) and parsed.title == "An older edition"
    assert protocols.get(catalog, dict(edited), some.id) is parsed  # by content
    with pytest.raises(InvalidProtocol):
        protocols.get(catalog, {"id": "broken"}, "broken")


# ----------------------------------------------------------------------------- service


class Ids:
    """Deterministic ids and tokens, so two planners make byte-identical plans."""

    def __init__(self) -> None:
        self._tokens = itertools.count()

    def token(self) -> str:
        return f"token-{next(self._tokens):04d}"


class CountingPlanner(Planner):
    """The real write path, counting how often it had to replay."""

    replays = 0

    def _replay(self, record: PlanRecord, protocol: Protocol) -> Plan:
        self.replays += 1
        return super()._replay(record, protocol)


class ReplayingPlanner(Planner):
    """The write path as it was: every write replays the whole event log."""

    def _current(self, record: PlanRecord, *, state_loaded: bool) -> tuple[Plan, Protocol]:
        protocol = protocol_from_document(record.protocol_snapshot, record.protocol_id)
        made = self._replay(record, protocol)
        return replace(made, revision=record.revision, updated_at=record.updated_at), protocol


ORG = "acme"
PLAN_ID = "00000000-0000-4000-8000-00000000abcd"
_EXAMPLES = itertools.count()


@pytest.fixture
def open_planner(tmp_path: Path) -> Iterator[Callable[..., Planner]]:
    stores: list[Store] = []

    def open_(cls: type[Planner], clock: Clock, name: str, **kw: Any) -> Planner:
        store = Store(f"sqlite:///{tmp_path / name}.sqlite3")
        store.upgrade()
        stores.append(store)
        ids = Ids()
        return cls(
            catalog=shipped_catalog(),
            store=store,
            clock=clock,
            new_id=lambda: PLAN_ID,
            new_token=ids.token,
            **kw,
        )

    yield open_
    for store in stores:
        store.dispose()


def payload(
    diagnosis: date, *, zone: str = "America/New_York", session_time: str | None = "07:00"
) -> dict[str, Any]:
    return PlanCreateSchema().load(
        {
            "diagnosis_date": diagnosis.isoformat(),
            "timezone": zone,
            "athlete": {"reference": "clinic-1", "name": "A. Runner"},
            "injury": {
                "site": "femoral_neck",
                "type": "compression",
                "laterality": "left",
                "fracture_line_pct": 20,
            },
            "risk_factors": ["female"],
            "schedule": {"run_days": ["MO", "WE", "FR"], "session_time": session_time},
            "feed": {"busy": True},
        }
    )


Action = tuple[str, Any]


def act(planner: Planner, action: Action) -> tuple[str, Any]:
    """Run one write; what it stored (or which error it refused with)."""
    kind, arg = action
    try:
        if kind == "check_in":
            result = planner.check_in(ORG, PLAN_ID, arg)
            record, event = result.record, result.event
            return "ok", (record, (event.seq, event.kind, event.payload, event.decision))
        if kind == "gate":
            phase, body = arg
            result = planner.gate(ORG, PLAN_ID, phase, body)
            return "ok", (result.record, (result.event.seq, result.event.decision))
        if kind == "cancel":
            return "ok", (planner.cancel(ORG, PLAN_ID, {"reason": arg}).record, None)
        if kind == "confirm":
            return "ok", (planner.confirm(ORG, PLAN_ID), None)
        if kind == "rotate":
            return "ok", (planner.rotate_feed(ORG, PLAN_ID), None)
        if kind == "configure":
            return "ok", (planner.configure_feed(ORG, PLAN_ID, arg), None)
    except PlannerError as refused:
        return "refused", (type(refused).__name__, refused.detail)
    raise AssertionError(kind)


def assert_same_write(mine: tuple[str, Any], theirs: tuple[str, Any]) -> None:
    assert mine[0] == theirs[0], (mine, theirs)
    if mine[0] == "refused":
        assert mine == theirs
        return
    (record, extra), (expected, expected_extra) = mine[1], theirs[1]
    assert extra == expected_extra
    for name in ("revision", "status", "document", "ics", "etag", "busy_ics", "request"):
        assert getattr(record, name) == getattr(expected, name), name
    assert record == expected


def drive(
    actions: list[tuple[int, Action]], clock: Clock, *planners: Planner
) -> list[tuple[str, Any]]:
    """Run the same writes on every planner, days apart; check each gave the same."""
    outcomes = []
    for days, action in actions:
        clock.now += timedelta(days=days, minutes=7)
        results = [act(p, action) for p in planners]
        for other in results[1:]:
            assert_same_write(results[0], other)
        outcomes.append(results[0])
    return outcomes


def past_uids(planner: Planner, now: datetime) -> list[str]:
    document = orjson.loads(planner.get_plan(ORG, PLAN_ID).document)
    return [s["uid"] for s in document["sessions"] if date.fromisoformat(s["date"]) <= now.date()]


def history(clock: Clock, planner: Planner) -> list[tuple[int, Action]]:
    """A long, varied sequence of writes (many check-ins, gates, feed changes)."""
    uids = past_uids(planner, clock.now)
    actions: list[tuple[int, Action]] = []
    for n, uid in enumerate(uids[:30]):
        pain = [0, 0, 0, 1, 0, 3][n % 6]
        actions.append((0, ("check_in", {"session_uid": uid, "pain_during": pain})))
        if n == 5:
            actions.append((0, ("confirm", None)))
        if n == 11:
            actions.append((0, ("configure", {"detail": "full", "busy": True})))
        if n == 17:
            actions.append((0, ("rotate", None)))
    actions.append((1, ("gate", ("non_weight_bearing", {"met": True, "criteria": ["ok"]}))))
    actions.append((0, ("gate", ("nowhere", {"met": True}))))  # refused by both
    actions.append((3, ("check_in", {"on": date(2000, 1, 1)})))  # refused by both
    actions.append((2, ("gate", ("protected_weight_bearing", {"met": False}))))
    return actions


@pytest.mark.parametrize("recent_size", [0, 64], ids=["decode-every-write", "recent-plans"])
def test_writes_through_the_state_store_what_replaying_stores(
    open_planner: Callable[..., Planner], recent_size: int
) -> None:
    start = datetime(2026, 10, 1, 15, tzinfo=UTC)
    clock = Clock(start)
    state_path = open_planner(CountingPlanner, clock, "state", recent=RecentPlans(recent_size))
    replaying = open_planner(ReplayingPlanner, clock, "replay")
    body = payload(start.date() - timedelta(days=40))
    for p in (state_path, replaying):
        p.create_plan(ORG, body)

    outcomes = drive(history(clock, state_path), clock, state_path, replaying)

    assert sum(1 for status, _ in outcomes if status == "ok") >= 30
    assert {status for status, _ in outcomes} == {"ok", "refused"}
    assert isinstance(state_path, CountingPlanner) and state_path.replays == 0
    # Every revision's document, and the state itself, are the same on both.
    mine, theirs = state_path.store, replaying.store
    assert mine.list_revisions(ORG, PLAN_ID) == theirs.list_revisions(ORG, PLAN_ID)
    assert mine.list_events(ORG, PLAN_ID) == theirs.list_events(ORG, PLAN_ID)
    current = mine.get_plan_with_state(ORG, PLAN_ID)
    assert current is not None and current.state is not None
    resumed = plan_state.decode(current.state)
    assert_identical(resumed, replaying.load(theirs.get_plan(ORG, PLAN_ID) or current))
    # A fresh process (nothing in memory) loads the same plan from the state alone.
    fresh = CountingPlanner(catalog=shipped_catalog(), store=mine, clock=clock)
    assert_identical(fresh.load(mine.get_plan(ORG, PLAN_ID) or current), resumed)
    assert isinstance(fresh, CountingPlanner) and fresh.replays == 0


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    data=st.data(),
    zone=st.sampled_from(["America/New_York", "Europe/Berlin", "Australia/Sydney", "UTC"]),
    session_time=st.sampled_from([None, "02:30", "07:00"]),
    age=st.integers(0, 90),
)
def test_random_writes_store_the_same_with_and_without_replay(
    open_planner: Callable[..., Planner],
    data: st.DataObject,
    zone: str,
    session_time: str | None,
    age: int,
) -> None:
    start = datetime(2027, 3, 20, 9, tzinfo=UTC)
    clock = Clock(start)
    name = f"example-{next(_EXAMPLES)}"
    state_path = open_planner(Planner, clock, f"s-{name}", recent=RecentPlans(0))
    replaying = open_planner(ReplayingPlanner, clock, f"r-{name}")
    body = payload(start.date() - timedelta(days=age), zone=zone, session_time=session_time)
    for p in (state_path, replaying):
        p.create_plan(ORG, body)
    for _ in range(data.draw(st.integers(1, 14), label="writes")):
        uids = past_uids(state_path, clock.now) or ["none"]
        phases = [
            p["key"] for p in orjson.loads(state_path.get_plan(ORG, PLAN_ID).document)["phases"]
        ]
        action: Action = data.draw(
            st.one_of(
                st.builds(
                    lambda uid, pain, flags: (
                        "check_in",
                        {"session_uid": uid, "pain_after": pain, "red_flags": flags},
                    ),
                    st.sampled_from(uids[-6:]),
                    st.sampled_from([0, 0, 1, 4]),
                    st.sampled_from([[]] * 12 + [["night_pain"]]),
                ),
                st.builds(
                    lambda phase, met: ("gate", (phase, {"met": met, "extend_days": 5})),
                    st.sampled_from(phases),
                    st.booleans(),
                ),
                st.sampled_from([("confirm", None), ("rotate", None), ("cancel", "done")]),
            ),
            label="action",
        )
        days = data.draw(st.integers(0, 6), label="days")
        drive([(days, action)], clock, state_path, replaying)
    # The feed after the cancelled grace period is re-rendered from the plan, too.
    clock.now += timedelta(days=30)
    for token_planner in (state_path, replaying):
        token = token_planner.get_plan(ORG, PLAN_ID).feed_token
        if token is not None:
            token_planner.feed(token)
    mine, theirs = state_path.get_plan(ORG, PLAN_ID), replaying.get_plan(ORG, PLAN_ID)
    assert mine == theirs
    # Not only the same bytes: the very same domain plan.
    assert_identical(state_path.load(mine), replaying.load(theirs))


# ----------------------------------------------------------------------------- fallbacks


def _set_state(store: Store, blob: bytes | None) -> None:
    with store.engine.begin() as connection:
        connection.execute(update(PlanRow).where(PlanRow.id == PLAN_ID).values(state=blob))


def _unusable_states(current: bytes, older: bytes) -> dict[str, bytes | None]:
    document = orjson.loads(current)
    return {
        "missing": None,
        "stale": older,
        "foreign-fingerprint": orjson.dumps({**document, "fingerprint": "f" * 24}),
        "corrupt": b"\x00\x01 not json",
        "truncated": current[: len(current) // 2],
        "undecodable": current.replace(b'"kind":"strength"', b'"kind":"yoga"'),
        "other-plan": orjson.dumps({**document, "plan": {**document["plan"], "id": "x"}}),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "stale",
        "foreign-fingerprint",
        "corrupt",
        "truncated",
        "undecodable",
        "other-plan",
    ],
)
def test_an_unusable_state_falls_back_to_replaying_the_events(
    open_planner: Callable[..., Planner], case: str
) -> None:
    start = datetime(2026, 10, 1, 15, tzinfo=UTC)
    clock = Clock(start)
    tampered = open_planner(CountingPlanner, clock, "tampered", recent=RecentPlans(0))
    control = open_planner(ReplayingPlanner, clock, "control")
    for p in (tampered, control):
        p.create_plan(ORG, payload(start.date() - timedelta(days=40)))
    uids = past_uids(tampered, clock.now)
    drive([(0, ("check_in", {"session_uid": uids[0]}))], clock, tampered, control)
    older = tampered.store.get_plan_state(ORG, PLAN_ID)
    drive([(0, ("check_in", {"session_uid": uids[1]}))], clock, tampered, control)
    current = tampered.store.get_plan_state(ORG, PLAN_ID)
    assert older is not None and current is not None and older != current
    assert b'"kind":"strength"' in current
    blob = _unusable_states(current, older)[case]
    _set_state(tampered.store, blob)
    assert isinstance(tampered, CountingPlanner) and tampered.replays == 0

    drive([(1, ("check_in", {"session_uid": uids[2], "pain_after": 1}))], clock, tampered, control)

    assert tampered.replays == 1
    # The write stored a good state again: the next one resumes from it.
    drive([(0, ("check_in", {"session_uid": uids[3]}))], clock, tampered, control)
    assert tampered.replays == 1
    assert tampered.get_plan(ORG, PLAN_ID) == control.get_plan(ORG, PLAN_ID)


def test_plans_made_before_the_state_column_are_replayed_once(
    open_planner: Callable[..., Planner],
) -> None:
    clock = Clock(datetime(2026, 10, 1, 15, tzinfo=UTC))
    planner = open_planner(CountingPlanner, clock, "old")
    planner.create_plan(ORG, payload(clock.now.date() - timedelta(days=20)))
    _set_state(planner.store, None)
    planner.recent = RecentPlans()  # a restarted process
    uids = past_uids(planner, clock.now)
    for uid in uids[:3]:
        planner.check_in(ORG, PLAN_ID, {"session_uid": uid})
    assert isinstance(planner, CountingPlanner) and planner.replays == 1


def test_reads_do_not_load_the_state(open_planner: Callable[..., Planner]) -> None:
    clock = Clock(datetime(2026, 10, 1, 15, tzinfo=UTC))
    planner = open_planner(Planner, clock, "reads")
    created = planner.create_plan(ORG, payload(clock.now.date()))
    assert created.state is not None
    assert planner.get_plan(ORG, PLAN_ID).state is None
    records, _, _ = planner.list_plans(ORG, page_size=10)
    assert [r.state for r in records] == [None]
    token = created.feed_token
    assert token is not None
    assert planner.feed(token)[0].state is None
    stored = planner.store.get_plan_with_state(ORG, PLAN_ID)
    assert stored is not None and stored.state == created.state
    assert stored == created  # state takes no part in equality
    assert_identical(plan_state.decode(created.state), planner.load(stored))


def test_a_cancelled_plan_resumes_cancelled(
    open_planner: Callable[..., Planner],
) -> None:
    clock = Clock(datetime(2026, 10, 1, 15, tzinfo=UTC))
    planner = open_planner(Planner, clock, "cancel", recent=RecentPlans(0))
    planner.create_plan(ORG, payload(clock.now.date() - timedelta(days=10)))
    planner.cancel(ORG, PLAN_ID, {"reason": "done"})
    stored = planner.store.get_plan_with_state(ORG, PLAN_ID)
    assert stored is not None and stored.state is not None
    resumed = plan_state.decode(stored.state)
    assert resumed.status is PlanStatus.CANCELLED
    assert any(s.status is SessionStatus.CANCELLED for s in resumed.sessions)
    assert any(s.kind is SessionKind.REVIEW for s in resumed.sessions)


def test_a_plan_that_cannot_be_encoded_is_stored_without_state(
    caplog: pytest.LogCaptureFixture,
) -> None:
    made = plan()
    odd = replace(made, request=replace(made.request, external_id="\ud800"))
    assert encode_state(odd) is None
    assert "state not encodable" in caplog.text
    assert encode_state(made) == plan_state.encode(made)
