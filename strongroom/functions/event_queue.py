"""Rows of ``lambda_event_queue``, the asynchronous invocation queue: the only module that
touches that table or ``lambda_event_invoke_configs``.

An ``Invoke`` with ``InvocationType=Event`` is a row until its function succeeded, its last
attempt failed, or it grew older than its maximum age. ``queued``: the next attempt may
start at ``due_ms``. ``running``: a worker's ``claim_id`` holds it until
``lease_until_ms``; a claim whose lease ran out was abandoned (its worker died) and the
next sweep takes it over, as the rotation runner's claims: the lease is
:mod:`strongroom.store.leases`'s, shared with ``secrets/rotation_state.py``. A claim is one
write transaction, so however many workers and nodes sweep, one runs each attempt.

Retries are Lambda's (developer guide, "How Lambda handles errors and retries with
asynchronous invocation"): a function error is tried again after one minute, then after
two more, up to ``MaximumRetryAttempts`` (0-2, default 2) retries; an event older than
``MaximumEventAgeInSeconds`` (60-21600, default 21600) is dropped.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import NamedTuple

from sqlalchemy import Connection, delete, insert, select, update

from strongroom.store import leases
from strongroom.store.schema import lambda_event_invoke_configs as configs
from strongroom.store.schema import lambda_event_queue as queue

QUEUED = "queued"
RUNNING = leases.RUNNING
RETRY_DELAYS_MS = (60_000, 120_000)  # before the second attempt, before the third
DEFAULT_RETRIES = 2
DEFAULT_MAX_AGE_SECONDS = 21_600
# A claim outlasts the longest invocation (Timeout is at most 900 s) with room to record it.
LEASE_MS = 1_200_000


@dataclass(frozen=True)
class EventClaim:
    """One attempt of a queued event, held by this worker."""

    request_id: str
    function_arn: str
    queued_ms: int
    attempt: int  # this attempt's number, 1 for the first
    claim_id: str
    data_key: bytes = field(repr=False)
    payload: bytes = field(repr=False)


class RetryPolicy(NamedTuple):
    """A function's event invoke config as it applies (Lambda's defaults where unset)."""

    retries: int = DEFAULT_RETRIES
    max_age_ms: int = DEFAULT_MAX_AGE_SECONDS * 1000

    def next_due(self, claim: EventClaim, failed_ms: int) -> int | None:
        """When the attempt after ``claim``'s failed one is due, or None when the event is
        done with: no retry left, or it would be older than its maximum age by then."""
        if claim.attempt > self.retries:
            return None
        due = failed_ms + RETRY_DELAYS_MS[claim.attempt - 1]
        return None if self.expired(claim.queued_ms, due) else due

    def expired(self, queued_ms: int, now_ms: int) -> bool:
        return now_ms - queued_ms > self.max_age_ms


class ConfigRow(NamedTuple):
    function_arn: str
    maximum_retry_attempts: int | None
    maximum_event_age_seconds: int | None
    modified_ms: int


def config(conn: Connection, function_arn: str) -> ConfigRow | None:
    found = conn.execute(select(configs).where(configs.c.function_arn == function_arn)).first()
    return ConfigRow(*found) if found is not None else None


def policy(conn: Connection, function_arn: str) -> RetryPolicy:
    found = config(conn, function_arn)
    if found is None:
        return RetryPolicy()
    retries, age = found.maximum_retry_attempts, found.maximum_event_age_seconds
    return RetryPolicy(
        DEFAULT_RETRIES if retries is None else retries,
        (DEFAULT_MAX_AGE_SECONDS if age is None else age) * 1000,
    )


def put_config(conn: Connection, row: ConfigRow) -> None:
    conn.execute(delete(configs).where(configs.c.function_arn == row.function_arn))
    conn.execute(insert(configs).values(row._asdict()))


def delete_config(conn: Connection, function_arn: str) -> bool:
    done = conn.execute(delete(configs).where(configs.c.function_arn == function_arn))
    return bool(done.rowcount)


def forget_function(conn: Connection, function_arn: str) -> None:
    """A deleted function's config and the events still queued for it."""
    delete_config(conn, function_arn)
    conn.execute(delete(queue).where(queue.c.function_arn == function_arn))


def enqueue(
    conn: Connection,
    *,
    request_id: str,
    function_arn: str,
    data_key: bytes,
    payload: bytes,
    now_ms: int,
) -> EventClaim:
    """Queue an event, claimed at once by the worker that accepted it (its first attempt
    starts now, without waiting for a sweep)."""
    claim = EventClaim(request_id, function_arn, now_ms, 1, str(uuid.uuid4()), data_key, payload)
    conn.execute(
        insert(queue).values(
            request_id=request_id,
            function_arn=function_arn,
            data_key=data_key,
            payload=payload,
            queued_ms=now_ms,
            due_ms=now_ms,
            attempts=1,
            state=RUNNING,
            claim_id=claim.claim_id,
            lease_until_ms=now_ms + LEASE_MS,
        )
    )
    return claim


def any_due(conn: Connection, now_ms: int) -> bool:
    """Whether a claim would find anything: a cheap read before taking the write lock."""
    return leases.any_due(conn, queue, QUEUED, now_ms)


def claim_due(conn: Connection, now_ms: int, limit: int) -> list[EventClaim]:
    """Claim the events due (and those whose claim's lease ran out: their attempt counts as
    made, its outcome unknown), in this write transaction."""
    claims = []
    for row in leases.due(conn, queue, QUEUED, now_ms, limit):
        claim = EventClaim(
            row.request_id,
            row.function_arn,
            row.queued_ms,
            row.attempts + 1,
            str(uuid.uuid4()),
            row.data_key,
            row.payload,
        )
        conn.execute(
            update(queue)
            .where(queue.c.request_id == row.request_id)
            .values(
                state=RUNNING,
                attempts=claim.attempt,
                claim_id=claim.claim_id,
                lease_until_ms=now_ms + LEASE_MS,
            )
        )
        claims.append(claim)
    return claims


def retry_at(conn: Connection, claim: EventClaim, due_ms: int) -> bool:
    """Queue the next attempt; False if the claim was lost (another worker holds it)."""
    done = conn.execute(
        update(queue)
        .where(queue.c.request_id == claim.request_id, queue.c.claim_id == claim.claim_id)
        .values(state=QUEUED, due_ms=due_ms, claim_id=None, lease_until_ms=None)
    )
    return bool(done.rowcount)


def finish(conn: Connection, claim: EventClaim) -> bool:
    """The event is done with (succeeded, or dropped); False if the claim was lost."""
    done = conn.execute(
        delete(queue).where(
            queue.c.request_id == claim.request_id, queue.c.claim_id == claim.claim_id
        )
    )
    return bool(done.rowcount)
