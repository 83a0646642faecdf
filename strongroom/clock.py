"""Injectable time: every schedule, window and expiry reads the clock through here, so
tests move time instead of sleeping."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol, overload


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._now += delta


class FileClock:
    """Test-only: a clock that stands at the time written in ``path`` (Unix milliseconds),
    so tests move the time of server processes (every worker reads the same file) without
    sleeping. Only a ``--dev`` server takes one (``server/app.py``, ``STRONGROOM_TEST_CLOCK``).

    Clients and rotation functions sign requests at the real time, so signatures are
    checked against it (:func:`signing_time`); everything else reads this clock."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def now(self) -> datetime:
        return datetime.fromtimestamp(int(self.path.read_text().strip()) / 1000, UTC)


def signing_time(clock: Clock) -> datetime:
    """The time a request's SigV4 date is checked against: the clock's, except under a
    test :class:`FileClock`, where signers (tests, functions) sign at the real time."""
    return datetime.now(UTC) if isinstance(clock, FileClock) else clock.now()


DAY_MS = 86_400_000


def midnight_ms(moment: datetime) -> int:
    """AWS reports LastAccessedDate at date resolution: midnight UTC of the access day, in
    Unix milliseconds (Unix time has no leap seconds: a UTC day is a whole number of them)."""
    return to_ms(moment) // DAY_MS * DAY_MS


# Stored times are Unix milliseconds (integers, exact, comparable in SQL); these are the
# one conversion each way.


def to_ms(moment: datetime) -> int:
    """``moment`` as Unix milliseconds."""
    return int(moment.timestamp() * 1000)


@overload
def from_ms(ms: int) -> datetime: ...
@overload
def from_ms(ms: None) -> None: ...
@overload
def from_ms(ms: int | None) -> datetime | None: ...
def from_ms(ms: int | None) -> datetime | None:
    """Unix milliseconds as an aware UTC datetime (None stays None: an unset column)."""
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def now_ms(clock: Clock) -> int:
    """The clock's time in Unix milliseconds."""
    return to_ms(clock.now())
