"""Writes that named no revision wait out other writers instead of answering 409.

Another writer's commit is simulated at the store: ``update_plan`` reports a stale
revision a number of times before it lets the write through, exactly as it does when a
concurrent check-in got there first.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from planner.schemas.api import PlanCreateSchema
from planner.service import Planner, PreconditionFailed, RevisionConflict, WriteRetry, served
from planner.store import StaleRevision, Store
from tests.builders import shipped_catalog
from tests.clock import Clock

ORG = "acme"


class Contended(Store):
    """A store on which the next ``stale`` writes lose to someone else."""

    stale = 0

    def update_plan(self, *args: Any, **kwargs: Any) -> Any:
        if self.stale > 0:
            self.stale -= 1
            expected = kwargs["expected_revision"]
            raise StaleRevision(args[0].id, expected, expected + 1)
        return super().update_plan(*args, **kwargs)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Contended]:
    store = Contended(f"sqlite:///{tmp_path / 'planner.sqlite3'}")
    store.upgrade()
    yield store
    store.dispose()


def planner(store: Store, retry: WriteRetry | None = None) -> Planner:
    return Planner(
        catalog=shipped_catalog(),
        store=store,
        clock=Clock(datetime(2026, 11, 20, 9, tzinfo=UTC)),
        write_retry=retry or WriteRetry(),
    )


def made(service: Planner) -> str:
    payload = PlanCreateSchema().load(
        {
            "diagnosis_date": date(2026, 10, 1).isoformat(),
            "injury": {"site": "femoral_neck", "type": "compression", "laterality": "left"},
        }
    )
    return service.create_plan(ORG, payload).id


def test_a_write_without_a_precondition_outlasts_many_concurrent_writers(
    store: Contended,
) -> None:
    service = planner(store, WriteRetry(first_pause=0.0001, max_pause=0.001))
    plan_id = made(service)
    store.stale = 20  # far more than a fixed handful of immediate attempts would survive

    record = service.confirm(ORG, plan_id)

    assert store.stale == 0 and record.revision == 2


def test_a_write_that_named_its_revision_gets_the_conflict_at_once(store: Contended) -> None:
    service = planner(store)
    plan_id = made(service)
    etag = served(service.get_plan(ORG, plan_id))[1]
    store.stale = 1

    with pytest.raises(RevisionConflict):
        service.cancel(ORG, plan_id, {"reason": "x"}, precondition=lambda current: True)
    with pytest.raises(PreconditionFailed):
        service.cancel(ORG, plan_id, {"reason": "x"}, precondition=lambda current: False)
    assert service.cancel(ORG, plan_id, {}, precondition=lambda c: c == etag).record.revision == 2


def test_waiting_ends_at_the_deadline(store: Contended) -> None:
    service = planner(store, WriteRetry(deadline=0.05, first_pause=0.01))
    plan_id = made(service)
    store.stale = 10_000

    with pytest.raises(RevisionConflict, match="being changed by others"):
        service.confirm(ORG, plan_id)
    assert 0 < 10_000 - store.stale < 100  # it tried again, with pauses, then gave up
