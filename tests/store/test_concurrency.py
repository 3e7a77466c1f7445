"""Sharing one Store across threads, and two Stores (two processes' worth) on one file."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

import pytest

from planner.store import Store

from .conftest import make_plan

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
