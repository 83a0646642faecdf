"""The claim query the rotation schedule and the asynchronous invocation queue share
(strongroom/store/leases.py), and the event queue's use of it: which rows a sweep may
claim, in which order, and that an abandoned claim is taken over as an attempt made."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, create_engine, insert

from strongroom.functions import event_queue
from strongroom.store import leases
from strongroom.store.schema import metadata as schema

rows = Table(
    "rows",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("state", String(16), nullable=False),
    Column("due_ms", Integer, nullable=False),
    Column("lease_until_ms", Integer),
)


@pytest.fixture
def conn() -> Iterator[Connection]:
    engine = create_engine("sqlite://")
    rows.metadata.create_all(engine)
    schema.create_all(engine)
    with engine.begin() as connection:
        yield connection


def _put(conn: Connection, id_: int, state: str, due: int, lease: int | None = None) -> None:
    conn.execute(insert(rows).values(id=id_, state=state, due_ms=due, lease_until_ms=lease))


def test_due_rows_are_waiting_ones_past_their_time_and_running_ones_past_their_lease(
    conn: Connection,
) -> None:
    _put(conn, 1, "waiting", 100)
    _put(conn, 2, "waiting", 101)  # not yet
    _put(conn, 3, leases.RUNNING, 10, lease=100)  # abandoned at 100
    _put(conn, 4, leases.RUNNING, 5, lease=101)  # still held
    _put(conn, 5, "other", 0)  # another table state: never claimed
    assert [r.id for r in leases.due(conn, rows, "waiting", 100, 10)] == [3, 1]  # by due_ms
    assert leases.any_due(conn, rows, "waiting", 100)
    assert [r.id for r in leases.due(conn, rows, "waiting", 100, 1)] == [3]  # the limit
    assert not leases.any_due(conn, rows, "waiting", 99)
    assert leases.due(conn, rows, "waiting", 99, 10) == []
    assert [r.id for r in leases.due(conn, rows, "waiting", 101, 10)] == [4, 3, 1, 2]


def test_an_event_whose_worker_died_is_claimed_again_as_its_next_attempt(
    conn: Connection,
) -> None:
    first = event_queue.enqueue(
        conn,
        request_id="r-1",
        function_arn="arn:aws:lambda:us-east-1:111122223333:function:f",
        data_key=b"k",
        payload=b"{}",
        now_ms=1_000,
    )
    expiry = 1_000 + event_queue.LEASE_MS
    assert not event_queue.any_due(conn, expiry - 1)  # the worker that queued it holds it
    assert event_queue.claim_due(conn, expiry - 1, 10) == []
    assert event_queue.any_due(conn, expiry)
    (again,) = event_queue.claim_due(conn, expiry, 10)
    assert (again.request_id, again.attempt) == ("r-1", 2)
    assert again.claim_id != first.claim_id
    # The first worker's claim is lost: it can neither finish nor requeue the event.
    assert not event_queue.finish(conn, first)
    assert not event_queue.retry_at(conn, first, expiry + 60_000)
    assert event_queue.claim_due(conn, expiry, 10) == []  # held by the new claim
    assert event_queue.retry_at(conn, again, expiry + 60_000)
    assert not event_queue.any_due(conn, expiry + 59_999)
    (third,) = event_queue.claim_due(conn, expiry + 60_000, 10)
    assert third.attempt == 3
    assert event_queue.finish(conn, third)
    assert not event_queue.any_due(conn, 10**12)
