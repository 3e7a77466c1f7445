"""Sharing one Store across threads, and two Stores (two processes' worth) on one database."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import text

from planner.store import StaleRevision, Store

from .conftest import Database, make_event, make_plan, make_revision, next_revision

THREADS = 4
PLANS_PER_THREAD = 25


def run_in_threads(targets: list[Callable[[], None]]) -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(targets))

    def wrap(target: Callable[[], None]) -> None:
        try:
            barrier.wait()
            target()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=wrap, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_concurrent_writers_lose_no_rows(store: Store, open_store: Callable[[], Store]) -> None:
    other_process = open_store()  # its own engine and pool, like a second worker

    def writer(worker: int, target: Store) -> Callable[[], None]:
        def write() -> None:
            for i in range(PLANS_PER_THREAD):
                target.add_plan(make_plan(worker * 1000 + i))
                target.list_plans("acme", limit=5, offset=0)  # readers interleave with writers

        return write

    targets = [writer(w, store if w % 2 else other_process) for w in range(THREADS)]
    assert run_in_threads(targets) == []

    records, total = store.list_plans("acme", limit=1000, offset=0)
    assert total == THREADS * PLANS_PER_THREAD
    assert {r.id for r in records} == {
        make_plan(w * 1000 + i).id for w in range(THREADS) for i in range(PLANS_PER_THREAD)
    }


def test_concurrent_key_creation_and_authentication(store: Store) -> None:
    created: list[str] = []
    lock = threading.Lock()

    def create_and_use() -> None:
        for i in range(10):
            _, secret = store.create_key(f"k{i}", "acme")
            with lock:
                created.append(secret)
            assert store.authenticate(secret) is not None

    assert run_in_threads([create_and_use] * THREADS) == []
    assert len(store.list_keys()) == THREADS * 10
    assert all(store.authenticate(secret) is not None for secret in created)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_worker_uses_its_own_connections(store: Store) -> None:
    # gunicorn --preload: the master opened connections before forking its workers.
    store.add_plan(make_plan(1))
    pid = os.fork()
    if pid == 0:  # the worker
        status = 1
        try:
            store.after_fork()
            store.add_plan(make_plan(2))
            status = 0 if store.list_plans("acme", limit=10, offset=0)[1] == 2 else 1
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    store.add_plan(make_plan(3))  # the parent's pool still works
    assert store.list_plans("acme", limit=10, offset=0)[1] == 3


UPDATERS = 20


def test_concurrent_updates_lose_nothing(store: Store, open_store: Callable[[], Store]) -> None:
    # Every writer reads, changes the plan from what it read and writes with
    # expected_revision; a loser re-reads and tries again. The plan's request accumulates the
    # writers' numbers, so a lost update would show as a missing number.
    plan = make_plan(1, request={"workers": []})
    store.add_plan(plan, make_revision(plan))
    other_process = open_store()
    conflicts: list[int] = []
    lock = threading.Lock()

    def updater(worker: int, target: Store) -> Callable[[], None]:
        def update() -> None:
            while True:
                seen = target.get_plan("acme", plan.id)
                assert seen is not None
                revision = seen.revision + 1
                new = replace(
                    seen,
                    revision=revision,
                    updated_at=seen.updated_at + timedelta(seconds=1),
                    request={"workers": [*seen.request["workers"], worker]},
                    document=b"revision %d by %d" % (revision, worker),
                )
                try:
                    target.update_plan(
                        new,
                        expected_revision=seen.revision,
                        revision=make_revision(new, kind="check_in"),
                        event=make_event(new, payload={"worker": worker}),
                    )
                    return
                except StaleRevision as exc:
                    assert exc.current > seen.revision
                    with lock:
                        conflicts.append(worker)

        return update

    targets = [updater(w, store if w % 2 else other_process) for w in range(UPDATERS)]
    assert run_in_threads(targets) == []

    final = store.get_plan("acme", plan.id)
    assert final is not None and final.revision == UPDATERS + 1
    assert sorted(final.request["workers"]) == list(range(UPDATERS))
    revisions = store.list_revisions("acme", plan.id)
    assert [r.revision for r in revisions] == list(range(1, UPDATERS + 2))
    events = store.list_events("acme", plan.id)
    assert [e.seq for e in events] == list(range(1, UPDATERS + 1))
    assert [e.revision for e in events] == list(range(2, UPDATERS + 2))
    # The log's order is the order the writers won: it replays to the final state.
    assert [e.payload["worker"] for e in events] == final.request["workers"]
    assert revisions[-1].document == final.document
    assert conflicts, "the writers never overlapped: the test proved nothing"


def test_a_writer_blocked_on_the_plan_cannot_overwrite_what_was_committed_meanwhile(
    store: Store, database: Database
) -> None:
    # Another writer holds the plan (its UPDATE is not committed yet) when this one, which
    # read revision 1, tries to write. This one must wait and then see revision 2: under
    # PostgreSQL's READ COMMITTED the blocked UPDATE re-checks ``revision = 1`` against the
    # committed row and matches nothing; on SQLite it waits for the write lock.
    plan = make_plan(1)
    store.add_plan(plan, make_revision(plan))
    outcome: list[BaseException | None] = []

    def late_writer() -> None:
        try:
            store.update_plan(next_revision(plan, document=b"late"), expected_revision=1)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    with database.engine.connect() as other:
        other.execute(
            text("UPDATE plans SET revision = 2, document = :doc WHERE id = :id"),
            {"doc": b"first", "id": plan.id},
        )
        thread = threading.Thread(target=late_writer)
        thread.start()
        thread.join(timeout=0.5)
        assert thread.is_alive(), "the late writer did not wait for the plan's row"
        other.commit()
    thread.join()

    (error,) = outcome
    assert isinstance(error, StaleRevision) and (error.expected, error.current) == (1, 2)
    stored = store.get_plan("acme", plan.id)
    assert stored is not None and (stored.revision, stored.document) == (2, b"first")
