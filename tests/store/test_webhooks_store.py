"""Webhook subscriptions and the delivery outbox: fan-out, transactions, leases, replay."""

from __future__ import annotations

import base64
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from planner.store import (
    DeliveryState,
    DuplicatePlanError,
    OutboxEvent,
    StaleRevision,
    Store,
)
from tests.clock import Clock

from .conftest import T0, Database, make_event, make_plan, make_revision, next_revision
from .test_concurrency import run_in_threads

LEASE = timedelta(seconds=60)


def event(event_type: str = "plan.created", organisation: str = "acme", **payload: object):
    return OutboxEvent(
        organisation=organisation,
        event_type=event_type,
        payload={"plan_id": "p1", **payload},
        occurred_at=T0,
    )


def test_create_webhook_returns_a_standard_webhooks_secret(store: Store) -> None:
    hook = store.create_webhook("acme", " https://example.com/hook ", ["plan.created"])

    assert hook.url == "https://example.com/hook"
    assert hook.event_types == ("plan.created",)
    assert hook.created_at == T0
    assert hook.enabled and hook.disabled_at is None
    assert hook.secret.startswith("whsec_")
    assert 24 <= len(base64.b64decode(hook.secret.removeprefix("whsec_"))) <= 64
    assert hook.secret not in repr(hook)
    assert store.get_webhook("acme", hook.id) == hook


def test_webhooks_belong_to_their_organisation(store: Store) -> None:
    mine = store.create_webhook("acme", "https://a.example/h", ["plan.created"])
    theirs = store.create_webhook("globex", "https://g.example/h", ["plan.created"])

    assert [w.id for w in store.list_webhooks("acme")] == [mine.id]
    assert store.get_webhook("acme", theirs.id) is None
    assert store.delete_webhook("acme", theirs.id) is False
    assert store.rotate_webhook_secret("acme", theirs.id) is None
    assert store.get_webhook("globex", theirs.id) == theirs


@pytest.mark.parametrize(
    ("url", "event_types"),
    [("", ["plan.created"]), ("https://x/" + "a" * 2000, ["plan.created"]), ("https://x", [])],
)
def test_create_webhook_checks_sizes(store: Store, url: str, event_types: list[str]) -> None:
    with pytest.raises(ValueError):
        store.create_webhook("acme", url, event_types)
    assert store.list_webhooks("acme") == []


def test_repeated_event_types_are_kept_once(store: Store) -> None:
    hook = store.create_webhook(
        "acme", "https://x", ["plan.revised", "plan.created", "plan.revised"]
    )
    assert hook.event_types == ("plan.revised", "plan.created")


def test_rotation_keeps_the_old_secret_signing_for_a_while(store: Store, clock: Clock) -> None:
    hook = store.create_webhook("acme", "https://x", ["plan.created"])
    clock.advance(timedelta(minutes=5))

    rotated = store.rotate_webhook_secret("acme", hook.id)

    assert rotated is not None
    assert rotated.secret != hook.secret and rotated.secret.startswith("whsec_")
    assert rotated.previous_secret == hook.secret
    assert rotated.previous_secret_expires_at == clock.now + timedelta(hours=24)
    assert rotated.signing_secrets(clock.now) == (rotated.secret, hook.secret)
    later = clock.now + timedelta(hours=24)
    assert rotated.signing_secrets(later) == (rotated.secret,)

    at_once = store.rotate_webhook_secret("acme", hook.id, keep_previous_for=timedelta(0))
    assert at_once is not None
    assert at_once.previous_secret is None and at_once.signing_secrets(clock.now) == (
        at_once.secret,
    )


def test_events_fan_out_to_subscribed_enabled_webhooks_of_the_organisation(store: Store) -> None:
    created = store.create_webhook("acme", "https://a/1", ["plan.created", "plan.revised"])
    revised_only = store.create_webhook("acme", "https://a/2", ["plan.revised"])
    disabled = store.create_webhook("acme", "https://a/3", ["plan.created"])
    store.disable_webhook(disabled.id)
    other_org = store.create_webhook("globex", "https://g/1", ["plan.created"])

    ids = store.enqueue_webhook_events([event("plan.created"), event("plan.revised")])

    assert len(ids) == 3 and len(set(ids)) == 3
    by_hook = {
        hook.id: [
            d.event_type for d in store.list_deliveries("acme", hook.id, limit=10, offset=0)[0]
        ]
        for hook in (created, revised_only, disabled)
    }
    assert sorted(by_hook[created.id]) == ["plan.created", "plan.revised"]
    assert by_hook[revised_only.id] == ["plan.revised"]
    assert by_hook[disabled.id] == []
    assert store.list_deliveries("globex", other_org.id, limit=10, offset=0) == ([], 0)
    (first, *_) = store.list_deliveries("acme", created.id, limit=10, offset=0)[0]
    assert (first.attempts, first.next_attempt_at, first.created_at) == (0, T0, T0)
    assert first.state is DeliveryState.PENDING
    assert first.payload == {"plan_id": "p1"}


def test_no_subscriber_means_no_rows(store: Store) -> None:
    assert store.enqueue_webhook_events([event()]) == []


def test_add_plan_writes_outbox_rows_in_the_same_transaction(store: Store) -> None:
    hook = store.create_webhook("acme", "https://a/1", ["plan.created"])
    plan = make_plan(1)

    store.add_plan(plan, make_revision(plan), outbox=[event(plan_id=plan.id)])

    (row,), total = store.list_deliveries("acme", hook.id, limit=10, offset=0)
    assert total == 1 and row.payload["plan_id"] == plan.id

    # A failed write announces nothing.
    with pytest.raises(DuplicatePlanError):
        store.add_plan(plan, outbox=[event(plan_id="again")])
    assert store.list_deliveries("acme", hook.id, limit=10, offset=0)[1] == 1


def test_update_plan_writes_outbox_rows_only_when_it_succeeds(store: Store) -> None:
    hook = store.create_webhook("acme", "https://a/1", ["plan.revised"])
    plan = make_plan(1)
    store.add_plan(plan, make_revision(plan))
    moved = next_revision(plan)

    store.update_plan(
        moved,
        expected_revision=1,
        revision=make_revision(moved),
        event=make_event(moved),
        outbox=[event("plan.revised", revision=2)],
    )
    with pytest.raises(StaleRevision):
        store.update_plan(
            next_revision(plan), expected_revision=1, outbox=[event("plan.revised", revision=9)]
        )

    rows, total = store.list_deliveries("acme", hook.id, limit=10, offset=0)
    assert total == 1 and rows[0].payload["revision"] == 2


def test_a_naive_occurred_at_is_refused_and_nothing_is_written(store: Store) -> None:
    hook = store.create_webhook("acme", "https://a/1", ["plan.created"])
    naive = OutboxEvent("acme", "plan.created", {}, T0.replace(tzinfo=None))
    with pytest.raises(ValueError, match="naive"):
        store.add_plan(make_plan(1), outbox=[naive])
    assert store.get_plan("acme", make_plan(1).id) is None
    assert store.list_deliveries("acme", hook.id, limit=10, offset=0)[1] == 0


def test_claim_takes_the_longest_due_row_with_a_lease(store: Store) -> None:
    hook = store.create_webhook("acme", "https://a/1", ["plan.created"])
    early = OutboxEvent("acme", "plan.created", {"n": 1}, T0)
    late = OutboxEvent("acme", "plan.created", {"n": 2}, T0 + timedelta(seconds=5))
    store.enqueue_webhook_events([late, early])

    assert store.claim_due_delivery(T0 - timedelta(seconds=1), lease=LEASE) is None
    claimed = store.claim_due_delivery(T0, lease=LEASE)
    assert claimed is not None
    assert claimed.delivery.payload == {"n": 1}
    assert claimed.delivery.attempts == 1
    assert claimed.lease_until == claimed.delivery.next_attempt_at == T0 + LEASE
    assert claimed.webhook == hook
    # Not due for anyone else during the lease; the other row is not due yet either.
    assert store.claim_due_delivery(T0 + timedelta(seconds=4), lease=LEASE) is None
    second = store.claim_due_delivery(T0 + timedelta(seconds=5), lease=LEASE)
    assert second is not None and second.delivery.payload == {"n": 2}


def test_finish_records_only_under_the_lease(store: Store) -> None:
    store.create_webhook("acme", "https://a/1", ["plan.created"])
    (delivery_id,) = store.enqueue_webhook_events([event()])
    first = store.claim_due_delivery(T0, lease=LEASE)
    assert first is not None

    # The holder died; after the lease another worker takes the row over.
    second = store.claim_due_delivery(T0 + LEASE, lease=LEASE)
    assert second is not None and second.delivery.id == delivery_id
    assert second.delivery.attempts == 2

    assert not store.finish_delivery(delivery_id, first.lease_until, status=200, delivered_at=T0)
    assert store.finish_delivery(
        delivery_id, second.lease_until, status=500, error="HTTP 500", retry_at=T0 + LEASE * 3
    )
    assert store.claim_due_delivery(T0 + LEASE * 2, lease=LEASE) is None
    third = store.claim_due_delivery(T0 + LEASE * 3, lease=LEASE)
    assert third is not None
    assert store.finish_delivery(
        delivery_id, third.lease_until, status=204, delivered_at=T0 + LEASE * 3
    )
    # Once delivered, a stale holder cannot undo it.
    assert not store.finish_delivery(
        delivery_id, third.lease_until, status=500, gave_up_at=T0 + LEASE * 3
    )

    (row,), _ = store.list_deliveries("acme", third.webhook.id, limit=1, offset=0)
    assert row.state is DeliveryState.DELIVERED
    assert (row.attempts, row.last_status, row.last_error) == (3, 204, None)


def test_finish_needs_exactly_one_outcome(store: Store) -> None:
    with pytest.raises(ValueError):
        store.finish_delivery("x", T0, status=200)
    with pytest.raises(ValueError):
        store.finish_delivery("x", T0, status=200, delivered_at=T0, gave_up_at=T0)


def test_replay_requeues_with_the_same_id_and_a_fresh_window(store: Store, clock: Clock) -> None:
    hook = store.create_webhook("acme", "https://a/1", ["plan.created"])
    (delivery_id,) = store.enqueue_webhook_events([event()])
    claimed = store.claim_due_delivery(T0, lease=LEASE)
    assert claimed is not None
    store.finish_delivery(delivery_id, claimed.lease_until, status=500, gave_up_at=T0)
    clock.advance(timedelta(days=2))

    replayed = store.replay_delivery("acme", hook.id, delivery_id)

    assert replayed is not None and replayed.id == delivery_id
    assert replayed.state is DeliveryState.PENDING
    assert replayed.next_attempt_at == replayed.replayed_at == clock.now
    assert store.replay_delivery("globex", hook.id, delivery_id) is None
    assert store.replay_delivery("acme", "nope", delivery_id) is None
    again = store.claim_due_delivery(clock.now, lease=LEASE)
    assert again is not None and again.delivery.id == delivery_id


def test_list_deliveries_filters_by_state_and_pages_newest_first(store: Store) -> None:
    hook = store.create_webhook("acme", "https://a/1", ["plan.created"])
    events = [
        OutboxEvent("acme", "plan.created", {"n": n}, T0 + timedelta(minutes=n)) for n in range(5)
    ]
    store.enqueue_webhook_events(events)
    claimed = store.claim_due_delivery(T0, lease=LEASE)  # n=0, the longest due
    assert claimed is not None
    store.finish_delivery(claimed.delivery.id, claimed.lease_until, status=200, delivered_at=T0)

    rows, total = store.list_deliveries("acme", hook.id, limit=2, offset=0)
    assert total == 5 and [r.payload["n"] for r in rows] == [4, 3]
    rows, _ = store.list_deliveries("acme", hook.id, limit=2, offset=4)
    assert [r.payload["n"] for r in rows] == [0]
    assert store.list_deliveries("acme", hook.id, limit=9, offset=0, state="delivered")[1] == 1
    assert store.list_deliveries("acme", hook.id, limit=9, offset=0, state="pending")[1] == 4
    assert store.list_deliveries("acme", hook.id, limit=9, offset=0, state="failed")[1] == 0
    with pytest.raises(ValueError):
        store.list_deliveries("acme", hook.id, limit=9, offset=0, state="lost")


def test_deleting_a_webhook_drops_its_outbox(store: Store) -> None:
    hook = store.create_webhook("acme", "https://a/1", ["plan.created"])
    store.enqueue_webhook_events([event()])
    claimed = store.claim_due_delivery(T0, lease=LEASE)
    assert claimed is not None

    assert store.delete_webhook("acme", hook.id) is True

    assert store.get_webhook("acme", hook.id) is None
    assert store.claim_due_delivery(T0 + LEASE, lease=LEASE) is None
    # The worker that held a row of it finds nothing to record.
    assert not store.finish_delivery(
        claimed.delivery.id, claimed.lease_until, status=200, delivered_at=T0
    )
    assert store.delete_webhook("acme", hook.id) is False


def test_purge_outbox_keeps_pending_and_recent_rows(store: Store) -> None:
    hook = store.create_webhook("acme", "https://a/1", ["plan.created"])
    old = [OutboxEvent("acme", "plan.created", {"n": n}, T0) for n in range(2)]
    store.enqueue_webhook_events(old)
    claimed = store.claim_due_delivery(T0, lease=LEASE)
    assert claimed is not None
    store.finish_delivery(claimed.delivery.id, claimed.lease_until, status=200, delivered_at=T0)

    assert store.purge_outbox(T0) == 0  # not older than the cut-off
    assert store.purge_outbox(T0 + timedelta(days=31)) == 1  # the delivered one
    (left,), _ = store.list_deliveries("acme", hook.id, limit=10, offset=0)
    assert left.state is DeliveryState.PENDING


CLAIMERS = 4
ROWS = 40


def test_concurrent_claimers_never_share_a_row(
    store: Store, open_store: Callable[[], Store]
) -> None:
    store.create_webhook("acme", "https://a/1", ["plan.created"])
    store.enqueue_webhook_events(
        [OutboxEvent("acme", "plan.created", {"n": n}, T0) for n in range(ROWS)]
    )
    claims: Counter[str] = Counter()
    lock = threading.Lock()

    def claimer(target: Store) -> Callable[[], None]:
        def claim() -> None:
            while (claimed := target.claim_due_delivery(T0, lease=LEASE)) is not None:
                with lock:
                    claims[claimed.delivery.id] += 1

        return claim

    # Half share one Store (threads of one process), half have their own (other processes).
    targets = [claimer(store if n % 2 else open_store()) for n in range(CLAIMERS)]
    assert run_in_threads(targets) == []

    assert len(claims) == ROWS
    assert set(claims.values()) == {1}


@pytest.mark.sqlite_only("SQLite's single write lock; PostgreSQL readers never wait")
def test_an_idle_poll_does_not_wait_for_the_write_lock(store: Store, db_path: Path) -> None:
    store.create_webhook("acme", "https://a/1", ["plan.created"])
    with closing(sqlite3.connect(db_path, isolation_level=None)) as writer:
        writer.execute("BEGIN IMMEDIATE")  # another process is writing
        try:
            started = time.monotonic()
            assert store.claim_due_delivery(T0, lease=LEASE) is None
            assert time.monotonic() - started < 1  # not the 5 s busy timeout
        finally:
            writer.execute("ROLLBACK")


@pytest.mark.postgresql_only("row locks (SQLite locks the whole database)")
def test_a_claim_skips_a_row_another_worker_holds_instead_of_waiting(
    store: Store, database: Database
) -> None:
    store.create_webhook("acme", "https://a/1", ["plan.created"])
    first, second = store.enqueue_webhook_events([event(n=1), event(n=2)])
    with database.engine.connect() as other:  # a worker in the middle of claiming the first
        other.execute(
            text("SELECT id FROM webhook_outbox WHERE id = :id FOR UPDATE"), {"id": first}
        )
        started = time.monotonic()
        claimed = store.claim_due_delivery(T0, lease=LEASE)
        assert time.monotonic() - started < 1
        assert claimed is not None and claimed.delivery.id == second
        other.rollback()
    again = store.claim_due_delivery(T0, lease=LEASE)
    assert again is not None and again.delivery.id == first
    assert store.claim_due_delivery(T0, lease=LEASE) is None


def test_rows_due_at_the_same_instant_are_claimed_in_the_order_they_were_written(
    store: Store,
) -> None:
    store.create_webhook("acme", "https://a/1", ["plan.revised", "checkin.recorded"])
    for n in range(20):
        store.enqueue_webhook_events([event("plan.revised", n=n), event("checkin.recorded", n=n)])

    claimed = []
    while (row := store.claim_due_delivery(T0, lease=LEASE)) is not None:
        claimed.append((row.delivery.payload["n"], row.delivery.event_type))

    assert claimed == [(n, t) for n in range(20) for t in ("plan.revised", "checkin.recorded")]
