"""Database URLs and engine construction (SQLite tuning lives here).

SQLite is the default for a single machine; PostgreSQL (``postgresql+psycopg://``, from the
``pg`` extra) is for several app instances behind a load balancer (design §7).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.pool import StaticPool

#: File name of the SQLite database inside the data directory.
SQLITE_FILE_NAME = "planner.sqlite3"
#: How long (ms) a SQLite connection waits for another writer before failing with "locked".
SQLITE_BUSY_TIMEOUT_MS = 5000


def default_database_url(data_dir: Path) -> str:
    """Return the SQLite URL of the planner database inside ``data_dir``.

    >>> default_database_url(Path("/srv/planner"))
    'sqlite:////srv/planner/planner.sqlite3'
    """
    return f"sqlite:///{(data_dir / SQLITE_FILE_NAME).as_posix()}"


def database_url_from_env(environ: Mapping[str, str] | None = None) -> str:
    """Return the database URL configured by the environment.

    ``PLANNER_DATABASE_URL`` wins and is passed through unchanged (e.g.
    ``postgresql+psycopg://…``). Otherwise the SQLite file lives in ``PLANNER_DATA_DIR``,
    default ``./instance``; a relative directory is made absolute against the current working
    directory now, so a later ``chdir`` (daemonising, gunicorn ``--chdir``) cannot move the
    database. Empty values count as unset.
    """
    env = os.environ if environ is None else environ
    url = env.get("PLANNER_DATABASE_URL", "").strip()
    if url:
        return url
    data_dir = Path(env.get("PLANNER_DATA_DIR", "").strip() or "instance").expanduser()
    return default_database_url(data_dir.resolve())


def is_sqlite_memory(url: URL) -> bool:
    """Tell whether ``url`` names a private in-memory SQLite database."""
    database = url.database or ""
    return database in ("", ":memory:") or url.query.get("mode") == "memory"


def make_engine(url: str | URL, *, echo: bool = False, pool_size: int | None = None) -> Engine:
    """Create the engine for ``url``, with SQLite tuned for a small web service.

    ``pool_size``: connections the pool keeps open (SQLAlchemy's default, 5, when ``None``);
    with many instances on one PostgreSQL, a smaller pool keeps the server's connection
    count in bounds (see the README, Running at scale).

    For a SQLite file the parent directory is created if missing, so a fresh deployment needs
    no setup step. An in-memory SQLite URL gets a single shared connection, so every thread
    sees the same (test) database instead of a new empty one per connection.
    """
    parsed = make_url(url)
    # hide_parameters: bound values include feed tokens and key hashes; they must not end up
    # in echo logs or in the text of a database error (which ends up in error logs).
    if parsed.get_backend_name() != "sqlite":
        try:
            # pre-ping: a server-side restart or idle timeout must not fail the next request.
            return create_engine(
                parsed,
                echo=echo,
                pool_pre_ping=True,
                hide_parameters=True,
                **({} if pool_size is None else {"pool_size": pool_size}),
            )
        except ModuleNotFoundError as exc:
            raise RuntimeError(
                f"no database driver for {parsed.drivername!r} ({exc.name} is not installed); "
                "for PostgreSQL install the 'pg' extra: pip install 'stride-back[pg]'"
            ) from exc

    memory = is_sqlite_memory(parsed)
    if memory:
        engine = create_engine(
            parsed,
            echo=echo,
            poolclass=StaticPool,
            connect_args={"check_same_thread": False},
            hide_parameters=True,
        )
    else:
        database = parsed.database or ""
        if not parsed.query.get("uri") and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            parsed,
            echo=echo,
            hide_parameters=True,
            **({} if pool_size is None else {"pool_size": pool_size}),
        )
    event.listen(engine, "connect", partial(_configure_sqlite, wal=not memory))
    return engine


def _configure_sqlite(dbapi_connection: Any, connection_record: Any, *, wal: bool) -> None:
    """Set per-connection SQLite pragmas.

    WAL lets readers proceed while one writer commits; ``synchronous=NORMAL`` is durable
    across application crashes under WAL and makes a commit cost ~0.3 ms instead of an fsync
    (design §8); the busy timeout makes a second writer wait instead of failing at once;
    foreign keys are off by default in SQLite and must be enabled on every connection.
    """
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        if wal:
            _enable_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _enable_wal(cursor: Any) -> None:
    """Switch the database file to WAL, retrying while another connection holds a lock.

    WAL mode is stored in the file, so this only changes anything on a fresh database. That
    is exactly when several workers start at once, and SQLite answers "database is locked"
    to a concurrent journal-mode change without consulting the busy timeout, so wait here.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    delay = 0.002
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL").fetchall()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
