"""The console's failed sign-ins in the store (table ``sign_in_failures``), so that every
worker of every node counts them together and a restart (or a worker replaced after a
seal) forgets none: the storage behind the console's throttle (``console/auth.py``
``Throttle``, which decides the keys and their limits).

An attempt is let through, or refused, in one write transaction: old failures are pruned
(older than the window: by age only, never to make room, so no spray of other keys wipes
a key's recent failures), the key's failures within the window counted, and the attempt
recorded as a failure of each key before its password is checked. Attempts made at once,
on any worker, are therefore counted together; one that succeeds is released
(:meth:`SignInFailures.end`). What bounds the table is the window and the throttle's
own limits: each source address records at most its limit of failures per window.

Only a keyed digest of each key (the deployment's MAC key: ``TokenCodec.fingerprint``) and
the time are stored: never a password, and never the user name as typed (it may be a
mistyped password; the audit record hides an unknown user's name too). Keyed, so that a
copy of the database does not let anyone test guesses of what was typed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from anyio import to_thread
from sqlalchemy import ColumnElement, Connection, delete, func, insert, select, text

from strongroom.clock import to_ms
from strongroom.console.backend import SignInAttempt
from strongroom.protocol.pagination import TokenCodec
from strongroom.store import schema
from strongroom.store.engine import Store

_TABLE = schema.sign_in_failures


_SCOPE = "console sign-in failures"


class SignInFailures:
    """:class:`strongroom.console.backend.SignInFailures` over a deployment's store, its keys
    digested under the deployment's MAC key (``codec``)."""

    def __init__(self, store: Store, codec: TokenCodec) -> None:
        self._store = store
        self._codec = codec

    def key_digest(self, key: str) -> str:
        """What the store keeps of a throttle key."""
        return self._codec.fingerprint(_SCOPE, key)

    async def begin_sign_in(
        self, limits: Mapping[str, int], now: datetime, window: timedelta
    ) -> SignInAttempt | None:
        now_ms, since_ms = to_ms(now), to_ms(now - window)
        digests = {self.key_digest(key): limit for key, limit in limits.items()}
        return await to_thread.run_sync(self.begin, digests, now_ms, since_ms)

    async def end_sign_in(self, attempt: SignInAttempt, clear: str | None) -> None:
        digest = self.key_digest(clear) if clear is not None else None
        await to_thread.run_sync(self.end, attempt, digest)

    def begin(self, limits: Mapping[str, int], now_ms: int, since_ms: int) -> SignInAttempt | None:
        """``limits``: the limit of each key digest; failures at ``since_ms`` or later count."""
        with self._store.write() as conn:
            _serialize(conn, sorted(limits))
            conn.execute(delete(_TABLE).where(_TABLE.c.failed_ms < since_ms))
            counted = conn.execute(
                select(_TABLE.c.key_digest, func.count())
                .where(_TABLE.c.key_digest.in_(list(limits)))
                .group_by(_TABLE.c.key_digest)
            ).all()
            counts: dict[str, int] = {str(digest): int(n) for digest, n in counted}
            if any(counts.get(digest, 0) >= limit for digest, limit in limits.items()):
                return None
            added: list[int] = []
            for digest in limits:
                inserted = conn.execute(insert(_TABLE).values(key_digest=digest, failed_ms=now_ms))
                key = inserted.inserted_primary_key
                assert key is not None
                added.append(int(key[0]))
        return SignInAttempt(tuple(added))

    def end(self, attempt: SignInAttempt, clear: str | None) -> None:
        """Release ``attempt`` and forget the failures of the key digest ``clear``."""
        condition: ColumnElement[bool] = _TABLE.c.id.in_(attempt.failures)
        if clear is not None:
            condition = condition | (_TABLE.c.key_digest == clear)
        with self._store.write() as conn:
            conn.execute(delete(_TABLE).where(condition))

    def count(self, key: str, since_ms: int) -> int:
        """The failures of ``key`` at ``since_ms`` or later (for tests and operators)."""
        with self._store.read() as conn:
            found = conn.execute(
                select(func.count())
                .select_from(_TABLE)
                .where(_TABLE.c.key_digest == self.key_digest(key), _TABLE.c.failed_ms >= since_ms)
            ).scalar_one()
        return int(found)

    def rows(self) -> int:
        with self._store.read() as conn:
            return int(conn.execute(select(func.count()).select_from(_TABLE)).scalar_one())


def _serialize(conn: Connection, digests: list[str]) -> None:
    """Attempts on the same keys take turns: SQLite's write transaction holds the database's
    write lock already; PostgreSQL takes a transaction advisory lock per key (in one order,
    so two attempts never wait on each other crosswise)."""
    if conn.dialect.name == "sqlite":
        return
    for digest in digests:
        lock = int.from_bytes(bytes.fromhex(digest)[:8], "big", signed=True)
        conn.execute(text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": lock})
