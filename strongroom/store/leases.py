"""Rows that workers claim under a lease: the shape the rotation schedule
(``secret_rotations``) and the asynchronous invocation queue (``lambda_event_queue``)
share. A row waits in its table's waiting state until ``due_ms``; a worker that claims it
sets it ``running`` with a ``claim_id`` until ``lease_until_ms``, renewing the lease while
it works; a claim whose lease ran out was abandoned (its worker died) and the next sweep
takes it over. A claim is one write transaction: SQLite's write lock, or PostgreSQL's
``FOR UPDATE SKIP LOCKED`` (rows another node is claiming are skipped), so however many
workers and nodes sweep, one holds each row.

What a claim writes (the claim id, the attempt, the lease) stays with each table's module:
only the question "which rows may be claimed now" is asked here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, Table, select

RUNNING = "running"


def _due(table: Table, waiting: str, now_ms: int) -> ColumnElement[bool]:
    c = table.c
    return ((c.state == waiting) & (c.due_ms <= now_ms)) | (
        (c.state == RUNNING) & (c.lease_until_ms <= now_ms)
    )


def any_due(conn: Connection, table: Table, waiting: str, now_ms: int) -> bool:
    """Whether a claim would find anything: a cheap read before taking the write lock."""
    key = table.primary_key.columns.values()[0]
    found = conn.execute(select(key).where(_due(table, waiting, now_ms)).limit(1)).first()
    return found is not None


def due(
    conn: Connection, table: Table, waiting: str, now_ms: int, limit: int
) -> Sequence[Row[Any]]:
    """Up to ``limit`` rows whose time has come (``waiting`` and past ``due_ms``) or whose
    lease ran out, oldest due first, locked for this write transaction."""
    query = select(table).where(_due(table, waiting, now_ms)).order_by(table.c.due_ms).limit(limit)
    if conn.dialect.name != "sqlite":
        query = query.with_for_update(skip_locked=True)
    return conn.execute(query).all()
