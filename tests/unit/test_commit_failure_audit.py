"""A write whose audit record is durable but whose commit then fails (a full disk) reads
as exactly one event with its final outcome: in LookupEvents, in ``audit tail`` and under
``audit verify``, which checks that the correction pairs with its record."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from botocore.exceptions import ClientError
from sqlalchemy import event

from strongroom.audit import tail
from strongroom.audit.corrections import CORRECTION
from strongroom.audit.verify import verify_audit
from strongroom.server.deployment import Deployment
from tests.audit import audit_records
from tests.inprocess import client, signing_at


@contextmanager
def commits_fail(deployment: Deployment) -> Iterator[None]:
    """Every commit of the store fails, as on a full disk, until the block ends."""

    def refuse(_conn: Any) -> None:
        raise OSError(28, "No space left on device (simulated)")

    engine = deployment.store.engine
    event.listen(engine, "commit", refuse)
    try:
        yield
    finally:
        event.remove(engine, "commit", refuse)


def failed_create(deployment: Deployment, sm: Any, name: str) -> str:
    with (
        signing_at(deployment.clock),
        commits_fail(deployment),
        pytest.raises(ClientError) as raised,
    ):
        sm.create_secret(Name=name, SecretString="never stored")
    response = raised.value.response
    assert response["Error"]["Code"] == "InternalServiceError"
    return str(response["ResponseMetadata"]["RequestId"])


def test_a_commit_that_fails_after_the_audit_write_reads_as_one_failed_event(
    deployment: Deployment,
) -> None:
    sm = client(deployment, "secretsmanager")
    request_id = failed_create(deployment, sm, "app/never")
    with signing_at(deployment.clock):
        with pytest.raises(ClientError) as missing:
            sm.describe_secret(SecretId="app/never")  # nothing was written
        assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"

    audit_dir = deployment.data_dir / "audit"
    # On disk: the write-ahead record and its correction, paired by eventID.
    written = [r for r in audit_records(deployment.data_dir) if r.get("requestID") == request_id]
    assert len(written) == 2
    original, correction = written
    assert "errorCode" not in original or original["errorCode"] is None
    assert correction["eventID"] == original["eventID"]
    assert correction["errorCode"] == "InternalServiceError"
    assert correction.get("responseElements") is None
    assert set(correction[CORRECTION]) == {"reason"}

    # LookupEvents: one event, with the final outcome.
    with signing_at(deployment.clock):
        found = client(deployment, "cloudtrail").lookup_events(
            LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateSecret"}]
        )["Events"]
    mine = [e for e in found if json.loads(e["CloudTrailEvent"])["requestID"] == request_id]
    assert len(mine) == 1
    assert json.loads(mine[0]["CloudTrailEvent"])["errorCode"] == "InternalServiceError"

    # audit tail: one line, the final outcome, saying it corrects the first record.
    shown = [e for e in tail.recent(audit_dir, 100) if e.get("requestID") == request_id]
    assert len(shown) == 1
    line = tail.format_line(shown[0])
    assert "InternalServiceError" in line and "corrects event" in line

    result = verify_audit(audit_dir)
    assert result.ok, [str(f) for f in result.findings]


def test_verify_finds_a_correction_that_pairs_with_nothing(deployment: Deployment) -> None:
    sm = client(deployment, "secretsmanager")
    failed_create(deployment, sm, "app/first")
    stray = next(r for r in audit_records(deployment.data_dir) if CORRECTION in r)
    forged = {k: v for k, v in stray.items() if k != "strongroomIntegrity"}
    forged["eventID"] = "00000000-0000-0000-0000-000000000000"
    deployment.audit.write(forged)  # a correction of an event that was never recorded
    deployment.audit.write({**forged, "eventID": stray["eventID"]})  # a second correction
    result = verify_audit(deployment.data_dir / "audit")
    messages = [f.message for f in result.errors]
    assert any("which this writer never recorded" in m for m in messages), messages
    assert any("does not pair with it" in m for m in messages), messages
