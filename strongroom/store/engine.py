"""Database engines and transactions.

Two kinds of transaction: ``read()`` sees a consistent snapshot; ``write()`` takes the
write lock up front (SQLite ``BEGIN IMMEDIATE``), so two writers never deadlock on a
lock upgrade, and returns only after the commit is durable.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar, cast

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

from strongroom.store.cache import Namespace, RowCache, track_changes

MIGRATIONS = Path(__file__).with_name("migrations")
POOL_SIZE = 48
T = TypeVar("T")


class WriteAttempted(BaseException):
    """A write inside :meth:`Store.reads_only`. A BaseException: it must pass every
    ``except Exception`` on its way back to whoever chose to read only."""


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
        if _reads_only.get():
            raise WriteAttempted
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


class SnapshotReader:
    """A read transaction opened on first use: a request whose reads are all answered by
    the row cache never checks out a connection. Quacks like the
    :class:`~sqlalchemy.Connection` it opens."""

    def __init__(self, engine: Engine, cache: RowCache | None, epoch: int) -> None:
        self._engine = engine
        self.cache = cache
        self.epoch = epoch  # the cache epoch this snapshot began after
        self._conn: Connection | None = None

    def connection(self) -> Connection:
        if self._conn is None:
            conn = self._engine.connect()
            try:
                conn.begin()
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def __getattr__(self, name: str) -> Any:
        return getattr(self.connection(), name)

    def close(self, *, commit: bool) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if commit:
                conn.commit()
            else:
                conn.rollback()
        finally:
            conn.close()


def cached(conn: Connection, namespace: Namespace, key: Any, load: Callable[[], T]) -> T:
    """``load()``, remembered under ``key`` when ``conn`` is a snapshot reader of a store
    with a row cache; a writer's reads always go to the database."""
    if isinstance(conn, SnapshotReader) and conn.cache is not None:
        return conn.cache.get(namespace, key, load, conn.epoch)
    return load()


_unit: ContextVar[UnitOfWork | None] = ContextVar("strongroom_unit_of_work", default=None)
# The read transaction already open in this context: nested reads join it, so one request
# never holds two pooled read connections (which could drain the pool and deadlock).
_reads_only: ContextVar[bool] = ContextVar("strongroom_reads_only", default=False)
_reader: ContextVar[SnapshotReader | None] = ContextVar("strongroom_reader", default=None)


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'strongroom.db'}"


class Store:
    """The database behind one Strongroom deployment."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.dialect = make_url(url).get_backend_name()
        self.engine = self._create_engine(url)
        self.cache: RowCache | None = None
        self._tracking = False

    def enable_cache(self) -> None:
        """Cache hot-path rows in this process (SQLite only: it is what tells us, cheaply,
        that another process committed)."""
        if self.dialect == "sqlite" and self.cache is None:
            assert self._tracking, "migrate() first: the cache relies on the change counters"
            database = make_url(self.url).database
            assert database
            self.cache = RowCache(database)

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
            yield cast(Connection, outer)
            return
        epoch = self.cache.refresh() if self.cache is not None else 0
        reader = SnapshotReader(self.engine, self.cache, epoch)
        token = _reader.set(reader)
        try:
            yield cast(Connection, reader)
        except BaseException:
            reader.close(commit=False)
            raise
        else:
            reader.close(commit=True)
        finally:
            _reader.reset(token)

    @contextmanager
    def reads_only(self) -> Iterator[None]:
        """Inside this block a write raises :class:`WriteAttempted` before it starts: how a
        request served on the event loop finds out that it must go to a thread after all."""
        token = _reads_only.set(True)
        try:
            yield
        finally:
            _reads_only.reset(token)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        if _reads_only.get():
            raise WriteAttempted
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
        if self.dialect == "sqlite" and not self._tracking:
            # From now on the schema has its change counters, and every write bumps them.
            track_changes(self.engine)
            self._tracking = True

    def dispose(self) -> None:
        if self.cache is not None:
            self.cache.close()
            self.cache = None
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
