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

A write declared row by row (:func:`rows_changed`) drops less: instead of moving its
table's counter, the transaction logs the keys of the rows it changed (``row_changes``,
a sequence in ``change_counters``), and a namespace that files its entries under a row
key (``Namespace.row``) loses only those rows' entries. A PutSecretValue, or the once-a-day
LastAccessedDate of a read, then costs other secrets nothing. Any write to a table that is
not declared drops the table's namespaces whole, as before; so does a process that fell
so far behind that the log no longer holds what it missed.

Only reads through a snapshot reader are cached; a writer always reads the database.
Every reader of an entry gets the cached object itself: what is cached is immutable (frozen
records, read-only mappings, tuples).
"""

from __future__ import annotations

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
_PENDING = "strongroom_pending_rows"  # (table, row keys) the next write statement changes
_ROWS = "strongroom_changed_rows"  # table -> row keys, for writes declared row by row
_UNDECLARED = "strongroom_undeclared_tables"  # tables written by a statement not declared
ROW_LOG = "row_changes"  # the log's table, and its sequence's name in change_counters
ROW_LOG_KEEP = 10_000  # log entries kept: a process further behind drops everything
ROW_DROPS_REMEMBERED = 65_536  # per namespace (see RowCache.put)
# Statements that change no row: reads, transaction control, savepoints, PRAGMAs.
_NOT_ROW_WRITES = ("SELECT", "PRAGMA", "BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")
_ROW_WRITES = ("INSERT", "UPDATE", "DELETE")
DEFAULT_CACHE_ENTRIES = 250_000  # per namespace
EVERYTHING = "*"  # a write whose tables are not known (raw SQL, DDL): drop every namespace
_BUMP = (
    "INSERT INTO change_counters (table_name, counter) VALUES (?, 1) "
    "ON CONFLICT (table_name) DO UPDATE SET counter = counter + 1"
)
_LOG_ROW = "INSERT INTO row_changes (table_name, row_key) VALUES (?, ?)"
_LAST_ROW = "SELECT max(seq) FROM row_changes"
_SET_SEQUENCE = (
    "INSERT INTO change_counters (table_name, counter) VALUES (?, ?) "
    "ON CONFLICT (table_name) DO UPDATE SET counter = excluded.counter"
)
_PRUNE_LOG = "DELETE FROM row_changes WHERE seq <= ?"
_READ_LOG = "SELECT table_name, row_key FROM row_changes WHERE seq > ? AND seq <= ? ORDER BY seq"


@dataclass(frozen=True)
class Namespace:
    """A kind of cached lookup and the tables its answers are read from."""

    name: str
    tables: tuple[str, ...]
    max_entries: int | None = None  # None: the cache's own bound
    # Whether "there is no such row" is remembered too. Not for lookups anyone can make up
    # keys for (access key ids, secret names): a flood of made-up keys would evict the rest.
    remember_absent: bool = True
    # The key of the row an entry is read from (from the entry's key and value): with it, a
    # write declared row by row (rows_changed) drops only that row's entries. Every table
    # of the namespace must key its rows alike (the secrets tables: the secret's id).
    row: Callable[[Any, Any], int] | None = None


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
        written = name if isinstance(name, str) else EVERYTHING
        conn.info.setdefault(TOUCHED, set()).add(written)
        pending = conn.info.pop(_PENDING, None)
        if pending is not None and pending[0] == written:
            conn.info.setdefault(_ROWS, {}).setdefault(written, set()).update(pending[1])
        else:
            conn.info.setdefault(_UNDECLARED, set()).add(written)

    @event.listens_for(engine, "commit")
    def _bump(conn: Connection) -> None:
        touched: set[str] = conn.info.pop(TOUCHED, set())
        rows: dict[str, set[int]] = conn.info.pop(_ROWS, {})
        undeclared: set[str] = conn.info.pop(_UNDECLARED, set())
        conn.info.pop(_PENDING, None)
        touched.discard("change_counters")
        whole = sorted(t for t in touched if t in undeclared or t not in rows)
        logged = [(t, key) for t in sorted(touched.difference(whole)) for key in sorted(rows[t])]
        if not whole and not logged:
            return
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            if whole:
                cursor.executemany(_BUMP, [(name,) for name in whole])
            if logged:
                cursor.executemany(_LOG_ROW, logged)
                (last,) = cursor.execute(_LAST_ROW).fetchone()
                cursor.execute(_SET_SEQUENCE, (ROW_LOG, last))
                cursor.execute(_PRUNE_LOG, (last - ROW_LOG_KEEP,))
        finally:
            cursor.close()

    @event.listens_for(engine, "rollback")
    def _forget(conn: Connection) -> None:
        for name in (TOUCHED, _ROWS, _UNDECLARED, _PENDING):
            conn.info.pop(name, None)


def rows_changed(conn: Connection, table: str, *keys: int) -> None:
    """Declare that the next write statement through ``conn`` writes ``table`` and changes
    no row but those of ``keys`` (the keys of ``Namespace.row``): other processes then drop
    only those rows' entries. Undeclared, a write drops the table's namespaces whole."""
    conn.info[_PENDING] = (table, keys)


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

    Its descriptors stay open until :meth:`close`: closing *any* descriptor of a file
    drops every POSIX lock the process holds on it, SQLite's included (fcntl(2); SQLite's
    "How To Corrupt" 2.2). Closed at open, it dropped this process's DMS and read locks:
    a worker starting next truncated the file under it (SIGBUS) or SQLite answered
    "locking protocol". So close it only after this process's connections to the
    database are closed.
    """

    SIZE = 48  # one copy of the header

    def __init__(self, database: str) -> None:
        self.seen: bytes | None = None  # the header at the last full check
        self._map: mmap.mmap | None = None
        self._fd: int | None = None
        try:
            self._fd = os.open(f"{database}-shm", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return
        if os.fstat(self._fd).st_size >= self.SIZE:
            self._map = mmap.mmap(self._fd, self.SIZE, prot=mmap.PROT_READ)

    def header(self) -> bytes | None:
        return self._map[: self.SIZE] if self._map is not None else None

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class _Space:
    """One namespace's entries in a process, and the marks of what was dropped from it."""

    __slots__ = ("by_row", "dropped_at", "entries", "namespace", "row_dropped_at")

    def __init__(self, namespace: Namespace, epoch: int) -> None:
        self.namespace = namespace
        self.entries: dict[Any, Any] = {}
        # A drop before the first use left no mark: a reader older than now must not store.
        self.dropped_at = epoch  # epoch of the namespace's last drop
        # With a row key (Namespace.row): row -> the keys of its entries, and row -> epoch
        # of its last drop (the row-level counterpart of dropped_at).
        self.by_row: dict[int, set[Any]] = {}
        self.row_dropped_at: dict[int, int] = {}

    def drop(self, epoch: int) -> None:
        self.entries.clear()
        self.by_row.clear()
        self.row_dropped_at.clear()  # the namespace's own mark covers them
        self.dropped_at = epoch

    def drop_rows(self, rows: Iterable[int], epoch: int) -> None:
        entries, dropped = self.entries, self.row_dropped_at
        for row in rows:
            for key in self.by_row.pop(row, ()):
                entries.pop(key, None)
            if len(dropped) >= ROW_DROPS_REMEMBERED:
                # Too many to remember row by row: every reader older than now refuses to
                # store in the namespace, as after a whole drop (its entries stay).
                dropped.clear()
                self.dropped_at = epoch
            dropped[row] = epoch

    def forget(self, key: Any, value: Any) -> None:
        """Take an entry that is gone out of the row index."""
        if self.namespace.row is None:
            return
        row = self.namespace.row(key, value)
        keys = self.by_row.get(row)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self.by_row[row]


class RowCache:
    """The cached answers of one process, by namespace."""

    def __init__(self, database: str, max_entries: int = DEFAULT_CACHE_ENTRIES) -> None:
        self.max_entries = max_entries
        self._watch = sqlite3.connect(database, check_same_thread=False, isolation_level=None)
        self._watch.execute("PRAGMA data_version").fetchone()  # maps the WAL index, if any
        self._index = WalIndexWatch(database)
        self._lock = threading.Lock()
        self._spaces: dict[str, _Space] = {}  # by namespace name
        self._dependents: dict[str, set[str]] = {}  # table -> namespaces
        self._data_version: int | None = None
        self._counters: dict[str, int] = {}
        self._logged = 0  # the last entry of the row log applied here
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
                logged = counters.pop(ROW_LOG, 0)
                if self._data_version is None:
                    self._drop_all()
                else:
                    changed = [t for t, c in counters.items() if self._counters.get(t) != c]
                    self._drop(changed)
                    if logged != self._logged:
                        self._drop_logged_rows(self._logged, logged)
                self._data_version, self._counters, self._logged = version, counters, logged
            self._index.seen = header
            return self.epoch

    def get(self, namespace: Namespace, key: Any, load: Callable[[], T], epoch: int) -> T:
        # A hit takes no lock: one dict lookup is atomic, and an entry dropped by a refresh
        # that began after this reader's is still what this reader's snapshot holds.
        space = self._spaces.get(namespace.name)
        if space is not None:
            found = space.entries.get(key, _ABSENT)
            if found is not _ABSENT:
                self.hits += 1  # a statistic: a lost increment under a race is harmless
                return found  # type: ignore[no-any-return]
        with self._lock:
            self.misses += 1
        value = load()
        self.put(namespace, key, value, epoch)
        return value

    def put(self, namespace: Namespace, key: Any, value: Any, epoch: int) -> None:
        """Remember ``value``, read by a snapshot that began at ``epoch``: a lookup that
        answers another namespace's question too hands the answer over here."""
        with self._lock:
            space = self._spaces.get(namespace.name) or self._register(namespace)
            if value is None and not namespace.remember_absent:
                return
            # Dropped since this reader's snapshot began: what it loaded may be stale.
            if space.dropped_at > epoch:
                return
            row = namespace.row(key, value) if namespace.row is not None else None
            if row is not None and space.row_dropped_at.get(row, 0) > epoch:
                return
            entries = space.entries
            if key not in entries and len(entries) >= (namespace.max_entries or self.max_entries):
                # The oldest entry makes room (dicts keep insertion order): a working set
                # bigger than the bound keeps the share of it that fits.
                oldest = next(iter(entries))
                space.forget(oldest, entries.pop(oldest))
            entries[key] = value
            if row is not None:
                space.by_row.setdefault(row, set()).add(key)

    def close(self) -> None:
        """Call once the store's other connections are closed (WalIndexWatch.close)."""
        with self._lock:
            self._watch.close()
            self._index.close()

    def _register(self, namespace: Namespace) -> _Space:
        space = self._spaces[namespace.name] = _Space(namespace, self.epoch)
        for table in namespace.tables:
            self._dependents.setdefault(table, set()).add(namespace.name)
        return space

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
                self._spaces[name].drop(self.epoch)

    def _drop_all(self) -> None:
        self.epoch += 1
        for space in self._spaces.values():
            space.drop(self.epoch)

    def _drop_logged_rows(self, after: int, last: int) -> None:
        """Apply the row log's entries ``after`` < seq <= ``last``."""
        found = self._watch.execute(_READ_LOG, (after, last)).fetchall()
        if len(found) != last - after:
            # Pruned before this process read it: which rows changed is not known, so
            # everything goes.
            self._drop_all()
            return
        self.epoch += 1
        rows_of: dict[str, set[int]] = {}
        for table, row in found:
            rows_of.setdefault(table, set()).add(row)
        for table, rows in rows_of.items():
            for name in self._dependents.get(table, ()):
                space = self._spaces[name]
                if space.namespace.row is None:
                    space.drop(self.epoch)
                else:
                    space.drop_rows(rows, self.epoch)
