"""A worker's startup transactions are tried again, briefly and a bounded number of times,
when SQLite answers "locking protocol" (server/startup.py)."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from strongroom.server.startup import ATTEMPTS, is_locking_protocol, retry_locking_protocol
from strongroom.store.engine import Store

# Another process takes every WAL-index lock of the unix VFS (bytes 120-127 of the -shm
# file: write, checkpoint, recover, the five read marks) until told to let go.
HOLDER = """
import fcntl, os, struct, sys
fd = os.open(sys.argv[1], os.O_RDWR)
for offset in range(120, 128):
    fcntl.fcntl(fd, fcntl.F_SETLK, struct.pack("hhqqi", fcntl.F_WRLCK, 0, offset, 1, 0))
print("held", flush=True)
sys.stdin.readline()
"""


def sqlite_error(code: int, message: str) -> OperationalError:
    """An error as SQLAlchemy raises it for the driver's (which names SQLite's code)."""
    cause = sqlite3.OperationalError(message)
    cause.sqlite_errorcode = code  # type: ignore[attr-defined]
    return OperationalError("SELECT 1", {}, cause)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(f"sqlite:///{tmp_path / 'strongroom.db'}")
    opened.migrate()
    yield opened
    opened.dispose()


def test_a_real_locking_protocol_is_retried_then_the_transaction_succeeds(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """SQLite gives up on a WAL index it cannot lock after about ten seconds of tries."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "strongroom.db-shm")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdin is not None and holder.stdout is not None
    stdin = holder.stdin
    try:
        assert holder.stdout.readline() == "held\n"
        failures: list[BaseException] = []

        def migrate() -> str:
            try:
                store.migrate()
            except OperationalError as problem:
                failures.append(problem)
                raise
            return "migrated"

        def let_go(_delay: float) -> None:  # the backoff: the other process lets go
            stdin.write("\n")
            stdin.flush()
            holder.wait(timeout=30)

        with caplog.at_level(logging.WARNING, logger="strongroom.server"):
            assert retry_locking_protocol(migrate, "migrating", sleep=let_go) == "migrated"
    finally:
        holder.kill()
        holder.wait()
    (failure,) = failures
    assert is_locking_protocol(failure) and "locking protocol" in str(failure)
    assert [r.getMessage() for r in caplog.records] == [
        f"migrating: SQLite answered 'locking protocol' (attempt 1 of {ATTEMPTS}); again in 0.05 s"
    ]


def test_the_retries_are_bounded_and_back_off(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []
    slept: list[float] = []

    def step() -> None:
        calls.append(1)
        raise sqlite_error(sqlite3.SQLITE_PROTOCOL, "locking protocol")

    with (
        caplog.at_level(logging.WARNING, logger="strongroom.server"),
        pytest.raises(OperationalError, match="locking protocol"),
    ):
        retry_locking_protocol(step, "registering", sleep=slept.append)
    assert len(calls) == ATTEMPTS == 5
    assert slept == [0.05, 0.1, 0.2, 0.4]
    assert len(caplog.records) == ATTEMPTS - 1


def test_a_success_after_failures_returns_its_result() -> None:
    outcomes: list[Exception | str] = [
        sqlite_error(sqlite3.SQLITE_PROTOCOL, "locking protocol"),
        sqlite_error(sqlite3.SQLITE_PROTOCOL, "locking protocol"),
        "opened",
    ]
    slept: list[float] = []

    def step() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert retry_locking_protocol(step, "opening", sleep=slept.append) == "opened"
    assert slept == [0.05, 0.1]


@pytest.mark.parametrize(
    "error",
    [
        sqlite_error(sqlite3.SQLITE_BUSY, "database is locked"),
        sqlite_error(sqlite3.SQLITE_CORRUPT, "database disk image is malformed"),
        RuntimeError("could not register the audit writer"),
    ],
    ids=["busy", "corrupt", "other"],
)
def test_any_other_error_is_not_retried(error: Exception) -> None:
    slept: list[float] = []

    def step() -> None:
        raise error

    with pytest.raises(type(error)):
        retry_locking_protocol(step, "migrating", sleep=slept.append)
    assert slept == []
