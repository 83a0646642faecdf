"""A per-process cache of rows read on the hot path, kept true across processes.

Every worker process keeps its own cache; any process may write. Two things make that
safe without a message bus:

- Every committed write transaction bumps a counter per table it wrote
  (``change_counters``), in the same transaction: :func:`track_changes` hooks the engine,
  so no write path can forget to.
- Before a request reads, :meth:`RowCache.refresh` looks whether any connection
  committed since it last looked: at the header of SQLite's shared-memory WAL index,
  which every commit rewrites (:class:`WalIndexWatch`), and when that moved, at
  ``PRAGMA data_version``. Only then does it read the counters and drop the namespaces
  that depend on a changed table.

A reader stores what it loaded only if no namespace it depends on was dropped since its
snapshot began (the *epoch* check), so a slow reader never puts back a row that a newer
commit replaced. A write that commits after a reader's snapshot began is seen by the
next refresh, which every request does before it reads: read-your-writes holds across
workers.

Only reads through a snapshot reader are cached; a writer always reads the database.
"""

from __future__ import annotations

import copy
import mmap
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, event

T = TypeVar("T")

TOUCHED = "strongroom_touched_tables"
# Statements that change no row: reads, transaction control, savepoints, PRAGMAs.
_NOT_ROW_WRITES = ("SELECT", "PRAGMA", "BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")
_ROW_WRITES = ("INSERT", "UPDATE", "DELETE")
DEFAULT_CACHE_ENTRIES = 250_000  # per namespace
EVERYTHING = "*"  # a write whose tables are not known (raw SQL, DDL): drop every namespace
_BUMP = (
    "INSERT INTO change_counters (table_name, counter) VALUES (?, 1) "
    "ON CONFLICT (table_name) DO UPDATE SET counter = counter + 1"
)


@dataclass(frozen=True)
class Namespace:
    """A kind of cached lookup and the tables its answers are read from."""

    name: str
    tables: tuple[str, ...]
    max_entries: int | None = None  # None: the cache's own bound
    # Whether "there is no such row" is remembered too. Not for lookups anyone can make up
    # keys for (access key ids, secret names): a flood of made-up keys would evict the rest.
    remember_absent: bool = True
    # The answers are mutable records their callers may change: each reader gets its own
    # shallow copy, so the cached one stays as the database has it.
    copy: bool = False


def track_changes(engine: Engine) -> None:
    """Make every write transaction on ``engine`` bump the counters of the tables it wrote."""

    # At the cursor, so that no way of executing SQL (exec_driver_sql included) goes unseen.
    @event.listens_for(engine, "before_cursor_execute")
    def _note(
        conn: Connection, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool
    ) -> None:
        verb = statement.lstrip()[:9].upper()
        if verb.startswith(_NOT_ROW_WRITES):
            return
        compiled = getattr(context, "compiled", None)
        table = getattr(getattr(compiled, "statement", None), "table", None)
        name = getattr(table, "name", None) if verb.startswith(_ROW_WRITES) else None
        conn.info.setdefault(TOUCHED, set()).add(name if isinstance(name, str) else EVERYTHING)

    @event.listens_for(engine, "commit")
    def _bump(conn: Connection) -> None:
        touched: set[str] = conn.info.pop(TOUCHED, set())
        touched.discard("change_counters")
        if touched:
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                cursor.executemany(_BUMP, [(name,) for name in sorted(touched)])
            finally:
                cursor.close()

    @event.listens_for(engine, "rollback")
    def _forget(conn: Connection) -> None:
        conn.info.pop(TOUCHED, None)


def shallow_copy(value: T) -> T:
    """A shallow copy; for the plain record classes, without copy.copy's pickling protocol
    (a fifth of a cached read)."""
    if value is None or not hasattr(value, "__dict__"):
        return copy.copy(value)
    twin = object.__new__(type(value))
    twin.__dict__.update(value.__dict__)
    return twin


_ABSENT = object()  # not in the cache (None is a cached answer: no such row)


class WalIndexWatch:
    """Whether any connection may have committed since a look, without asking SQLite.

    In WAL mode every commit rewrites the WAL-index header at the start of the database's
    ``-shm`` file (https://www.sqlite.org/walformat.html, "The WAL-Index Header": the
    change counter ``iChange``, the last valid frame ``mxFrame``, the checksums), copy 1
    first and copy 0 last. Copy 0 unchanged means no commit has been published since, the
    same conclusion a new read transaction would reach. Asking SQLite instead
    (``PRAGMA data_version``) costs a system call or two and a hand-off of the GIL on every
    request. The header is only a hint that nothing changed: any difference, a torn read
    included, sends the caller to the database.

    The mapping is read-only and stays valid: while the cache's own connection is open
    (it holds SQLite's shared "DMS" lock) no connection may truncate the file. Without a
    ``-shm`` file (not WAL mode) :meth:`header` is None and callers always ask SQLite.
    """

    SIZE = 48  # one copy of the header

    def __init__(self, database: str) -> None:
        self.seen: bytes | None = None  # the header at the last full check
        self._map: mmap.mmap | None = None
        try:
            fd = os.open(f"{database}-shm", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return
        try:
            if os.fstat(fd).st_size >= self.SIZE:
                self._map = mmap.mmap(fd, self.SIZE, prot=mmap.PROT_READ)
        finally:
            os.close(fd)

    def header(self) -> bytes | None:
        return self._map[: self.SIZE] if self._map is not None else None

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None


class RowCache:
    """The cached answers of one process, by namespace."""

    def __init__(self, database: str, max_entries: int = DEFAULT_CACHE_ENTRIES) -> None:
        self.max_entries = max_entries
        self._watch = sqlite3.connect(database, check_same_thread=False, isolation_level=None)
        self._watch.execute("PRAGMA data_version").fetchone()  # maps the WAL index, if any
        self._index = WalIndexWatch(database)
        self._lock = threading.Lock()
        self._entries: dict[str, dict[Any, Any]] = {}
        self._dropped_at: dict[str, int] = {}  # namespace -> epoch of its last drop
        self._dependents: dict[str, set[str]] = {}  # table -> namespaces
        self._data_version: int | None = None
        self._counters: dict[str, int] = {}
        self.epoch = 0
        self.hits = 0
        self.misses = 0

    def refresh(self) -> int:
        """Drop what changed since the last refresh; the epoch a snapshot begun now is at."""
        with self._lock:
            # Read before the database is asked: a commit after this look moves the header
            # again, so the next refresh asks.
            header = self._index.header()
            if header is not None and header == self._index.seen:
                return self.epoch  # nobody committed: no system call, no GIL hand-off
            (version,) = self._watch.execute("PRAGMA data_version").fetchone()
            if version != self._data_version:
                counters = dict(
                    self._watch.execute("SELECT table_name, counter FROM change_counters")
                )
                if self._data_version is None:
                    self._drop_all()
                else:
                    changed = [t for t, c in counters.items() if self._counters.get(t) != c]
                    self._drop(changed)
                self._data_version, self._counters = version, counters
            self._index.seen = header
            return self.epoch

    def get(self, namespace: Namespace, key: Any, load: Callable[[], T], epoch: int) -> T:
        # A hit takes no lock: one dict lookup is atomic, and an entry dropped by a refresh
        # that began after this reader's is still what this reader's snapshot holds.
        entries = self._entries.get(namespace.name)
        if entries is not None:
            found = entries.get(key, _ABSENT)
            if found is not _ABSENT:
                self.hits += 1  # a statistic: a lost increment under a race is harmless
                return shallow_copy(found) if namespace.copy else found  # type: ignore[no-any-return]
        with self._lock:
            self.misses += 1
        value = load()
        self.put(namespace, key, value, epoch)
        return value

    def put(self, namespace: Namespace, key: Any, value: Any, epoch: int) -> None:
        """Remember ``value``, read by a snapshot that began at ``epoch``: a lookup that
        answers another namespace's question too hands the answer over here."""
        with self._lock:
            if namespace.name not in self._entries:
                self._register(namespace)
            # Dropped since this reader's snapshot began: what it loaded may be stale.
            if (value is not None or namespace.remember_absent) and self._dropped_at[
                namespace.name
            ] <= epoch:
                entries = self._entries[namespace.name]
                if key not in entries and len(entries) >= (
                    namespace.max_entries or self.max_entries
                ):
                    # The oldest entry makes room (dicts keep insertion order): a working set
                    # bigger than the bound keeps the share of it that fits.
                    del entries[next(iter(entries))]
                entries[key] = shallow_copy(value) if namespace.copy else value

    def close(self) -> None:
        with self._lock:
            self._index.close()
            self._watch.close()

    def _register(self, namespace: Namespace) -> dict[Any, Any]:
        entries: dict[Any, Any] = {}
        self._entries[namespace.name] = entries
        # A drop before the first use left no mark: a reader older than now must not store.
        self._dropped_at[namespace.name] = self.epoch
        for table in namespace.tables:
            self._dependents.setdefault(table, set()).add(namespace.name)
        return entries

    def _drop(self, tables: Iterable[str]) -> None:
        tables = list(tables)
        if not tables:
            return
        if EVERYTHING in tables:
            self._drop_all()
            return
        self.epoch += 1
        for table in tables:
            for name in self._dependents.get(table, ()):
                self._entries[name].clear()
                self._dropped_at[name] = self.epoch

    def _drop_all(self) -> None:
        self.epoch += 1
        for name, entries in self._entries.items():
            entries.clear()
            self._dropped_at[name] = self.epoch
