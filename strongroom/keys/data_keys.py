"""The per-process cache of unwrapped data keys of sealed secret values."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from strongroom.clock import Clock, SystemClock, now_ms

DATA_KEY_LIMIT = 32_768  # unwrapped data keys remembered per process (DataKeys), ~500 B each
DATA_KEY_TTL_MS = 5 * 60_000  # ... each for at most five minutes after it was unwrapped


class DataKeys:
    """Unwrapped data keys of sealed values, by (wrapped key, encryption context), bounded
    in number (the oldest go first) and in time (each is forgotten ``ttl_ms`` after it
    was unwrapped, so a key that is no longer read does not stay in memory).

    Unwrapping is a pure function of the key material (immutable per generation), the
    wrapped blob and its context, so a remembered answer never goes stale; whether the
    key may be used (it exists, is enabled, the caller may use it) is still decided on
    every open. The memory holds nothing the process did not already hold: the key
    material that unwraps every one of them is cached too.

    The 32 key bytes are kept, not a cipher object: the smallest thing to keep, and
    making the cipher again costs about a microsecond."""

    def __init__(
        self,
        limit: int = DATA_KEY_LIMIT,
        *,
        clock: Clock | None = None,
        ttl_ms: int = DATA_KEY_TTL_MS,
    ) -> None:
        self._limit = limit
        self._ttl_ms = ttl_ms
        # Read on every get: the system clock's milliseconds straight from time.time(),
        # not through a datetime (same reading, a fraction of the cost).
        self._now_ms: Callable[[], int] | None = (
            None
            if clock is None
            else _system_ms
            if isinstance(clock, SystemClock)
            else lambda: now_ms(clock)
        )
        self._keys: dict[tuple[bytes, bytes], tuple[bytes, int]] = {}
        self._lock = threading.Lock()

    def get(self, wrapped: bytes, context: bytes) -> bytes | None:
        found = self._keys.get((wrapped, context))
        if found is None:
            return None
        data_key, expires_ms = found
        clock_ms = self._now_ms
        if clock_ms is not None and clock_ms() >= expires_ms:
            with self._lock:
                self._keys.pop((wrapped, context), None)
            return None
        return data_key

    def put(self, wrapped: bytes, context: bytes, data_key: bytes) -> None:
        with self._lock:
            if len(self._keys) >= self._limit:
                del self._keys[next(iter(self._keys))]
            now = self._now_ms() if self._now_ms is not None else 0
            self._keys[wrapped, context] = (data_key, now + self._ttl_ms)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"DataKeys(size={len(self)}, limit={self._limit})"


def _system_ms() -> int:
    return int(time.time() * 1000)
