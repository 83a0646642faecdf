# long module: the Store's transactions, the change log behind rows_changed and the SQLite
# connection tuning make one contract; they are read and changed together.
"""Database engines and transactions.

Two kinds of transaction: ``read()`` sees a consistent snapshot; ``write()`` takes the
write lock up front (SQLite ``BEGIN IMMEDIATE``), so two writers never deadlock on a
lock upgrade, and returns only after the commit is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

from strongroom.store.cache import (
    DEFAULT_CACHE_ENTRIES,
    EVERYTHING,
    TOUCHED,
    Namespace,
    RowCache,
    track_changes,
)

MIGRATIONS = Path(__file__).with_name("migrations")
log = logging.getLogger("strongroom.store")

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
        return self._connection()

    def _connection(self) -> Connection:
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


class _BatchUnit(UnitOfWork):
    """One request inside a :class:`WriteBatch`: its writes, and its reads (which must see
    what earlier requests of the batch wrote), go through the batch's transaction under a
    savepoint of its own. ``commit`` keeps them for the batch's commit; ``rollback`` undoes
    only them."""

    def __init__(self, store: Store, connection: Connection) -> None:
        super().__init__(store)
        self.connection = connection
        self._savepoint: Any = connection.begin_nested()

    def _connection(self) -> Connection:
        assert self.connection is not None, "the unit has ended"
        return self.connection

    def commit(self) -> None:
        if self._savepoint is not None:
            self._savepoint.commit()
            self._end()

    def rollback(self) -> None:
        if self._savepoint is not None:
            self._savepoint.rollback()
            self._end()

    def _end(self) -> None:
        self._savepoint = None
        self.connection = None


class Checkpointer:
    """Copies committed write-ahead log pages into the database every ``interval`` seconds
    (PASSIVE: never waits for readers or writers; what a reader still needs is copied next
    time). One per process; two processes' checkpoints simply take turns."""

    def __init__(self, database: str, interval: float = 0.2) -> None:
        self._database = database
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        conn = sqlite3.connect(self._database, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout=1000")
            while not self._stop.wait(self._interval):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    log.warning("WAL checkpoint failed; retrying", exc_info=True)
        finally:
            conn.close()


class BatchTurn:
    def __init__(self, release: Callable[[], None]) -> None:
        self.release = release


class BatchTurns:
    """Write batches of all processes take turns through an flock on a file beside the
    database (none for an in-memory one); threads of one process through a mutex."""

    def __init__(self, path: Path | None) -> None:
        self._mutex = threading.Lock()
        self._fd: int | None = None
        if path is not None:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    def take(self) -> BatchTurn:
        self._mutex.acquire()
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._mutex.release()
            raise
        return BatchTurn(self._release)

    def _release(self) -> None:
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._mutex.release()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class WriteBatch:
    """Several requests' writes in one transaction, a savepoint each: the batch pays one
    commit (one fsync) and holds SQLite's write lock once, however many requests it has."""

    def __init__(self, store: Store) -> None:
        self._store = store
        # Taken before SQLite's lock: SQLite makes a waiting writer poll with growing sleeps,
        # so one worker's batches could starve another's for seconds; flock wakes the next
        # waiter as soon as the lock is free.
        self._turn = store.batch_turn()
        try:
            self._context = store.engine.connect()
        except BaseException:
            self._turn.release()
            raise
        self.connection = self._context.execution_options(strongroom_write=True)
        self.cache = store.cache
        try:
            self.connection.begin()
            # The write lock is ours now: anything another process committed is visible,
            # so the row cache is brought up to date before this batch reads through it.
            self.epoch = self.cache.refresh() if self.cache is not None else 0
        except BaseException:
            self._context.close()
            self._turn.release()
            raise

    def unit(self) -> AbstractContextManager[UnitOfWork]:
        """One request of the batch: neither kept nor undone by the caller, it is undone."""
        return _UnitScope(_BatchUnit(self._store, self.connection), self)

    def untouched(self, namespace: Namespace) -> bool:
        """Whether nothing the namespace is read from was written in this transaction."""
        touched = _touched(self.connection)
        return EVERYTHING not in touched and touched.isdisjoint(namespace.tables)

    def commit(self) -> None:
        self.connection.commit()

    def rollback(self) -> None:
        self.connection.rollback()

    def close(self) -> None:
        """Roll back unless committed, and give the connection back."""
        try:
            with contextlib.suppress(Exception):
                self.connection.rollback()
            self._context.close()
        finally:
            self._turn.release()


class LoopReaders:
    """Read connections for snapshot readers, one kept aside per event loop.

    A read snapshot on an event loop never spans an ``await`` (the pipeline opens and
    closes it in one synchronous stretch), so each loop needs one read connection at a
    time. Keeping it checked out, between snapshots, spares the pool's checkout and return
    (a third of a read that misses the row cache) and keeps that connection's SQLite page
    cache warm. A snapshot that finds its loop's connection taken (a reader nested in
    another context), and every snapshot on a plain thread, uses the pool."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._idle: dict[asyncio.AbstractEventLoop, Connection] = {}
        self._closed = False

    def take(self) -> tuple[Connection, asyncio.AbstractEventLoop | None]:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return self._engine.connect(), None
        conn = self._idle.pop(loop, None)  # atomic: a loop's own thread is its only taker
        return (conn if conn is not None else self._engine.connect()), loop

    def give_back(self, conn: Connection, loop: asyncio.AbstractEventLoop | None) -> None:
        """``conn``, its transaction ended, is free again."""
        if loop is None or self._closed or conn.invalidated or loop in self._idle:
            conn.close()
            return
        # A loop that has closed (each asyncio.run makes a new one) gives its connection
        # back to the pool here, rather than holding it for the life of the store.
        for other in [other for other in self._idle if other.is_closed()]:
            stale = self._idle.pop(other, None)
            if stale is not None:
                stale.close()
        self._idle[loop] = conn

    def close(self) -> None:
        self._closed = True
        while self._idle:
            _, conn = self._idle.popitem()
            conn.close()


class SnapshotReader:
    """A read transaction opened on first use: a request whose reads are all answered by
    the row cache never takes a connection. Quacks like the
    :class:`~sqlalchemy.Connection` it opens: every attribute of a Connection is a property
    that opens it (made below, :func:`_opening`). Not a ``__getattr__``: a class with one
    has every attribute read go through it (about 700 machine instructions more each,
    unspecialized), and the row cache reads ``seen``, ``cache`` and ``epoch`` of a reader
    about twenty times a request."""

    __slots__ = ("_conn", "_loop", "_readers", "cache", "epoch", "seen")

    def __init__(self, readers: LoopReaders, cache: RowCache | None, epoch: int) -> None:
        self._readers = readers
        self.cache = cache
        self.epoch = epoch  # the cache epoch this snapshot began after
        self._conn: Connection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # What this snapshot already looked up: a request asks for the same rows more than
        # once (to authorize, then to serve), and one snapshot always gives the same answer.
        self.seen: dict[tuple[str, Any], Any] = {}

    def opened(self) -> Connection:
        if self._conn is None:
            conn, loop = self._readers.take()
            try:
                conn.begin()
            except BaseException:
                conn.close()
                raise
            self._conn, self._loop = conn, loop
        return self._conn

    # A read() nested in this snapshot (Store.read) enters the reader itself: it hands the
    # reader out and ends nothing; the snapshot's own scope (_Snapshot) ends it.
    def __enter__(self) -> Any:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def close(self, *, commit: bool) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if commit:
                conn.commit()
            else:
                conn.rollback()
        except BaseException:
            conn.close()  # in an unknown state: not to be used again
            raise
        self._readers.give_back(conn, self._loop)


def _opening(name: str) -> property:
    """The attribute ``name`` of the reader's connection, opening it first."""
    return property(lambda reader: getattr(reader.opened(), name))


# Every attribute of a Connection: its class's, and the two it sets on itself.
for _name in (*dir(Connection), "dialect", "engine"):
    if not _name.startswith("__") and not hasattr(SnapshotReader, _name):
        setattr(SnapshotReader, _name, _opening(_name))


def cached(conn: Connection, namespace: Namespace, key: Any, load: Callable[[], T]) -> T:
    """``load()``, remembered under ``key`` when the store has a row cache and ``conn`` is

    - a snapshot reader, or
    - a write batch's connection, for tables the batch has not written: it holds the write
      lock, and the cache was brought up to date when it took the lock, so what it loads
      is what is committed (for_update reads are safe: SQLite has no row locks).

    Any other writer's reads always go to the database."""
    if isinstance(conn, SnapshotReader):
        # Within one snapshot the same object is handed out again (per_snapshot, inlined:
        # a request makes about seven of these lookups): it is already this request's own
        # copy (the cache copies for namespaces that need it).
        seen, seen_key = conn.seen, (namespace.name, key)
        found = seen.get(seen_key, _UNSEEN)
        if found is not _UNSEEN:
            return found
        cache = conn.cache
        value = seen[seen_key] = (
            load() if cache is None else cache.get(namespace, key, load, conn.epoch)
        )
        return value
    batch = _batch.get()
    if (
        batch is not None
        and conn is batch.connection
        and batch.cache is not None
        and batch.untouched(namespace)
    ):
        return batch.cache.get(namespace, key, load, batch.epoch)
    return load()


def remember(conn: Connection, namespace: Namespace, key: Any, value: Any) -> None:
    """Hand over what a lookup learned beyond its own question, as if ``cached(conn,
    namespace, key, ...)`` had loaded ``value``: for this snapshot, and for the row cache
    on the same terms. Only from a snapshot reader, whose reads are all of one snapshot."""
    if not isinstance(conn, SnapshotReader):
        return
    conn.seen.setdefault((namespace.name, key), value)
    if conn.cache is not None:
        conn.cache.put(namespace, key, value, conn.epoch)


def per_snapshot(conn: Connection, key: tuple[str, Any], load: Callable[[], T]) -> T:
    """``load()``, once per snapshot reader: a request asks the same question more than once
    (to authorize, then to serve) and one snapshot always gives the same answer. ``key``
    starts with a :class:`Namespace`'s name (:func:`cached`) or a name no namespace has.
    Through any other connection, ``load()`` every time."""
    if not isinstance(conn, SnapshotReader):
        return load()
    seen = conn.seen
    found = seen.get(key, _UNSEEN)
    if found is not _UNSEEN:
        return found
    value = seen[key] = load()
    return value


_UNSEEN = object()  # not looked up in this snapshot yet (None is an answer: no such row)


_unit: ContextVar[UnitOfWork | None] = ContextVar("strongroom_unit_of_work", default=None)
# The read transaction already open in this context: nested reads join it, so one request
# never holds two pooled read connections (which could drain the pool and deadlock).
_batch: ContextVar[WriteBatch | None] = ContextVar("strongroom_write_batch", default=None)
_reads_only: ContextVar[bool] = ContextVar("strongroom_reads_only", default=False)
_reader: ContextVar[SnapshotReader | None] = ContextVar("strongroom_reader", default=None)


class _Snapshot:
    """``Store.read()``'s new snapshot: a class, not a generator, for it is entered on
    every request."""

    __slots__ = ("_reader", "_store", "_token")

    def __init__(self, store: Store) -> None:
        self._store = store

    def __enter__(self) -> Connection:
        cache = self._store.cache
        epoch = cache.refresh() if cache is not None else 0
        reader: Any = SnapshotReader(self._store.readers, cache, epoch)  # a Connection's stand-in
        self._reader = reader
        self._token = _reader.set(reader)
        return reader  # type: ignore[no-any-return]

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        try:
            self._reader.close(commit=kind is None)
        finally:
            _reader.reset(self._token)


class _UnitScope:
    """``Store.unit_of_work()`` and ``WriteBatch.unit()``: a class, not a generator, for
    one is entered per request. What the caller neither committed nor rolled back is
    rolled back."""

    __slots__ = ("_batch", "_batch_token", "_token", "_unit")

    def __init__(self, unit: UnitOfWork, batch: WriteBatch | None) -> None:
        self._unit = unit
        self._batch = batch

    def __enter__(self) -> UnitOfWork:
        self._token = _unit.set(self._unit)
        if self._batch is not None:
            self._batch_token = _batch.set(self._batch)
        return self._unit

    def __exit__(self, *_: object) -> None:
        if self._batch is not None:
            _batch.reset(self._batch_token)
        _unit.reset(self._token)
        self._unit.rollback()


class _ReadsOnly:
    __slots__ = ("_token",)

    def __enter__(self) -> None:
        self._token = _reads_only.set(True)

    def __exit__(self, *_: object) -> None:
        _reads_only.reset(self._token)


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'strongroom.db'}"


class Store:
    """The database behind one Strongroom deployment."""

    def __init__(self, url: str, *, background_checkpoints: bool = False) -> None:
        """``background_checkpoints``: SQLite copies its write-ahead log into the database
        on a thread of the store's instead of inside whichever commit crosses the size
        threshold, where it would hold up the writes waiting for the lock (a server)."""
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        # The SQLite file; None for another database or an in-memory one.
        self._database = parsed.database if self.dialect == "sqlite" else None
        self._checkpointer: Checkpointer | None = None
        if background_checkpoints and self._database:
            self._checkpointer = Checkpointer(self._database)
        self.engine = self._create_engine(url)
        self.readers = LoopReaders(self.engine)
        self.cache: RowCache | None = None
        self._turns: BatchTurns | None = None
        self._tracking = False

    def enable_cache(self, max_entries: int = DEFAULT_CACHE_ENTRIES) -> None:
        """Cache hot-path rows in this process (SQLite only: it is what tells us, cheaply,
        that another process committed)."""
        if self.dialect == "sqlite" and self.cache is None:
            assert self._tracking, "migrate() first: the cache relies on the change counters"
            assert self._database
            self.cache = RowCache(self._database, max_entries)

    def _create_engine(self, url: str) -> Engine:
        if self.dialect != "sqlite":
            return create_engine(url, pool_pre_ping=True)
        # Reads run on the event loop and writes on the write batcher, but requests that
        # are served alone still run on anyio's worker threads (40 by default), each
        # holding up to two connections (a reader and its unit of work's writer). A pool
        # smaller than that would open and close overflow connections in a burst, and
        # opening one costs more than most requests (the PRAGMAs below). Last in, first
        # out: each connection has its own SQLite page cache, and the event loop reads
        # through one connection at a time, which then keeps the B-tree pages it needs
        # rather than taking turns with dozens of idle connections' cold caches.
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=POOL_SIZE,
            max_overflow=POOL_SIZE,
            pool_use_lifo=True,
        )
        _take_over_sqlite_transactions(engine, autocheckpoint=self._checkpointer is None)
        if self._checkpointer is not None:
            self._checkpointer.start()
        return engine

    def unit_of_work(self) -> AbstractContextManager[UnitOfWork]:
        """Writes inside this block join one transaction that the caller commits or rolls
        back; it is rolled back if the caller does neither."""
        return _UnitScope(UnitOfWork(self), None)

    def batch_turn(self) -> BatchTurn:
        """This process's turn to hold the write lock for a batch (blocks until it is)."""
        if self._turns is None:
            lock = Path(f"{self._database}.batch-lock") if self._database else None
            self._turns = BatchTurns(lock)
        return self._turns.take()

    def begin_write_batch(self) -> WriteBatch:
        """A :class:`WriteBatch` holding the write lock; close it when done."""
        return WriteBatch(self)

    def read(self) -> AbstractContextManager[Connection]:
        """A consistent snapshot: the unit of work's own connection (read your uncommitted
        writes), else the snapshot already open in this context, else a new one."""
        unit = _unit.get()
        if unit is not None and unit.connection is not None:
            return nullcontext(unit.connection)
        outer = _reader.get()
        if outer is not None:
            # A request reads through a dozen nested read() blocks: they enter the open
            # snapshot's reader itself, which ends nothing (no object per nested block).
            return outer
        return _Snapshot(self)

    def uncommitted_writes(self) -> frozenset[str]:
        """The tables this context's open transaction (a unit of work, a write batch) has
        written: reads of them here see writes that may still roll back. ``"*"`` stands
        for tables not known."""
        unit = _unit.get()
        if unit is None or unit.connection is None:
            return frozenset()
        return _touched(unit.connection)

    def reads_only(self) -> AbstractContextManager[None]:
        """Inside this block a write raises :class:`WriteAttempted` before it starts: how a
        request served on the event loop finds out that it must go to a thread after all."""
        return _ReadsOnly()

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
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        if self._turns is not None:
            self._turns.close()
            self._turns = None
        self.readers.close()
        self.engine.dispose()
        if self.cache is not None:  # last: closing its -shm descriptor drops SQLite's locks
            self.cache.close()
            self.cache = None


def _take_over_sqlite_transactions(engine: Engine, *, autocheckpoint: bool) -> None:
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
        if not autocheckpoint:
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("strongroom_write", False)
        _driver(conn, "BEGIN IMMEDIATE" if immediate else "BEGIN")

    # SQLAlchemy compiles every SAVEPOINT statement afresh (they are not cacheable), which
    # cost more than the rest of a write: a batched write takes two to four of them. The
    # names are SQLAlchemy's own (sa_savepoint_N), so they go to the driver as they are.
    dialect: Any = engine.dialect
    dialect.do_savepoint = lambda conn, name: _driver(conn, f"SAVEPOINT {name}")
    dialect.do_release_savepoint = lambda conn, name: _driver(conn, f"RELEASE SAVEPOINT {name}")
    dialect.do_rollback_to_savepoint = lambda conn, name: _driver(
        conn, f"ROLLBACK TO SAVEPOINT {name}"
    )


def _touched(conn: Connection) -> frozenset[str]:
    """The tables ``conn``'s open transaction has written (store/cache.py notes them)."""
    return frozenset(conn.info.get(TOUCHED, ()))


def _driver(conn: Connection, statement: str) -> None:
    dbapi_connection: Any = conn.connection.dbapi_connection
    dbapi_connection.execute(statement)


def secure_directory(path: Path) -> None:
    """Create ``path`` (and parents) readable by the owner only."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
