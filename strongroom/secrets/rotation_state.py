"""Rows of ``secret_rotations``: the only module that touches that table.

One row per secret whose rotation is turned on. ``scheduled``: the next attempt may start
at ``due_ms``. ``running``: a worker claimed it (``claim_id``) until ``lease_until_ms``;
a claim whose lease ran out was abandoned and another worker may take it over. The
``claim_id`` is the digest of the claim's RotationToken, never the token itself
(:func:`strongroom.secrets.rotation.token_digest`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from strongroom.store import leases
from strongroom.store.schema import secret_rotations

SCHEDULED = "scheduled"
RUNNING = leases.RUNNING
TEST = "test"


@dataclass
class RotationRow:
    secret_id: int
    state: str
    token: str | None
    due_ms: int | None
    window_end_ms: int | None
    step: str | None
    attempt: int
    claim_id: str | None
    lease_until_ms: int | None
    last_error: str | None
    kind: str | None = None  # TEST, or None for a rotation


_FIELDS = [f.name for f in fields(RotationRow)]


def _row(found: Any) -> RotationRow:
    return RotationRow(**{name: found[name] for name in _FIELDS})


def get(conn: Connection, secret_id: int) -> RotationRow | None:
    found = conn.execute(
        select(secret_rotations).where(secret_rotations.c.secret_id == secret_id)
    ).first()
    return _row(found._mapping) if found is not None else None


def put(conn: Connection, row: RotationRow) -> None:
    """Insert or replace the row of ``row.secret_id``."""
    values = {name: getattr(row, name) for name in _FIELDS}
    done = conn.execute(
        update(secret_rotations)
        .where(secret_rotations.c.secret_id == row.secret_id)
        .values(**{k: v for k, v in values.items() if k != "secret_id"})
    )
    if done.rowcount == 0:
        conn.execute(insert(secret_rotations).values(**values))


def remove(conn: Connection, secret_id: int) -> None:
    conn.execute(delete(secret_rotations).where(secret_rotations.c.secret_id == secret_id))


def any_due(conn: Connection, now_ms: int) -> bool:
    """Whether a claim would find anything: a cheap read before taking the write lock."""
    return leases.any_due(conn, secret_rotations, SCHEDULED, now_ms)


def due(conn: Connection, now_ms: int, limit: int) -> list[RotationRow]:
    """Scheduled rows whose time has come and running rows whose lease ran out, locked for
    this transaction (:mod:`strongroom.store.leases`)."""
    return [
        _row(found._mapping)
        for found in leases.due(conn, secret_rotations, SCHEDULED, now_ms, limit)
    ]


def claimed(conn: Connection, secret_id: int, claim_id: str) -> RotationRow | None:
    """The row, if ``claim_id`` still holds it (a worker whose lease ran out lost it)."""
    query = select(secret_rotations).where(
        secret_rotations.c.secret_id == secret_id,
        secret_rotations.c.claim_id == claim_id,
        secret_rotations.c.state == RUNNING,
    )
    if conn.dialect.name != "sqlite":
        query = query.with_for_update()
    found = conn.execute(query).first()
    return _row(found._mapping) if found is not None else None
