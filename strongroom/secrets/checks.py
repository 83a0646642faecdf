"""Authorization checks about one secret: its ARN, resource policy and the condition keys
it contributes (tags, primary region, rotation function)."""

from __future__ import annotations

from collections.abc import Mapping
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


def request_keys(operation: str, params: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    keys: dict[str, tuple[str, ...]] = {
        key: (_text(params[member]),)
        for member, key in _REQUEST_KEYS.get(operation, {}).items()
        if params.get(member) is not None
    }
    regions = params.get("AddReplicaRegions")
    if regions:
        keys["secretsmanager:AddReplicaRegions"] = tuple(
            # Region is optional in the model: the service refuses a replica without one.
            r["Region"]
            for r in regions
            if "Region" in r
        )
    tags = params.get("Tags") if operation in ("CreateSecret", "TagResource") else None
    if tags:
        for tag in tags:
            keys[f"aws:RequestTag/{tag.get('Key', '')}"] = (tag.get("Value", ""),)
        keys["aws:TagKeys"] = tuple(tag.get("Key", "") for tag in tags)
    if operation == "RotateSecret":
        keys["secretsmanager:ModifyRotationRules"] = (
            _text(params.get("RotationRules") is not None),
        )
    if operation == "UntagResource" and params.get("TagKeys"):
        keys["aws:TagKeys"] = tuple(params["TagKeys"])
    return keys
