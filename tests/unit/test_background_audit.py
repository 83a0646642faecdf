"""Background jobs are audited like requests, at domain level (time moved by a ManualClock):
a secret purged after its recovery window, a KMS key deleted after its waiting period and a
KMS key rotated on schedule each leave one CloudTrail service event, and a job whose audit
record cannot be written changes nothing (fail closed).

AWS shapes followed: KMS's "DeleteKey" and "RotateKey" log entries (eventType
AwsServiceEvent, userIdentity {accountId, invokedBy: "AWS Internal"}, requestParameters and
responseElements null, the key in resources; RotateKey's serviceEventDetails.rotationType
AUTOMATIC) and Secrets Manager's "EndSecretVersionDelete" when a deletion ends.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from strongroom.audit.log import AuditWriteError
from strongroom.audit.lookup import EventLookup, iter_events
from strongroom.clock import ManualClock
from strongroom.iam.credentials import admin_arn
from strongroom.protocol.errors import ServiceError
from strongroom.protocol.pagination import TokenCodec
from strongroom.server import jobs
from strongroom.server.deployment import DEV_ACCOUNT, Deployment
from strongroom.types import Caller
from tests.server import STRONGROOM

REGION = "us-east-1"
SM = Caller(DEV_ACCOUNT, REGION, admin_arn(DEV_ACCOUNT))
KMS = Caller(DEV_ACCOUNT, REGION, admin_arn(DEV_ACCOUNT))
DAY = timedelta(days=1)
VALUE = f"never-in-the-audit-{uuid.uuid4().hex}"


def service_events(deployment: Deployment, name: str) -> list[dict[str, Any]]:
    return [
        event
        for event in iter_events(deployment.data_dir / "audit")
        if event.get("eventName") == name and event.get("eventType") == "AwsServiceEvent"
    ]


def deleted_secret(deployment: Deployment) -> str:
    """A secret deleted with a 7-day recovery window; its ARN."""
    arn: str = deployment.secrets.create_secret(
        SM,
        {
            "Name": f"jobs/{uuid.uuid4().hex[:8]}",
            "SecretString": VALUE,
            "ClientRequestToken": str(uuid.uuid4()),
        },
    )["ARN"]
    deployment.secrets.delete_secret(SM, {"SecretId": arn, "RecoveryWindowInDays": 7})
    return arn


def new_key(deployment: Deployment) -> dict[str, str]:
    metadata = deployment.keys.create_key(KMS, {})["KeyMetadata"]
    return {"KeyId": metadata["KeyId"], "Arn": metadata["Arn"]}


def key_state(deployment: Deployment, key_id: str) -> tuple[str, str]:
    metadata = deployment.keys.describe_key(KMS, {"KeyId": key_id})["KeyMetadata"]
    return metadata["KeyState"], metadata["CurrentKeyMaterialId"]


def secret_exists(deployment: Deployment, arn: str) -> bool:
    try:
        deployment.secrets.describe_secret(SM, {"SecretId": arn})
    except ServiceError as error:
        assert error.code == "ResourceNotFoundException"
        return False
    return True


def verify(deployment: Deployment) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(STRONGROOM), "audit", "verify", "--data-dir", str(deployment.data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_secret_purged_after_its_window_leaves_one_service_event(
    deployment: Deployment, clock: ManualClock
) -> None:
    arn = deleted_secret(deployment)
    clock.advance(7 * DAY - timedelta(seconds=1))
    assert jobs.purge_secrets(deployment) == 0
    assert service_events(deployment, "EndSecretVersionDelete") == []

    clock.advance(timedelta(seconds=1))
    assert jobs.purge_secrets(deployment) == 1
    assert not secret_exists(deployment, arn)
    assert jobs.purge_secrets(deployment) == 0  # done once: one event, not two

    [event] = service_events(deployment, "EndSecretVersionDelete")
    assert event["userIdentity"] == {
        "accountId": DEV_ACCOUNT,
        "invokedBy": "secretsmanager.amazonaws.com",
    }
    assert event["eventSource"] == "secretsmanager.amazonaws.com"
    assert event["eventTime"] == clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (event["awsRegion"], event["recipientAccountId"]) == (REGION, DEV_ACCOUNT)
    assert event["readOnly"] is False
    assert event["requestParameters"] is None and event["responseElements"] is None
    assert event["resources"] == [
        {"accountId": DEV_ACCOUNT, "type": "AWS::SecretsManager::Secret", "ARN": arn}
    ]
    assert event["managementEvent"] is True and event["eventCategory"] == "Management"
    assert "requestID" not in event and "errorCode" not in event


def test_kms_deletion_and_automatic_rotation_leave_service_events(
    deployment: Deployment, clock: ManualClock
) -> None:
    doomed = new_key(deployment)
    rotated = new_key(deployment)
    deployment.keys.schedule_key_deletion(KMS, {"KeyId": doomed["KeyId"], "PendingWindowInDays": 7})
    deployment.keys.enable_key_rotation(
        KMS, {"KeyId": rotated["KeyId"], "RotationPeriodInDays": 90}
    )
    clock.advance(90 * DAY)
    assert jobs.rotate_keys(deployment) == 1
    assert jobs.purge_keys(deployment) == 1
    assert jobs.rotate_keys(deployment) == 0 and jobs.purge_keys(deployment) == 0

    [deleted] = service_events(deployment, "DeleteKey")
    [rotation] = service_events(deployment, "RotateKey")
    for event, key in ((deleted, doomed), (rotation, rotated)):
        assert event["eventSource"] == "kms.amazonaws.com"
        assert event["userIdentity"] == {"accountId": DEV_ACCOUNT, "invokedBy": "AWS Internal"}
        assert event["sourceIPAddress"] == event["userAgent"] == "AWS Internal"
        assert event["resources"] == [
            {"accountId": DEV_ACCOUNT, "type": "AWS::KMS::Key", "ARN": key["Arn"]}
        ]
        assert event["requestParameters"] is None and event["responseElements"] is None
    assert rotation["serviceEventDetails"] == {
        "rotationType": "AUTOMATIC",
        "keyId": rotated["KeyId"],
    }

    # LookupEvents finds them, with no user name (nobody called: the service acted).
    lookup = EventLookup(deployment.data_dir / "audit", clock, TokenCodec(os.urandom(32)))
    attribute = {"AttributeKey": "ResourceName", "AttributeValue": rotated["Arn"]}
    found = lookup.lookup_events(Caller(DEV_ACCOUNT, REGION), {"LookupAttributes": [attribute]})[
        "Events"
    ]
    assert [(e["EventName"], e["Username"], e["ReadOnly"]) for e in found] == [
        ("RotateKey", None, "false")
    ]


def _secret_purge(deployment: Deployment) -> tuple[Callable[[], int], Callable[[], object]]:
    arn = deleted_secret(deployment)
    return (lambda: jobs.purge_secrets(deployment)), (lambda: secret_exists(deployment, arn))


def _key_purge(deployment: Deployment) -> tuple[Callable[[], int], Callable[[], object]]:
    key = new_key(deployment)
    deployment.keys.schedule_key_deletion(KMS, {"KeyId": key["KeyId"], "PendingWindowInDays": 7})

    def state() -> object:
        try:
            return key_state(deployment, key["KeyId"])
        except ServiceError as error:
            return error.code

    return (lambda: jobs.purge_keys(deployment)), state


def _rotation(deployment: Deployment) -> tuple[Callable[[], int], Callable[[], object]]:
    key = new_key(deployment)
    deployment.keys.enable_key_rotation(KMS, {"KeyId": key["KeyId"], "RotationPeriodInDays": 7})
    return (lambda: jobs.rotate_keys(deployment)), (lambda: key_state(deployment, key["KeyId"]))


@pytest.mark.parametrize("setup", [_secret_purge, _key_purge, _rotation])
def test_a_job_whose_audit_record_fails_changes_nothing(
    deployment: Deployment,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    setup: Callable[[Deployment], tuple[Callable[[], int], Callable[[], object]]],
) -> None:
    job, observe = setup(deployment)
    clock.advance(8 * DAY)
    before = observe()

    def refuse(_event: object) -> None:
        raise AuditWriteError("the audit log cannot be written")

    with monkeypatch.context() as patched:
        patched.setattr(deployment.audit, "write", refuse)
        with pytest.raises(AuditWriteError):
            job()
    assert observe() == before  # rolled back: the job did nothing

    assert job() == 1  # the next sweep, with a working audit log, does it
    assert observe() != before
    assert job() == 0
    result = verify(deployment)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_log_with_service_events_verifies_and_holds_no_secret(
    deployment: Deployment, clock: ManualClock
) -> None:
    deleted_secret(deployment)
    key = new_key(deployment)
    deployment.keys.enable_key_rotation(KMS, {"KeyId": key["KeyId"], "RotationPeriodInDays": 90})
    clock.advance(90 * DAY)
    assert jobs.purge_secrets(deployment) == 1
    assert jobs.rotate_keys(deployment) == 1
    result = verify(deployment)
    assert result.returncode == 0, result.stdout + result.stderr
    audit = deployment.data_dir / "audit"
    assert all(VALUE.encode() not in p.read_bytes() for p in audit.rglob("*") if p.is_file())
