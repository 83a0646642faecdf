"""SELECTs prepared once and run straight on the SQLite driver.

A point lookup costs SQLite about 4 µs; SQLAlchemy's execution around it (parameter
processing, result metadata, row objects) about 25 µs more. For the few lookups that every
uncached read makes, :class:`PreparedSelect` compiles the Core statement once, runs its
SQL on the driver's connection and converts the columns with the same result processors
SQLAlchemy would (JSON, Boolean). On another database it is a plain ``conn.execute``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Select
from sqlalchemy.dialects import sqlite


class PreparedSelect:
    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        dialect = sqlite.dialect()
        compiled = statement.compile(dialect=dialect)
        self._sql = str(compiled)
        self._order: Sequence[str] = tuple(compiled.positiontup or ())
        self.columns: tuple[str, ...] = tuple(str(c.key) for c in statement.selected_columns)
        processors = [c.type.result_processor(dialect, None) for c in statement.selected_columns]
        self._processors: list[tuple[int, Callable[[Any], Any]]] = [
            (index, processor) for index, processor in enumerate(processors) if processor
        ]

    def rows(self, conn: Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """The result rows as tuples in :attr:`columns` order."""
        if conn.dialect.name != "sqlite":
            return [tuple(row) for row in conn.execute(self.statement, dict(params))]
        driver: Any = conn.connection.dbapi_connection
        found = driver.execute(self._sql, [params[name] for name in self._order]).fetchall()
        if not self._processors:
            return found  # type: ignore[no-any-return]
        converted = []
        for row in found:
            values = list(row)
            for index, processor in self._processors:
                values[index] = processor(values[index])
            converted.append(tuple(values))
        return converted

    def first(self, conn: Connection, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """The first row as a column -> value mapping, or None."""
        found = self.rows(conn, params)
        return dict(zip(self.columns, found[0], strict=True)) if found else None
