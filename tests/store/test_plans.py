"""Plans: round trips, organisation scoping, paging, atomic adds, surviving a restart."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.store import DuplicatePlanError, PlanRecord, Store, strong_etag

from .conftest import T0, Database, make_plan


def test_add_and_get_round_trip_exactly(store: Store) -> None:
    ics = b"BEGIN:VCALENDAR\r\nSUMMARY:Run/walk 2:4 \xc3\x97 5\r\nEND:VCALENDAR\r\n\x00\xff"
    plan = make_plan(1, ics=ics, etag=strong_etag(ics))

    store.add_plan(plan)
    loaded = store.get_plan("acme", plan.id)

    assert loaded == plan
    assert loaded is not None
    assert loaded.ics == ics and type(loaded.ics) is bytes
    assert loaded.document == plan.document and type(loaded.document) is bytes
    assert loaded.request == plan.request


def test_datetimes_come_back_aware_utc_even_when_stored_from_another_zone(store: Store) -> None:
    local = datetime(2026, 11, 20, 7, 0, 0, 123456, tzinfo=ZoneInfo("America/New_York"))
    store.add_plan(make_plan(1, created_at=local, updated_at=local + timedelta(days=1)))

    loaded = store.get_plan("acme", make_plan(1).id)

    assert loaded is not None
    assert loaded.created_at == datetime(2026, 11, 20, 12, 0, 0, 123456, tzinfo=UTC)
    assert loaded.created_at.tzinfo is UTC
    assert loaded.updated_at.utcoffset() == timedelta(0)


def test_naive_datetimes_are_refused(store: Store, database: Database) -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        store.add_plan(make_plan(1, created_at=datetime(2026, 11, 20, 7, 0)))
    assert database.count("plans") == 0


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    moment=st.datetimes(
        min_value=datetime(1970, 1, 2),
        max_value=datetime(2200, 1, 1),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=-3, minutes=-30)), ZoneInfo("Europe/Berlin")]
        ),
    )
)
def test_any_aware_instant_round_trips(store: Store, moment: datetime) -> None:
    # One database serves all examples (and Hypothesis may repeat one): ids must not clash.
    plan = make_plan(1, id=str(uuid.uuid4()), created_at=moment)
    store.add_plan(plan)
    loaded = store.get_plan("acme", plan.id)
    assert loaded is not None
    # Compare in UTC: Python never calls inter-zone datetimes in a DST fold equal.
    assert loaded.created_at == moment.astimezone(UTC)
    assert loaded.created_at.tzinfo is UTC


def test_nullable_athlete_reference(store: Store) -> None:
    store.add_plan(make_plan(1, athlete_reference=None))
    loaded = store.get_plan("acme", make_plan(1).id)
    assert loaded is not None and loaded.athlete_reference is None


def test_other_organisation_gets_none(store: Store) -> None:
    plan = make_plan(1)
    store.add_plan(plan)
    assert store.get_plan("globex", plan.id) is None
    assert store.get_plan("acme", "no-such-plan") is None
    assert store.list_plans("globex", limit=10, offset=0) == ([], 0)


def test_list_pages_newest_first_with_total(store: Store) -> None:
    # Insert out of order, with two plans sharing a created_at (ties break by id, descending).
    numbers = [3, 1, 5, 2, 4, 6]
    for n in numbers:
        created = T0 + timedelta(minutes=min(n, 5))  # 5 and 6 tie
        store.add_plan(make_plan(n, created_at=created))
    store.add_plan(make_plan(99, organisation="globex"))

    expected = [make_plan(n).id for n in [6, 5, 4, 3, 2, 1]]
    pages = [store.list_plans("acme", limit=4, offset=offset) for offset in (0, 4, 8)]

    assert [total for _, total in pages] == [6, 6, 6]
    assert [len(records) for records, _ in pages] == [4, 2, 0]
    assert [r.id for records, _ in pages for r in records] == expected
    assert all(r.organisation == "acme" for records, _ in pages for r in records)


def test_keyset_pages_follow_the_listing_order_and_ignore_newer_plans(store: Store) -> None:
    # Ties on created_at (broken by id, descending) and instants a microsecond apart.
    tick = timedelta(microseconds=1)
    moments = [T0, T0, T0 + tick, T0 + tick, T0 + timedelta(seconds=1)]
    for number, moment in enumerate(moments, start=1):
        store.add_plan(make_plan(number, created_at=moment))

    seen: list[str] = []
    before: tuple[datetime, str] | None = None
    while page := store.list_plans("acme", limit=2, offset=0, before=before)[0]:
        seen += [plan.id for plan in page]
        before = (page[-1].created_at, page[-1].id)
        store.add_plan(make_plan(10 + len(seen), created_at=T0 + timedelta(days=1)))

    assert seen == [make_plan(number).id for number in (5, 4, 3, 2, 1)]


def test_list_filters_by_the_requests_external_id(store: Store) -> None:
    for number, external_id in [(1, "ext-1"), (2, "ext-2"), (3, None)]:
        request = {"external_id": external_id} if external_id else {"other": "ext-1"}
        store.add_plan(make_plan(number, request=request))

    records, total = store.list_plans("acme", limit=10, offset=0, external_id="ext-1")

    assert ([r.id for r in records], total) == ([make_plan(1).id], 1)
    assert store.list_plans("acme", limit=10, offset=0, external_id="nope") == ([], 0)


def test_list_with_zero_limit_counts_only(store: Store) -> None:
    for n in range(1, 4):
        store.add_plan(make_plan(n))
    assert store.list_plans("acme", limit=0, offset=0) == ([], 3)


@pytest.mark.parametrize(("limit", "offset"), [(-1, 0), (10, -1)])
def test_list_rejects_negative_paging(store: Store, limit: int, offset: int) -> None:
    with pytest.raises(ValueError):
        store.list_plans("acme", limit=limit, offset=offset)


def test_duplicate_id_leaves_database_unchanged(store: Store, database: Database) -> None:
    original = make_plan(1)
    store.add_plan(original)

    with pytest.raises(DuplicatePlanError) as raised:
        store.add_plan(replace(original, organisation="globex", document=b"other", revision=2))

    assert raised.value.plan_id == original.id
    assert database.count("plans") == 1
    assert store.get_plan("acme", original.id) == original
    assert store.get_plan("globex", original.id) is None


def test_unserialisable_request_stores_nothing(store: Store, database: Database) -> None:
    with pytest.raises(TypeError):
        store.add_plan(make_plan(1, request={"when": object()}))
    assert database.count("plans") == 0
    store.add_plan(make_plan(1))  # the store is still usable afterwards
    assert database.count("plans") == 1


def test_data_survives_reopening_the_store(
    open_store: Callable[[], Store], plan_factory: Callable[..., PlanRecord]
) -> None:
    first = open_store()
    first.upgrade()
    plans = [plan_factory(n) for n in range(1, 4)]
    for plan in plans:
        first.add_plan(plan)
    key, secret = first.create_key("ci", "acme")
    first.dispose()  # the process stops

    second = open_store()  # ... and starts again on the same file
    second.upgrade()

    assert [second.get_plan("acme", p.id) for p in plans] == plans
    assert second.list_plans("acme", limit=10, offset=0)[1] == 3
    found = second.authenticate(secret)
    assert found is not None and found.id == key.id


def test_new_fields_default_for_old_callers(store: Store) -> None:
    # A record built the way callers built them before revisions (no feed fields at all).
    old_style = replace(make_plan(1), last_modified=None)
    store.add_plan(old_style)

    loaded = store.get_plan("acme", old_style.id)

    assert loaded is not None
    assert loaded.last_modified == old_style.updated_at  # stored from updated_at
    assert loaded == replace(old_style, last_modified=old_style.updated_at)
    assert (loaded.settings, loaded.protocol_snapshot) == ({}, {})
    assert loaded.feed_token is loaded.busy_ics is loaded.confirmed_at is None
