"""Plan revisions, the event log, optimistic updates, field updates and feed-token lookup."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from planner.store import (
    SETTABLE_PLAN_FIELDS,
    PlanMissing,
    PlanRecord,
    StaleRevision,
    Store,
    hash_secret,
    strong_etag,
)

from .conftest import T0, Database, make_event, make_plan, make_revision, next_revision

FEED = "feed-token-" + "f" * 32
BUSY = "busy-token-" + "b" * 32


def with_feeds(plan: PlanRecord, feed: str | None = FEED, busy: str | None = BUSY) -> PlanRecord:
    busy_ics = b"BEGIN:VCALENDAR\r\nX-BUSY:1\r\nEND:VCALENDAR\r\n" if busy else None
    return replace(
        plan,
        feed_token=feed,
        feed_token_hash=hash_secret(feed) if feed else None,
        busy_token=busy,
        busy_token_hash=hash_secret(busy) if busy else None,
        busy_ics=busy_ics,
        busy_etag=strong_etag(busy_ics) if busy_ics else None,
    )


@pytest.fixture
def created(store: Store) -> PlanRecord:
    """A stored plan at revision 1, with its "created" revision row and both feeds."""
    plan = with_feeds(
        make_plan(
            1,
            settings={"detail": "activity", "busy": True},
            protocol_snapshot={"id": "femoral-neck-compression", "version": "1.0.0"},
        )
    )
    store.add_plan(plan, make_revision(plan))
    return plan


# -- add_plan and the new fields -------------------------------------------------------------


def test_new_fields_round_trip(store: Store, created: PlanRecord) -> None:
    confirmed = T0 + timedelta(days=1)
    store.set_plan_fields("acme", created.id, confirmed_at=confirmed)

    loaded = store.get_plan("acme", created.id)

    assert loaded == replace(created, confirmed_at=confirmed)
    assert loaded.settings == {"detail": "activity", "busy": True}
    assert loaded.protocol_snapshot["version"] == "1.0.0"
    assert loaded.busy_ics == created.busy_ics and type(loaded.busy_ics) is bytes
    assert loaded.confirmed_at is not None and loaded.confirmed_at.tzinfo is UTC


def test_add_plan_stores_the_first_revision(store: Store, created: PlanRecord) -> None:
    (first,) = store.list_revisions("acme", created.id)
    assert first == make_revision(created)
    assert store.get_revision("acme", created.id, 1) == first
    assert store.list_events("acme", created.id) == []


def test_add_plan_with_a_foreign_revision_is_refused(store: Store, database: Database) -> None:
    plan = make_plan(1)
    with pytest.raises(ValueError, match="belongs to plan"):
        store.add_plan(plan, make_revision(make_plan(2)))
    assert database.count("plans") == 0


def test_add_plan_with_a_bad_revision_stores_neither(store: Store, database: Database) -> None:
    plan = make_plan(1)
    with pytest.raises(ValueError, match="naive datetime"):
        store.add_plan(plan, make_revision(plan, created_at=datetime(2026, 11, 20)))
    assert database.count("plans") == database.count("plan_revisions") == 0


def test_record_repr_hides_feed_tokens(created: PlanRecord) -> None:
    assert FEED not in repr(created) and BUSY not in repr(created)
    assert created.id in repr(created)


# -- update_plan -----------------------------------------------------------------------------


def test_update_plan_replaces_state_and_appends_revision_and_event(
    store: Store, created: PlanRecord
) -> None:
    new = next_revision(created, status="cancelled", feed_expires_at=T0 + timedelta(days=14))
    store.update_plan(
        new,
        expected_revision=1,
        revision=make_revision(new, kind="cancel"),
        event=make_event(new, kind="cancel", decision=None),
    )

    assert store.get_plan("acme", created.id) == new
    assert [r.revision for r in store.list_revisions("acme", created.id)] == [1, 2]
    assert store.get_revision("acme", created.id, 1) == make_revision(created)
    assert store.get_revision("acme", created.id, 2) == make_revision(new, kind="cancel")
    (event,) = store.list_events("acme", created.id)
    assert event == make_event(new, seq=1, kind="cancel", decision=None)
    assert event.today == date(2026, 11, 20) and event.recorded_at.tzinfo is UTC


def test_update_plan_keeps_identity_and_creation_time(store: Store, created: PlanRecord) -> None:
    store.update_plan(
        next_revision(created, created_at=T0 + timedelta(days=9)), expected_revision=1
    )
    loaded = store.get_plan("acme", created.id)
    assert loaded is not None and loaded.revision == 2
    assert loaded.created_at == created.created_at


def test_update_plan_without_last_modified_uses_updated_at(
    store: Store, created: PlanRecord
) -> None:
    new = next_revision(created, last_modified=None)
    store.update_plan(new, expected_revision=1)
    loaded = store.get_plan("acme", created.id)
    assert loaded is not None and loaded.last_modified == new.updated_at


def test_stale_revision_writes_nothing(
    store: Store, created: PlanRecord, database: Database
) -> None:
    second = next_revision(created)
    store.update_plan(second, expected_revision=1, revision=make_revision(second))

    late = next_revision(created, document=b"based on revision 1")  # also "revision 2"
    with pytest.raises(StaleRevision) as raised:
        store.update_plan(
            late, expected_revision=1, revision=make_revision(late), event=make_event(late)
        )

    assert (raised.value.plan_id, raised.value.expected, raised.value.current) == (
        created.id,
        1,
        2,
    )
    assert store.get_plan("acme", created.id) == second
    assert database.count("plan_revisions") == 2
    assert database.count("plan_events") == 0


def test_update_of_a_missing_plan(store: Store, database: Database) -> None:
    ghost = make_plan(7)
    with pytest.raises(PlanMissing) as raised:
        store.update_plan(ghost, expected_revision=1, revision=make_revision(ghost))
    assert raised.value.plan_id == ghost.id
    assert database.count("plans") == database.count("plan_revisions") == 0


def test_update_from_another_organisation_is_a_missing_plan(
    store: Store, created: PlanRecord
) -> None:
    intruder = next_revision(created, organisation="globex", status="cancelled")
    with pytest.raises(PlanMissing):
        store.update_plan(intruder, expected_revision=1, event=make_event(intruder))
    assert store.get_plan("acme", created.id) == created
    assert store.list_events("acme", created.id) == []


@pytest.mark.parametrize("clash", ["event seq", "revision number"])
def test_failing_insert_rolls_back_the_whole_update(
    store: Store, created: PlanRecord, database: Database, clash: str
) -> None:
    second = next_revision(created)
    store.update_plan(
        second, expected_revision=1, revision=make_revision(second), event=make_event(second)
    )
    third = next_revision(second)
    revision = make_revision(third if clash == "event seq" else second)
    event = make_event(third, seq=1 if clash == "event seq" else 0)

    with pytest.raises(IntegrityError):
        store.update_plan(third, expected_revision=2, revision=revision, event=event)

    assert store.get_plan("acme", created.id) == second
    assert [r.revision for r in store.list_revisions("acme", created.id)] == [1, 2]
    assert [e.seq for e in store.list_events("acme", created.id)] == [1]
    # ... and the plan is not left claimed: the next writer at revision 2 succeeds.
    store.update_plan(third, expected_revision=2, revision=make_revision(third))
    assert database.count("plan_revisions") == 3


def test_bad_event_value_rolls_back_the_whole_update(store: Store, created: PlanRecord) -> None:
    new = next_revision(created)
    with pytest.raises(TypeError):
        store.update_plan(
            new,
            expected_revision=1,
            revision=make_revision(new),
            event=make_event(new, payload={"at": object()}),
        )
    assert store.get_plan("acme", created.id) == created
    assert len(store.list_revisions("acme", created.id)) == 1


@pytest.mark.parametrize("what", ["revision", "event"])
def test_rows_of_another_plan_are_refused(store: Store, created: PlanRecord, what: str) -> None:
    new = next_revision(created)
    other = make_plan(2)
    extra: dict[str, Any] = (
        {"revision": make_revision(other)} if what == "revision" else {"event": make_event(other)}
    )
    with pytest.raises(ValueError, match="belongs to plan"):
        store.update_plan(new, expected_revision=1, **extra)
    assert store.get_plan("acme", created.id) == created


def test_negative_event_seq_is_refused(store: Store, created: PlanRecord) -> None:
    new = next_revision(created)
    with pytest.raises(ValueError, match="seq"):
        store.update_plan(new, expected_revision=1, event=make_event(new, seq=-1))
    assert store.get_plan("acme", created.id) == created


def test_event_seq_zero_takes_the_next_number(store: Store, created: PlanRecord) -> None:
    plan = created
    kinds = ["check_in", "gate", "check_in", "cancel"]
    for kind in kinds:
        new = next_revision(plan)
        store.update_plan(new, expected_revision=plan.revision, event=make_event(new, kind=kind))
        plan = new

    events = store.list_events("acme", created.id)
    assert [e.seq for e in events] == [1, 2, 3, 4]
    assert [e.kind for e in events] == kinds
    assert [e.revision for e in events] == [2, 3, 4, 5]


def test_explicit_event_seq_is_kept(store: Store, created: PlanRecord) -> None:
    new = next_revision(created)
    store.update_plan(new, expected_revision=1, event=make_event(new, seq=5))
    newer = next_revision(new)
    store.update_plan(newer, expected_revision=2, event=make_event(newer))
    assert [e.seq for e in store.list_events("acme", created.id)] == [5, 6]


def test_event_without_decision_is_sql_null(
    store: Store, created: PlanRecord, database: Database
) -> None:
    new = next_revision(created)
    store.update_plan(new, expected_revision=1, event=make_event(new, decision=None))
    # SQL NULL, not the JSON text 'null' (which a driver would also decode to None).
    assert database.rows("SELECT decision IS NULL FROM plan_events") == [(True,)]
    assert store.list_events("acme", created.id)[0].decision is None


def test_event_and_revision_keys_must_exist(store: Store, created: PlanRecord) -> None:
    key, _ = store.create_key("coach", "acme")
    new = next_revision(created)
    store.update_plan(
        new,
        expected_revision=1,
        revision=make_revision(new, key_id=key.id),
        event=make_event(new, key_id=key.id),
    )
    assert store.list_events("acme", created.id)[0].key_id == key.id
    assert store.list_revisions("acme", created.id)[-1].key_id == key.id

    newer = next_revision(new)
    with pytest.raises(IntegrityError):
        store.update_plan(newer, expected_revision=2, event=make_event(newer, key_id=key.id + 99))
    assert store.get_plan("acme", created.id) == new


# -- listing and organisation scoping ---------------------------------------------------------


def test_list_events_filters_by_kind(store: Store, created: PlanRecord) -> None:
    plan = created
    for kind in ["check_in", "gate", "check_in"]:
        new = next_revision(plan)
        store.update_plan(new, expected_revision=plan.revision, event=make_event(new, kind=kind))
        plan = new
    assert [e.seq for e in store.list_events("acme", created.id, kind="check_in")] == [1, 3]
    assert [e.seq for e in store.list_events("acme", created.id, kind="gate")] == [2]
    assert store.list_events("acme", created.id, kind="cancel") == []


def test_revisions_and_events_are_scoped_by_organisation(store: Store, created: PlanRecord) -> None:
    new = next_revision(created)
    store.update_plan(new, expected_revision=1, revision=make_revision(new), event=make_event(new))
    other = make_plan(2, organisation="globex")
    store.add_plan(other, make_revision(other))

    assert store.get_revision("globex", created.id, 1) is None
    assert store.list_revisions("globex", created.id) == []
    assert store.list_events("globex", created.id) == []
    assert store.get_revision("acme", other.id, 1) is None
    assert store.list_revisions("acme", other.id) == []
    assert store.get_revision("acme", created.id, 3) is None
    assert store.list_revisions("acme", "no-such-plan") == []
    assert [r.plan_id for r in store.list_revisions("globex", other.id)] == [other.id]


def test_revisions_are_listed_in_order(store: Store, created: PlanRecord) -> None:
    plan = created
    for _ in range(11):  # 2..12: numeric, not text, order
        new = next_revision(plan)
        store.update_plan(new, expected_revision=plan.revision, revision=make_revision(new))
        plan = new
    assert [r.revision for r in store.list_revisions("acme", created.id)] == list(range(1, 13))


def test_deleting_a_plan_deletes_its_history(
    store: Store, created: PlanRecord, database: Database
) -> None:
    new = next_revision(created)
    store.update_plan(new, expected_revision=1, revision=make_revision(new), event=make_event(new))
    database.rows("DELETE FROM plans")  # its engine turns SQLite's foreign keys on
    assert database.count("plan_revisions") == database.count("plan_events") == 0


# -- set_plan_fields -------------------------------------------------------------------------


def test_set_plan_fields_changes_only_the_named_columns(store: Store, created: PlanRecord) -> None:
    later = T0 + timedelta(days=2)
    changed = store.set_plan_fields(
        "acme",
        created.id,
        settings={"detail": "full"},
        last_modified=later,
        busy_token=None,
        busy_token_hash=None,
        busy_ics=None,
        busy_etag=None,
    )
    assert changed is True
    assert store.get_plan("acme", created.id) == replace(
        with_feeds(created, busy=None), settings={"detail": "full"}, last_modified=later
    )


def test_set_plan_fields_with_expected_revision(store: Store, created: PlanRecord) -> None:
    assert store.set_plan_fields("acme", created.id, expected_revision=2, etag='"x"') is False
    assert store.get_plan("acme", created.id) == created

    assert store.set_plan_fields("acme", created.id, expected_revision=1, etag='"x"') is True
    loaded = store.get_plan("acme", created.id)
    assert loaded is not None and (loaded.etag, loaded.revision) == ('"x"', 1)


def test_set_plan_fields_on_missing_or_foreign_plan(store: Store, created: PlanRecord) -> None:
    assert store.set_plan_fields("globex", created.id, etag='"x"') is False
    assert store.set_plan_fields("acme", "no-such-plan", etag='"x"') is False
    assert store.get_plan("acme", created.id) == created


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"revision": 9}, "revision"),
        ({"id": "other"}, "id"),
        ({"created_at": T0}, "created_at"),
        ({"status": "cancelled"}, "status"),
        ({"etag": '"x"', "nonsense": 1}, "nonsense"),
        ({"last_modified": None}, "must not be None"),
        ({"settings": None}, "must not be None"),
        ({}, "at least one"),
    ],
)
def test_set_plan_fields_rejects_bad_fields(
    store: Store, created: PlanRecord, fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        store.set_plan_fields("acme", created.id, **fields)
    assert store.get_plan("acme", created.id) == created


def test_settable_fields_are_plan_columns() -> None:
    assert SETTABLE_PLAN_FIELDS <= set(PlanRecord.__dataclass_fields__)
    assert not SETTABLE_PLAN_FIELDS & {"id", "organisation", "revision", "created_at", "status"}


# -- feed tokens -----------------------------------------------------------------------------


def test_lookup_by_either_feed_token(store: Store, created: PlanRecord) -> None:
    store.add_plan(with_feeds(make_plan(2), feed="other-feed", busy=None))

    full = store.get_feed_head(hash_secret(FEED), body=True)
    busy = store.get_feed_head(hash_secret(BUSY), body=True)

    assert full is not None and (full.plan_id, full.kind) == (created.id, "full")
    assert (full.token, full.etag, full.body) == (FEED, created.etag, created.ics)
    assert busy is not None and (busy.plan_id, busy.kind) == (created.id, "busy")
    assert (busy.token, busy.etag, busy.body) == (BUSY, created.busy_etag, created.busy_ics)
    found = store.get_feed_head(hash_secret("other-feed"))
    assert found is not None and found.plan_id == make_plan(2).id


@pytest.mark.parametrize("token_hash", ["", "0" * 64, hash_secret("nope"), "a" * 10_000])
def test_unknown_token_hash_finds_nothing(
    store: Store, created: PlanRecord, token_hash: str
) -> None:
    assert store.get_feed_head(token_hash) is None


def test_revoked_tokens_find_nothing(store: Store, created: PlanRecord) -> None:
    store.set_plan_fields(
        "acme",
        created.id,
        feed_token=None,
        feed_token_hash=None,
        busy_token=None,
        busy_token_hash=None,
    )
    assert store.get_feed_head(hash_secret(FEED)) is None
    assert store.get_feed_head(hash_secret(BUSY)) is None


@pytest.mark.parametrize("column", ["feed_token_hash", "busy_token_hash"])
def test_token_hashes_are_unique(
    store: Store, created: PlanRecord, database: Database, column: str
) -> None:
    taken = getattr(created, column)
    with pytest.raises(IntegrityError):
        store.add_plan(replace(make_plan(2), **{column: taken}))
    assert database.count("plans") == 1

    store.add_plan(make_plan(2))  # several plans without feeds: NULLs do not clash
    store.add_plan(make_plan(3))
    with pytest.raises(IntegrityError) as raised:
        store.set_plan_fields("acme", make_plan(2).id, feed_token=FEED, **{column: taken})
    assert FEED not in str(raised.value)  # bound parameters stay out of error messages
    assert store.get_plan("acme", make_plan(2).id) == make_plan(2)


# -- list_plans filters and count_plans ------------------------------------------------------


def test_list_plans_filters(store: Store) -> None:
    store.add_plan(make_plan(1, athlete_reference="ath-1"))
    store.add_plan(make_plan(2, athlete_reference="ath-1", status="cancelled"))
    store.add_plan(make_plan(3, athlete_reference="ath-2"))
    store.add_plan(make_plan(4, athlete_reference="ath-1", organisation="globex"))

    def ids(**filters: Any) -> tuple[list[str], int]:
        records, total = store.list_plans("acme", limit=10, offset=0, **filters)
        return [r.id[-1] for r in records], total

    assert ids() == (["3", "2", "1"], 3)
    assert ids(athlete_reference="ath-1") == (["2", "1"], 2)
    assert ids(status="active") == (["3", "1"], 2)
    assert ids(athlete_reference="ath-1", status="active") == (["1"], 1)
    assert ids(athlete_reference="nobody") == ([], 0)
    assert store.count_plans("acme") == 3
    assert store.count_plans("globex") == 1
    assert store.count_plans("initech") == 0
