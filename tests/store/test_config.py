"""Database URLs from the environment, and the store's import boundaries."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from planner.store import Store, database_url_from_env, default_database_url


def test_default_database_url_points_into_the_data_dir(tmp_path: Path) -> None:
    assert default_database_url(tmp_path) == f"sqlite:///{tmp_path.as_posix()}/planner.sqlite3"


def test_database_url_from_env_prefers_the_explicit_url() -> None:
    url = "postgresql+psycopg://planner:secret@db.internal:5432/planner"
    environ = {"PLANNER_DATABASE_URL": url, "PLANNER_DATA_DIR": "/ignored"}
    assert database_url_from_env(environ) == url


def test_database_url_from_env_uses_the_data_dir(tmp_path: Path) -> None:
    environ = {"PLANNER_DATABASE_URL": "  ", "PLANNER_DATA_DIR": str(tmp_path)}
    assert database_url_from_env(environ) == default_database_url(tmp_path.resolve())


def test_database_url_defaults_to_instance_under_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    expected = default_database_url(tmp_path.resolve() / "instance")
    assert database_url_from_env({}) == expected
    monkeypatch.delenv("PLANNER_DATABASE_URL", raising=False)
    monkeypatch.delenv("PLANNER_DATA_DIR", raising=False)
    assert database_url_from_env() == expected


def test_in_memory_sqlite_is_one_database_for_all_threads() -> None:
    # For quick API tests: every thread must see the same (migrated) database.
    with Store("sqlite://") as store:
        store.upgrade()
        secrets: list[str] = []
        thread = threading.Thread(target=lambda: secrets.append(store.create_key("t", "o")[1]))
        thread.start()
        thread.join()
        assert store.authenticate(secrets[0]) is not None


def test_missing_postgresql_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    # The dev extra installs psycopg (for the PostgreSQL tests): hide it, as a plain install
    # without the pg extra would not have it.
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(RuntimeError, match=r"stride-back\[pg\]"):
        Store("postgresql+psycopg://planner@localhost/planner")


def test_store_imports_neither_flask_nor_the_domain() -> None:
    code = (
        "import sys, planner.store; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'flask', 'werkzeug'} "
        "or m.startswith('planner.domain')); print(bad)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_pool_size_is_configurable_from_the_environment(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from planner.web import create_app

    with Store(db_url) as store:
        assert store.engine.pool.size() == 5  # SQLAlchemy's default
    monkeypatch.setenv("PLANNER_DATABASE_POOL_SIZE", "2")
    app = create_app({"DATABASE_URL": db_url})
    try:
        assert app.extensions["planner"]["store"].engine.pool.size() == 2
    finally:
        app.extensions["planner"]["store"].dispose()
