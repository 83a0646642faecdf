"""The console's sign-in throttle (console/auth.py ``Throttle``) over the store it shares
with every worker (server/sign_in_failures.py, table ``sign_in_failures``): the limits per
user and per address, the window's boundaries, success, attempts in flight, a spray of
names, several processes' stores on one database, and migration 0016."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, select

from strongroom.clock import to_ms
from strongroom.console.auth import MAX_ADDRESS_FAILURES, MAX_FAILURES, THROTTLE_WINDOW, Throttle
from strongroom.console.backend import SignInAttempt
from strongroom.protocol.pagination import TokenCodec
from strongroom.server.sign_in_failures import SignInFailures
from strongroom.store import schema
from strongroom.store.engine import MIGRATIONS, Store

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
BOB = ["user:111122223333:bob", "ip:10.0.0.1"]


@pytest.fixture
def database(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'strongroom.db'}"


@pytest.fixture
def store(database: str) -> Iterator[Store]:
    opened = Store(database)
    opened.migrate()
    yield opened
    opened.dispose()


CODEC = TokenCodec(b"k" * 32)  # the deployment's MAC key, as every worker has it


def throttle_of(store: Store) -> Throttle:
    return Throttle(SignInFailures(store, CODEC))


def attempt(throttle: Throttle, keys: list[str], at: datetime) -> SignInAttempt | None:
    return asyncio.run(throttle.attempt(keys, at))


def fail(throttle: Throttle, keys: list[str], at: datetime) -> None:
    """An attempt let through whose password was wrong: it stays counted."""
    assert attempt(throttle, keys, at) is not None


def succeed(throttle: Throttle, keys: list[str], at: datetime) -> None:
    let_through = attempt(throttle, keys, at)
    assert let_through is not None
    asyncio.run(throttle.succeeded(let_through, clear=keys[0]))


def test_a_user_is_refused_after_max_failures_until_the_window_has_passed(store: Store) -> None:
    throttle = throttle_of(store)
    for i in range(MAX_FAILURES):
        fail(throttle, BOB, NOW + timedelta(seconds=i))
    assert attempt(throttle, BOB, NOW + timedelta(minutes=1)) is None
    # The address is not throttled: another user from it is let through.
    assert attempt(throttle, ["user:111122223333:alice", BOB[1]], NOW) is not None
    # A refused attempt adds no failure: still exactly MAX_FAILURES for bob.
    failures = SignInFailures(store, CODEC)
    assert failures.count(BOB[0], to_ms(NOW - THROTTLE_WINDOW)) == MAX_FAILURES
    # The window: the first failure (at NOW) counts up to NOW + THROTTLE_WINDOW inclusive...
    assert attempt(throttle, BOB, NOW + THROTTLE_WINDOW) is None
    # ... and one millisecond later it is forgotten: one attempt more is let through.
    later = NOW + THROTTLE_WINDOW + timedelta(milliseconds=1)
    fail(throttle, BOB, later)
    assert attempt(throttle, BOB, later) is None  # and counted: five again
    # The second failure (NOW + 1 s) still counts at NOW + 1 s + THROTTLE_WINDOW, not after.
    assert attempt(throttle, BOB, NOW + THROTTLE_WINDOW + timedelta(seconds=1)) is None
    fail(throttle, BOB, NOW + THROTTLE_WINDOW + timedelta(seconds=1, milliseconds=1))


def test_user_names_are_one_key_per_account(store: Store) -> None:
    throttle = throttle_of(store)
    for i in range(MAX_FAILURES):
        fail(throttle, ["user:111122223333:bob", f"ip:10.0.1.{i}"], NOW)
    assert attempt(throttle, ["user:111122223333:bob", "ip:10.0.2.1"], NOW) is None
    assert attempt(throttle, ["user:444455556666:bob", "ip:10.0.2.1"], NOW) is not None


def test_an_address_is_refused_after_max_address_failures(store: Store) -> None:
    throttle = throttle_of(store)
    for i in range(MAX_ADDRESS_FAILURES):
        fail(throttle, [f"user:111122223333:u{i}", "ip:10.9.9.9"], NOW)
    assert attempt(throttle, ["user:111122223333:new", "ip:10.9.9.9"], NOW) is None
    # The user it was refused for has no failure of its own, from another address.
    assert attempt(throttle, ["user:111122223333:new", "ip:10.9.9.8"], NOW) is not None
    assert attempt(throttle, ["key:AKIAEXAMPLE", "ip:10.9.9.9"], NOW) is None
    assert (
        attempt(throttle, ["user:111122223333:new", "ip:10.9.9.9"], NOW + THROTTLE_WINDOW) is None
    )
    assert (
        attempt(
            throttle,
            ["user:111122223333:new", "ip:10.9.9.9"],
            NOW + THROTTLE_WINDOW + timedelta(milliseconds=1),
        )
        is not None
    )


def test_a_success_clears_the_users_failures_and_is_not_counted(store: Store) -> None:
    throttle = throttle_of(store)
    for _ in range(MAX_FAILURES - 1):
        fail(throttle, BOB, NOW)
    succeed(throttle, BOB, NOW)
    failures = SignInFailures(store, CODEC)
    since = to_ms(NOW - THROTTLE_WINDOW)
    assert failures.count(BOB[0], since) == 0
    # The address keeps its failures (other users' sign-ins), less the successful attempt.
    assert failures.count(BOB[1], since) == MAX_FAILURES - 1
    for _ in range(MAX_FAILURES - 1):
        fail(throttle, BOB, NOW)
    assert attempt(throttle, BOB, NOW) is not None


def test_a_success_without_clearing_only_releases_the_attempt(store: Store) -> None:
    throttle = throttle_of(store)
    keys = ["key:AKIAEXAMPLE", "ip:10.0.0.1"]
    fail(throttle, keys, NOW)
    let_through = attempt(throttle, keys, NOW)
    assert let_through is not None
    asyncio.run(throttle.succeeded(let_through))
    assert SignInFailures(store, CODEC).count(keys[0], to_ms(NOW - THROTTLE_WINDOW)) == 1


def test_attempts_in_flight_count_as_failures(store: Store) -> None:
    """Attempts made at once (each still checking its password) are counted: the sixth is
    refused before any of the five has failed."""
    throttle = throttle_of(store)
    in_flight = [attempt(throttle, BOB, NOW) for _ in range(MAX_FAILURES)]
    assert all(a is not None for a in in_flight)
    assert attempt(throttle, BOB, NOW) is None


def test_concurrent_attempts_on_many_threads_let_through_at_most_the_limit(store: Store) -> None:
    throttle = throttle_of(store)

    async def burst() -> list[SignInAttempt | None]:
        return await asyncio.gather(*(throttle.attempt(BOB, NOW) for _ in range(20)))

    outcomes = asyncio.run(burst())
    assert sum(a is not None for a in outcomes) == MAX_FAILURES


def test_a_spray_of_names_does_not_clear_another_keys_failures(store: Store) -> None:
    """The old throttle cleared its whole table once it held 100,000 keys: a spray of names
    wiped the failures recorded against the user it targeted. Rows go by age only."""
    throttle = throttle_of(store)
    for _ in range(MAX_FAILURES - 1):
        fail(throttle, ["user:111122223333:victim", "ip:10.0.0.1"], NOW)
    sprayed = 400
    for i in range(sprayed):
        fail(throttle, [f"user:111122223333:spray{i}", f"ip:10.1.{i // 100}.{i % 100}"], NOW)
    failures = SignInFailures(store, CODEC)
    assert failures.rows() == 2 * (MAX_FAILURES - 1) + 2 * sprayed
    fail(throttle, ["user:111122223333:victim", "ip:10.0.0.2"], NOW + timedelta(minutes=1))
    assert attempt(throttle, ["user:111122223333:victim", "ip:10.0.0.3"], NOW) is None
    # Once the window has passed, an attempt prunes every key's old rows.
    fail(throttle, BOB, NOW + THROTTLE_WINDOW + timedelta(seconds=1))
    assert failures.rows() == 2 + 2  # the victim's last failure (and its address), and bob's


def test_workers_count_together_and_a_restart_forgets_nothing(database: str) -> None:
    """Two stores on one database (two worker processes): failures recorded through
    either count for both, and a store opened afterwards (a restart) still has them."""
    first, second = Store(database), Store(database)
    first.migrate()
    second.migrate()
    try:
        for i in range(MAX_FAILURES):
            fail(throttle_of(first if i % 2 else second), BOB, NOW)
        assert attempt(throttle_of(first), BOB, NOW) is None
        assert attempt(throttle_of(second), BOB, NOW) is None
    finally:
        first.dispose()
        second.dispose()
    restarted = Store(database)
    restarted.migrate()
    try:
        assert attempt(throttle_of(restarted), BOB, NOW + timedelta(minutes=14)) is None
    finally:
        restarted.dispose()


def test_only_digests_of_the_keys_are_stored(store: Store) -> None:
    typed = "user:111122223333:Corr3ct-Horse-Battery!"  # a password typed as the user name
    fail(throttle_of(store), [typed, "ip:10.0.0.1"], NOW)
    with store.read() as conn:
        rows = conn.execute(select(schema.sign_in_failures)).all()
    failures = SignInFailures(store, CODEC)
    assert {row.key_digest for row in rows} == {
        failures.key_digest(typed),
        failures.key_digest("ip:10.0.0.1"),
    }
    assert all("Horse" not in str(tuple(row)) for row in rows)
    # Keyed: a guess of what was typed cannot be tested without the deployment's key.
    assert hashlib.sha256(typed.encode()).hexdigest() not in {row.key_digest for row in rows}
    other = SignInFailures(store, TokenCodec(b"o" * 32))
    assert other.key_digest(typed) != failures.key_digest(typed)


def test_migration_0016_creates_the_table_as_the_schema_has_it_and_drops_it(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'old.db'}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        with store.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0015_async_invocations")
        assert "sign_in_failures" not in inspect(store.engine).get_table_names()
        store.migrate()
        found = inspect(store.engine)
        dialect = store.engine.dialect
        columns = {
            c["name"]: (str(c["type"]), c["nullable"])
            for c in found.get_columns("sign_in_failures")
        }
        declared = {
            c.name: (str(c.type.compile(dialect)), c.nullable)
            for c in schema.sign_in_failures.columns
        }
        assert columns == declared
        indexes = {i["name"]: i["column_names"] for i in found.get_indexes("sign_in_failures")}
        assert indexes == {
            i.name: [c.name for c in i.columns] for i in schema.sign_in_failures.indexes
        }
        with store.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0015_async_invocations")
        assert "sign_in_failures" not in inspect(store.engine).get_table_names()
    finally:
        store.dispose()
