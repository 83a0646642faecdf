"""Database engines and transactions.

Two kinds of transaction: ``read()`` sees a consistent snapshot; ``write()`` takes the
write lock up front (SQLite ``BEGIN IMMEDIATE``), so two writers never deadlock on a
lock upgrade, and returns only after the commit is durable.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

MIGRATIONS = Path(__file__).with_name("migrations")
POOL_SIZE = 48


class UnitOfWork:
    """One request's writes, held open until the caller decides to commit.

    The pipeline opens a unit around an operation so that the audit record of a write is
    durable *before* the write commits: if auditing fails, the write is rolled back and
    the request changed nothing.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self.connection: Connection | None = None
        self._context: Any = None

    def writer(self) -> Connection:
        if self.connection is None:
            self._context = self._store.engine.connect()
            conn = self._context.execution_options(strongroom_write=True)
            conn.begin()
            self.connection = conn
        return self.connection

    @property
    def wrote(self) -> bool:
        return self.connection is not None

    def commit(self) -> None:
        if self.connection is not None:
            self.connection.commit()
            self._close()

    def rollback(self) -> None:
        if self.connection is not None:
            self.connection.rollback()
            self._close()

    def _close(self) -> None:
        if self._context is not None:
            self._context.close()
        self.connection = None
        self._context = None


_unit: ContextVar[UnitOfWork | None] = ContextVar("strongroom_unit_of_work", default=None)
# The read transaction already open in this context: nested reads join it, so one request
# never holds two pooled read connections (which could drain the pool and deadlock).
_reader: ContextVar[Connection | None] = ContextVar("strongroom_reader", default=None)


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'strongroom.db'}"


class Store:
    """The database behind one Strongroom deployment."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.dialect = make_url(url).get_backend_name()
        self.engine = self._create_engine(url)

    def _create_engine(self, url: str) -> Engine:
        if self.dialect != "sqlite":
            return create_engine(url, pool_pre_ping=True)
        # Requests run on anyio's worker threads (40 by default), each holding up to two
        # connections (a reader and its unit of work's writer). A pool smaller than that
        # opens and closes overflow connections on every burst, and opening one costs
        # more than most requests (the PRAGMAs below).
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=POOL_SIZE,
            max_overflow=POOL_SIZE,
        )
        _take_over_sqlite_transactions(engine)
        return engine

    @contextmanager
    def unit_of_work(self) -> Iterator[UnitOfWork]:
        """Writes inside this block join one transaction that the caller commits or rolls
        back; it is rolled back if the caller does neither."""
        unit = UnitOfWork(self)
        token = _unit.set(unit)
        try:
            yield unit
        finally:
            _unit.reset(token)
            unit.rollback()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        unit = _unit.get()
        if unit is not None and unit.connection is not None:
            # Read your own uncommitted writes.
            yield unit.connection
            return
        outer = _reader.get()
        if outer is not None:
            yield outer
            return
        with self.engine.connect() as conn, conn.begin():
            token = _reader.set(conn)
            try:
                yield conn
            finally:
                _reader.reset(token)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        unit = _unit.get()
        if unit is not None:
            conn = unit.writer()
            savepoint = conn.begin_nested()
            try:
                yield conn
            except BaseException:
                savepoint.rollback()
                raise
            savepoint.commit()
            return
        with self.engine.connect() as conn:
            conn = conn.execution_options(strongroom_write=True)
            with conn.begin():
                yield conn

    def migrate(self) -> None:
        """Bring the schema to the newest revision (idempotent)."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    def dispose(self) -> None:
        self.engine.dispose()


def _take_over_sqlite_transactions(engine: Engine) -> None:
    """pysqlite's own transaction handling defers BEGIN and cannot take the write lock
    early; SQLAlchemy's documented recipe hands BEGIN to us."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit that returned survives power loss, which WAL's NORMAL does not promise.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("strongroom_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def secure_directory(path: Path) -> None:
    """Create ``path`` (and parents) readable by the owner only."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
