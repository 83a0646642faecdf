"""Secret identifiers, the deletion lifecycle and metadata field presence, end to end
with boto3 against a real server (AWS behaviour spec sections 3.1, 3.6, 3.14)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from strongroom.protocol.model import service_model
from strongroom.secrets.api import OPERATIONS
from tests.aws import aws_error, body, not_found, state
from tests.server import ServerProcess

ACCOUNT = "000000000000"
INVALID_NAME = (
    "Invalid name. Must be a valid name containing alphanumeric characters, "
    "or any of the following: -/_+=.@!"
)
MARKED_FOR_DELETION = (
    "You can't perform this operation on the secret because it was marked for deletion."
)
WINDOW_RANGE = "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive)."
FORCE_AND_WINDOW = (
    "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays."
)
SCHEDULED_NAME = (
    "You can't create this secret because a secret with this name is already scheduled "
    "for deletion."
)
ALREADY_DELETED = "You tried to perform the operation on a secret that's currently marked deleted."
SLACK = timedelta(minutes=2)  # test process and server read the same system clock


# Helpers ------------------------------------------------------------------------------


def arn_pattern(name: str, region: str = "us-east-1", account: str = ACCOUNT) -> str:
    return rf"arn:aws:secretsmanager:{region}:{account}:secret:{re.escape(name)}-[A-Za-z0-9]{{6}}"


def names_listed(sm: Any, **kwargs: Any) -> list[str]:
    names: list[str] = []
    for page in sm.get_paginator("list_secrets").paginate(**kwargs):
        names += [entry["Name"] for entry in page["SecretList"]]
    return names


def near(moment: datetime, expected: datetime) -> bool:
    return abs(moment - expected) < SLACK


@pytest.fixture
def secret(sm: Any, name: str) -> Iterator[dict[str, Any]]:
    """A secret with one value; the create response."""
    yield body(sm.create_secret(Name=name, SecretString="s3cret"))


# ARNs and regions ---------------------------------------------------------------------


def test_arn_format_and_suffix(sm: Any, name: str) -> None:
    created = sm.create_secret(Name=name, SecretString="v")
    assert re.fullmatch(arn_pattern(name), created["ARN"])
    assert created["Name"] == name
    assert sm.describe_secret(SecretId=name)["ARN"] == created["ARN"]
    assert sm.get_secret_value(SecretId=name)["ARN"] == created["ARN"]
    other = sm.create_secret(Name=name + "-b")
    assert re.fullmatch(arn_pattern(name + "-b"), other["ARN"])


def test_region_comes_from_the_signature_scope(server: ServerProcess, sm: Any, name: str) -> None:
    eu = server.client(region="eu-west-1")
    in_eu = eu.create_secret(Name=name, SecretString="eu-value")
    assert re.fullmatch(arn_pattern(name, region="eu-west-1"), in_eu["ARN"])

    # Not visible from us-east-1, by name or by its ARN.
    not_found(lambda: sm.describe_secret(SecretId=name))
    not_found(lambda: sm.get_secret_value(SecretId=in_eu["ARN"]))
    assert name not in names_listed(sm, Filters=[{"Key": "name", "Values": [name]}])

    # The same name can then exist in us-east-1 as a different secret.
    in_us = sm.create_secret(Name=name, SecretString="us-value")
    assert re.fullmatch(arn_pattern(name), in_us["ARN"])
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "us-value"
    assert eu.get_secret_value(SecretId=name)["SecretString"] == "eu-value"
    not_found(lambda: eu.describe_secret(SecretId=in_us["ARN"]))
    assert names_listed(eu, Filters=[{"Key": "name", "Values": [name]}]) == [name]

    # A secret only in us-east-1 is invisible from eu-west-1 by name, ARN and listing.
    us_only = sm.create_secret(Name=f"{name}-us", SecretString="v")
    not_found(lambda: eu.describe_secret(SecretId=f"{name}-us"))
    not_found(lambda: eu.get_secret_value(SecretId=us_only["ARN"]))
    assert names_listed(eu, Filters=[{"Key": "name", "Values": [f"{name}-us"]}]) == []


def test_lookup_by_name_full_arn_and_partial_arn(sm: Any, name: str) -> None:
    arn = sm.create_secret(Name=name, SecretString="v1")["ARN"]
    partial = arn[:-7]
    assert partial.endswith(f":secret:{name}")
    for secret_id in (name, arn, partial):
        assert sm.describe_secret(SecretId=secret_id)["ARN"] == arn
        assert sm.get_secret_value(SecretId=secret_id)["SecretString"] == "v1"
        assert sm.list_secret_version_ids(SecretId=secret_id)["ARN"] == arn
    # Writes through each form reach the same secret.
    sm.put_secret_value(SecretId=partial, SecretString="v2")
    sm.update_secret(SecretId=arn, Description="via arn")
    sm.tag_resource(SecretId=partial, Tags=[{"Key": "k", "Value": "v"}])
    described = sm.describe_secret(SecretId=name)
    assert described["Description"] == "via arn"
    assert described["Tags"] == [{"Key": "k", "Value": "v"}]
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v2"


def test_name_that_looks_like_an_arn_suffix(sm: Any, name: str) -> None:
    tricky = f"{name}-abc123"
    arn = sm.create_secret(Name=tricky, SecretString="v")["ARN"]
    assert sm.describe_secret(SecretId=tricky)["ARN"] == arn
    assert sm.describe_secret(SecretId=arn)["Name"] == tricky
    # The prefix is another (absent) secret's name, not a lookup of this one.
    not_found(lambda: sm.describe_secret(SecretId=name))


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda arn: arn.replace(":us-east-1:", ":eu-west-1:"), id="other-region"),
        pytest.param(
            lambda arn: arn[:-6] + ("AAAAAA" if arn[-6:] != "AAAAAA" else "BBBBBB"),
            id="wrong-suffix",
        ),
    ],
)
def test_arn_that_names_no_secret_is_not_found(
    sm: Any, secret: dict[str, Any], mangle: Callable[[str], str]
) -> None:
    wrong = mangle(secret["ARN"])
    assert wrong != secret["ARN"]
    before = state(sm, secret["ARN"], policy=True)
    not_found(lambda: sm.describe_secret(SecretId=wrong))
    not_found(lambda: sm.get_secret_value(SecretId=wrong))
    not_found(lambda: sm.put_secret_value(SecretId=wrong, SecretString="x"))
    not_found(lambda: sm.delete_secret(SecretId=wrong))
    assert state(sm, secret["ARN"], policy=True) == before


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda arn: arn.replace(f":{ACCOUNT}:", ":111111111111:"), id="full"),
        pytest.param(lambda arn: arn.replace(f":{ACCOUNT}:", ":111111111111:")[:-7], id="partial"),
    ],
)
def test_arn_of_another_account_without_a_resource_policy_is_denied(
    sm: Any, secret: dict[str, Any], mangle: Callable[[str], str]
) -> None:
    """Another account's secret needs its resource policy to allow the caller; as on AWS
    authorization comes first, so whether such a secret exists is not revealed."""
    wrong = mangle(secret["ARN"])
    before = state(sm, secret["ARN"], policy=True)
    for call in (
        lambda: sm.describe_secret(SecretId=wrong),
        lambda: sm.get_secret_value(SecretId=wrong),
        lambda: sm.put_secret_value(SecretId=wrong, SecretString="x"),
        lambda: sm.delete_secret(SecretId=wrong),
    ):
        error = aws_error(call, code="AccessDeniedException")
        assert "because no resource-based policy allows" in error["Message"]
    assert state(sm, secret["ARN"], policy=True) == before


# Names --------------------------------------------------------------------------------

BAD_NAMES = [
    "has space",
    "semi;colon",
    "hash#",
    "percent%",
    "quote'",
    "star*",
    "ümlaut",
    "tab\tchar",
    "comma,",
    "brace{",
]


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_create_secret_rejects_invalid_names(sm: Any, name: str, bad: str) -> None:
    before = names_listed(sm, IncludePlannedDeletion=True)
    aws_error(
        lambda: sm.create_secret(Name=f"{name}{bad}", SecretString="v"),
        code="ValidationException",
        message=INVALID_NAME,
    )
    assert names_listed(sm, IncludePlannedDeletion=True) == before


def test_every_name_character_aws_allows_is_accepted(sm: Any, name: str) -> None:
    allowed = f"{name}/Az09-_+=.@!"
    arn = sm.create_secret(Name=allowed, SecretString="v")["ARN"]
    assert sm.describe_secret(SecretId=allowed)["ARN"] == arn
    assert sm.get_secret_value(SecretId=arn)["Name"] == allowed


# Operations that take a SecretId, with the other members they require (valid values).
_POLICY = (
    '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
    f'"Principal": {{"AWS": "arn:aws:iam::{ACCOUNT}:root"}}, '
    '"Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}'
)
_REQUIRED_EXTRAS: dict[str, dict[str, Any]] = {
    "PutSecretValue": {"SecretString": "v"},
    "PutResourcePolicy": {"ResourcePolicy": _POLICY},
    "ValidateResourcePolicy": {"ResourcePolicy": _POLICY},
    "TagResource": {"Tags": [{"Key": "k", "Value": "v"}]},
    "UntagResource": {"TagKeys": ["k"]},
    "UpdateSecretVersionStage": {"VersionStage": "STAGE", "MoveToVersionId": "a" * 32},
    "ReplicateSecretToRegions": {"AddReplicaRegions": [{"Region": "eu-west-3"}]},
    "RemoveRegionsFromReplication": {"RemoveReplicaRegions": ["eu-west-3"]},
}
_MODEL = service_model("secretsmanager")
SECRET_ID_OPERATIONS = sorted(
    op for op in OPERATIONS if "SecretId" in (_MODEL.operation_model(op).input_shape.members or {})
)


def test_secret_id_operations_cover_the_served_surface() -> None:
    # Every served operation with a SecretId is checked below; at least these 17.
    assert len(SECRET_ID_OPERATIONS) >= 17
    assert {
        "GetSecretValue",
        "DescribeSecret",
        "DeleteSecret",
        "RestoreSecret",
        "UpdateSecret",
        "TagResource",
    } <= set(SECRET_ID_OPERATIONS)


@pytest.mark.parametrize("operation", SECRET_ID_OPERATIONS)
def test_invalid_name_as_secret_id_on_every_operation(
    raw: Any, sm: Any, secret: dict[str, Any], operation: str
) -> None:
    before = state(sm, secret["ARN"], policy=True)
    method = getattr(raw, re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower())
    params = {"SecretId": "bad name", **_REQUIRED_EXTRAS.get(operation, {})}
    aws_error(lambda: method(**params), code="ValidationException", message=INVALID_NAME)
    assert state(sm, secret["ARN"], policy=True) == before


def test_name_of_512_characters_is_accepted(sm: Any) -> None:
    long_name = "n" + uuid.uuid4().hex + "x" * (512 - 33)
    assert len(long_name) == 512
    created = sm.create_secret(Name=long_name, SecretString="v")
    assert re.fullmatch(arn_pattern(long_name), created["ARN"])
    assert sm.describe_secret(SecretId=long_name)["Name"] == long_name
    assert sm.get_secret_value(SecretId=created["ARN"])["SecretString"] == "v"
    sm.delete_secret(SecretId=long_name, ForceDeleteWithoutRecovery=True)


def test_name_of_513_characters_is_rejected(raw: Any, sm: Any) -> None:
    long_name = "n" + uuid.uuid4().hex + "x" * (513 - 33)
    assert len(long_name) == 513
    error = aws_error(
        lambda: raw.create_secret(Name=long_name, SecretString="v"), code="ValidationException"
    )
    message = error["Message"]
    assert message.startswith("1 validation error detected: Value '")
    assert message.endswith(
        "at 'name' failed to satisfy constraint: Member must have length less than or equal to 512"
    )
    not_found(lambda: sm.describe_secret(SecretId=long_name))


# Deletion -----------------------------------------------------------------------------


def test_default_recovery_window_is_30_days(sm: Any, secret: dict[str, Any]) -> None:
    now = datetime.now(UTC)
    deleted = sm.delete_secret(SecretId=secret["Name"])
    assert set(body(deleted)) == {"ARN", "Name", "DeletionDate"}
    assert deleted["ARN"] == secret["ARN"]
    assert deleted["Name"] == secret["Name"]
    assert near(deleted["DeletionDate"], now + timedelta(days=30))
    described = sm.describe_secret(SecretId=secret["Name"])
    assert near(described["DeletedDate"], now)


@pytest.mark.parametrize("days", [7, 8, 29, 30])
def test_recovery_window_in_range(sm: Any, secret: dict[str, Any], days: int) -> None:
    now = datetime.now(UTC)
    deleted = sm.delete_secret(SecretId=secret["ARN"], RecoveryWindowInDays=days)
    assert near(deleted["DeletionDate"], now + timedelta(days=days))
    assert "DeletedDate" in sm.describe_secret(SecretId=secret["ARN"])


@pytest.mark.parametrize("days", [6, 31, 0, -1])
@pytest.mark.parametrize("force", [None, True])
def test_recovery_window_out_of_range(
    raw: Any, sm: Any, secret: dict[str, Any], days: int, force: bool | None
) -> None:
    before = state(sm, secret["ARN"], policy=True)
    extra = {} if force is None else {"ForceDeleteWithoutRecovery": force}
    aws_error(
        lambda: raw.delete_secret(SecretId=secret["ARN"], RecoveryWindowInDays=days, **extra),
        code="InvalidParameterException",
        message=WINDOW_RANGE,
    )
    assert state(sm, secret["ARN"], policy=True) == before
    assert "DeletedDate" not in before["describe"]
    assert sm.get_secret_value(SecretId=secret["ARN"])["SecretString"] == "s3cret"


def test_force_and_window_together_are_refused(sm: Any, secret: dict[str, Any]) -> None:
    before = state(sm, secret["ARN"], policy=True)
    aws_error(
        lambda: sm.delete_secret(
            SecretId=secret["ARN"], RecoveryWindowInDays=7, ForceDeleteWithoutRecovery=True
        ),
        code="InvalidParameterException",
        message=FORCE_AND_WINDOW,
    )
    assert state(sm, secret["ARN"], policy=True) == before
    assert sm.get_secret_value(SecretId=secret["ARN"])["SecretString"] == "s3cret"


def _scheduled_calls(sm: Any, secret_id: str, version_id: str) -> dict[str, Callable[[], Any]]:
    return {
        "GetSecretValue": lambda: sm.get_secret_value(SecretId=secret_id),
        "GetSecretValue-version": lambda: sm.get_secret_value(
            SecretId=secret_id, VersionId=version_id
        ),
        "PutSecretValue": lambda: sm.put_secret_value(SecretId=secret_id, SecretString="new"),
        "UpdateSecret-value": lambda: sm.update_secret(SecretId=secret_id, SecretString="new"),
        "UpdateSecret-metadata": lambda: sm.update_secret(
            SecretId=secret_id, Description="changed"
        ),
        "TagResource": lambda: sm.tag_resource(
            SecretId=secret_id, Tags=[{"Key": "new", "Value": "tag"}]
        ),
        "UntagResource": lambda: sm.untag_resource(SecretId=secret_id, TagKeys=["team"]),
        "UpdateSecretVersionStage": lambda: sm.update_secret_version_stage(
            SecretId=secret_id, VersionStage="CUSTOM", MoveToVersionId=version_id
        ),
        "PutResourcePolicy": lambda: sm.put_resource_policy(
            SecretId=secret_id, ResourcePolicy=_POLICY
        ),
    }


SCHEDULED_OPERATIONS = list(_scheduled_calls(None, "", ""))


@pytest.mark.parametrize("operation", SCHEDULED_OPERATIONS)
def test_scheduled_secret_refuses_reads_and_writes(sm: Any, name: str, operation: str) -> None:
    created = sm.create_secret(
        Name=name, SecretString="kept", Description="original", Tags=[{"Key": "team", "Value": "a"}]
    )
    sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    before = state(sm, name, policy=True)
    call = _scheduled_calls(sm, name, created["VersionId"])[operation]
    aws_error(call, code="InvalidRequestException", message=MARKED_FOR_DELETION)
    assert state(sm, name, policy=True) == before
    # Restored, the secret is exactly as it was before the deletion.
    sm.restore_secret(SecretId=name)
    described = sm.describe_secret(SecretId=name)
    assert described["Description"] == "original"
    assert described["Tags"] == [{"Key": "team", "Value": "a"}]
    assert described["VersionIdsToStages"] == {created["VersionId"]: ["AWSCURRENT"]}
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "kept"


def test_scheduled_secret_is_described_and_listed_only_on_request(
    sm: Any, secret: dict[str, Any]
) -> None:
    name = secret["Name"]
    only = [{"Key": "name", "Values": [name]}]
    assert names_listed(sm, Filters=only) == [name]
    now = datetime.now(UTC)
    sm.delete_secret(SecretId=name)
    described = sm.describe_secret(SecretId=name)
    assert near(described["DeletedDate"], now)
    assert described["ARN"] == secret["ARN"]
    assert names_listed(sm, Filters=only) == []
    assert names_listed(sm, Filters=only, IncludePlannedDeletion=False) == []
    listed = sm.list_secrets(Filters=only, IncludePlannedDeletion=True)["SecretList"]
    assert [entry["Name"] for entry in listed] == [name]
    assert listed[0]["DeletedDate"] == described["DeletedDate"]


@pytest.mark.parametrize("with_value", [True, False])
def test_create_with_name_of_scheduled_secret(
    sm: Any, secret: dict[str, Any], with_value: bool
) -> None:
    sm.delete_secret(SecretId=secret["Name"])
    before = state(sm, secret["Name"], policy=True)
    extra = {"SecretString": "other"} if with_value else {}
    aws_error(
        lambda: sm.create_secret(Name=secret["Name"], **extra),
        code="InvalidRequestException",
        message=SCHEDULED_NAME,
    )
    assert state(sm, secret["Name"], policy=True) == before


def test_delete_again_without_force_is_refused(sm: Any, secret: dict[str, Any]) -> None:
    first = sm.delete_secret(SecretId=secret["Name"], RecoveryWindowInDays=10)
    before = state(sm, secret["Name"], policy=True)
    aws_error(
        lambda: sm.delete_secret(SecretId=secret["Name"]),
        code="InvalidRequestException",
        message=ALREADY_DELETED,
    )
    aws_error(
        lambda: sm.delete_secret(SecretId=secret["Name"], RecoveryWindowInDays=20),
        code="InvalidRequestException",
        message=ALREADY_DELETED,
    )
    assert state(sm, secret["Name"], policy=True) == before
    assert near(first["DeletionDate"], before["describe"]["DeletedDate"] + timedelta(days=10))


def test_restore_clears_the_deletion(sm: Any, secret: dict[str, Any]) -> None:
    name = secret["Name"]
    sm.delete_secret(SecretId=name)
    restored = sm.restore_secret(SecretId=name)
    assert body(restored) == {"ARN": secret["ARN"], "Name": name}
    described = sm.describe_secret(SecretId=name)
    assert "DeletedDate" not in described
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "s3cret"
    assert names_listed(sm, Filters=[{"Key": "name", "Values": [name]}]) == [name]
    # Writable again, and deletable again.
    sm.put_secret_value(SecretId=name, SecretString="after")
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "after"
    sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    assert "DeletedDate" in sm.describe_secret(SecretId=name)


def test_restore_of_a_live_secret_changes_nothing(sm: Any, secret: dict[str, Any]) -> None:
    before = state(sm, secret["Name"], policy=True)
    assert body(sm.restore_secret(SecretId=secret["ARN"])) == {
        "ARN": secret["ARN"],
        "Name": secret["Name"],
    }
    assert state(sm, secret["Name"], policy=True) == before


def test_restore_of_a_missing_secret_is_not_found(sm: Any, name: str) -> None:
    not_found(lambda: sm.restore_secret(SecretId=name))


@pytest.mark.parametrize("scheduled_first", [False, True])
def test_force_delete_removes_immediately(
    sm: Any, secret: dict[str, Any], scheduled_first: bool
) -> None:
    name, old_arn = secret["Name"], secret["ARN"]
    if scheduled_first:
        sm.delete_secret(SecretId=name)
    now = datetime.now(UTC)
    deleted = sm.delete_secret(SecretId=old_arn, ForceDeleteWithoutRecovery=True)
    assert body(deleted).keys() == {"ARN", "Name", "DeletionDate"}
    assert (deleted["ARN"], deleted["Name"]) == (old_arn, name)
    assert near(deleted["DeletionDate"], now)
    for secret_id in (name, old_arn):
        not_found(lambda sid=secret_id: sm.describe_secret(SecretId=sid))
        not_found(lambda sid=secret_id: sm.get_secret_value(SecretId=sid))
        not_found(lambda sid=secret_id: sm.restore_secret(SecretId=sid))
    assert (
        names_listed(sm, Filters=[{"Key": "name", "Values": [name]}], IncludePlannedDeletion=True)
        == []
    )

    # The name is free at once; the new secret gets a new ARN suffix.
    recreated = sm.create_secret(Name=name, SecretString="second life")
    assert re.fullmatch(arn_pattern(name), recreated["ARN"])
    assert recreated["ARN"] != old_arn
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "second life"
    # The old ARN does not reach the new secret (old grants must not apply to it).
    not_found(lambda: sm.describe_secret(SecretId=old_arn))
    assert sm.describe_secret(SecretId=old_arn[:-7])["ARN"] == recreated["ARN"]


def test_force_delete_of_a_missing_secret_answers_as_if_deleted(sm: Any, name: str) -> None:
    now = datetime.now(UTC)
    by_name = sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    assert by_name["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert body(by_name).keys() == {"ARN", "Name", "DeletionDate"}
    assert by_name["Name"] == name
    assert re.fullmatch(arn_pattern(name), by_name["ARN"])
    assert near(by_name["DeletionDate"], now)

    arn = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:{name}-AbC123"
    by_arn = sm.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    assert (by_arn["ARN"], by_arn["Name"]) == (arn, name)
    # Nothing was created by answering.
    not_found(lambda: sm.describe_secret(SecretId=name))
    # Without force, a missing secret is an error.
    not_found(lambda: sm.delete_secret(SecretId=name))


# Field presence -----------------------------------------------------------------------


def test_fresh_secret_describes_exactly_the_aws_fields(sm: Any, name: str) -> None:
    created = sm.create_secret(Name=name, SecretString="v")
    described = sm.describe_secret(SecretId=name)
    assert set(described) == {
        "ARN",
        "Name",
        "CreatedDate",
        "LastChangedDate",
        "VersionIdsToStages",
        "ResponseMetadata",
    }
    assert described["VersionIdsToStages"] == {created["VersionId"]: ["AWSCURRENT"]}
    assert near(described["LastChangedDate"], described["CreatedDate"])
    assert near(described["CreatedDate"], datetime.now(UTC))


def test_optional_fields_appear_only_once_set(sm: Any, name: str) -> None:
    sm.create_secret(Name=name, SecretString="v", Description="what it is")
    described = sm.describe_secret(SecretId=name)
    assert described["Description"] == "what it is"
    for absent in (
        "KmsKeyId",
        "Tags",
        "RotationEnabled",
        "RotationLambdaARN",
        "RotationRules",
        "LastRotatedDate",
        "NextRotationDate",
        "DeletedDate",
        "LastAccessedDate",
        "OwningService",
        "PrimaryRegion",
        "ReplicationStatus",
        "Type",
    ):
        assert absent not in described, absent
    sm.get_secret_value(SecretId=name)
    accessed = sm.describe_secret(SecretId=name)["LastAccessedDate"]
    # Date resolution: midnight UTC of the access day.
    assert accessed == datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def test_last_changed_date_advances_on_modification_only(sm: Any, name: str) -> None:
    def changed() -> datetime:
        value: datetime = sm.describe_secret(SecretId=name)["LastChangedDate"]
        return value

    sm.create_secret(Name=name, SecretString="v")
    dates = [changed()]
    for modify in (
        lambda: sm.update_secret(SecretId=name, Description="d"),
        lambda: sm.put_secret_value(SecretId=name, SecretString="v2"),
        lambda: sm.tag_resource(SecretId=name, Tags=[{"Key": "a", "Value": "b"}]),
        lambda: sm.untag_resource(SecretId=name, TagKeys=["a"]),
    ):
        modify()
        dates.append(changed())
        assert dates[-1] > dates[-2]
    # Reads are not modifications.
    sm.get_secret_value(SecretId=name)
    sm.list_secret_version_ids(SecretId=name)
    sm.get_resource_policy(SecretId=name)
    assert changed() == dates[-1]


def test_list_secrets_entries_use_secret_versions_to_stages(sm: Any, name: str) -> None:
    created = sm.create_secret(Name=name, SecretString="v")
    entry = sm.list_secrets(Filters=[{"Key": "name", "Values": [name]}])["SecretList"][0]
    assert entry["SecretVersionsToStages"] == {created["VersionId"]: ["AWSCURRENT"]}
    assert "VersionIdsToStages" not in entry
    assert set(entry) == {"ARN", "Name", "CreatedDate", "LastChangedDate", "SecretVersionsToStages"}


def _names_key(reported: str, key: dict[str, str]) -> bool:
    return reported in (key["KeyId"], key["Arn"], key["Alias"]) or reported.endswith(
        ":" + key["Alias"]
    )


def test_metadata_only_update_creates_no_version(
    sm: Any, secret: dict[str, Any], key: dict[str, str]
) -> None:
    name = secret["Name"]
    versions_before = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)
    updated = sm.update_secret(SecretId=name, Description="new description")
    assert body(updated) == {"ARN": secret["ARN"], "Name": name}
    updated = sm.update_secret(SecretId=name, KmsKeyId=key["Alias"])
    assert body(updated) == {"ARN": secret["ARN"], "Name": name}
    described = sm.describe_secret(SecretId=name)
    assert described["Description"] == "new description"
    assert _names_key(described["KmsKeyId"], key)
    versions_after = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)
    assert [v["VersionId"] for v in versions_after["Versions"]] == [
        v["VersionId"] for v in versions_before["Versions"]
    ]
    assert [v["VersionStages"] for v in versions_after["Versions"]] == [
        v["VersionStages"] for v in versions_before["Versions"]
    ]
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "s3cret"


def test_empty_kms_key_id_reverts_to_the_default_key(
    sm: Any, name: str, key: dict[str, str]
) -> None:
    sm.create_secret(Name=name, SecretString="v", KmsKeyId=key["Alias"])
    assert _names_key(sm.describe_secret(SecretId=name)["KmsKeyId"], key)
    updated = sm.update_secret(SecretId=name, KmsKeyId="")
    assert body(updated) == {"ARN": sm.describe_secret(SecretId=name)["ARN"], "Name": name}
    assert "KmsKeyId" not in sm.describe_secret(SecretId=name)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v"
    listed = sm.list_secrets(Filters=[{"Key": "name", "Values": [name]}])["SecretList"]
    assert "KmsKeyId" not in listed[0]
