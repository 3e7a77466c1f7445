"""Fixtures for the store tests: every test gets a real database of its own, a SQLite file
in ``tmp_path`` and (a second run, ``[postgresql]``) a PostgreSQL database (``tests.pg``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, inspect, text

from planner.store import EventRecord, PlanRecord, RevisionRecord, Store, strong_etag
from planner.store.engine import make_engine
from tests.clock import Clock
from tests.pg import SQLITE, postgres_database

T0 = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "planner.sqlite3"


@pytest.fixture
def db_url(database_kind: str, db_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """The test's database: a new SQLite file at ``db_path``, or a new PostgreSQL database.

    On PostgreSQL a test that uses ``store`` gets a copy of a database migrated once per
    session (what ``store``'s own ``upgrade()`` then finds, only faster); any other test
    gets an empty database, as a new SQLite file is empty.
    """
    if database_kind == SQLITE:
        yield f"sqlite:///{db_path.as_posix()}"
        return
    with postgres_database(request, migrated="store" in request.fixturenames) as url:
        yield url


class Database:
    """The test's database seen from outside the store: its own engine, as another process
    would open it, so what it reads was committed."""

    def __init__(self, url: str) -> None:
        self.engine: Engine = make_engine(url)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    def rows(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        """Run one statement in its own transaction; return its rows (``[]`` for none)."""
        with self.engine.begin() as connection:
            result = connection.execute(text(sql), params)
            return [tuple(row) for row in result] if result.returns_rows else []

    def count(self, table: str) -> int:
        """How many rows ``table`` has."""
        return int(self.rows(f"SELECT count(*) FROM {table}")[0][0])

    def table_names(self) -> set[str]:
        """The tables that exist now."""
        return set(inspect(self.engine).get_table_names())


@pytest.fixture
def database(db_url: str) -> Iterator[Database]:
    """Raw SQL access to the test's database (e.g. to check what was really stored)."""
    database = Database(db_url)
    yield database
    database.engine.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def open_store(db_url: str, clock: Clock) -> Iterator[Callable[[], Store]]:
    """Open (and at teardown dispose) any number of stores on the test's database file."""
    opened: list[Store] = []

    def open_() -> Store:
        store = Store(db_url, clock=clock)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.dispose()


@pytest.fixture
def store(open_store: Callable[[], Store]) -> Store:
    """A store on a freshly migrated database file."""
    store = open_store()
    store.upgrade()
    return store


def make_plan(number: int = 1, **overrides: Any) -> PlanRecord:
    """Build a plan record with plausible values; ``number`` varies id and timestamps."""
    ics = overrides.pop("ics", f"BEGIN:VCALENDAR\r\nX-N:{number}\r\nEND:VCALENDAR\r\n".encode())
    created = overrides.pop("created_at", T0 + timedelta(minutes=number))
    values: dict[str, Any] = {
        "id": f"00000000-0000-4000-8000-{number:012d}",
        "organisation": "acme",
        "revision": 1,
        "status": "active",
        "created_at": created,
        "updated_at": created,
        "athlete_reference": f"clinic-{number}",
        "protocol_id": "femoral-neck-compression",
        "protocol_version": "1.0.0",
        "request": {
            "diagnosis_date": "2026-11-20",
            "injury": {"site": "femoral_neck", "type": "compression", "mri_grade": 3},
            "risk_factors": ["female"],
            "number": number,
        },
        "document": b'{"id": "%d", "note": "caf\xc3\xa9"}' % number,
        "ics": ics,
        "etag": strong_etag(ics),
        "last_modified": created,
    }
    values.update(overrides)
    return PlanRecord(**values)


@pytest.fixture
def plan_factory() -> Callable[..., PlanRecord]:
    return make_plan


def make_revision(plan: PlanRecord, **overrides: Any) -> RevisionRecord:
    """The revision row that goes with ``plan`` as it is now."""
    values: dict[str, Any] = {
        "plan_id": plan.id,
        "revision": plan.revision,
        "created_at": plan.updated_at,
        "key_id": None,
        "kind": "created" if plan.revision == 1 else "check_in",
        "reason": f"revision {plan.revision}",
        "document": plan.document,
    }
    values.update(overrides)
    return RevisionRecord(**values)


def make_event(plan: PlanRecord, seq: int = 0, **overrides: Any) -> EventRecord:
    """An event that produced ``plan``'s current revision (``seq=0``: the next number)."""
    values: dict[str, Any] = {
        "plan_id": plan.id,
        "seq": seq,
        "kind": "check_in",
        "today": date(2026, 11, 20),
        "recorded_at": plan.updated_at,
        "key_id": None,
        "payload": {"pain": 1, "ran": True},
        "decision": {"action": "continue", "reason": "no pain"},
        "revision": plan.revision,
    }
    values.update(overrides)
    return EventRecord(**values)


def next_revision(plan: PlanRecord, **overrides: Any) -> PlanRecord:
    """``plan`` moved on by one revision, an hour later, with a new document."""
    updated = plan.updated_at + timedelta(hours=1)
    values: dict[str, Any] = {
        "revision": plan.revision + 1,
        "updated_at": updated,
        "last_modified": updated,
        "document": plan.document + b" r%d" % (plan.revision + 1),
    }
    values.update(overrides)
    return replace(plan, **values)
