"""Replication across the regions of one deployment, end to end (spec 3.9).

A replica has the primary's name, value and metadata, an ARN that differs only in its
region, and is read-only: every change is made on the primary and shows on the replica at
once. Secret names are unique per test, so the shared server is enough.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC
from typing import Any

import pytest

from tests.aws import Client, aws_error, body, new_key, state
from tests.server import ServerProcess

PRIMARY = "us-east-1"
EU = "eu-west-1"
AP = "ap-south-1"
REPLICA_READONLY = (
    "Operation not permitted on a replica secret. Call must be made in primary secret's region."
)
DEFAULT_KEY = "alias/aws/secretsmanager"
POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::000000000000:root"},
                "Action": "secretsmanager:GetSecretValue",
                "Resource": "*",
            }
        ],
    }
)


def in_sync(region: str) -> dict[str, str]:
    return {
        "Region": region,
        "KmsKeyId": DEFAULT_KEY,
        "Status": "InSync",
        "StatusMessage": "Replication succeeded",
    }


@pytest.fixture
def eu(server: ServerProcess) -> Client:
    return server.client(region=EU)


@pytest.fixture
def ap(server: ServerProcess) -> Client:
    return server.client(region=AP)


def everything(client: Client, secret_id: str) -> dict[str, Any]:
    """Everything a client can read about a secret, except access dates."""
    return state(client, secret_id, policy=True, values=True)


def replica_arn(primary_arn: str, region: str) -> str:
    parts = primary_arn.split(":")
    parts[3] = region
    return ":".join(parts)


def replicated(sm: Client, name: str, *regions: str, **create: Any) -> dict[str, Any]:
    created: dict[str, Any] = sm.create_secret(
        Name=name, SecretString=create.pop("SecretString", "s3cr3t"), **create
    )
    sm.replicate_secret_to_regions(
        SecretId=name, AddReplicaRegions=[{"Region": r} for r in regions]
    )
    return created


# --- replicating ------------------------------------------------------------------------


def test_replicate_to_two_regions(sm: Client, eu: Client, ap: Client, name: str) -> None:
    created = sm.create_secret(
        Name=name,
        SecretString='{"password":"hunter2"}',
        Description="replicated secret",
        Tags=[{"Key": "env", "Value": "prod"}],
    )
    result = sm.replicate_secret_to_regions(
        SecretId=name, AddReplicaRegions=[{"Region": EU}, {"Region": AP}]
    )
    assert body(result) == {"ARN": created["ARN"], "ReplicationStatus": [in_sync(EU), in_sync(AP)]}

    primary = sm.describe_secret(SecretId=name)
    assert primary["PrimaryRegion"] == PRIMARY
    assert primary["ReplicationStatus"] == [in_sync(EU), in_sync(AP)]
    value = sm.get_secret_value(SecretId=name)

    for client, region in ((eu, EU), (ap, AP)):
        arn = replica_arn(created["ARN"], region)
        assert arn == created["ARN"].replace(f":{PRIMARY}:", f":{region}:")
        for secret_id in (name, arn, arn.rsplit("-", 1)[0]):
            read = client.get_secret_value(SecretId=secret_id)
            assert read["ARN"] == arn
            assert read["Name"] == name
            assert read["SecretString"] == '{"password":"hunter2"}'
            assert read["VersionId"] == value["VersionId"] == created["VersionId"]
            assert read["VersionStages"] == ["AWSCURRENT"]
        described = client.describe_secret(SecretId=arn)
        assert described["ARN"] == arn
        assert described["Name"] == name
        assert described["PrimaryRegion"] == PRIMARY
        assert "ReplicationStatus" not in described
        assert described["Description"] == "replicated secret"
        assert described["Tags"] == [{"Key": "env", "Value": "prod"}]
        assert described["VersionIdsToStages"] == primary["VersionIdsToStages"]
        assert "KmsKeyId" not in described  # the region's aws/secretsmanager key
        batch = client.batch_get_secret_value(SecretIdList=[name])
        assert [v["SecretString"] for v in batch["SecretValues"]] == ['{"password":"hunter2"}']

    # The primary's ARN names no secret in a replica region.
    error = aws_error(lambda: eu.describe_secret(SecretId=created["ARN"]))
    assert error["Code"] == "ResourceNotFoundException"


def test_create_secret_with_add_replica_regions(
    sm: Client, eu: Client, ap: Client, name: str
) -> None:
    created = sm.create_secret(
        Name=name, SecretString="v1", AddReplicaRegions=[{"Region": EU}, {"Region": AP}]
    )
    assert created["ReplicationStatus"] == [in_sync(EU), in_sync(AP)]
    assert sm.describe_secret(SecretId=name)["ReplicationStatus"] == [in_sync(EU), in_sync(AP)]
    assert eu.get_secret_value(SecretId=name)["SecretString"] == "v1"
    assert ap.get_secret_value(SecretId=name)["VersionId"] == created["VersionId"]


def test_replica_kms_key_is_reported(sm: Client, eu: Client, name: str) -> None:
    result = sm.create_secret(
        Name=name,
        SecretString="v",
        AddReplicaRegions=[{"Region": EU, "KmsKeyId": DEFAULT_KEY}],
    )
    assert result["ReplicationStatus"] == [in_sync(EU)]
    assert eu.get_secret_value(SecretId=name)["SecretString"] == "v"


def test_last_access_in_a_replica_region_is_reported(sm: Client, eu: Client, name: str) -> None:
    replicated(sm, name, EU, AP)
    statuses = sm.describe_secret(SecretId=name)["ReplicationStatus"]
    assert all("LastAccessedDate" not in s for s in statuses)
    eu.get_secret_value(SecretId=name)
    statuses = {s["Region"]: s for s in sm.describe_secret(SecretId=name)["ReplicationStatus"]}
    accessed = statuses[EU]["LastAccessedDate"]
    assert accessed == eu.describe_secret(SecretId=name)["LastAccessedDate"]
    midnight = accessed.astimezone(UTC)
    assert (midnight.hour, midnight.minute, midnight.second) == (0, 0, 0)
    assert "LastAccessedDate" not in statuses[AP]
    # Reading the replica is not an access of the primary.
    assert "LastAccessedDate" not in sm.describe_secret(SecretId=name)


def test_primary_changes_show_on_replicas_at_once(
    sm: Client, eu: Client, ap: Client, name: str
) -> None:
    first = replicated(sm, name, EU, AP)
    second = sm.put_secret_value(SecretId=name, SecretString="second")
    for client in (eu, ap):
        read = client.get_secret_value(SecretId=name)
        assert (read["SecretString"], read["VersionId"]) == ("second", second["VersionId"])
        previous = client.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")
        assert previous["VersionId"] == first["VersionId"]

    sm.update_secret(SecretId=name, Description="new description", SecretString="third")
    sm.tag_resource(SecretId=name, Tags=[{"Key": "team", "Value": "core"}])
    sm.tag_resource(SecretId=name, Tags=[{"Key": "gone", "Value": "soon"}])
    sm.untag_resource(SecretId=name, TagKeys=["gone"])
    sm.update_secret_version_stage(
        SecretId=name, VersionStage="CUSTOM", MoveToVersionId=first["VersionId"]
    )
    sm.put_resource_policy(SecretId=name, ResourcePolicy=POLICY)

    primary = everything(sm, name)
    for client in (eu, ap):
        replica = everything(client, name)
        assert replica["describe"]["Description"] == "new description"
        assert replica["describe"]["Tags"] == [{"Key": "team", "Value": "core"}]
        assert (
            replica["describe"]["VersionIdsToStages"] == primary["describe"]["VersionIdsToStages"]
        )
        assert replica["describe"]["LastChangedDate"] == primary["describe"]["LastChangedDate"]
        assert json.loads(replica["policy"]["ResourcePolicy"]) == json.loads(POLICY)
        assert replica["versions"]["Versions"] == primary["versions"]["Versions"]
        assert {v: r["SecretString"] for v, r in replica["values"].items()} == {
            v: r["SecretString"] for v, r in primary["values"].items()
        }
        assert (
            client.get_secret_value(SecretId=name, VersionStage="CUSTOM")["VersionId"]
            == (first["VersionId"])
        )
    sm.delete_resource_policy(SecretId=name)
    assert "ResourcePolicy" not in eu.get_resource_policy(SecretId=name)


def test_replica_is_read_only(sm: Client, eu: Client, name: str) -> None:
    created = replicated(sm, name, EU)
    sm.put_resource_policy(SecretId=name, ResourcePolicy=POLICY)
    arn = replica_arn(created["ARN"], EU)
    version = created["VersionId"]
    before_replica, before_primary = everything(eu, name), everything(sm, name)
    attempts: list[Callable[[], Any]] = [
        lambda: eu.put_secret_value(SecretId=name, SecretString="changed"),
        lambda: eu.put_secret_value(SecretId=arn, SecretString="changed"),
        lambda: eu.update_secret(SecretId=name, Description="changed"),
        lambda: eu.update_secret(SecretId=name, SecretString="changed"),
        lambda: eu.tag_resource(SecretId=name, Tags=[{"Key": "k", "Value": "v"}]),
        lambda: eu.untag_resource(SecretId=name, TagKeys=["k"]),
        lambda: eu.update_secret_version_stage(
            SecretId=name, VersionStage="CUSTOM", MoveToVersionId=version
        ),
        lambda: eu.delete_secret(SecretId=name),
        lambda: eu.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True),
        lambda: eu.put_resource_policy(SecretId=name, ResourcePolicy=POLICY),
        lambda: eu.delete_resource_policy(SecretId=name),
        lambda: eu.restore_secret(SecretId=name),
        lambda: eu.replicate_secret_to_regions(SecretId=name, AddReplicaRegions=[{"Region": AP}]),
        lambda: eu.remove_regions_from_replication(SecretId=name, RemoveReplicaRegions=[EU]),
    ]
    for attempt in attempts:
        error = aws_error(attempt)
        assert error["Code"] == "InvalidParameterException"
        assert error["Message"] == REPLICA_READONLY
    assert everything(eu, name) == before_replica
    assert everything(sm, name) == before_primary


def test_replica_region_must_differ_from_own(sm: Client, name: str) -> None:
    sm.create_secret(Name=name, SecretString="v")
    before = everything(sm, name)
    for regions in ([{"Region": PRIMARY}], [{"Region": EU}, {"Region": PRIMARY}]):
        error = aws_error(
            lambda regions=regions: sm.replicate_secret_to_regions(
                SecretId=name, AddReplicaRegions=regions
            )
        )
        assert error == {"Code": "InvalidParameterException", "Message": "Invalid replica region."}
    assert everything(sm, name) == before
    assert "ReplicationStatus" not in before["describe"]

    other = f"{name}-create"
    error = aws_error(
        lambda: sm.create_secret(
            Name=other, SecretString="v", AddReplicaRegions=[{"Region": PRIMARY}]
        )
    )
    assert error == {"Code": "InvalidParameterException", "Message": "Invalid replica region."}
    error = aws_error(lambda: sm.describe_secret(SecretId=other))
    assert error["Code"] == "ResourceNotFoundException"


def test_name_taken_in_target_region_fails_that_region(
    sm: Client, eu: Client, ap: Client, name: str
) -> None:
    squatter = eu.create_secret(Name=name, SecretString="eu's own")
    sm.create_secret(Name=name, SecretString="primary")
    result = sm.replicate_secret_to_regions(
        SecretId=name, AddReplicaRegions=[{"Region": EU}, {"Region": AP}]
    )
    failed, good = result["ReplicationStatus"]
    assert good == in_sync(AP)
    assert failed["Region"] == EU
    assert failed["Status"] == "Failed"
    assert failed["StatusMessage"] == "Secret with this name already exists in this region"
    assert sm.describe_secret(SecretId=name)["ReplicationStatus"] == [failed, good]
    # The secret already there is untouched and still its own primary.
    mine = eu.get_secret_value(SecretId=name)
    assert (mine["ARN"], mine["SecretString"]) == (squatter["ARN"], "eu's own")
    assert "PrimaryRegion" not in eu.describe_secret(SecretId=name)
    assert ap.get_secret_value(SecretId=name)["SecretString"] == "primary"
    # Later changes to the primary do not reach it either.
    sm.put_secret_value(SecretId=name, SecretString="primary v2")
    assert eu.get_secret_value(SecretId=name)["SecretString"] == "eu's own"
    assert ap.get_secret_value(SecretId=name)["SecretString"] == "primary v2"


def test_a_failed_region_can_be_retried(sm: Client, eu: Client, name: str) -> None:
    eu.create_secret(Name=name, SecretString="eu's own")
    created = sm.create_secret(Name=name, SecretString="primary")
    sm.replicate_secret_to_regions(SecretId=name, AddReplicaRegions=[{"Region": EU}])
    # Still taken, no overwrite: still failed, and the secret there still untouched.
    again = sm.replicate_secret_to_regions(SecretId=name, AddReplicaRegions=[{"Region": EU}])
    assert [s["Status"] for s in again["ReplicationStatus"]] == ["Failed"]
    assert eu.get_secret_value(SecretId=name)["SecretString"] == "eu's own"
    # Once the name is free the same call replicates.
    eu.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    retried = sm.replicate_secret_to_regions(SecretId=name, AddReplicaRegions=[{"Region": EU}])
    assert retried["ReplicationStatus"] == [in_sync(EU)]
    assert sm.describe_secret(SecretId=name)["ReplicationStatus"] == [in_sync(EU)]
    read = eu.get_secret_value(SecretId=name)
    assert (read["ARN"], read["SecretString"]) == (replica_arn(created["ARN"], EU), "primary")


def test_create_secret_replica_name_taken(sm: Client, eu: Client, name: str) -> None:
    eu.create_secret(Name=name, SecretString="eu's own")
    created = sm.create_secret(Name=name, SecretString="p", AddReplicaRegions=[{"Region": EU}])
    [status] = created["ReplicationStatus"]
    assert (status["Region"], status["Status"]) == (EU, "Failed")
    assert status["StatusMessage"] == "Secret with this name already exists in this region"
    assert eu.get_secret_value(SecretId=name)["SecretString"] == "eu's own"


def test_force_overwrite_replaces_the_secret_in_the_target_region(
    sm: Client, eu: Client, name: str
) -> None:
    squatter = eu.create_secret(Name=name, SecretString="eu's own")
    created = sm.create_secret(Name=name, SecretString="primary")
    result = sm.replicate_secret_to_regions(
        SecretId=name, AddReplicaRegions=[{"Region": EU}], ForceOverwriteReplicaSecret=True
    )
    assert result["ReplicationStatus"] == [in_sync(EU)]
    read = eu.get_secret_value(SecretId=name)
    assert read["SecretString"] == "primary"
    assert read["ARN"] == replica_arn(created["ARN"], EU)
    assert eu.describe_secret(SecretId=name)["PrimaryRegion"] == PRIMARY
    error = aws_error(lambda: eu.describe_secret(SecretId=squatter["ARN"]))
    assert error["Code"] == "ResourceNotFoundException"


def test_replicating_a_secret_marked_for_deletion(sm: Client, eu: Client, name: str) -> None:
    sm.create_secret(Name=name, SecretString="v")
    sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    error = aws_error(
        lambda: sm.replicate_secret_to_regions(SecretId=name, AddReplicaRegions=[{"Region": EU}])
    )
    assert error == {
        "Code": "InvalidRequestException",
        "Message": "You can't perform this operation on the secret because it was marked for "
        "deletion.",
    }
    assert eu.list_secrets(Filters=[{"Key": "name", "Values": [name]}])["SecretList"] == []


def test_replicating_a_missing_secret(sm: Client, name: str) -> None:
    error = aws_error(
        lambda: sm.replicate_secret_to_regions(SecretId=name, AddReplicaRegions=[{"Region": EU}])
    )
    assert error == {
        "Code": "ResourceNotFoundException",
        "Message": "Secrets Manager can't find the specified secret.",
    }


# --- deleting and removing ----------------------------------------------------------------


def test_primary_with_replicas_cannot_be_deleted(sm: Client, eu: Client, name: str) -> None:
    created = replicated(sm, name, EU, AP)
    before = everything(sm, name)
    for kwargs in ({}, {"ForceDeleteWithoutRecovery": True}, {"RecoveryWindowInDays": 7}):
        error = aws_error(lambda kwargs=kwargs: sm.delete_secret(SecretId=name, **kwargs))
        assert error == {
            "Code": "InvalidParameterException",
            "Message": f"You can't delete secret {created['ARN']} that still has replica "
            f"regions [{EU}, {AP}].",
        }
    assert everything(sm, name) == before
    assert eu.get_secret_value(SecretId=name)["SecretString"] == "s3cr3t"

    sm.remove_regions_from_replication(SecretId=name, RemoveReplicaRegions=[EU, AP])
    deleted = sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    assert deleted["ARN"] == created["ARN"]
    assert aws_error(lambda: sm.describe_secret(SecretId=name))["Code"] == (
        "ResourceNotFoundException"
    )


def test_remove_regions_deletes_replicas_at_once(
    sm: Client, eu: Client, ap: Client, name: str
) -> None:
    created = replicated(sm, name, EU, AP)
    result = sm.remove_regions_from_replication(SecretId=name, RemoveReplicaRegions=[EU])
    assert body(result) == {"ARN": created["ARN"], "ReplicationStatus": [in_sync(AP)]}
    for secret_id in (name, replica_arn(created["ARN"], EU)):
        error = aws_error(lambda secret_id=secret_id: eu.get_secret_value(SecretId=secret_id))
        assert error == {
            "Code": "ResourceNotFoundException",
            "Message": "Secrets Manager can't find the specified secret.",
        }
    assert eu.list_secrets(Filters=[{"Key": "name", "Values": [name]}])["SecretList"] == []
    assert sm.describe_secret(SecretId=name)["ReplicationStatus"] == [in_sync(AP)]
    assert ap.get_secret_value(SecretId=name)["SecretString"] == "s3cr3t"
    # The name is free again in that region straight away.
    fresh = eu.create_secret(Name=name, SecretString="new eu secret")
    assert fresh["ARN"] != replica_arn(created["ARN"], EU)
    assert "PrimaryRegion" not in eu.describe_secret(SecretId=name)

    last = sm.remove_regions_from_replication(SecretId=name, RemoveReplicaRegions=[AP])
    assert body(last) == {"ARN": created["ARN"], "ReplicationStatus": []}
    assert aws_error(lambda: ap.describe_secret(SecretId=name))["Code"] == (
        "ResourceNotFoundException"
    )
    # Primary changes no longer go anywhere; the unrelated eu secret is untouched.
    sm.put_secret_value(SecretId=name, SecretString="later")
    assert eu.get_secret_value(SecretId=name)["SecretString"] == "new eu secret"


def test_remove_regions_of_a_missing_secret(sm: Client, name: str) -> None:
    error = aws_error(
        lambda: sm.remove_regions_from_replication(SecretId=name, RemoveReplicaRegions=[EU])
    )
    assert error["Code"] == "ResourceNotFoundException"


# --- promoting ------------------------------------------------------------------------------


def test_stop_replication_promotes_the_replica(
    sm: Client, eu: Client, ap: Client, name: str
) -> None:
    created = replicated(sm, name, EU, AP)
    arn = replica_arn(created["ARN"], AP)
    result = ap.stop_replication_to_replica(SecretId=name)
    assert body(result) == {"ARN": arn}

    promoted = ap.describe_secret(SecretId=name)
    assert promoted["ARN"] == arn
    assert "PrimaryRegion" not in promoted
    assert "ReplicationStatus" not in promoted
    assert sm.describe_secret(SecretId=name)["ReplicationStatus"] == [in_sync(EU)]

    # The promoted secret is writable and no longer follows the old primary.
    ap.put_secret_value(SecretId=name, SecretString="ap's own now")
    ap.tag_resource(SecretId=name, Tags=[{"Key": "owner", "Value": "ap"}])
    sm.put_secret_value(SecretId=name, SecretString="primary v2")
    assert ap.get_secret_value(SecretId=name)["SecretString"] == "ap's own now"
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "primary v2"
    assert "Tags" not in sm.describe_secret(SecretId=name)
    # And it can be deleted on its own.
    ap.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    assert aws_error(lambda: ap.describe_secret(SecretId=name))["Code"] == (
        "ResourceNotFoundException"
    )
    assert sm.describe_secret(SecretId=name)["ReplicationStatus"] == [in_sync(EU)]
    assert eu.get_secret_value(SecretId=name)["SecretString"] == "primary v2"


def test_stop_replication_by_replica_arn(sm: Client, eu: Client, name: str) -> None:
    created = replicated(sm, name, EU)
    arn = replica_arn(created["ARN"], EU)
    assert eu.stop_replication_to_replica(SecretId=arn)["ARN"] == arn
    assert "ReplicationStatus" not in sm.describe_secret(SecretId=name)
    # With no replica left the primary can be deleted.
    sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    assert "DeletedDate" in sm.describe_secret(SecretId=name)
    assert eu.get_secret_value(SecretId=name)["SecretString"] == "s3cr3t"


def test_stop_replication_on_a_secret_that_is_no_replica(sm: Client, eu: Client, name: str) -> None:
    replicated(sm, name, EU)
    standalone = f"{name}-alone"
    sm.create_secret(Name=standalone, SecretString="v")
    before = everything(sm, name), everything(eu, name), everything(sm, standalone)
    for secret_id in (name, standalone):  # a primary, a plain secret: neither is a replica
        error = aws_error(
            lambda secret_id=secret_id: sm.stop_replication_to_replica(SecretId=secret_id)
        )
        assert error["Code"] == "InvalidRequestException"
    error = aws_error(lambda: eu.stop_replication_to_replica(SecretId=f"{name}-missing"))
    assert error["Code"] == "ResourceNotFoundException"
    assert (everything(sm, name), everything(eu, name), everything(sm, standalone)) == before


def test_a_replicas_encryption_key_can_be_changed(
    server: ServerProcess, sm: Client, eu: Client, name: str
) -> None:
    # Issue 23 item 4: "a replica secret can't be updated independently from its primary
    # secret, except for its encryption key" (user guide).
    replicated(sm, name, EU, SecretString="v1")
    eu_key = new_key(server.client("kms", region=EU))
    before_primary = everything(sm, name)
    aws_error(
        lambda: eu.update_secret(SecretId=name, KmsKeyId=eu_key["Arn"], Description="x"),
        code="InvalidParameterException",
        message=REPLICA_READONLY,
    )
    assert everything(sm, name) == before_primary
    assert body(eu.update_secret(SecretId=name, KmsKeyId=eu_key["Arn"])) == {
        "ARN": eu.describe_secret(SecretId=name)["ARN"],
        "Name": name,
    }
    assert eu.describe_secret(SecretId=name)["KmsKeyId"] == eu_key["Arn"]
    [status] = sm.describe_secret(SecretId=name)["ReplicationStatus"]
    assert status["KmsKeyId"] == eu_key["Arn"]
    assert "KmsKeyId" not in sm.describe_secret(SecretId=name)  # the primary's is unchanged
    versions = eu.list_secret_version_ids(SecretId=name)["Versions"]
    # Re-encrypted under the new key, and still under the default key it had.
    assert all(v["KmsKeyIds"] == [eu_key["Arn"], "DefaultEncryptionKey"] for v in versions)
    assert eu.get_secret_value(SecretId=name)["SecretString"] == "v1"
    # A version the primary adds later is sealed under the replica's new key.
    sm.put_secret_value(SecretId=name, SecretString="v2")
    assert eu.get_secret_value(SecretId=name)["SecretString"] == "v2"
    current = eu.get_secret_value(SecretId=name)["VersionId"]
    listed = {v["VersionId"]: v for v in eu.list_secret_version_ids(SecretId=name)["Versions"]}
    assert listed[current]["KmsKeyIds"] == [eu_key["Arn"]]
