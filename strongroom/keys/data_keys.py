"""The per-process cache of unwrapped data keys of sealed secret values."""

from __future__ import annotations

import threading

DATA_KEY_LIMIT = 32_768  # unwrapped data keys remembered per process (DataKeys), ~500 B each


class DataKeys:
    """Unwrapped data keys of sealed values, by (wrapped key, encryption context), bounded
    (the oldest go first).

    Unwrapping is a pure function of the key material (immutable per generation), the
    wrapped blob and its context, so a remembered answer never goes stale; whether the
    key may be used (it exists, is enabled, the caller may use it) is still decided on
    every open. The memory holds nothing the process did not already hold: the key
    material that unwraps every one of them is cached too.

    The 32 key bytes are kept, not a cipher object: the smallest thing to keep, and
    making the cipher again costs about a microsecond."""

    def __init__(self, limit: int = DATA_KEY_LIMIT) -> None:
        self._limit = limit
        self._keys: dict[tuple[bytes, bytes], bytes] = {}
        self._lock = threading.Lock()

    def get(self, wrapped: bytes, context: bytes) -> bytes | None:
        return self._keys.get((wrapped, context))

    def put(self, wrapped: bytes, context: bytes, data_key: bytes) -> None:
        with self._lock:
            if len(self._keys) >= self._limit:
                del self._keys[next(iter(self._keys))]
            self._keys[wrapped, context] = data_key

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"DataKeys(size={len(self)}, limit={self._limit})"
