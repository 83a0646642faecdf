"""A worker's startup transactions, tried again when SQLite answers "locking protocol".

Several workers open the database at once when a server starts (and after every seal).
In WAL mode SQLite gives up with SQLITE_PROTOCOL when it cannot get a consistent view of
the WAL index after about a hundred tries (some ten seconds of a lock held elsewhere): a
transient answer, which the whole start should not die of. A startup step that gets it
is run again after a short backoff, a bounded number of times, each retry logged; any
other error, or the last attempt's, goes to the caller. The steps are idempotent (the
migration, reading the token key, creating the signing key once, registering a writer),
and a failed attempt's transaction was rolled back.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger("strongroom.server")

T = TypeVar("T")

ATTEMPTS = 5
FIRST_DELAY = 0.05  # seconds, doubled after each attempt: at most 0.75 s of waiting in all


def is_locking_protocol(error: BaseException) -> bool:
    """SQLite's SQLITE_PROTOCOL, as the driver raises it or wrapped by SQLAlchemy."""
    cause = getattr(error, "orig", None) or error
    return (
        isinstance(cause, sqlite3.Error)
        and getattr(cause, "sqlite_errorcode", None) == sqlite3.SQLITE_PROTOCOL
    )


def retry_locking_protocol(
    step: Callable[[], T],
    what: str,
    *,
    attempts: int = ATTEMPTS,
    delay: float = FIRST_DELAY,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``step()``, again after ``delay`` (doubling) while it fails with SQLITE_PROTOCOL,
    at most ``attempts`` times in all."""
    for attempt in range(1, attempts):
        try:
            return step()
        except Exception as problem:
            if not is_locking_protocol(problem):
                raise
            log.warning(
                "%s: SQLite answered 'locking protocol' (attempt %d of %d); again in %.2f s",
                what,
                attempt,
                attempts,
                delay,
            )
        sleep(delay)
        delay *= 2
    return step()  # the last attempt: its error is the caller's
