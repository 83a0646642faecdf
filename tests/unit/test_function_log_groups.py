"""Function invocation logs at rest (functions/log_groups.py): sealed under their log
group's key and bound to the group and the invocation; the pass that seals logs an older
version stored in plaintext; the purge job over retention; a rekey re-wraps the groups'
keys. Over a real data directory, without a server process."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy import insert, select, update

from strongroom.clock import ManualClock, now_ms
from strongroom.functions.log_groups import LogGroups
from strongroom.functions.runtime import Outcome
from strongroom.keys import providers
from strongroom.keys.rekey import rekey
from strongroom.server import jobs
from strongroom.server.deployment import Deployment, initialize, open_deployment
from strongroom.server.keyring import ROOT_SEALED
from strongroom.store import schema
from tests.audit import audit_records

ACCOUNT, REGION = "000000000000", "us-east-1"


def groups(deployment: Deployment) -> LogGroups:
    assert deployment.functions is not None
    return deployment.functions.log_groups


def run(deployment: Deployment, function: str, request_id: str, log: str) -> None:
    """What an invocation keeps: its log, through the function service's log groups."""
    outcome = Outcome(b"{}", None, "ok", log, now_ms(deployment.clock) - 10, 5, request_id)
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}"
    groups(deployment).record(arn, ACCOUNT, REGION, function, request_id, outcome)


def opened(deployment: Deployment, function: str) -> list[str]:
    group = groups(deployment).find(ACCOUNT, REGION, function)
    assert group is not None
    return [stored.log for stored in groups(deployment).logs(group)]


def rows(deployment: Deployment) -> dict[str, tuple[str, bytes | None, int | None]]:
    t = schema.lambda_invocations
    with deployment.store.read() as conn:
        found = conn.execute(select(t.c.request_id, t.c.log, t.c.sealed, t.c.stored_bytes))
        return {row.request_id: (row.log, row.sealed, row.stored_bytes) for row in found}


def test_logs_are_sealed_and_bound_to_their_group_and_invocation(
    deployment: Deployment,
) -> None:
    run(deployment, "alpha", "a-1", "START\nsecret-alpha-1\nEND\n")
    run(deployment, "alpha", "a-2", "START\nsecret-alpha-2\nEND\n")
    run(deployment, "beta", "b-1", "START\nsecret-beta\nEND\n")
    assert opened(deployment, "alpha") == [
        "START\nsecret-alpha-1\nEND\n",
        "START\nsecret-alpha-2\nEND\n",
    ]
    stored = rows(deployment)
    for log, sealed, size in stored.values():
        assert log == "" and sealed is not None and b"secret" not in sealed
        assert size == len("START\nsecret-alpha-1\nEND\n") or size == len(
            "START\nsecret-beta\nEND\n"
        )
    alpha = groups(deployment).find(ACCOUNT, REGION, "alpha")
    beta = groups(deployment).find(ACCOUNT, REGION, "beta")
    assert alpha is not None and beta is not None and alpha.data_key != beta.data_key

    t = schema.lambda_invocations
    with deployment.store.write() as conn:  # a log moved to another invocation of its group
        conn.execute(update(t).where(t.c.request_id == "a-2").values(sealed=stored["a-1"][1]))
    with pytest.raises(InvalidTag):
        opened(deployment, "alpha")
    with deployment.store.write() as conn:  # ... or to another group
        conn.execute(update(t).where(t.c.request_id == "a-2").values(sealed=stored["a-2"][1]))
        conn.execute(update(t).where(t.c.request_id == "b-1").values(sealed=stored["a-1"][1]))
    assert len(opened(deployment, "alpha")) == 2
    with pytest.raises(InvalidTag):
        opened(deployment, "beta")


def test_plaintext_logs_are_sealed_once(deployment: Deployment) -> None:
    run(deployment, "current", "new-1", "START\nsealed\nEND\n")
    t = schema.lambda_invocations
    started = now_ms(deployment.clock) - 5 * 86_400_000
    with deployment.store.write() as conn:  # as an older version stored them
        for offset, (request_id, function) in enumerate(
            (("old-1", "current"), ("old-2", "gone"), ("old-3", "gone")), start=1
        ):
            conn.execute(
                insert(t).values(
                    request_id=request_id,
                    function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}",
                    account_id=ACCOUNT,
                    region=REGION,
                    function_name=function,
                    started_ms=started + offset,
                    duration_ms=3,
                    outcome="ok",
                    log=f"START\nplain {request_id}\nEND\n",
                )
            )
    assert groups(deployment).seal_plaintext() == 3
    assert groups(deployment).seal_plaintext() == 0  # idempotent
    stored = rows(deployment)
    assert all(log == "" and sealed for log, sealed, _size in stored.values())
    assert stored["old-2"][2] == len(b"START\nplain old-2\nEND\n")
    assert opened(deployment, "current") == ["START\nplain old-1\nEND\n", "START\nsealed\nEND\n"]
    assert opened(deployment, "gone") == ["START\nplain old-2\nEND\n", "START\nplain old-3\nEND\n"]
    gone = groups(deployment).find(ACCOUNT, REGION, "gone")
    assert gone is not None and gone.created_ms == started + 2  # its first log's start


def test_the_purge_job_removes_only_logs_past_their_groups_retention(
    deployment: Deployment, clock: ManualClock
) -> None:
    run(deployment, "short", "s-old", "START\nold\nEND\n")
    run(deployment, "long", "l-old", "START\nold\nEND\n")
    run(deployment, "forever", "f-old", "START\nold\nEND\n")
    log_groups = groups(deployment)
    for name, days in (("short", 1), ("long", 3)):
        group = log_groups.find(ACCOUNT, REGION, name)
        assert group is not None
        log_groups.set_retention(group, days)
    assert jobs.purge_function_logs(deployment) == 0
    clock.advance(timedelta(hours=60))
    run(deployment, "short", "s-new", "START\nnew\nEND\n")
    assert jobs.purge_function_logs(deployment) == 1
    assert set(rows(deployment)) == {"s-new", "l-old", "f-old"}
    clock.advance(timedelta(hours=18))
    assert jobs.purge_function_logs(deployment) == 1  # l-old (78 hours old), not s-new (18)
    assert set(rows(deployment)) == {"s-new", "f-old"}
    events = [
        record
        for record in audit_records(deployment.data_dir)
        if record["eventSource"] == "logs.amazonaws.com"
    ]
    assert [(e["eventName"], e["eventType"]) for e in events] == [
        ("DeleteLogStream", "AwsServiceEvent")
    ] * 2
    assert [e["serviceEventDetails"]["retentionInDays"] for e in events] == [1, 3]
    assert events[0]["resources"][0]["ARN"].startswith(
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/short:log-stream:"
    )


def test_a_rekey_rewraps_the_log_groups_keys(tmp_path: Path, clock: ManualClock) -> None:
    data_dir = tmp_path / "data"
    initialize(data_dir, dev=True, clock=clock)
    deployment = open_deployment(data_dir, clock=clock)
    try:
        run(deployment, "rekeyed", "r-1", "START\nkept\nEND\n")
        before = groups(deployment).find(ACCOUNT, REGION, "rekeyed")
    finally:
        deployment.close()
    old_key = providers.unseal_unattended(data_dir)
    counts = rekey(
        data_dir, old_key, providers.protect(providers.FileChoice()), ROOT_SEALED, clock=clock
    )
    assert counts["lambda_log_groups.data_key"] == 1
    deployment = open_deployment(data_dir, clock=clock)
    try:
        after = groups(deployment).find(ACCOUNT, REGION, "rekeyed")
        assert before is not None and after is not None and after.data_key != before.data_key
        assert opened(deployment, "rekeyed") == ["START\nkept\nEND\n"]
    finally:
        deployment.close()
