"""The per-process row cache (strongroom/store/cache.py) and the change counters behind it.

Two :class:`Store` objects opened on one SQLite file stand for two worker processes: each
has its own engine, connection pool and :class:`RowCache`, and all they share is the
database file, exactly as two uvicorn workers do. Writes are made through SQLAlchemy Core,
as the repositories make them; the counters are read over a plain ``sqlite3`` connection
that belongs to neither store, so what they show is what every process can see.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import FrozenInstanceError, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, delete, event, insert, select, text, update

import strongroom.store.cache as cache_module
from strongroom.clock import ManualClock, midnight_ms
from strongroom.iam.credentials import SessionGrant, admin_arn
from strongroom.iam.service import IdentityService
from strongroom.protocol.errors import ServiceError
from strongroom.secrets import repository as repo
from strongroom.server.deployment import DEV_ACCOUNT, Deployment, open_deployment
from strongroom.store import schema
from strongroom.store.cache import EVERYTHING, Namespace, WalIndexWatch, rows_changed
from strongroom.store.engine import (
    SnapshotReader,
    Store,
    WriteAttempted,
    cached,
    per_snapshot,
    remember,
)
from strongroom.types import Caller
from tests.inprocess import client, signing_at

REGION = "us-east-1"
SM = Caller(DEV_ACCOUNT, REGION, admin_arn(DEV_ACCOUNT))
KMS = Caller(DEV_ACCOUNT, REGION, admin_arn(DEV_ACCOUNT))

SETTINGS = Namespace("test-settings", ("settings",))
ACCOUNTS = Namespace("test-accounts", ("accounts",))
settings = schema.settings
accounts = schema.accounts


# Helpers -----------------------------------------------------------------------------------


def open_store(path: Path) -> Store:
    """What ``open_deployment`` does to its store: schema, change tracking, cache."""
    store = Store(f"sqlite:///{path}")
    store.migrate()
    store.enable_cache()
    return store


def counters(path: Path) -> dict[str, int]:
    """The committed change counters, read by a connection of neither store."""
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT table_name, counter FROM change_counters"))


def setting(conn: Connection, name: str) -> bytes | None:
    found: bytes | None = conn.execute(
        select(settings.c.value).where(settings.c.name == name)
    ).scalar_one_or_none()
    return found


def account_name(conn: Connection, account_id: str) -> str | None:
    found: str | None = conn.execute(
        select(accounts.c.name).where(accounts.c.account_id == account_id)
    ).scalar_one_or_none()
    return found


@dataclass
class Loads:
    """Counts the loads (cache misses that went to the database) by key."""

    keys: list[Any] = field(default_factory=list)

    def setting(self, conn: Connection, name: str) -> Callable[[], bytes | None]:
        def load() -> bytes | None:
            self.keys.append(name)
            return setting(conn, name)

        return load

    def account(self, conn: Connection, account_id: str) -> Callable[[], str | None]:
        def load() -> str | None:
            self.keys.append(account_id)
            return account_name(conn, account_id)

        return load


def read_setting(store: Store, name: str, loads: Loads | None = None) -> bytes | None:
    """One request's cached read of a setting, through a snapshot reader."""
    loads = loads if loads is not None else Loads()
    with store.read() as conn:
        return cached(conn, SETTINGS, name, loads.setting(conn, name))


def read_account(store: Store, account_id: str, loads: Loads | None = None) -> str | None:
    loads = loads if loads is not None else Loads()
    with store.read() as conn:
        return cached(conn, ACCOUNTS, account_id, loads.account(conn, account_id))


def elsewhere(call: Callable[..., Any], *args: Any) -> Any:
    """Run ``call`` as another request would: in a fresh context, outside any read or unit
    of work this one has open."""
    return contextvars.Context().run(call, *args)


def put_setting(store: Store, name: str, value: bytes) -> None:
    with store.write() as conn:
        if setting(conn, name) is None:
            conn.execute(insert(settings).values(name=name, value=value))
        else:
            conn.execute(update(settings).where(settings.c.name == name).values(value=value))


def add_account(store: Store, account_id: str, name: str) -> None:
    with store.write() as conn:
        conn.execute(insert(accounts).values(account_id=account_id, name=name, created_ms=0))


@dataclass
class Checkouts:
    count: int = 0


def count_checkouts(store: Store) -> Checkouts:
    """Every connection the store's pool hands out from now on."""
    seen = Checkouts()

    def checkout(*_args: Any) -> None:
        seen.count += 1

    event.listen(store.engine, "checkout", checkout)
    return seen


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "strongroom.db"


@pytest.fixture
def store(db: Path) -> Iterator[Store]:
    """Worker A."""
    opened = open_store(db)
    yield opened
    opened.dispose()


@pytest.fixture
def other(db: Path, store: Store) -> Iterator[Store]:
    """Worker B: the same database file, its own engine and cache."""
    opened = open_store(db)
    yield opened
    opened.dispose()


def cache_of(store: Store) -> Any:
    assert store.cache is not None
    return store.cache


# 1. Change counters ------------------------------------------------------------------------


def test_no_counter_before_any_write(store: Store, db: Path) -> None:
    assert counters(db) == {}


def test_insert_update_delete_each_bump_the_counter_of_their_table(store: Store, db: Path) -> None:
    with store.write() as conn:
        conn.execute(insert(settings).values(name="a", value=b"1"))
    assert counters(db) == {"settings": 1}
    with store.write() as conn:
        conn.execute(update(settings).where(settings.c.name == "a").values(value=b"2"))
    assert counters(db) == {"settings": 2}
    with store.write() as conn:
        conn.execute(delete(settings).where(settings.c.name == "a"))
    assert counters(db) == {"settings": 3}


def test_a_transaction_bumps_each_table_it_wrote_once(store: Store, db: Path) -> None:
    with store.write() as conn:
        conn.execute(insert(settings).values(name="a", value=b"1"))
        conn.execute(insert(settings).values(name="b", value=b"1"))
        conn.execute(update(settings).values(value=b"2"))
        conn.execute(insert(accounts).values(account_id="111122223333", name="x", created_ms=0))
    assert counters(db) == {"settings": 1, "accounts": 1}


def test_a_statement_that_changed_no_row_still_counts_as_a_write(store: Store, db: Path) -> None:
    # Conservative: the table was written to, whether or not a row matched.
    with store.write() as conn:
        conn.execute(delete(settings).where(settings.c.name == "nothing"))
    assert counters(db) == {"settings": 1}


def test_reads_bump_nothing_even_in_a_write_transaction(store: Store, db: Path) -> None:
    put_setting(store, "a", b"1")
    before = counters(db)
    with store.read() as conn:
        assert setting(conn, "a") == b"1"
    with store.write() as conn:
        assert setting(conn, "a") == b"1"
    assert counters(db) == before


def test_the_bump_is_part_of_the_write_transaction(store: Store, db: Path) -> None:
    """Inside the committing transaction the counter has moved; to every other connection
    it has not, until the commit makes row and counter visible together."""
    seen: dict[str, dict[str, int]] = {}

    def at_commit(conn: Connection) -> None:  # runs after track_changes' own listener
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            seen["inside"] = dict(cursor.execute("SELECT table_name, counter FROM change_counters"))
        finally:
            cursor.close()
        seen["outside"] = counters(db)

    event.listen(store.engine, "commit", at_commit)
    try:
        put_setting(store, "a", b"1")
    finally:
        event.remove(store.engine, "commit", at_commit)
    assert seen["inside"] == {"settings": 1}
    assert seen["outside"] == {}
    assert counters(db) == {"settings": 1}


def test_a_rolled_back_write_bumps_nothing_and_is_forgotten(store: Store, db: Path) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom), store.write() as conn:
        conn.execute(insert(settings).values(name="a", value=b"1"))
        raise Boom
    assert counters(db) == {}
    # The pooled connection that rolled back is used again: it carries nothing over.
    add_account(store, "111122223333", "x")
    assert counters(db) == {"accounts": 1}


def test_a_unit_of_work_bumps_at_its_commit_and_not_at_its_rollback(store: Store, db: Path) -> None:
    with store.unit_of_work() as unit:
        with store.write() as conn:
            conn.execute(insert(settings).values(name="a", value=b"1"))
        assert counters(db) == {}  # not yet committed
        unit.rollback()
    assert counters(db) == {}
    with store.unit_of_work() as unit:
        with store.write() as conn:
            conn.execute(insert(settings).values(name="a", value=b"1"))
        unit.commit()
    assert counters(db).get("settings") == 1
    with store.unit_of_work(), store.write() as conn:
        conn.execute(insert(accounts).values(account_id="111122223333", name="x", created_ms=0))
        # neither commit nor rollback: rolled back on the way out
    assert "accounts" not in counters(db)


def test_a_unit_of_work_bumps_only_the_tables_it_wrote(
    store: Store, other: Store, db: Path
) -> None:
    add_account(store, "111122223333", "x")
    loads = Loads()
    assert read_account(other, "111122223333", loads) == "x"
    with store.unit_of_work() as unit:
        with store.write() as conn:
            conn.execute(insert(settings).values(name="a", value=b"1"))
        unit.commit()
    assert counters(db) == {"accounts": 1, "settings": 1}  # today also {"*": 1}
    assert read_account(other, "111122223333", loads) == "x"
    assert loads.keys == ["111122223333"]  # today a second load: the entry was dropped


def test_a_text_write_records_everything(store: Store, db: Path) -> None:
    put_setting(store, "a", b"1")
    with store.write() as conn:
        conn.execute(text("UPDATE settings SET value = :v"), {"v": b"2"})
    assert counters(db) == {"settings": 1, EVERYTHING: 1}


def test_a_text_write_drops_every_namespace_in_other_workers(store: Store, other: Store) -> None:
    put_setting(store, "a", b"1")
    add_account(store, "111122223333", "old")
    loads = Loads()
    assert read_setting(other, "a", loads) == b"1"
    assert read_account(other, "111122223333", loads) == "old"
    assert read_setting(other, "a", loads) == b"1"
    assert read_account(other, "111122223333", loads) == "old"
    assert loads.keys == ["a", "111122223333"]  # the second reads were hits
    with store.write() as conn:
        conn.execute(text("UPDATE settings SET value = x'32'"))
        conn.execute(text("UPDATE accounts SET name = 'new'"))
    assert read_setting(other, "a", loads) == b"2"
    assert read_account(other, "111122223333", loads) == "new"
    assert loads.keys == ["a", "111122223333", "a", "111122223333"]


def test_a_driver_sql_write_is_seen_by_other_workers(store: Store, other: Store, db: Path) -> None:
    put_setting(store, "a", b"1")
    assert read_setting(other, "a") == b"1"
    with store.write() as conn:
        conn.exec_driver_sql("UPDATE settings SET value = x'32'")
    assert EVERYTHING in counters(db)
    assert read_setting(other, "a") == b"2"


def test_changes_before_migrate_are_not_tracked_and_the_cache_needs_migrate(db: Path) -> None:
    store = Store(f"sqlite:///{db}")
    try:
        with pytest.raises(AssertionError, match="migrate"):
            store.enable_cache()
        store.migrate()
        store.enable_cache()
        assert store.cache is not None
    finally:
        store.dispose()
    assert store.cache is None


# 2. Cached reads ---------------------------------------------------------------------------


def test_a_second_lookup_is_a_hit_without_a_connection(store: Store) -> None:
    put_setting(store, "a", b"1")
    checkouts = count_checkouts(store)
    cache = cache_of(store)
    hits, misses = cache.hits, cache.misses
    loads = Loads()
    assert read_setting(store, "a", loads) == b"1"
    assert (cache.hits, cache.misses) == (hits, misses + 1)
    assert loads.keys == ["a"]
    assert checkouts.count == 1
    for _ in range(3):
        assert read_setting(store, "a", loads) == b"1"
    assert (cache.hits, cache.misses) == (hits + 3, misses + 1)
    assert loads.keys == ["a"]
    assert checkouts.count == 1  # no read transaction was opened for a hit


def test_a_snapshot_reader_opens_its_transaction_only_when_used(store: Store) -> None:
    checkouts = count_checkouts(store)
    with store.read() as conn:
        assert isinstance(conn, SnapshotReader)
    assert checkouts.count == 0
    with store.read() as conn:
        conn.execute(select(settings)).all()
    assert checkouts.count == 1


def test_snapshots_on_an_event_loop_reuse_one_connection_and_see_every_commit(
    store: Store, other: Store
) -> None:
    checkouts = count_checkouts(store)
    drivers: list[Any] = []

    def read_through_a_connection() -> bytes | None:
        with store.read() as conn:
            value = setting(conn, "a")
            drivers.append(conn.connection.dbapi_connection)
            return value

    async def requests() -> list[bytes | None]:
        seen = []
        for value in (b"1", b"2", b"3"):
            put_setting(other, "a", value)  # another worker commits between snapshots
            seen.append(read_through_a_connection())
        return seen

    assert asyncio.run(requests()) == [b"1", b"2", b"3"]
    assert checkouts.count == 1  # kept aside for the loop, not checked out each time
    assert len({id(driver) for driver in drivers}) == 1
    assert read_through_a_connection() == b"3"  # off the loop: from the pool
    assert checkouts.count == 2


def test_a_closed_loops_connection_goes_back_to_the_pool(store: Store) -> None:
    put_setting(store, "a", b"1")
    pool: Any = store.engine.pool
    held = pool.checkedout()

    async def request() -> None:
        with store.read() as conn:
            assert setting(conn, "a") == b"1"

    for _ in range(5):
        asyncio.run(request())  # a new event loop each time, closed after
    assert pool.checkedout() == held + 1  # only the last loop's is kept aside


def test_a_second_snapshot_on_a_loop_while_its_connection_is_taken_uses_the_pool(
    store: Store,
) -> None:
    put_setting(store, "a", b"1")
    pool: Any = store.engine.pool
    held = pool.checkedout()

    async def nested() -> None:
        with store.read() as first:
            assert setting(first, "a") == b"1"
            # Another request's context, on the same loop, while the first snapshot is open.
            with elsewhere(store.read) as second:
                assert second is not first
                put_setting(store, "a", b"2")
                assert setting(second, "a") == b"2"
            assert setting(first, "a") == b"1"  # its own snapshot still

    asyncio.run(nested())
    assert pool.checkedout() == held + 1  # one kept aside for the loop; nothing leaked
    store.readers.close()
    assert pool.checkedout() == held


def test_a_connection_whose_transaction_did_not_end_is_not_kept(store: Store) -> None:
    pool: Any = store.engine.pool
    held = pool.checkedout()

    async def failing_commit() -> None:
        reader = store.read()
        conn = reader.__enter__()
        setting(conn, "a")
        real = conn.opened()

        def broken() -> None:
            raise sqlite3.OperationalError("disk I/O error (simulated)")

        real.commit = broken  # type: ignore[method-assign]
        with pytest.raises(sqlite3.OperationalError):
            reader.__exit__(None, None, None)

    asyncio.run(failing_commit())
    assert pool.checkedout() == held  # closed, not kept aside


def test_nested_reads_join_the_outer_snapshot_and_its_cache(store: Store) -> None:
    put_setting(store, "a", b"1")
    with store.read() as outer:
        with store.read() as inner:
            assert inner is outer
        assert read_setting(store, "a") == b"1"
    loads = Loads()
    assert read_setting(store, "a", loads) == b"1"
    assert loads.keys == []


def test_a_missing_row_is_cached_until_it_is_written(store: Store, other: Store) -> None:
    loads = Loads()
    assert read_setting(other, "a", loads) is None
    assert read_setting(other, "a", loads) is None
    assert loads.keys == ["a"]
    put_setting(store, "a", b"1")
    assert read_setting(other, "a", loads) == b"1"
    assert loads.keys == ["a", "a"]


def test_keys_are_cached_separately(store: Store) -> None:
    put_setting(store, "a", b"1")
    put_setting(store, "b", b"2")
    loads = Loads()
    assert read_setting(store, "a", loads) == b"1"
    assert read_setting(store, "b", loads) == b"2"
    assert read_setting(store, "a", loads) == b"1"
    assert read_setting(store, "b", loads) == b"2"
    assert loads.keys == ["a", "b"]


# 3. Invalidation across workers ------------------------------------------------------------


def test_a_write_in_one_worker_is_read_at_once_in_another(store: Store, other: Store) -> None:
    put_setting(store, "a", b"old")
    loads = Loads()
    assert read_setting(other, "a", loads) == b"old"
    assert read_setting(other, "a", loads) == b"old"
    assert loads.keys == ["a"]
    put_setting(store, "a", b"new")
    assert read_setting(other, "a", loads) == b"new"
    assert loads.keys == ["a", "a"]
    assert read_setting(other, "a", loads) == b"new"
    assert loads.keys == ["a", "a"]  # cached again


def test_each_worker_reads_its_own_and_the_others_writes(store: Store, other: Store) -> None:
    for step in range(6):
        writer, reader = (store, other) if step % 2 == 0 else (other, store)
        value = f"v{step}".encode()
        put_setting(writer, "a", value)
        assert read_setting(writer, "a") == value
        assert read_setting(reader, "a") == value
        assert read_setting(reader, "a") == value


def test_a_delete_in_one_worker_is_seen_in_another(store: Store, other: Store) -> None:
    put_setting(store, "a", b"1")
    assert read_setting(other, "a") == b"1"
    with store.write() as conn:
        conn.execute(delete(settings).where(settings.c.name == "a"))
    assert read_setting(other, "a") is None


def test_only_namespaces_of_a_written_table_are_dropped(store: Store, other: Store) -> None:
    put_setting(store, "a", b"old")
    add_account(store, "111122223333", "x")
    loads = Loads()
    assert read_setting(other, "a", loads) == b"old"
    assert read_account(other, "111122223333", loads) == "x"
    put_setting(store, "a", b"new")
    assert read_setting(other, "a", loads) == b"new"
    assert read_account(other, "111122223333", loads) == "x"
    assert loads.keys == ["a", "111122223333", "a"]  # the account was still cached


def test_a_namespace_on_several_tables_is_dropped_by_any_of_them(
    store: Store, other: Store
) -> None:
    both = Namespace("test-both", ("settings", "accounts"))
    put_setting(store, "a", b"1")
    calls: list[str] = []

    def read() -> bytes | None:
        with other.read() as conn:

            def load() -> bytes | None:
                calls.append("load")
                return setting(conn, "a")

            return cached(conn, both, "a", load)

    read()
    read()
    assert calls == ["load"]
    add_account(store, "111122223333", "x")  # the other table
    read()
    assert calls == ["load", "load"]
    put_setting(store, "b", b"2")  # a row not cached, of the first table
    read()
    assert calls == ["load", "load", "load"]


def test_a_write_that_commits_nothing_relevant_keeps_the_cache(store: Store, other: Store) -> None:
    put_setting(store, "a", b"1")
    loads = Loads()
    assert read_setting(other, "a", loads) == b"1"
    with store.write() as conn:  # a transaction that only reads
        assert setting(conn, "a") == b"1"
    with pytest.raises(ZeroDivisionError), store.write() as conn:  # one that rolls back
        conn.execute(update(settings).values(value=b"2"))
        raise ZeroDivisionError
    assert read_setting(other, "a", loads) == b"1"
    assert loads.keys == ["a"]


def test_refresh_moves_the_epoch_only_after_a_commit(store: Store, other: Store) -> None:
    cache = cache_of(other)
    epoch = cache.refresh()
    assert cache.refresh() == epoch  # nothing committed: nothing dropped
    with store.write() as conn:  # a transaction that wrote nothing
        setting(conn, "a")
    assert cache.refresh() == epoch
    put_setting(store, "a", b"1")
    later = cache.refresh()
    assert later > epoch
    assert cache.refresh() == later


class CountingWatch:
    """Stands in for the cache's own sqlite3 connection and counts what it is asked."""

    def __init__(self, real: sqlite3.Connection) -> None:
        self.real = real
        self.asked: list[str] = []

    def execute(self, sql: str) -> sqlite3.Cursor:
        self.asked.append(sql)
        return self.real.execute(sql)

    def close(self) -> None:
        self.real.close()


def test_refresh_asks_sqlite_only_after_a_commit_moved_the_wal_index(
    store: Store, other: Store
) -> None:
    cache = cache_of(other)
    watch = CountingWatch(cache._watch)
    cache._watch = watch
    epoch = cache.refresh()
    watch.asked.clear()
    for _ in range(5):
        assert cache.refresh() == epoch
    assert watch.asked == []  # read-only traffic: shared memory only
    put_setting(store, "a", b"1")
    assert cache.refresh() > epoch
    assert watch.asked[0] == "PRAGMA data_version"
    watch.asked.clear()
    cache.refresh()
    assert watch.asked == []


def test_a_commit_by_any_connection_moves_the_wal_index_header(store: Store, db: Path) -> None:
    watch = WalIndexWatch(str(db))
    try:
        before = watch.header()
        assert before is not None and len(before) == WalIndexWatch.SIZE
        with sqlite3.connect(db) as raw:  # not through any Store: a process of its own
            raw.execute("INSERT INTO settings (name, value) VALUES ('raw', x'00')")
        assert watch.header() != before
        settled = watch.header()
        with sqlite3.connect(db) as raw:  # a read changes nothing
            raw.execute("SELECT count(*) FROM settings").fetchone()
        assert watch.header() == settled
    finally:
        watch.close()


def test_a_raw_commit_that_bumps_the_counters_is_seen_by_the_next_refresh(
    store: Store, db: Path
) -> None:
    cache = cache_of(store)
    with store.read() as conn:
        assert cached(conn, SETTINGS, "k", lambda: "old") == "old"
    epoch = cache.refresh()
    with sqlite3.connect(db) as raw:
        raw.execute(
            "INSERT INTO change_counters (table_name, counter) VALUES ('settings', 1) "
            "ON CONFLICT (table_name) DO UPDATE SET counter = counter + 1"
        )
    assert cache.refresh() > epoch
    with store.read() as conn:
        assert cached(conn, SETTINGS, "k", lambda: "new") == "new"


def test_without_a_wal_index_every_refresh_asks_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "rollback-journal.db"
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE t (x)")
    watch = WalIndexWatch(str(path))
    assert watch.header() is None
    watch.close()


# 4. The epoch rule -------------------------------------------------------------------------


def test_a_reader_older_than_a_drop_does_not_cache_what_it_loaded(
    store: Store, other: Store
) -> None:
    put_setting(store, "a", b"old")
    put_setting(store, "b", b"b")
    assert read_setting(other, "b") == b"b"  # the namespace is in use in worker B
    loads = Loads()
    with other.read() as slow:
        assert setting(slow, "b") == b"b"  # its snapshot begins here
        put_setting(store, "a", b"new")  # worker A commits
        assert elsewhere(read_setting, other, "b") == b"b"  # another request refreshes B
        # The slow request's load completes: from its snapshot, the old row.
        assert cached(slow, SETTINGS, "a", loads.setting(slow, "a")) == b"old"
    assert loads.keys == ["a"]
    assert read_setting(other, "a", loads) == b"new"  # a miss: "old" was not kept
    assert loads.keys == ["a", "a"]
    assert read_setting(other, "a", loads) == b"new"
    assert loads.keys == ["a", "a"]


def test_what_a_reader_older_than_a_drop_hands_over_is_not_kept(store: Store, other: Store) -> None:
    put_setting(store, "a", b"old")
    put_setting(store, "b", b"b")
    assert read_setting(other, "b") == b"b"
    with other.read() as slow:
        assert setting(slow, "b") == b"b"  # its snapshot begins here
        put_setting(store, "a", b"new")
        assert elsewhere(read_setting, other, "b") == b"b"  # drops "test-settings" in B
        remember(slow, SETTINGS, "a", setting(slow, "a"))  # "old", from its snapshot
        # Within the slow request's own snapshot, what it handed over is its answer.
        assert cached(slow, SETTINGS, "a", Loads().setting(slow, "a")) == b"old"
    loads = Loads()
    assert read_setting(other, "a", loads) == b"new"
    assert loads.keys == ["a"]


def test_what_a_current_reader_hands_over_is_a_hit_for_the_next(store: Store) -> None:
    put_setting(store, "a", b"v")
    with store.read() as conn:
        remember(conn, SETTINGS, "a", setting(conn, "a"))
    loads = Loads()
    assert read_setting(store, "a", loads) == b"v"
    assert loads.keys == []
    with store.write() as conn:  # a writer's reads are its own: nothing is handed over
        remember(conn, SETTINGS, "zzz", b"made up")
    assert read_setting(store, "zzz", loads) is None
    assert loads.keys == ["zzz"]


def test_a_drop_while_a_load_is_running_keeps_the_load_out_of_the_cache(
    store: Store, other: Store
) -> None:
    put_setting(store, "a", b"old")
    put_setting(store, "b", b"b")
    assert read_setting(other, "b") == b"b"
    with other.read() as slow:

        def load() -> bytes | None:
            value = setting(slow, "a")  # the snapshot begins: "old"
            put_setting(store, "a", b"new")
            elsewhere(read_setting, other, "b")  # refreshes B: drops "test-settings"
            return value

        assert cached(slow, SETTINGS, "a", load) == b"old"
    loads = Loads()
    assert read_setting(other, "a", loads) == b"new"
    assert loads.keys == ["a"]


def test_a_stale_load_cached_before_the_drop_is_dropped_by_it(store: Store, other: Store) -> None:
    put_setting(store, "a", b"old")
    assert read_setting(other, "b") is None
    with other.read() as slow:
        assert setting(slow, "b") is None  # snapshot
        put_setting(store, "a", b"new")
        # No refresh in between: the stale row is cached...
        assert cached(slow, SETTINGS, "a", lambda: setting(slow, "a")) == b"old"
    # ...and the next request's refresh drops it.
    assert read_setting(other, "a") == b"new"


def test_a_reader_that_began_after_the_drop_caches(store: Store, other: Store) -> None:
    put_setting(store, "a", b"old")
    assert read_setting(other, "a") == b"old"
    put_setting(store, "a", b"new")
    loads = Loads()
    assert read_setting(other, "a", loads) == b"new"  # refreshes, then loads
    assert read_setting(other, "a", loads) == b"new"
    assert loads.keys == ["a"]


def test_a_reader_older_than_a_drop_does_not_cache_a_namespace_it_uses_first(
    store: Store, other: Store
) -> None:
    put_setting(store, "a", b"old")
    with other.read() as slow:
        assert setting(slow, "a") == b"old"  # the snapshot begins (no cached read yet)
        put_setting(store, "a", b"new")
        cache_of(other).refresh()  # another request: sees the commit, drops "settings"
        assert cached(slow, SETTINGS, "a", lambda: setting(slow, "a")) == b"old"
    assert read_setting(other, "a") == b"new"  # today: b"old", until settings is written


# 5. Reads inside a write -------------------------------------------------------------------


def test_reads_in_a_write_go_to_the_database_and_see_their_own_writes(store: Store) -> None:
    put_setting(store, "a", b"old")
    assert read_setting(store, "a") == b"old"  # cached
    cache = cache_of(store)
    hits, misses = cache.hits, cache.misses
    loads = Loads()

    class Undo(Exception):
        pass

    with pytest.raises(Undo), store.write() as conn:
        conn.execute(update(settings).values(value=b"mine"))
        assert cached(conn, SETTINGS, "a", loads.setting(conn, "a")) == b"mine"
        assert cached(conn, SETTINGS, "a", loads.setting(conn, "a")) == b"mine"
        assert cached(conn, SETTINGS, "new", loads.setting(conn, "new")) is None
        raise Undo
    assert loads.keys == ["a", "a", "new"]
    assert (cache.hits, cache.misses) == (hits, misses)  # the cache was not consulted
    assert read_setting(store, "a", loads) == b"old"  # a hit: the write left it alone
    assert loads.keys == ["a", "a", "new"]


def test_reads_in_a_unit_of_work_that_wrote_use_its_connection_not_the_cache(
    store: Store,
) -> None:
    put_setting(store, "a", b"old")
    assert read_setting(store, "a") == b"old"
    cache = cache_of(store)
    hits, misses = cache.hits, cache.misses
    loads = Loads()
    with store.unit_of_work() as unit:
        assert read_setting(store, "a", loads) == b"old"  # nothing written yet: a hit
        with store.write() as conn:
            conn.execute(update(settings).values(value=b"mine"))
        with store.read() as conn:
            assert not isinstance(conn, SnapshotReader)
            assert conn is unit.connection
        assert read_setting(store, "a", loads) == b"mine"
        assert read_setting(store, "a", loads) == b"mine"
        assert read_setting(store, "b", loads) is None
        unit.rollback()
    assert loads.keys == ["a", "a", "b"]
    assert (cache.hits, cache.misses) == (hits + 1, misses)
    assert read_setting(store, "a", loads) == b"old"  # the rolled-back value never cached
    assert read_setting(store, "b", loads) is None
    assert loads.keys == ["a", "a", "b", "b"]


def test_a_value_written_in_a_unit_of_work_is_read_after_its_commit(
    store: Store, other: Store
) -> None:
    put_setting(store, "a", b"old")
    assert read_setting(store, "a") == b"old"
    assert read_setting(other, "a") == b"old"
    with store.unit_of_work() as unit:
        with store.write() as conn:
            conn.execute(update(settings).values(value=b"new"))
        assert elsewhere(read_setting, store, "a") == b"old"  # not committed yet
        unit.commit()
    assert read_setting(store, "a") == b"new"
    assert read_setting(other, "a") == b"new"


# 6. Shared, immutable entries -------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    name: str
    value: str


def test_every_reader_shares_the_cached_object(store: Store) -> None:
    shared = Namespace("test-shared", ("settings",))
    with store.read() as conn:
        first = cached(conn, shared, "a", lambda: Record("a", "v"))
    with store.read() as conn:
        second = cached(conn, shared, "a", lambda: Record("a", "other"))
    assert second is first  # no copy per read: what is cached is immutable


def _find_secret(store: Store, name: str) -> repo.SecretRecord:
    with store.read() as conn:
        found = repo.find_by_name(conn, DEV_ACCOUNT, REGION, name)
    assert found is not None
    return found


def test_a_cached_secret_record_cannot_be_changed_by_its_reader(deployment: Deployment) -> None:
    deployment.secrets.create_secret(
        SM, {"Name": "shared/me", "SecretString": "v", "ClientRequestToken": str(uuid.uuid4())}
    )
    store = deployment.store
    first = _find_secret(store, "shared/me")
    hits = cache_of(store).hits
    second = _find_secret(store, "shared/me")
    assert cache_of(store).hits == hits + 1
    assert second is first
    with pytest.raises(FrozenInstanceError):
        first.description = "scribbled"  # type: ignore[misc]
    assert _find_secret(store, "shared/me").description is None


def test_a_secret_write_returns_the_changed_record_and_leaves_the_cached_one(
    deployment: Deployment,
) -> None:
    deployment.secrets.create_secret(
        SM, {"Name": "write/me", "SecretString": "v", "ClientRequestToken": str(uuid.uuid4())}
    )
    store = deployment.store
    cached_record = _find_secret(store, "write/me")
    with store.write() as conn:
        changed = repo.update_secret(conn, cached_record, description="new words")
    assert changed.description == "new words"
    assert changed.id == cached_record.id and changed.arn == cached_record.arn
    assert cached_record.description is None  # what an earlier reader holds is as it read it
    assert _find_secret(store, "write/me").description == "new words"


# 7. Bounded size ---------------------------------------------------------------------------


def test_a_full_namespace_evicts_its_oldest_entry_instead_of_growing(store: Store) -> None:
    small = Namespace("test-small", ("settings",), max_entries=3)
    loads: list[str] = []

    def get(key: str) -> str:
        with store.read() as conn:

            def load() -> str:
                loads.append(key)
                return key.upper()

            return cached(conn, small, key, load)

    for key in ("a", "b", "c", "a", "b", "c"):
        assert get(key) == key.upper()
    assert loads == ["a", "b", "c"]
    assert get("d") == "D"  # the fourth: "a", the oldest, makes room
    assert list(cache_of(store)._spaces["test-small"].entries) == ["b", "c", "d"]
    assert get("d") == "D"
    assert get("b") == "B"
    assert loads == ["a", "b", "c", "d"]
    assert get("a") == "A"  # loaded again; "b" is now the oldest and goes
    assert loads == ["a", "b", "c", "d", "a"]
    assert list(cache_of(store)._spaces["test-small"].entries) == ["c", "d", "a"]


def test_a_full_namespace_leaves_other_namespaces_alone(store: Store) -> None:
    small = Namespace("test-small", ("settings",), max_entries=1)
    put_setting(store, "a", b"1")
    loads = Loads()
    assert read_setting(store, "a", loads) == b"1"
    for key in ("x", "y", "z"):
        with store.read() as conn:
            cached(conn, small, key, lambda: None)
    assert read_setting(store, "a", loads) == b"1"
    assert loads.keys == ["a"]


# 8. Read-only requests ---------------------------------------------------------------------


def test_a_write_inside_reads_only_raises_before_it_starts(store: Store, db: Path) -> None:
    put_setting(store, "a", b"1")
    checkouts = count_checkouts(store)
    before = counters(db)
    with store.reads_only():
        assert read_setting(store, "a") == b"1"  # reads are fine
        with pytest.raises(WriteAttempted), store.write() as conn:
            conn.execute(update(settings).values(value=b"2"))
        with store.unit_of_work() as unit:
            with pytest.raises(WriteAttempted):
                unit.writer()
            with pytest.raises(WriteAttempted), store.write():
                pass
            assert not unit.wrote
    assert checkouts.count == 1  # the first read only; no writer was ever opened
    assert counters(db) == before
    assert read_setting(store, "a") == b"1"
    put_setting(store, "a", b"3")  # outside the block writes work again
    assert read_setting(store, "a") == b"3"


def test_write_attempted_passes_except_exception() -> None:
    assert issubclass(WriteAttempted, BaseException)
    assert not issubclass(WriteAttempted, Exception)


# 9. Through the services, in two deployments on one data directory ---------------------------


@pytest.fixture
def second(deployment: Deployment, clock: ManualClock) -> Iterator[Deployment]:
    """Another worker: the same data directory opened again."""
    opened = open_deployment(deployment.data_dir, clock=clock)
    yield opened
    opened.close()


def get_value(deployment: Deployment, secret_id: str) -> dict[str, Any]:
    return deployment.secrets.get_secret_value(SM, {"SecretId": secret_id})


def test_get_secret_value_in_one_worker_sees_put_secret_value_in_another(
    deployment: Deployment, second: Deployment
) -> None:
    a, b = deployment, second
    created = a.secrets.create_secret(
        SM, {"Name": "app/db", "SecretString": "v1", "ClientRequestToken": str(uuid.uuid4())}
    )
    assert get_value(b, "app/db")["SecretString"] == "v1"
    assert get_value(b, "app/db")["SecretString"] == "v1"  # LastAccessedDate written once
    checkouts = count_checkouts(b.store)
    hits, misses = cache_of(b.store).hits, cache_of(b.store).misses
    answer = get_value(b, "app/db")
    assert (answer["SecretString"], answer["VersionId"]) == ("v1", created["VersionId"])
    # Secret, stages, version, KMS key and its material: all from the cache.
    assert cache_of(b.store).misses == misses
    assert cache_of(b.store).hits > hits
    assert checkouts.count == 0

    put = a.secrets.put_secret_value(
        SM, {"SecretId": "app/db", "SecretString": "v2", "ClientRequestToken": str(uuid.uuid4())}
    )
    answer = get_value(b, "app/db")
    assert (answer["SecretString"], answer["VersionId"]) == ("v2", put["VersionId"])
    previous = b.secrets.get_secret_value(
        SM, {"SecretId": created["ARN"], "VersionStage": "AWSPREVIOUS"}
    )
    assert previous["SecretString"] == "v1"

    a.secrets.delete_secret(SM, {"SecretId": "app/db", "ForceDeleteWithoutRecovery": True})
    with pytest.raises(ServiceError) as info:
        get_value(b, "app/db")
    assert info.value.code == "ResourceNotFoundException"
    with pytest.raises(ServiceError) as info:
        get_value(b, created["ARN"])
    assert info.value.code == "ResourceNotFoundException"


@pytest.mark.parametrize("by", ["name", "arn"])
def test_a_first_read_by_name_or_arn_brings_the_labels_and_current_version_along(
    deployment: Deployment, second: Deployment, by: str
) -> None:
    a, b = deployment, second
    created = a.secrets.create_secret(
        SM, {"Name": "app/bundle", "SecretString": "v1", "ClientRequestToken": str(uuid.uuid4())}
    )
    put = a.secrets.put_secret_value(
        SM,
        {"SecretId": "app/bundle", "SecretString": "v2", "ClientRequestToken": str(uuid.uuid4())},
    )
    with a.store.read() as truth:
        record = repo.find_by_name(truth, DEV_ACCOUNT, REGION, "app/bundle")
        assert record is not None
        stages = repo.stages(truth, record.id)
        current = repo.version(truth, record.id, put["VersionId"])
    assert stages == {"AWSCURRENT": put["VersionId"], "AWSPREVIOUS": created["VersionId"]}
    cache = cache_of(b.store)
    with b.store.read() as conn:
        if by == "name":
            found = repo.find_by_name(conn, DEV_ACCOUNT, REGION, "app/bundle")
        else:
            found = repo.find_by_arn(conn, created["ARN"])
        assert found is not None and found.arn == created["ARN"]
        misses = cache.misses
        assert repo.stages(conn, found.id) == stages
        assert repo.version(conn, found.id, put["VersionId"]) == current
        assert cache.misses == misses  # handed over by the lookup, in this snapshot
        assert repo.staged(conn, found.id) == (stages, current)
        assert cache.misses == misses
    with b.store.read() as conn:  # and in the row cache, for the next request
        assert repo.stages(conn, record.id) == stages
        assert repo.version(conn, record.id, put["VersionId"]) == current
        assert repo.staged(conn, record.id) == (stages, current)
        assert cache.misses == misses
        # Only the current version comes along.
        assert repo.version(conn, record.id, created["VersionId"]) is not None
        assert cache.misses == misses + 1


def test_the_cached_labels_are_read_only_and_each_stages_call_gets_its_own_copy(
    deployment: Deployment, second: Deployment
) -> None:
    deployment.secrets.create_secret(
        SM, {"Name": "app/labels", "SecretString": "v", "ClientRequestToken": str(uuid.uuid4())}
    )
    with second.store.read() as conn:
        found = repo.find_by_name(conn, DEV_ACCOUNT, REGION, "app/labels")
        assert found is not None
        view = repo.stages_view(conn, found.id)
        with pytest.raises(TypeError):
            view["MINE"] = "x"  # type: ignore[index]
        with pytest.raises(TypeError):
            repo.staged(conn, found.id).stages["MINE"] = "x"  # type: ignore[index]
        copy = repo.stages(conn, found.id)
        copy["MINE"] = "x"
        assert "MINE" not in repo.stages(conn, found.id)
    with second.store.read() as conn:
        assert "MINE" not in repo.stages_view(conn, found.id)


def test_a_current_version_rewritten_in_one_worker_is_read_anew_in_another(
    deployment: Deployment, second: Deployment
) -> None:
    """The staged entry (labels and current version) depends on secret_versions too: a
    write to the version alone, labels unchanged, drops it in other workers."""
    a, b = deployment, second
    a.secrets.create_secret(
        SM, {"Name": "app/rewritten", "SecretString": "v", "ClientRequestToken": str(uuid.uuid4())}
    )
    assert get_value(b, "app/rewritten")["SecretString"] == "v"
    assert get_value(b, "app/rewritten")["SecretString"] == "v"  # LastAccessedDate written once
    with b.store.read() as conn:
        record = repo.find_by_name(conn, DEV_ACCOUNT, REGION, "app/rewritten")
        assert record is not None
        before = repo.staged(conn, record.id)
    current = before.current
    assert current is not None and current.value_kind is not None
    with a.store.write() as conn:
        repo.fill_version(
            conn, record.id, current.version_id, current.value_kind, b"rewritten", None
        )
    with b.store.read() as conn:
        after = repo.staged(conn, record.id)
    assert after.stages == before.stages
    assert after.current is not None and after.current.ciphertext == b"rewritten"


def test_a_secret_without_a_value_is_read_with_no_labels_and_no_version(
    deployment: Deployment, second: Deployment
) -> None:
    a, b = deployment, second
    a.secrets.create_secret(SM, {"Name": "app/empty"})
    with b.store.read() as conn:
        found = repo.find_by_name(conn, DEV_ACCOUNT, REGION, "app/empty")
        assert found is not None
        assert repo.stages(conn, found.id) == {}
    with pytest.raises(ServiceError) as info:
        get_value(b, "app/empty")
    assert info.value.code == "ResourceNotFoundException"
    a.secrets.put_secret_value(
        SM,
        {"SecretId": "app/empty", "SecretString": "now", "ClientRequestToken": str(uuid.uuid4())},
    )
    assert get_value(b, "app/empty")["SecretString"] == "now"


def test_a_secret_scheduled_for_deletion_in_one_worker_is_refused_in_another(
    deployment: Deployment, second: Deployment
) -> None:
    a, b = deployment, second
    a.secrets.create_secret(
        SM, {"Name": "app/doomed", "SecretString": "v", "ClientRequestToken": str(uuid.uuid4())}
    )
    assert get_value(b, "app/doomed")["SecretString"] == "v"
    a.secrets.delete_secret(SM, {"SecretId": "app/doomed", "RecoveryWindowInDays": 7})
    with pytest.raises(ServiceError) as info:
        get_value(b, "app/doomed")
    assert info.value.code == "InvalidRequestException"
    a.secrets.restore_secret(SM, {"SecretId": "app/doomed"})
    assert get_value(b, "app/doomed")["SecretString"] == "v"


def test_moving_a_stage_in_one_worker_is_seen_in_another(
    deployment: Deployment, second: Deployment
) -> None:
    a, b = deployment, second
    first = a.secrets.create_secret(
        SM, {"Name": "app/staged", "SecretString": "one", "ClientRequestToken": str(uuid.uuid4())}
    )["VersionId"]
    token = str(uuid.uuid4())
    a.secrets.put_secret_value(
        SM, {"SecretId": "app/staged", "SecretString": "two", "ClientRequestToken": token}
    )
    assert get_value(b, "app/staged")["SecretString"] == "two"
    a.secrets.update_secret_version_stage(
        SM,
        {
            "SecretId": "app/staged",
            "VersionStage": "AWSCURRENT",
            "MoveToVersionId": first,
            "RemoveFromVersionId": token,
        },
    )
    assert get_value(b, "app/staged")["SecretString"] == "one"


def test_deactivating_or_deleting_an_access_key_in_one_worker_reaches_another(
    deployment: Deployment, second: Deployment
) -> None:
    a, b = deployment, second
    iam = IdentityService(a.store, a.barrier, a.clock, a.credentials)
    iam.create_user(SM, {"UserName": "carol"})
    key = iam.create_access_key(SM, {"UserName": "carol"})["AccessKey"]
    key_id = key["AccessKeyId"]

    found = b.credentials.lookup(key_id)
    assert found is not None and found.status == "Active"
    assert found.secret_access_key == key["SecretAccessKey"]
    hits = cache_of(b.store).hits
    assert b.credentials.lookup(key_id) == found
    assert cache_of(b.store).hits == hits + 1

    iam.update_access_key(SM, {"UserName": "carol", "AccessKeyId": key_id, "Status": "Inactive"})
    found = b.credentials.lookup(key_id)
    assert found is not None and found.status == "Inactive"
    iam.update_access_key(SM, {"UserName": "carol", "AccessKeyId": key_id, "Status": "Active"})
    found = b.credentials.lookup(key_id)
    assert found is not None and found.status == "Active"

    iam.delete_access_key(SM, {"UserName": "carol", "AccessKeyId": key_id})
    assert b.credentials.lookup(key_id) is None
    assert a.credentials.lookup(key_id) is None


_TRUST_ACCOUNT = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{DEV_ACCOUNT}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


def _role_session(deployment: Deployment, iam: IdentityService, name: str) -> str:
    """A session of role ``name`` (made now, trusting the account), as STS issues one."""
    role = iam.create_role(SM, {"RoleName": name, "AssumeRolePolicyDocument": _TRUST_ACCOUNT})[
        "Role"
    ]
    with deployment.store.write() as conn:
        issued = deployment.credentials.create_session(
            conn,
            SessionGrant(
                account_id=DEV_ACCOUNT,
                kind="assumed-role",
                principal_arn=f"arn:aws:sts::{DEV_ACCOUNT}:assumed-role/{name}/job",
                identity_arn=role["Arn"],
                duration_seconds=3600,
                role_id=role["RoleId"],
                session_name="job",
            ),
        )
    return issued.access_key_id


@pytest.mark.parametrize("kind", ["role", "user"])
def test_a_session_whose_principal_is_deleted_in_one_worker_is_no_key_in_another(
    deployment: Deployment, second: Deployment, kind: str
) -> None:
    """A session is bound to its role's or user's unique id: once that role or user is
    deleted (by any worker), its key is no key in every worker, and stays none when one
    of the same name is created again (another id)."""
    a, b = deployment, second
    iam = IdentityService(a.store, a.barrier, a.clock, a.credentials)
    if kind == "role":
        key_id = _role_session(a, iam, "ops")
        found = b.credentials.lookup(key_id)
        assert found is not None and found.principal.kind == "assumed-role"
        role_id = iam.get_role(SM, {"RoleName": "ops"})["Role"]["RoleId"]
        assert found.principal.unique_id == f"{role_id}:job"
        unrelated = iam.create_role(
            SM, {"RoleName": "other", "AssumeRolePolicyDocument": _TRUST_ACCOUNT}
        )
        assert unrelated["Role"]["RoleId"] != role_id
        assert b.credentials.lookup(key_id) == found  # another role's change keeps it
        iam.delete_role(SM, {"RoleName": "ops"})
        assert b.credentials.lookup(key_id) is None
        assert a.credentials.lookup(key_id) is None
        iam.create_role(SM, {"RoleName": "ops", "AssumeRolePolicyDocument": _TRUST_ACCOUNT})
    else:
        iam.create_user(SM, {"UserName": "erin"})
        user_id = iam.get_user(SM, {"UserName": "erin"})["User"]["UserId"]
        with a.store.write() as conn:
            key_id = a.credentials.create_session(
                conn,
                SessionGrant(
                    account_id=DEV_ACCOUNT,
                    kind="user",
                    principal_arn=f"arn:aws:iam::{DEV_ACCOUNT}:user/erin",
                    identity_arn=f"arn:aws:iam::{DEV_ACCOUNT}:user/erin",
                    duration_seconds=3600,
                    user_id=user_id,
                ),
            ).access_key_id
        found = b.credentials.lookup(key_id)
        assert found is not None and found.principal.unique_id == user_id
        iam.delete_user(SM, {"UserName": "erin"})
        assert b.credentials.lookup(key_id) is None
        assert a.credentials.lookup(key_id) is None
        iam.create_user(SM, {"UserName": "erin"})
    assert b.credentials.lookup(key_id) is None
    assert a.credentials.lookup(key_id) is None
    # The session row is still there (purged once expired): only its principal is gone,
    # and its account is still known for the audit record of a refused request.
    assert b.credentials.session(key_id) is not None
    assert b.credentials.account_of(key_id) == DEV_ACCOUNT


def test_an_access_key_created_in_one_worker_is_known_at_once_in_another(
    deployment: Deployment, second: Deployment
) -> None:
    a, b = deployment, second
    iam = IdentityService(a.store, a.barrier, a.clock, a.credentials)
    iam.create_user(SM, {"UserName": "dave"})
    with a.store.write() as conn:
        key_id, _ = a.credentials.create_access_key(
            conn, DEV_ACCOUNT, f"arn:aws:iam::{DEV_ACCOUNT}:user/dave", "AKIAEXAMPLEDAVE00001"
        )
    # A lookup that found nothing (a typo, a probe) is cached as None...
    assert b.credentials.lookup("AKIAEXAMPLEDAVE00002") is None
    assert b.credentials.lookup(key_id) is not None
    with a.store.write() as conn:
        a.credentials.create_access_key(
            conn, DEV_ACCOUNT, f"arn:aws:iam::{DEV_ACCOUNT}:user/dave", "AKIAEXAMPLEDAVE00002"
        )
    # ...and forgotten when a key is created.
    assert b.credentials.lookup("AKIAEXAMPLEDAVE00002") is not None


def test_disabling_a_kms_key_in_one_worker_stops_decrypt_in_another(
    deployment: Deployment, second: Deployment
) -> None:
    a, b = deployment, second
    key_id = a.keys.create_key(KMS, {})["KeyMetadata"]["KeyId"]
    blob = a.keys.encrypt(KMS, {"KeyId": key_id, "Plaintext": b"hello"})["CiphertextBlob"]
    for _ in range(2):
        assert b.keys.decrypt(KMS, {"CiphertextBlob": blob})["Plaintext"] == b"hello"
    a.keys.disable_key(KMS, {"KeyId": key_id})
    with pytest.raises(ServiceError) as info:
        b.keys.decrypt(KMS, {"CiphertextBlob": blob})
    assert info.value.code == "DisabledException"
    a.keys.enable_key(KMS, {"KeyId": key_id})
    assert b.keys.decrypt(KMS, {"CiphertextBlob": blob})["Plaintext"] == b"hello"


def test_a_rotated_kms_key_in_one_worker_encrypts_under_the_new_material_in_another(
    deployment: Deployment, second: Deployment
) -> None:
    a, b = deployment, second
    key_id = a.keys.create_key(KMS, {})["KeyMetadata"]["KeyId"]
    b.keys.encrypt(KMS, {"KeyId": key_id, "Plaintext": b"x"})  # caches the current material
    before = b.keys.describe_key(KMS, {"KeyId": key_id})["KeyMetadata"]["CurrentKeyMaterialId"]
    a.keys.rotate_key_on_demand(KMS, {"KeyId": key_id})
    after = a.keys.describe_key(KMS, {"KeyId": key_id})["KeyMetadata"]["CurrentKeyMaterialId"]
    assert after != before
    blob = b.keys.encrypt(KMS, {"KeyId": key_id, "Plaintext": b"y"})["CiphertextBlob"]
    decrypted = a.keys.decrypt(KMS, {"CiphertextBlob": blob})
    assert decrypted["Plaintext"] == b"y"
    assert decrypted["KeyMaterialId"] == after


def test_through_the_pipelines_of_two_workers(
    deployment: Deployment, second: Deployment, clock: ManualClock
) -> None:
    """Signed requests, each its own unit of work: the path a real request takes."""
    with signing_at(clock):
        sm_a = client(deployment, "secretsmanager")
        sm_b = client(second, "secretsmanager")
        iam_a = client(deployment, "iam")
        sm_a.create_secret(Name="piped", SecretString="v0")
        for step in range(1, 5):
            assert sm_b.get_secret_value(SecretId="piped")["SecretString"] == f"v{step - 1}"
            sm_a.put_secret_value(SecretId="piped", SecretString=f"v{step}")
            assert sm_b.get_secret_value(SecretId="piped")["SecretString"] == f"v{step}"

        iam_a.create_user(UserName="erin")
        iam_a.attach_user_policy(
            UserName="erin", PolicyArn="arn:aws:iam::aws:policy/SecretsManagerReadWrite"
        )
        key = iam_a.create_access_key(UserName="erin")["AccessKey"]
        erin_b = client(
            second, "secretsmanager", key=key["AccessKeyId"], secret=key["SecretAccessKey"]
        )
        assert erin_b.get_secret_value(SecretId="piped")["SecretString"] == "v4"
        iam_a.update_access_key(UserName="erin", AccessKeyId=key["AccessKeyId"], Status="Inactive")
        with pytest.raises(erin_b.exceptions.ClientError) as info:
            erin_b.get_secret_value(SecretId="piped")
        assert info.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_per_snapshot_loads_once_per_snapshot_and_every_time_elsewhere(store: Store) -> None:
    loads: list[int] = []

    def load() -> int:
        loads.append(1)
        return len(loads)

    with store.read() as conn:
        assert per_snapshot(conn, ("t", 1), load) == 1
        assert per_snapshot(conn, ("t", 1), load) == 1
        assert per_snapshot(conn, ("t", 2), load) == 2
    with store.read() as conn:  # a new snapshot asks again
        assert per_snapshot(conn, ("t", 1), load) == 3
    with store.write() as conn:  # a writer always does
        assert per_snapshot(conn, ("t", 1), load) == 4
        assert per_snapshot(conn, ("t", 1), load) == 5


# 10. Row by row: writes that declare the rows they change ----------------------------------

# Filed under the account id as a number: the row key of these tests' declared writes.
ACCOUNT_ROWS = Namespace("test-account-rows", ("accounts",), row=lambda key, _value: int(key))


def read_account_row(store: Store, account_id: str, loads: Loads) -> str | None:
    with store.read() as conn:
        return cached(conn, ACCOUNT_ROWS, account_id, loads.account(conn, account_id))


def rename(store: Store, account_id: str, name: str, *, declare: bool = True) -> None:
    with store.write() as conn:
        if declare:
            rows_changed(conn, "accounts", int(account_id))
        conn.execute(update(accounts).where(accounts.c.account_id == account_id).values(name=name))


def logged(path: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(path) as db:
        return list(db.execute("SELECT table_name, row_key FROM row_changes ORDER BY seq"))


@pytest.fixture
def two_accounts(store: Store) -> tuple[str, str]:
    add_account(store, "111111111111", "one")
    add_account(store, "222222222222", "two")
    return "111111111111", "222222222222"


def test_a_declared_write_drops_only_its_rows_entries_in_another_worker(
    store: Store, other: Store, two_accounts: tuple[str, str]
) -> None:
    one, two = two_accounts
    loads = Loads()
    assert read_account_row(other, one, loads) == "one"
    assert read_account_row(other, two, loads) == "two"
    rename(store, one, "uno")
    assert read_account_row(other, two, loads) == "two"  # still cached
    assert loads.keys == [one, two]
    assert read_account_row(other, one, loads) == "uno"  # dropped, read again
    assert loads.keys == [one, two, one]
    assert read_account_row(other, one, loads) == "uno"
    assert loads.keys == [one, two, one]


def test_a_declared_write_logs_its_rows_instead_of_moving_the_table_counter(
    store: Store, db: Path, two_accounts: tuple[str, str]
) -> None:
    one, _ = two_accounts
    before = counters(db)
    rename(store, one, "uno")
    after = counters(db)
    assert after["accounts"] == before["accounts"]
    assert logged(db) == [("accounts", int(one))]
    assert after["row_changes"] == before.get("row_changes", 0) + 1


def test_a_namespace_without_a_row_key_is_dropped_whole_by_a_declared_write(
    store: Store, other: Store, two_accounts: tuple[str, str]
) -> None:
    one, two = two_accounts
    loads = Loads()
    assert read_account(other, two, loads) == "two"
    rename(store, one, "uno")
    assert read_account(other, two, loads) == "two"
    assert loads.keys == [two, two]


@pytest.mark.parametrize("undeclared", ["no declaration", "one of two statements"])
def test_an_undeclared_write_drops_the_table_whole(
    store: Store, other: Store, db: Path, two_accounts: tuple[str, str], undeclared: str
) -> None:
    one, two = two_accounts
    loads = Loads()
    assert read_account_row(other, two, loads) == "two"
    before = counters(db)
    with store.write() as conn:
        rows_changed(conn, "accounts", int(one))
        conn.execute(update(accounts).where(accounts.c.account_id == one).values(name="uno"))
        if undeclared == "one of two statements":
            # Declared for the first statement only: the second changes another row.
            conn.execute(update(accounts).where(accounts.c.account_id == two).values(name="dos"))
    if undeclared == "no declaration":
        rename(store, two, "dos", declare=False)
    assert counters(db)["accounts"] == before["accounts"] + 1
    assert read_account_row(other, two, loads) == "dos"
    assert loads.keys == [two, two]


def test_a_declaration_covers_only_a_write_to_its_own_table(
    store: Store, other: Store, db: Path
) -> None:
    put_setting(store, "a", b"old")
    loads = Loads()
    assert read_setting(other, "a", loads) == b"old"
    before = counters(db)
    with store.write() as conn:
        rows_changed(conn, "accounts", 1)
        conn.execute(update(settings).where(settings.c.name == "a").values(value=b"new"))
    assert counters(db)["settings"] == before["settings"] + 1
    assert read_setting(other, "a", loads) == b"new"


def test_a_rolled_back_declared_write_logs_nothing(
    store: Store, db: Path, two_accounts: tuple[str, str]
) -> None:
    one, _ = two_accounts
    with pytest.raises(RuntimeError), store.write() as conn:
        rows_changed(conn, "accounts", int(one))
        conn.execute(update(accounts).where(accounts.c.account_id == one).values(name="uno"))
        raise RuntimeError("changed its mind")
    assert logged(db) == []
    rename(store, one, "uno", declare=False)  # nothing of the rollback is left pending
    assert logged(db) == []


def test_a_worker_that_fell_behind_the_pruned_log_drops_everything(
    store: Store, other: Store, db: Path, two_accounts: tuple[str, str], monkeypatch: Any
) -> None:
    monkeypatch.setattr(cache_module, "ROW_LOG_KEEP", 2)
    one, two = two_accounts
    loads = Loads()
    assert read_account_row(other, two, loads) == "two"
    for number in range(5):  # while worker B reads nothing
        rename(store, one, f"name {number}")
    assert len(logged(db)) == 2  # the oldest entries are gone
    assert read_account_row(other, two, loads) == "two"
    assert loads.keys == [two, two]  # B could not tell which rows changed
    rename(store, one, "again")
    assert read_account_row(other, two, loads) == "two"
    assert loads.keys == [two, two]  # caught up: row by row again


def test_a_reader_older_than_a_row_drop_does_not_cache_that_row(
    store: Store, other: Store, two_accounts: tuple[str, str]
) -> None:
    one, two = two_accounts
    three = "333333333333"
    add_account(store, three, "three")
    loads = Loads()
    assert read_account_row(other, two, loads) == "two"
    with other.read() as slow:
        assert account_name(slow, two) == "two"  # its snapshot begins here
        rename(store, one, "uno")  # worker A commits
        elsewhere(read_account_row, other, two, Loads())  # another request refreshes B
        # The slow request's loads complete: from its snapshot, the old name...
        assert cached(slow, ACCOUNT_ROWS, one, loads.account(slow, one)) == "one"
        # ...and a row nobody changed, which is kept as usual.
        assert cached(slow, ACCOUNT_ROWS, three, loads.account(slow, three)) == "three"
    assert read_account_row(other, one, loads) == "uno"  # a miss: "one" was not kept
    assert read_account_row(other, three, loads) == "three"  # a hit
    assert loads.keys == [two, one, three, one]


def test_put_secret_value_in_one_worker_keeps_other_secrets_cached_in_another(
    deployment: Deployment, second: Deployment, clock: ManualClock
) -> None:
    a, b = deployment, second
    for name in ("app/one", "app/two"):
        a.secrets.create_secret(
            SM, {"Name": name, "SecretString": "v1", "ClientRequestToken": str(uuid.uuid4())}
        )
        assert get_value(b, name)["SecretString"] == "v1"  # LastAccessedDate written
        assert get_value(b, name)["SecretString"] == "v1"  # cached in B
    cache = cache_of(b.store)
    a.secrets.put_secret_value(
        SM, {"SecretId": "app/one", "SecretString": "v2", "ClientRequestToken": str(uuid.uuid4())}
    )
    misses = cache.misses
    assert get_value(b, "app/two")["SecretString"] == "v1"
    assert cache.misses == misses  # all from the cache
    assert get_value(b, "app/one")["SecretString"] == "v2"
    assert cache.misses > misses
    # The next day's first read of app/one records its LastAccessedDate: a write, which
    # costs app/two nothing either.
    clock.advance(timedelta(days=1))
    assert get_value(a, "app/one")["SecretString"] == "v2"
    misses = cache.misses
    assert get_value(b, "app/one")["SecretString"] == "v2"
    described = b.secrets.describe_secret(SM, {"SecretId": "app/one"})
    assert described["LastAccessedDate"] == datetime.fromtimestamp(
        midnight_ms(clock.now()) / 1000, UTC
    )
    assert cache.misses > misses  # app/one was read again...
    misses = cache.misses
    with b.store.read() as conn:
        record = repo.find_by_name(conn, DEV_ACCOUNT, REGION, "app/two")
    assert record is not None and cache.misses == misses  # ...app/two was not
