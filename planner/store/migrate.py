"""Alembic, driven from code: the migration scripts ship inside the package.

There is no ``alembic.ini`` on disk, so an installed wheel can upgrade its own database from
any working directory. To write a new revision during development::

    from alembic import command
    from planner.store import Store
    from planner.store.migrate import alembic_config

    store = Store("sqlite:///instance/planner.sqlite3")
    store.upgrade()
    with store.engine.begin() as connection:
        command.revision(alembic_config(connection), message="add feed tokens",
                         autogenerate=True, rev_id="0002")

then review the generated file in ``planner/store/migrations/versions``.
"""

from __future__ import annotations

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

#: Package resource form understood by Alembic: works for editable and wheel installs alike.
SCRIPT_LOCATION = "planner.store:migrations"


def alembic_config(connection: Connection | None = None, *, url: str | None = None) -> Config:
    """Build an Alembic ``Config`` for the packaged migrations.

    Parameters:
        connection: used by ``env.py`` for online migrations (passed through
            ``config.attributes`` so the caller's engine settings, e.g. SQLite pragmas, apply).
        url: only for offline (``--sql``) runs that emit SQL without connecting.
    """
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    # Stated explicitly so Alembic does not fall back to (and warn about) legacy splitting.
    config.set_main_option("path_separator", "os")
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    """Return the newest revision shipped with this version of the code."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    """Return the revision the database is at (``None`` before the first upgrade)."""
    return MigrationContext.configure(connection).get_current_revision()
