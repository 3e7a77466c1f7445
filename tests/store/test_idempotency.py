"""Idempotency keys: claim, complete, replay, mismatch, in progress, take-over and purge."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import pytest
from werkzeug.datastructures import Headers

from planner.store import Claim, ClaimState, Store
from tests.clock import Clock

from .conftest import T0
from .test_concurrency import run_in_threads

KEY = ("acme", "key-1", "POST", "/v1/plans")


def fingerprint(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


BODY = fingerprint(b'{"diagnosis_date": "2026-11-20"}')
OTHER_BODY = fingerprint(b'{"diagnosis_date": "2026-11-21"}')


def claim(store: Store, body: str = BODY, **kw: object) -> Claim:
    return store.claim_idempotency(*KEY, body, **kw)  # type: ignore[arg-type]


def complete(store: Store, claimed: Claim, status: int = 201) -> bool:
    return store.complete_idempotency(
        claimed,
        status=status,
        headers={
            "location": "/v1/plans/p1",
            "ETag": '"abc"',
            "Content-Type": "application/json",
            "Set-Cookie": "nope=1",
            "X-Request-Id": "r1",
        },
        body=b'{"id": "p1"}',
    )


def test_first_claim_is_new_and_a_completed_key_replays(store: Store) -> None:
    first = claim(store)
    assert first.state is ClaimState.NEW and first.claimed_at == T0
    assert first.state == "new"  # a StrEnum: compares with plain strings

    assert complete(store, first) is True

    again = claim(store)
    assert again.state is ClaimState.REPLAY
    assert again.response is not None
    assert again.response.status == 201
    assert again.response.body == b'{"id": "p1"}'
    # Only the replayable headers, under their canonical names.
    assert dict(again.response.headers) == {
        "Location": "/v1/plans/p1",
        "ETag": '"abc"',
        "Content-Type": "application/json",
    }
    assert again.response.created_at == T0


def test_werkzeug_headers_are_accepted(store: Store) -> None:
    first = claim(store)
    headers = Headers([("Content-Type", "application/json"), ("Location", "/x")])
    assert store.complete_idempotency(first, status=200, headers=headers, body=b"{}")
    replay = claim(store)
    assert replay.response is not None
    assert dict(replay.response.headers) == {"Location": "/x", "Content-Type": "application/json"}


def test_same_key_with_another_body_is_a_mismatch(store: Store) -> None:
    complete(store, claim(store))
    assert claim(store, OTHER_BODY).state is ClaimState.MISMATCH
    # ... also while the first request still runs.
    other_key = store.claim_idempotency("acme", "key-2", "POST", "/v1/plans", BODY)
    assert other_key.state is ClaimState.NEW
    mismatch = store.claim_idempotency("acme", "key-2", "POST", "/v1/plans", OTHER_BODY)
    assert mismatch.state is ClaimState.MISMATCH


def test_a_running_request_makes_the_second_claim_in_progress(store: Store) -> None:
    first = claim(store)
    second = claim(store)
    assert second.state is ClaimState.IN_PROGRESS
    assert second.claimed_at is None and second.response is None
    with pytest.raises(ValueError):
        store.complete_idempotency(second, status=200, headers={}, body=b"")
    assert first.state is ClaimState.NEW


def test_keys_are_per_organisation_method_and_path(store: Store) -> None:
    complete(store, claim(store))
    assert store.claim_idempotency("globex", "key-1", "POST", "/v1/plans", BODY).state == "new"
    assert store.claim_idempotency("acme", "key-1", "PUT", "/v1/plans", BODY).state == "new"
    assert store.claim_idempotency("acme", "key-1", "POST", "/v1/other", BODY).state == "new"


def test_release_frees_the_key(store: Store) -> None:
    first = claim(store)
    assert store.release_idempotency(first) is True
    assert store.release_idempotency(first) is False
    assert claim(store, OTHER_BODY).state is ClaimState.NEW


def test_a_stale_placeholder_is_taken_over(store: Store, clock: Clock) -> None:
    dead = claim(store)
    clock.advance(timedelta(minutes=4))
    assert claim(store).state is ClaimState.IN_PROGRESS

    clock.advance(timedelta(minutes=1))  # five minutes: the first request died
    taken = claim(store, OTHER_BODY)

    assert taken.state is ClaimState.NEW and taken.claimed_at == clock.now
    # The dead request, should it come back, can neither complete nor release the key.
    assert complete(store, dead) is False
    assert store.release_idempotency(dead) is False
    assert complete(store, taken) is True
    assert claim(store, OTHER_BODY).state is ClaimState.REPLAY


def test_keys_expire_after_24_hours(store: Store, clock: Clock) -> None:
    complete(store, claim(store))
    clock.advance(timedelta(hours=23, minutes=59))
    assert claim(store).state is ClaimState.REPLAY
    clock.advance(timedelta(minutes=1))
    assert claim(store, OTHER_BODY).state is ClaimState.NEW


def test_purge_deletes_old_keys(store: Store, clock: Clock) -> None:
    complete(store, claim(store))
    clock.advance(timedelta(hours=1))
    store.claim_idempotency("acme", "key-2", "POST", "/v1/plans", BODY)

    assert store.purge_idempotency(T0) == 0
    assert store.purge_idempotency(T0 + timedelta(minutes=1)) == 1
    assert claim(store, OTHER_BODY).state is ClaimState.NEW  # key-1 is gone
    assert store.claim_idempotency("acme", "key-2", "POST", "/v1/plans", BODY).state == (
        "in_progress"
    )


@pytest.mark.parametrize(
    ("key", "method", "path", "digest"),
    [
        ("", "POST", "/p", BODY),
        ("k" * 256, "POST", "/p", BODY),
        ("k", "", "/p", BODY),
        ("k", "POST", "/p", ""),
    ],
)
def test_oversized_values_are_refused(
    store: Store, key: str, method: str, path: str, digest: str
) -> None:
    with pytest.raises(ValueError):
        store.claim_idempotency("acme", key, method, path, digest)


CLAIMERS = 6


def test_concurrent_claims_let_exactly_one_proceed(
    store: Store, open_store: Callable[[], Store]
) -> None:
    states: Counter[str] = Counter()
    lock = threading.Lock()

    def claimer(target: Store) -> Callable[[], None]:
        def run() -> None:
            state = claim(target).state
            with lock:
                states[state] += 1

        return run

    targets = [claimer(store if n % 2 else open_store()) for n in range(CLAIMERS)]
    assert run_in_threads(targets) == []
    assert states == {"new": 1, "in_progress": CLAIMERS - 1}


def test_a_waiting_claim_replays_what_the_first_request_stored(
    store: Store, open_store: Callable[[], Store]
) -> None:
    # Waiting is measured in real (monotonic) time, not by the store's clock.
    first_store, second_store = store, open_store()
    first = claim(first_store)
    assert first.state is ClaimState.NEW
    waited: list[Claim] = []

    waiter = threading.Thread(target=lambda: waited.append(claim(second_store, wait=5.0)))
    waiter.start()
    time.sleep(0.2)
    complete(first_store, first)
    waiter.join()

    assert waited[0].state is ClaimState.REPLAY
    assert waited[0].response is not None and waited[0].response.status == 201


def test_a_waiting_claim_gives_up_as_in_progress(store: Store) -> None:
    claim(store)
    started = time.monotonic()
    result = claim(store, wait=0.3, poll_interval=0.05)
    assert result.state is ClaimState.IN_PROGRESS
    assert 0.3 <= time.monotonic() - started < 3


def test_a_waiting_claim_proceeds_when_the_first_request_releases(store: Store) -> None:
    first = claim(store)
    timer = threading.Timer(0.2, store.release_idempotency, args=(first,))
    timer.start()
    try:
        second = claim(store, wait=5.0)
    finally:
        timer.join()
    assert second.state is ClaimState.NEW


def test_any_path_works_however_long(store: Store) -> None:
    long_path = "/v1/plans/" + "p" * 2000 + "/check-ins"
    other_long_path = "/v1/plans/" + "p" * 2000 + "/cancel"
    first = store.claim_idempotency("acme", "k", "POST", long_path, BODY)
    assert first.state is ClaimState.NEW and first.path == long_path
    assert store.claim_idempotency("acme", "k", "POST", other_long_path, BODY).state == "new"
    assert complete(store, first) is True
    assert store.claim_idempotency("acme", "k", "POST", long_path, BODY).state == "replay"
