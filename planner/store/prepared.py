"""Hot reads compiled once and run on a pooled DBAPI connection.

A calendar client polls its feed every few minutes, so the few reads every request
makes (feed validators, an API key, a plan) run thousands of times per second across a
deployment. Through an ORM session each costs ~0.4 ms, through a Core connection ~0.07
ms, of which the query itself is a small part: per call, SQLAlchemy builds a session or
connection, begins a transaction and wraps the result. :class:`PreparedRead` keeps what
SQLAlchemy is good at — the statement is written with Core, compiled by the engine's own
dialect, and each column's value is converted by its SQLAlchemy type (so ``UTCDateTime``
and ``JSON`` behave exactly as in the ORM) — and does per call only what must be done per
call: check a connection out of the engine's pool, execute, convert one row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

from sqlalchemy import Engine, Select


class PreparedRead:
    """One SELECT, compiled for ``engine``'s dialect, answering at most one row as a dict.

    Parameters are the statement's ``bindparam`` names. The connection comes from the
    engine's pool, so pool settings (size, pre-ping, recycle) apply as for any other query,
    and goes back to it (rolled back: this only reads) when the call ends.
    """

    def __init__(self, engine: Engine, statement: Select[*tuple[Any, ...]]) -> None:
        dialect = engine.dialect
        compiled = statement.compile(dialect=dialect)
        self._engine = engine
        self._sql = compiled.string
        # Every selected column has a key (its name or label); the stubs allow None.
        self._names = tuple(cast(str, column.key) for column in statement.selected_columns)
        self._processors: tuple[Callable[[Any], Any] | None, ...] = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in statement.selected_columns
        )
        binds = compiled.binds
        self._bind_processors = {
            name: bind.type.dialect_impl(dialect).bind_processor(dialect)
            for name, bind in binds.items()
        }
        # psycopg 3 (PostgreSQL): one statement needs no transaction of its own, and
        # autocommit saves the BEGIN and ROLLBACK round trips around it (~240 -> ~90 us on
        # loopback); the binary protocol sends a 100 KB calendar as it is instead of as
        # hex text to decode (~1.3 -> ~0.4 ms).
        self._psycopg = dialect.driver == "psycopg"
        # qmark/format dialects (SQLite) take a sequence in the compiled order; named and
        # pyformat ones (psycopg) a mapping.
        self._positions: tuple[str, ...] | None = (
            tuple(compiled.positiontup or ()) if compiled.positional else None
        )

    def one(self, **params: Any) -> dict[str, Any] | None:
        """The first matching row, its values converted by their column types, or ``None``."""
        values = self._parameters(params)
        connection = self._engine.raw_connection()
        try:
            if self._psycopg:
                connection.dbapi_connection.autocommit = True  # type: ignore[union-attr]
                cursor = connection.cursor(binary=True)
            else:
                cursor = connection.cursor()
            try:
                cursor.execute(self._sql, values)
                row = cursor.fetchone()
            finally:
                cursor.close()
                if self._psycopg:  # as the pool lent it: others expect transactions
                    connection.dbapi_connection.autocommit = False  # type: ignore[union-attr]
        finally:
            connection.close()  # back to the pool, which rolls any read transaction back
        if row is None:
            return None
        return {
            name: value if processor is None else processor(value)
            for name, processor, value in zip(self._names, self._processors, row, strict=True)
        }

    def _parameters(self, params: Mapping[str, Any]) -> Any:
        converted = {}
        for name, value in params.items():
            processor = self._bind_processors.get(name)
            converted[name] = value if processor is None else processor(value)
        if self._positions is None:
            return converted
        return tuple(converted[name] for name in self._positions)
