"""Schema management: Alembic upgrades and downgrades on a real SQLite file and a real
PostgreSQL database, and models == migrations."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Mapping
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import inspect

from planner.cli import main as planner_cli
from planner.store import SCOPES, PlanRecord, Store, StoreError, hash_secret, head_revision
from planner.store.migrate import alembic_config
from planner.store.models import Base

from .conftest import Database, make_event, make_plan, make_revision, next_revision

#: A plan row exactly as revision 0001 stored it (on SQLite, SQLAlchemy's datetime text).
PLAN_0001 = {
    "id": "00000000-0000-4000-8000-000000000042",
    "organisation": "acme",
    "revision": 3,
    "status": "active",
    "created_at": "2026-11-20 09:31:00.000000",
    "updated_at": "2026-11-22 18:05:30.250000",
    "athlete_reference": "clinic-42",
    "protocol_id": "femoral-neck-compression",
    "protocol_version": "1.0.0",
    "request": '{"diagnosis_date": "2026-11-20"}',
    "document": b'{"id": "42"}',
    "ics": b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n",
    "etag": '"abc"',
}


#: Columns that old revisions' rows above hold as SQLite datetime text.
DATETIME_COLUMNS = frozenset(
    {"created_at", "updated_at", "last_used_at", "revoked_at", "last_modified", "recorded_at"}
)


def insert_legacy_row(database: Database, table: str, row: Mapping[str, object]) -> None:
    """Insert ``row`` the way an old revision's code stored it: datetimes as naive UTC text
    on SQLite, as ``timestamptz`` on PostgreSQL (whose session time zone must not matter)."""
    values = dict(row)
    if database.dialect != "sqlite":
        for name in DATETIME_COLUMNS & values.keys():
            if isinstance(values[name], str):
                values[name] = datetime.fromisoformat(str(values[name])).replace(tzinfo=UTC)
    columns = ", ".join(values)
    marks = ", ".join(f":{name}" for name in values)
    database.rows(f"INSERT INTO {table} ({columns}) VALUES ({marks})", **values)


def columns_and_indexes(database: Database, table: str) -> tuple[set[str], set[str]]:
    """The column names and (secondary) index names of ``table``."""
    inspector = inspect(database.engine)
    return (
        {column["name"] for column in inspector.get_columns(table)},
        {str(index["name"]) for index in inspector.get_indexes(table)},
    )


def assert_schema_matches_models(store: Store) -> None:
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_head_revision_is_the_latest_one() -> None:
    assert head_revision() == "0004"


def test_upgrade_creates_tables_and_records_revision(
    open_store: Callable[[], Store], database: Database
) -> None:
    store = open_store()
    assert store.current_revision() is None
    assert database.table_names() == set()

    store.upgrade()

    assert {"api_keys", "plans", "alembic_version"} <= database.table_names()
    assert store.current_revision() == head_revision()


def test_planner_db_upgrade_migrates_the_configured_database(
    db_url: str, database: Database
) -> None:
    upgrade = CliRunner().invoke(
        planner_cli, ["db", "upgrade"], env={"PLANNER_DATABASE_URL": db_url}
    )

    assert upgrade.exit_code == 0, upgrade.output
    assert f"Database at revision {head_revision()}" in upgrade.output
    assert {"api_keys", "plans", "webhook_outbox", "alembic_version"} <= database.table_names()
    assert database.rows("SELECT version_num FROM alembic_version") == [(head_revision(),)]


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


@pytest.mark.sqlite_only("the SQLite file's directory")
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
    assert_schema_matches_models(store)


def test_downgrade_to_base_and_back(store: Store, database: Database) -> None:
    with store.engine.begin() as connection:
        command.downgrade(alembic_config(connection), "base")
    assert database.table_names() == {"alembic_version"}
    assert store.current_revision() is None

    store.upgrade()
    assert store.current_revision() == head_revision()


def test_offline_upgrade_renders_sql(capsys: pytest.CaptureFixture[str]) -> None:
    command.upgrade(alembic_config(url="sqlite:///unused.sqlite3"), "head", sql=True)
    sql = capsys.readouterr().out
    assert "CREATE TABLE api_keys" in sql
    assert "CREATE TABLE plans" in sql
    assert "CREATE INDEX ix_plans_organisation_created_at_id" in sql
    assert "CREATE UNIQUE INDEX ix_plans_feed_token_hash" in sql
    assert "CREATE TABLE plan_revisions" in sql
    assert "CREATE TABLE plan_events" in sql
    assert "CREATE TABLE webhooks" in sql
    assert "CREATE TABLE webhook_outbox" in sql
    assert "CREATE INDEX ix_webhook_outbox_delivered_at_gave_up_at_next_attempt_at" in sql
    assert "CREATE TABLE idempotency_keys" in sql
    assert "ALTER TABLE api_keys ADD COLUMN scopes JSON" in sql
    assert "ALTER TABLE _alembic_tmp_api_keys RENAME TO api_keys" in sql


def test_offline_upgrade_renders_postgresql_sql(capsys: pytest.CaptureFixture[str]) -> None:
    # No batch mode on PostgreSQL: columns are altered in place, never by a table rebuild.
    url = "postgresql+psycopg://planner@localhost/planner"
    command.upgrade(alembic_config(url=url), "head", sql=True)
    sql = capsys.readouterr().out
    assert "CREATE TABLE plans" in sql
    assert "ALTER TABLE plans ALTER COLUMN last_modified SET NOT NULL" in sql
    assert "ALTER TABLE api_keys ALTER COLUMN scopes SET NOT NULL" in sql
    assert "CREATE TABLE webhook_outbox" in sql
    assert "BYTEA" in sql and "TIMESTAMP WITH TIME ZONE" in sql
    assert "_alembic_tmp" not in sql


def test_offline_downgrade_from_0003_renders_sql(capsys: pytest.CaptureFixture[str]) -> None:
    command.downgrade(alembic_config(url="sqlite:///unused.sqlite3"), "0003:0002", sql=True)
    sql = capsys.readouterr().out
    assert "DROP TABLE idempotency_keys" in sql
    assert "DROP TABLE webhook_outbox" in sql
    assert "DROP TABLE webhooks" in sql
    assert "ALTER TABLE _alembic_tmp_api_keys RENAME TO api_keys" in sql


def test_offline_downgrade_renders_sql(capsys: pytest.CaptureFixture[str]) -> None:
    command.downgrade(alembic_config(url="sqlite:///unused.sqlite3"), "0002:0001", sql=True)
    sql = capsys.readouterr().out
    assert "DROP TABLE plan_events" in sql
    assert "DROP TABLE plan_revisions" in sql
    assert "ALTER TABLE _alembic_tmp_plans RENAME TO plans" in sql


def migrate_to(store: Store, target: str) -> None:
    with store.engine.begin() as connection:
        command.upgrade(alembic_config(connection), target)


def test_upgrade_from_0001_keeps_plans_and_backfills(
    open_store: Callable[[], Store], database: Database
) -> None:
    store = open_store()
    migrate_to(store, "0001")
    insert_legacy_row(database, "plans", PLAN_0001)

    store.upgrade()

    assert store.current_revision() == head_revision()
    plan = store.get_plan("acme", PLAN_0001["id"])
    assert plan is not None
    assert (plan.revision, plan.athlete_reference, plan.document, plan.ics) == (
        3,
        "clinic-42",
        PLAN_0001["document"],
        PLAN_0001["ics"],
    )
    assert plan.request == {"diagnosis_date": "2026-11-20"}
    updated = datetime(2026, 11, 22, 18, 5, 30, 250000, tzinfo=UTC)
    assert plan.updated_at == plan.last_modified == updated
    assert (plan.settings, plan.protocol_snapshot) == ({}, {})
    assert (plan.feed_token, plan.feed_token_hash, plan.busy_ics, plan.confirmed_at) == (
        None,
        None,
        None,
        None,
    )
    assert store.list_plans("acme", limit=10, offset=0)[1] == 1
    # The migrated plan takes part in the new machinery at once.
    moved = next_revision(plan)
    store.update_plan(moved, expected_revision=3, event=make_event(moved))
    assert [e.revision for e in store.list_events("acme", plan.id)] == [4]
    assert_schema_matches_models(store)


def test_downgrade_to_0001_and_back_keeps_plans(store: Store, database: Database) -> None:
    plan = make_plan(1)
    store.add_plan(plan, make_revision(plan))
    moved = next_revision(plan, settings={"busy": True}, feed_token="t", feed_token_hash="h")
    store.update_plan(moved, expected_revision=1, revision=make_revision(moved))

    store.downgrade("0001")

    assert store.current_revision() == "0001"
    assert database.table_names() == {"alembic_version", "api_keys", "plans"}
    columns, indexes = columns_and_indexes(database, "plans")
    assert columns == set(PLAN_0001)
    assert indexes == {
        "ix_plans_organisation_athlete_reference",
        "ix_plans_organisation_created_at_id",
    }
    assert inspect(database.engine).get_pk_constraint("plans")["constrained_columns"] == ["id"]

    store.upgrade()

    restored = store.get_plan("acme", plan.id)
    # What 0002 added is gone; the rest is the plan as it was.
    assert restored == PlanRecord(
        **{name: getattr(moved, name) for name in PLAN_0001},
        last_modified=moved.updated_at,
    )
    assert store.list_revisions("acme", plan.id) == []
    assert_schema_matches_models(store)


@pytest.mark.sqlite_only("batch mode's table rebuild and SQLite's foreign-key pragma")
def test_table_rebuild_during_migration_keeps_history(store: Store) -> None:
    # What a future batch migration of ``plans`` does on SQLite: copy, DROP, rename. With
    # foreign keys on, the DROP would cascade and delete every revision and event.
    plan = make_plan(1)
    store.add_plan(plan, make_revision(plan))
    moved = next_revision(plan)
    store.update_plan(
        moved, expected_revision=1, revision=make_revision(moved), event=make_event(moved)
    )

    with store._migration_connection() as connection:
        operations = Operations(MigrationContext.configure(connection))
        with operations.batch_alter_table("plans", recreate="always"):
            pass

    assert len(store.list_revisions("acme", plan.id)) == 2
    assert len(store.list_events("acme", plan.id)) == 1
    with store.engine.connect() as connection:  # back in the pool with foreign keys on
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1

    # The same rebuild outside the migration lock shows what was at stake.
    with store.engine.begin() as connection:
        operations = Operations(MigrationContext.configure(connection))
        with operations.batch_alter_table("plans", recreate="always"):
            pass
    assert store.list_revisions("acme", plan.id) == []


@pytest.mark.sqlite_only("PostgreSQL checks foreign keys at once; SQLite's are off while migrating")
def test_migration_leaving_dangling_foreign_keys_is_rolled_back(
    store: Store, db_path: Path
) -> None:
    with pytest.raises(StoreError, match="plan_events"):
        with store._migration_connection() as connection:
            connection.exec_driver_sql(
                "INSERT INTO plan_events (plan_id, seq, kind, today, recorded_at, payload, "
                "revision) VALUES ('nope', 1, 'x', '2026-11-20', '2026-11-20 00:00:00', '{}', 1)"
            )
    with closing(sqlite3.connect(db_path)) as connection:
        assert connection.execute("SELECT count(*) FROM plan_events").fetchone()[0] == 0
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


@pytest.mark.sqlite_only("SQLite pragmas")
def test_sqlite_connections_are_tuned(store: Store) -> None:
    with store.engine.connect() as connection:
        pragma = connection.exec_driver_sql
        assert pragma("PRAGMA journal_mode").scalar() == "wal"
        assert pragma("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert pragma("PRAGMA foreign_keys").scalar() == 1
        assert pragma("PRAGMA busy_timeout").scalar() == 5000


#: An API key row exactly as revisions 0001/0002 stored it (no scopes).
KEY_0002 = {
    "id": 7,
    "name": "clinic system",
    "organisation": "acme",
    "prefix": "AbCd1234",
    "key_hash": hash_secret("sbk_AbCd1234_secret"),
    "created_at": "2026-11-20 09:00:00.000000",
    "last_used_at": "2026-11-21 10:00:00.000000",
    "revoked_at": None,
}
#: An event row as revision 0002 stored it (``plan_id`` to be filled in).
EVENT_0002 = {
    "seq": 1,
    "kind": "check_in",
    "today": "2026-11-22",
    "recorded_at": "2026-11-22 18:05:30.250000",
    "key_id": 7,
    "payload": '{"pain_during": 0}',
    "decision": '{"action": "count"}',
    "revision": 2,
}
NEW_TABLES = {"webhooks", "webhook_outbox", "idempotency_keys"}


def test_upgrade_from_0002_gives_existing_keys_every_scope_and_keeps_history(
    open_store: Callable[[], Store], database: Database
) -> None:
    store = open_store()
    migrate_to(store, "0002")
    insert_legacy_row(database, "api_keys", KEY_0002)
    insert_legacy_row(
        database,
        "api_keys",
        {
            **KEY_0002,
            "id": 8,
            "prefix": "Revoked1",
            "key_hash": hash_secret("x"),
            "revoked_at": KEY_0002["created_at"],
        },
    )
    # A plan with two revisions and an event by key 7, as 0002's code stored them.
    plan_id = PLAN_0001["id"]
    insert_legacy_row(
        database,
        "plans",
        {
            **PLAN_0001,
            "last_modified": PLAN_0001["updated_at"],
            "settings": "{}",
            "protocol_snapshot": "{}",
        },
    )
    for revision in (1, 2):
        insert_legacy_row(
            database,
            "plan_revisions",
            {
                "plan_id": plan_id,
                "revision": revision,
                "created_at": PLAN_0001["updated_at"],
                "key_id": 7,
                "kind": "created" if revision == 1 else "check_in",
                "reason": f"revision {revision}",
                "document": b"{}",
            },
        )
    insert_legacy_row(database, "plan_events", {**EVENT_0002, "plan_id": plan_id})

    store.upgrade()

    assert store.current_revision() == head_revision()
    assert NEW_TABLES <= database.table_names()
    keys = {k.id: k for k in store.list_keys()}
    assert keys[7].scopes == keys[8].scopes == SCOPES
    assert keys[7].last_used_at == datetime(2026, 11, 21, 10, tzinfo=UTC)
    assert not keys[8].active
    found = store.authenticate("sbk_AbCd1234_secret")
    assert found is not None and found.id == 7 and found.allows("webhooks:manage")
    # The api_keys rebuild left the rows that reference keys alone.
    assert [r.key_id for r in store.list_revisions("acme", plan_id)] == [7, 7]
    assert [e.key_id for e in store.list_events("acme", plan_id)] == [7]
    if database.dialect == "sqlite":  # PostgreSQL never lets a foreign key dangle
        assert database.rows("PRAGMA foreign_key_check") == []
    assert_schema_matches_models(store)
    # New keys and webhooks work at once.
    hook = store.create_webhook("acme", "https://example.com/h", ["plan.created"])
    assert store.get_webhook("acme", hook.id) == hook


def test_downgrade_to_0002_and_back(store: Store, database: Database) -> None:
    key, secret = store.create_key("limited", "acme", ["plans:read"])
    plan = make_plan(1)
    store.add_plan(plan, make_revision(plan, key_id=key.id))
    store.create_webhook("acme", "https://example.com/h", ["plan.created"])
    store.claim_idempotency("acme", "k", "POST", "/v1/plans", "0" * 64)

    store.downgrade("0002")

    assert store.current_revision() == "0002"
    assert not NEW_TABLES & database.table_names()
    columns, indexes = columns_and_indexes(database, "api_keys")
    assert columns == set(KEY_0002)
    assert indexes == {"ix_api_keys_key_hash", "ix_api_keys_organisation"}

    store.upgrade()

    # The key survived; its limits did not (every pre-0003 key can do everything).
    found = store.authenticate(secret)
    assert found is not None and found.id == key.id and found.scopes == SCOPES
    assert [r.key_id for r in store.list_revisions("acme", plan.id)] == [key.id]
    assert store.list_webhooks("acme") == []
    assert_schema_matches_models(store)
