"""SQLite and PostgreSQL for the store and API suites: a throwaway server, a fresh database
per test.

Every test that takes the ``database_kind`` fixture (the suites' database URL fixtures do)
runs twice, as ``[sqlite]`` and ``[postgresql]``; one marked ``sqlite_only`` (it opens the
file with ``sqlite3``, checks pragmas …) runs once, on SQLite, and one marked
``postgresql_only`` (row locks …) once, on PostgreSQL.

The PostgreSQL server lives for the whole session and is started only when a PostgreSQL
test first needs it:

* ``PLANNER_TEST_POSTGRES_URL`` set: that server (the URL names a user allowed to create
  databases, e.g. ``postgresql://postgres@127.0.0.1:5432/postgres``);
* otherwise a throwaway cluster: ``initdb`` into a temporary directory (in RAM when
  ``/dev/shm`` has room), started with ``pg_ctl`` on a free 127.0.0.1 port with durability
  off, stopped and deleted at the end.
  The binaries come from PATH, else the newest Debian ``/usr/lib/postgresql/*/bin``.
  ``initdb`` refuses to run as root, so as root (CI) the cluster runs as the ``postgres``
  OS user.

Each PostgreSQL test gets its own database, cloned from a template (``CREATE DATABASE …
TEMPLATE``: milliseconds, where migrating costs tens of them) and dropped afterwards.

Without PostgreSQL (or psycopg) the PostgreSQL variants skip, naming what is missing;
with ``CI`` set they fail instead, as the browser tests do: CI installs PostgreSQL
(``scripts/postgres-deps``), so a skip there would be a silent pass.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest
from sqlalchemy import URL, make_url

from tests.ci import missing

if TYPE_CHECKING:
    import psycopg

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
#: An existing server to use instead of a throwaway cluster (an admin URL).
URL_VARIABLE = "PLANNER_TEST_POSTGRES_URL"
#: Where Debian installs each PostgreSQL major version's server binaries.
DEBIAN_BINARIES = Path("/usr/lib/postgresql")
#: The throwaway cluster's settings: loopback only, no durability (the data is thrown away,
#: and fsyncs would dominate the run), and connections for the concurrency tests (up to
#: ~30 per test: several stores, each with its own pool).
CLUSTER_SETTINGS: dict[str, str] = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    # Sessions in a zone far from UTC (+12:45/+13:45): stored instants must not depend on it.
    "timezone": "'Pacific/Chatham'",
    # Bounded, as the cluster may live in RAM (see RAM_DIR).
    "max_wal_size": "'256MB'",
}
#: Linux's shared-memory tmpfs. The cluster goes there when it has room: every test's
#: CREATE DATABASE copies a few hundred files, which on a disk-backed file system (ext4
#: mounted with ``discard``, say) takes ~0.3 s instead of ~0.01 s.
RAM_DIR = Path("/dev/shm")
#: Free space RAM_DIR needs to be used (a container's default /dev/shm is only 64 MiB).
RAM_DIR_MIN_FREE = 1 << 30
#: Seconds pg_ctl waits for the server to start or stop.
PG_CTL_TIMEOUT = 60


def pytest_configure(config: pytest.Config) -> None:
    """Register this module's markers (``--strict-markers`` safe)."""
    config.addinivalue_line(
        "markers", "sqlite_only(reason): runs on SQLite only (skips the [postgresql] run)"
    )
    config.addinivalue_line(
        "markers", "postgresql_only(reason): runs on PostgreSQL only (skips the [sqlite] run)"
    )
    config.addinivalue_line("markers", "postgresql: the test's [postgresql] run")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each test that uses ``database_kind`` on SQLite and PostgreSQL (ids ``[sqlite]``,
    ``[postgresql]``), or on one of them when marked ``sqlite_only``/``postgresql_only``."""
    if "database_kind" not in metafunc.fixturenames:
        return
    only = [
        kind
        for kind in (SQLITE, POSTGRESQL)
        if metafunc.definition.get_closest_marker(f"{kind}_only") is not None
    ]
    if len(only) > 1:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: sqlite_only or postgresql_only")
    kinds = only or [SQLITE, POSTGRESQL]
    metafunc.parametrize(
        "database_kind",
        [
            pytest.param(
                kind, id=kind, marks=[pytest.mark.postgresql] if kind == POSTGRESQL else []
            )
            for kind in kinds
        ],
        indirect=True,
    )


@pytest.fixture
def database_kind(request: pytest.FixtureRequest) -> str:
    """``"sqlite"`` or ``"postgresql"``: the database this run of the test uses."""
    return str(request.param)


def _unavailable(reason: str) -> NoReturn:
    missing(
        f"PostgreSQL tests need {reason}", install="scripts/postgres-deps", tests="PostgreSQL tests"
    )


# -- finding and running the server ------------------------------------------------------------


def _version_key(directory: Path) -> tuple[int, ...]:
    """``/usr/lib/postgresql/15/bin`` → ``(15,)``, so that 15 sorts after 9.6."""
    return tuple(int(part) for part in re.findall(r"\d+", directory.parent.name))


def find_server_binaries() -> tuple[Path, Path] | None:
    """``(initdb, pg_ctl)`` from PATH, else from the newest Debian version directory."""
    initdb = shutil.which("initdb")
    if initdb is not None:
        # pg_ctl from the same installation as initdb (a PATH entry may be a symlink into it).
        for directory in (Path(initdb).parent, Path(initdb).resolve().parent):
            if (directory / "pg_ctl").is_file():
                return Path(initdb), directory / "pg_ctl"
        pg_ctl = shutil.which("pg_ctl")
        if pg_ctl is not None:
            return Path(initdb), Path(pg_ctl)
    versions = sorted(DEBIAN_BINARIES.glob("*/bin"), key=_version_key, reverse=True)
    for directory in versions:
        if (directory / "initdb").is_file() and (directory / "pg_ctl").is_file():
            return directory / "initdb", directory / "pg_ctl"
    return None


def _as_cluster_owner() -> tuple[list[str], pwd.struct_passwd | None]:
    """The command prefix that runs a server binary as the cluster's owner, and that owner.

    Nothing for an ordinary user; as root, ``runuser -u postgres --`` (initdb and the
    server refuse to run as root).
    """
    if os.geteuid() != 0:
        return [], None
    try:
        owner = pwd.getpwnam("postgres")
    except KeyError:
        _unavailable("a 'postgres' OS user to own the cluster when running as root")
    runuser = shutil.which("runuser")
    if runuser is None:
        _unavailable("runuser (util-linux) to run the cluster as 'postgres'")
    return [runuser, "-u", "postgres", "--"], owner


def _cluster_parent() -> Path | None:
    """Where to make the cluster's directory: RAM_DIR when usable, else the temp default."""
    try:
        usable = (
            RAM_DIR.is_dir()
            and os.access(RAM_DIR, os.W_OK | os.X_OK)
            and shutil.disk_usage(RAM_DIR).free >= RAM_DIR_MIN_FREE
        )
    except OSError:
        usable = False
    return RAM_DIR if usable else None


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run(command: Sequence[str], *, cwd: Path, log: Path | None = None) -> None:
    """Run a server binary; on failure raise with its output (and the server log's tail)."""
    done = subprocess.run(
        list(command), cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    if done.returncode == 0:
        return
    details = (done.stdout + done.stderr).strip()
    if log is not None and log.exists():
        details += "\n--- server log ---\n" + "\n".join(log.read_text().splitlines()[-20:])
    raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{details}")


@contextmanager
def throwaway_cluster(initdb: Path, pg_ctl: Path) -> Iterator[URL]:
    """Initialise and start a cluster in a temporary directory; yield its admin URL; stop
    it and delete the directory on exit."""
    prefix, owner = _as_cluster_owner()
    base = Path(tempfile.mkdtemp(prefix="planner-pg-", dir=_cluster_parent()))
    data, log = base / "data", base / "server.log"
    try:
        if owner is not None:
            os.chown(base, owner.pw_uid, owner.pw_gid)
        _run(
            [
                *prefix,
                str(initdb),
                f"--pgdata={data}",
                "--username=postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
            cwd=base,
        )
        settings = {**CLUSTER_SETTINGS, "unix_socket_directories": f"'{base}'"}
        with (data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n# tests/pg.py\n")
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
        ctl = [*prefix, str(pg_ctl), f"--pgdata={data}", "--wait", f"--timeout={PG_CTL_TIMEOUT}"]
        port = _start(ctl, base, log)
        try:
            yield URL.create(
                "postgresql+psycopg",
                username="postgres",
                host="127.0.0.1",
                port=port,
                database="postgres",
            )
        finally:
            _run([*ctl, "--mode=fast", "stop"], cwd=base, log=log)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _start(ctl: list[str], base: Path, log: Path, attempts: int = 3) -> int:
    """Start the server on a free port (another process may take the port first: retry)."""
    for _ in range(attempts - 1):
        port = _free_port()
        try:
            _run([*ctl, f"--log={log}", f"--options=-p {port}", "start"], cwd=base, log=log)
            return port
        except RuntimeError:
            continue
    port = _free_port()
    _run([*ctl, f"--log={log}", f"--options=-p {port}", "start"], cwd=base, log=log)
    return port


# -- databases -------------------------------------------------------------------------------


class PostgresServer:
    """A server the tests create (and drop) their databases on, through one admin
    connection."""

    def __init__(self, admin_url: URL) -> None:
        import psycopg

        self.admin_url = admin_url
        self._admin: psycopg.Connection = psycopg.connect(_conninfo(admin_url), autocommit=True)
        self._version = self._admin.info.server_version
        # Unique per session, so several sessions can share a server.
        self._prefix = f"planner_test_{os.getpid()}_"
        self._numbers = itertools.count(1)
        self._template: str | None = None

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of ``database`` on this server."""
        return self.admin_url.set(database=database).render_as_string(hide_password=False)

    @contextmanager
    def database(self, *, migrated: bool) -> Iterator[str]:
        """A new database for one test, dropped afterwards: migrated to the newest schema,
        or empty (``migrated=False``, for tests of the migrations themselves)."""
        template = self._migrated_template() if migrated else "template0"
        name = self._create(template)
        try:
            yield self.url(name)
        finally:
            self._drop(name)

    def close(self) -> None:
        """Drop the template (on a shared server) and close the admin connection."""
        try:
            if self._template is not None:
                self._drop(self._template)
        finally:
            self._admin.close()

    def _migrated_template(self) -> str:
        """The database every migrated test database is cloned from, migrated once."""
        if self._template is None:
            from planner.store import Store

            name = self._create("template0")
            with Store(self.url(name)) as store:
                store.upgrade()
            self._template = name
        return self._template

    def _create(self, template: str) -> str:
        name = f"{self._prefix}{next(self._numbers)}"
        # FILE_COPY (named since PostgreSQL 15, the only strategy before) copies the files:
        # ~10 ms for the template in RAM. WAL_LOG, 15's default, writes every page to the
        # WAL instead, which for a small database is slower (more so on disk).
        strategy = " STRATEGY FILE_COPY" if self._version >= 150000 else ""
        # template0 so that the locale can be set: C, for byte-order text comparison.
        options = " ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'" if template == "template0" else ""
        self._admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"{options}{strategy}')
        return name

    def _drop(self, name: str) -> None:
        # FORCE (PostgreSQL 13+): a connection a test leaked must not keep the database alive.
        force = " WITH (FORCE)" if self._version >= 130000 else ""
        self._admin.execute(f'DROP DATABASE IF EXISTS "{name}"{force}')


def _conninfo(url: URL) -> str:
    """A libpq connection string for a SQLAlchemy URL."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _psycopg_url(text: str) -> URL:
    """``PLANNER_TEST_POSTGRES_URL`` with the psycopg 3 driver, whichever way it was spelled."""
    url = make_url(text)
    if url.get_backend_name() != POSTGRESQL:
        raise pytest.UsageError(f"{URL_VARIABLE} must be a postgresql:// URL, not {text!r}")
    return url.set(drivername="postgresql+psycopg")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server (see the module docstring)."""
    if importlib.util.find_spec("psycopg") is None:
        _unavailable("psycopg in the test environment")
    configured = os.environ.get(URL_VARIABLE, "").strip()
    if configured:
        server = PostgresServer(_psycopg_url(configured))
        try:
            yield server
        finally:
            server.close()
        return
    binaries = find_server_binaries()
    if binaries is None:
        _unavailable(f"initdb and pg_ctl (on PATH or in {DEBIAN_BINARIES}/*/bin)")
    with throwaway_cluster(*binaries) as admin_url:
        server = PostgresServer(admin_url)
        try:
            yield server
        finally:
            server.close()


@contextmanager
def postgres_database(request: pytest.FixtureRequest, *, migrated: bool) -> Iterator[str]:
    """A fresh database on the session's server for the requesting test (see
    :meth:`PostgresServer.database`); skips or fails as the module docstring says when
    there is no server."""
    server: PostgresServer = request.getfixturevalue("postgres_server")
    with server.database(migrated=migrated) as url:
        yield url
