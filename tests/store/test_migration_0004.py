"""Revision 0004: ``plans.state``, the write path's cache of the current revision's plan."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from planner.store import Store, head_revision
from planner.store.migrate import alembic_config
from planner.store.models import Base

from .conftest import Database, make_event, make_plan, make_revision, next_revision


def plan_columns(database: Database) -> set[str]:
    return {column["name"] for column in inspect(database.engine).get_columns("plans")}


def test_0004_adds_the_state_column_and_drops_it_again(store: Store, database: Database) -> None:
    assert head_revision() == "0004"
    plan = make_plan(1, state=b'{"fingerprint": "x"}')
    store.add_plan(plan, make_revision(plan))
    assert "state" in plan_columns(database)

    store.downgrade("0003")

    assert store.current_revision() == "0003"
    assert "state" not in plan_columns(database)
    assert database.rows("SELECT revision FROM plans") == [(1,)]

    store.upgrade()

    assert store.current_revision() == head_revision()
    # A cache, not data: after the round trip it is simply gone (the next write replays).
    assert store.get_plan_state("acme", plan.id) is None
    assert store.get_plan("acme", plan.id) == plan
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_only_the_write_path_reads_the_state(store: Store) -> None:
    plan = make_plan(1, state=b"state 1")
    store.add_plan(plan, make_revision(plan))

    assert store.get_plan("acme", plan.id) == plan  # equality ignores the state …
    assert store.get_plan("acme", plan.id).state is None  # … which plain reads leave out
    assert [p.state for p in store.list_plans("acme", limit=5, offset=0)[0]] == [None]
    found = store.get_plan_with_state("acme", plan.id)
    assert found is not None and found.state == b"state 1"
    assert store.get_plan_with_state("other", plan.id) is None
    assert store.get_plan_state("other", plan.id) is None

    moved = next_revision(plan, state=b"state 2")
    stored = store.update_plan(
        moved, expected_revision=1, revision=make_revision(moved), event=make_event(moved)
    )
    assert stored == make_event(moved, seq=1)  # the event as stored, numbered
    assert store.get_plan_state("acme", plan.id) == b"state 2"
    # A writer that does not know the state (its record came from a plain read) clears it:
    # never a stale state at a new revision.
    read = store.get_plan("acme", plan.id)
    assert read is not None
    store.update_plan(next_revision(read), expected_revision=2)
    assert store.get_plan_state("acme", plan.id) is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///unused.sqlite3", "ALTER TABLE _alembic_tmp_plans RENAME TO plans"),
        ("postgresql+psycopg://planner@localhost/planner", "ALTER TABLE plans DROP COLUMN state"),
    ],
)
def test_offline_sql_for_0004(capsys: pytest.CaptureFixture[str], url: str, expected: str) -> None:
    command.upgrade(alembic_config(url=url), "0003:0004", sql=True)
    assert "ALTER TABLE plans ADD COLUMN state" in capsys.readouterr().out
    command.downgrade(alembic_config(url=url), "0004:0003", sql=True)
    assert expected in capsys.readouterr().out
