"""Authorization checks about one secret: its ARN, resource policy and the condition keys
it contributes (tags, primary region, rotation function)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from strongroom.policy.checks import Check
from strongroom.secrets.repository import SecretRecord


def secret_keys(record: SecretRecord) -> dict[str, tuple[str, ...]]:
    keys: dict[str, tuple[str, ...]] = {"secretsmanager:SecretId": (record.arn,)}
    for key, value in record.tags or []:
        keys[f"aws:ResourceTag/{key}"] = (value,)
        keys[f"secretsmanager:ResourceTag/{key}"] = (value,)
    if record.is_replica or record.replicas:
        keys["secretsmanager:SecretPrimaryRegion"] = (record.primary_region or record.region,)
    if record.rotation_lambda_arn:
        keys["secretsmanager:resource/AllowRotationLambdaArn"] = (record.rotation_lambda_arn,)
    if record.secret_type:
        keys["secretsmanager:resource/Type"] = (record.secret_type,)
    return keys


def secret_check(action: str, record: SecretRecord, extra: Mapping[str, tuple[str, ...]]) -> Check:
    return Check(
        action,
        record.arn,
        record.account_id,
        record.resource_policy,
        context={**secret_keys(record), **extra},
    )


# Request members that become condition keys, per operation: member -> key.
_REQUEST_KEYS: dict[str, dict[str, str]] = {
    "CreateSecret": {
        "Name": "secretsmanager:Name",
        "Description": "secretsmanager:Description",
        "KmsKeyId": "secretsmanager:KmsKeyId",
        "ForceOverwriteReplicaSecret": "secretsmanager:ForceOverwriteReplicaSecret",
        "Type": "secretsmanager:Type",
    },
    "UpdateSecret": {
        "Description": "secretsmanager:Description",
        "KmsKeyId": "secretsmanager:KmsKeyId",
        "Type": "secretsmanager:Type",
    },
    "GetSecretValue": {
        "VersionId": "secretsmanager:VersionId",
        "VersionStage": "secretsmanager:VersionStage",
    },
    "DeleteSecret": {
        "ForceDeleteWithoutRecovery": "secretsmanager:ForceDeleteWithoutRecovery",
        "RecoveryWindowInDays": "secretsmanager:RecoveryWindowInDays",
    },
    "PutResourcePolicy": {"BlockPublicPolicy": "secretsmanager:BlockPublicPolicy"},
    "UpdateSecretVersionStage": {"VersionStage": "secretsmanager:VersionStage"},
    "RotateSecret": {
        "RotationLambdaARN": "secretsmanager:RotationLambdaARN",
        "RotateImmediately": "secretsmanager:RotateImmediately",
        "ExternalSecretRotationRoleArn": "secretsmanager:ExternalSecretRotationRoleArn",
    },
    "ReplicateSecretToRegions": {
        "ForceOverwriteReplicaSecret": "secretsmanager:ForceOverwriteReplicaSecret",
    },
}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def kms_key_arn_keys(key_arn: str | None) -> dict[str, tuple[str, ...]]:
    """secretsmanager:KmsKeyArn: the ARN of the key a request's KmsKeyId resolves to (an
    alias or key id names it; policies compare the key's ARN)."""
    return {"secretsmanager:KmsKeyArn": (key_arn,)} if key_arn else {}


# (caller, operation, params) -> the condition keys: a RequestKeys of operation_checks.py
# whose answer is a dict of its own (Create/UpdateSecret's add secretsmanager:KmsKeyArn).
RequestKeysOf = Callable[[Any, str, Mapping[str, Any]], dict[str, tuple[str, ...]]]


@cache
def request_keys_for(operation: str) -> RequestKeysOf:
    """The condition keys ``operation``'s request members define, as a function of the
    request (caller, operation, params): what depends only on the operation (which members
    it maps, whether it carries tags) is settled here, once per operation."""
    members = tuple(_REQUEST_KEYS.get(operation, {}).items())
    tagged = operation in ("CreateSecret", "TagResource")
    rotation = operation == "RotateSecret"
    untag = operation == "UntagResource"

    def keys(
        _caller: Any, _operation: str, params: Mapping[str, Any]
    ) -> dict[str, tuple[str, ...]]:
        found: dict[str, tuple[str, ...]] = {}
        for member, key in members:
            value = params.get(member)
            if value is not None:
                found[key] = (_text(value),)
        regions = params.get("AddReplicaRegions")
        if regions:
            found["secretsmanager:AddReplicaRegions"] = tuple(
                # Region is optional in the model: the service refuses a replica without one.
                r["Region"]
                for r in regions
                if "Region" in r
            )
        tags = params.get("Tags") if tagged else None
        if tags:
            for tag in tags:
                found[f"aws:RequestTag/{tag.get('Key', '')}"] = (tag.get("Value", ""),)
            found["aws:TagKeys"] = tuple(tag.get("Key", "") for tag in tags)
        if rotation:
            found["secretsmanager:ModifyRotationRules"] = (
                _text(params.get("RotationRules") is not None),
            )
        if untag and params.get("TagKeys"):
            found["aws:TagKeys"] = tuple(params["TagKeys"])
        return found

    return keys


def request_keys(operation: str, params: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    return request_keys_for(operation)(None, operation, params)
