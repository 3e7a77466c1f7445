"""Schema management: Alembic upgrades on a real SQLite file, and models == migrations."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from planner.store import PlanRecord, Store, head_revision
from planner.store.migrate import alembic_config
from planner.store.models import Base


def table_names(db_path: Path) -> set[str]:
    with closing(sqlite3.connect(db_path)) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {name for (name,) in rows}


def test_head_revision_is_the_initial_one() -> None:
    assert head_revision() == "0001"


def test_upgrade_creates_tables_and_records_revision(
    open_store: Callable[[], Store], db_path: Path
) -> None:
    store = open_store()
    assert store.current_revision() is None

    store.upgrade()

    assert {"api_keys", "plans", "alembic_version"} <= table_names(db_path)
    assert store.current_revision() == head_revision()


def test_upgrade_is_idempotent_and_keeps_data(
    open_store: Callable[[], Store], plan_factory: Callable[..., PlanRecord]
) -> None:
    store = open_store()
    store.upgrade()
    store.add_plan(plan_factory(1))

    store.upgrade()
    open_store().upgrade()  # a restarted process upgrading an up-to-date file

    assert store.current_revision() == head_revision()
    assert store.list_plans("acme", limit=10, offset=0)[1] == 1


def test_upgrade_creates_missing_data_directory(
    open_store: Callable[[], Store], db_path: Path
) -> None:
    assert not db_path.parent.exists()
    open_store().upgrade()
    assert db_path.is_file()


def test_concurrent_upgrades_of_a_fresh_file_both_succeed(
    open_store: Callable[[], Store],
) -> None:
    stores = [open_store() for _ in range(3)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(stores))

    def run(store: Store) -> None:
        try:
            barrier.wait()
            store.upgrade()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert all(store.current_revision() == head_revision() for store in stores)


def test_migrated_schema_matches_models(store: Store) -> None:
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_downgrade_to_base_and_back(store: Store, db_path: Path) -> None:
    with store.engine.begin() as connection:
        command.downgrade(alembic_config(connection), "base")
    assert table_names(db_path) == {"alembic_version"}
    assert store.current_revision() is None

    store.upgrade()
    assert store.current_revision() == head_revision()


def test_offline_upgrade_renders_sql(capsys: pytest.CaptureFixture[str]) -> None:
    command.upgrade(alembic_config(url="sqlite:///unused.sqlite3"), "head", sql=True)
    sql = capsys.readouterr().out
    assert "CREATE TABLE api_keys" in sql
    assert "CREATE TABLE plans" in sql
    assert "CREATE INDEX ix_plans_organisation_created_at_id" in sql


def test_sqlite_connections_are_tuned(store: Store) -> None:
    with store.engine.connect() as connection:
        pragma = connection.exec_driver_sql
        assert pragma("PRAGMA journal_mode").scalar() == "wal"
        assert pragma("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert pragma("PRAGMA foreign_keys").scalar() == 1
        assert pragma("PRAGMA busy_timeout").scalar() == 5000
