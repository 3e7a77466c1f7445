"""Schema management: Alembic upgrades on a real SQLite file, and models == migrations."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext

from planner.store import SCOPES, PlanRecord, Store, StoreError, hash_secret, head_revision
from planner.store.migrate import alembic_config
from planner.store.models import Base

from .conftest import make_event, make_plan, make_revision, next_revision

#: A plan row exactly as revision 0001 stored it (SQLAlchemy's SQLite datetime format).
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


def table_names(db_path: Path) -> set[str]:
    with closing(sqlite3.connect(db_path)) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {name for (name,) in rows}


def test_head_revision_is_the_latest_one() -> None:
    assert head_revision() == "0003"


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
    assert "CREATE UNIQUE INDEX ix_plans_feed_token_hash" in sql
    assert "CREATE TABLE plan_revisions" in sql
    assert "CREATE TABLE plan_events" in sql
    assert "CREATE TABLE webhooks" in sql
    assert "CREATE TABLE webhook_outbox" in sql
    assert "CREATE INDEX ix_webhook_outbox_delivered_at_gave_up_at_next_attempt_at" in sql
    assert "CREATE TABLE idempotency_keys" in sql
    assert "ALTER TABLE api_keys ADD COLUMN scopes JSON" in sql
    assert "ALTER TABLE _alembic_tmp_api_keys RENAME TO api_keys" in sql


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


def insert_0001_plan(db_path: Path) -> None:
    with closing(sqlite3.connect(db_path)) as connection, connection:
        columns = ", ".join(PLAN_0001)
        marks = ", ".join("?" * len(PLAN_0001))
        connection.execute(
            f"INSERT INTO plans ({columns}) VALUES ({marks})", list(PLAN_0001.values())
        )


def test_upgrade_from_0001_keeps_plans_and_backfills(
    open_store: Callable[[], Store], db_path: Path
) -> None:
    store = open_store()
    migrate_to(store, "0001")
    insert_0001_plan(db_path)

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
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_downgrade_to_0001_and_back_keeps_plans(store: Store, db_path: Path) -> None:
    plan = make_plan(1)
    store.add_plan(plan, make_revision(plan))
    moved = next_revision(plan, settings={"busy": True}, feed_token="t", feed_token_hash="h")
    store.update_plan(moved, expected_revision=1, revision=make_revision(moved))

    store.downgrade("0001")

    assert store.current_revision() == "0001"
    assert table_names(db_path) == {"alembic_version", "api_keys", "plans"}
    with closing(sqlite3.connect(db_path)) as connection:
        columns = {row[1] for row in connection.execute("PRAGMA table_info(plans)")}
        indexes = {row[1] for row in connection.execute("PRAGMA index_list(plans)")}
    assert columns == set(PLAN_0001)
    assert indexes == {
        "ix_plans_organisation_athlete_reference",
        "ix_plans_organisation_created_at_id",
        "sqlite_autoindex_plans_1",  # the primary key
    }

    store.upgrade()

    restored = store.get_plan("acme", plan.id)
    # What 0002 added is gone; the rest is the plan as it was.
    assert restored == PlanRecord(
        **{name: getattr(moved, name) for name in PLAN_0001},
        last_modified=moved.updated_at,
    )
    assert store.list_revisions("acme", plan.id) == []
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_table_rebuild_during_migration_keeps_history(store: Store, db_path: Path) -> None:
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
NEW_TABLES = {"webhooks", "webhook_outbox", "idempotency_keys"}


def insert_0002_key(db_path: Path, **overrides: object) -> None:
    row = {**KEY_0002, **overrides}
    with closing(sqlite3.connect(db_path)) as connection, connection:
        columns = ", ".join(row)
        marks = ", ".join("?" * len(row))
        connection.execute(f"INSERT INTO api_keys ({columns}) VALUES ({marks})", list(row.values()))


def test_upgrade_from_0002_gives_existing_keys_every_scope_and_keeps_history(
    open_store: Callable[[], Store], db_path: Path
) -> None:
    store = open_store()
    migrate_to(store, "0002")
    insert_0002_key(db_path)
    insert_0002_key(
        db_path,
        id=8,
        prefix="Revoked1",
        key_hash=hash_secret("x"),
        revoked_at=KEY_0002["created_at"],
    )
    plan = make_plan(1)
    store.add_plan(plan, make_revision(plan, key_id=7))
    moved = next_revision(plan)
    store.update_plan(
        moved,
        expected_revision=1,
        revision=make_revision(moved, key_id=7),
        event=make_event(moved, key_id=7),
    )

    store.upgrade()

    assert store.current_revision() == "0003"
    assert NEW_TABLES <= table_names(db_path)
    keys = {k.id: k for k in store.list_keys()}
    assert keys[7].scopes == keys[8].scopes == SCOPES
    assert keys[7].last_used_at == datetime(2026, 11, 21, 10, tzinfo=UTC)
    assert not keys[8].active
    found = store.authenticate("sbk_AbCd1234_secret")
    assert found is not None and found.id == 7 and found.allows("webhooks:manage")
    # The api_keys rebuild left the rows that reference keys alone.
    assert [r.key_id for r in store.list_revisions("acme", plan.id)] == [7, 7]
    assert [e.key_id for e in store.list_events("acme", plan.id)] == [7]
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall() == []
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    # New keys and webhooks work at once.
    hook = store.create_webhook("acme", "https://example.com/h", ["plan.created"])
    assert store.get_webhook("acme", hook.id) == hook


def test_downgrade_to_0002_and_back(store: Store, db_path: Path) -> None:
    key, secret = store.create_key("limited", "acme", ["plans:read"])
    plan = make_plan(1)
    store.add_plan(plan, make_revision(plan, key_id=key.id))
    store.create_webhook("acme", "https://example.com/h", ["plan.created"])
    store.claim_idempotency("acme", "k", "POST", "/v1/plans", "0" * 64)

    store.downgrade("0002")

    assert store.current_revision() == "0002"
    assert not NEW_TABLES & table_names(db_path)
    with closing(sqlite3.connect(db_path)) as connection:
        columns = {row[1] for row in connection.execute("PRAGMA table_info(api_keys)")}
        indexes = {row[1] for row in connection.execute("PRAGMA index_list(api_keys)")}
    assert columns == set(KEY_0002)
    assert indexes == {"ix_api_keys_key_hash", "ix_api_keys_organisation"}

    store.upgrade()

    # The key survived; its limits did not (every pre-0003 key can do everything).
    found = store.authenticate(secret)
    assert found is not None and found.id == key.id and found.scopes == SCOPES
    assert [r.key_id for r in store.list_revisions("acme", plan.id)] == [key.id]
    assert store.list_webhooks("acme") == []
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
