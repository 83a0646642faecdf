"""The asynchronous invocation queue's retry policy (strongroom/functions/event_queue.py):
Lambda's delays (a minute before the second attempt, two before the third), its retry
count and its maximum event age."""

from __future__ import annotations

from strongroom.functions.event_queue import EventClaim, RetryPolicy

MINUTE = 60_000


def claim(attempt: int, queued_ms: int = 0) -> EventClaim:
    return EventClaim("rid", "arn:aws:lambda:us-east-1:000000000000:function:f", queued_ms,
                      attempt, "claim", b"", b"")  # fmt: skip


def test_lambdas_defaults_retry_twice_a_minute_then_two_apart() -> None:
    policy = RetryPolicy()
    assert policy.next_due(claim(1), 5) == 5 + MINUTE
    assert policy.next_due(claim(2), 70_000) == 70_000 + 2 * MINUTE
    assert policy.next_due(claim(3), 200_000) is None


def test_fewer_retries() -> None:
    assert RetryPolicy(retries=0).next_due(claim(1), 5) is None
    assert RetryPolicy(retries=1).next_due(claim(1), 5) == 5 + MINUTE
    assert RetryPolicy(retries=1).next_due(claim(2), 70_000) is None


def test_no_retry_that_would_be_older_than_the_maximum_age() -> None:
    policy = RetryPolicy(max_age_ms=MINUTE)
    assert policy.next_due(claim(1, queued_ms=0), 0) == MINUTE  # exactly the age: kept
    assert policy.next_due(claim(1, queued_ms=0), 1) is None
    assert policy.expired(0, MINUTE + 1) and not policy.expired(0, MINUTE)
