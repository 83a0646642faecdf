"""The Secrets Manager service facade: operation names to domain methods."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strongroom.protocol.service import Handler, ServiceSpec, snake_case
from strongroom.secrets.authorization import secretsmanager_checks
from strongroom.secrets.service import SecretsManager

# RotateSecret and CancelRotateSecret arrive with the rotation capability.
OPERATIONS = (
    "BatchGetSecretValue",
    "CreateSecret",
    "DeleteResourcePolicy",
    "DeleteSecret",
    "DescribeSecret",
    "GetRandomPassword",
    "GetResourcePolicy",
    "GetSecretValue",
    "ListResourcePolicies",
    "ListSecretVersionIds",
    "ListSecrets",
    "PutResourcePolicy",
    "PutSecretValue",
    "RemoveRegionsFromReplication",
    "ReplicateSecretToRegions",
    "RestoreSecret",
    "StopReplicationToReplica",
    "TagResource",
    "UntagResource",
    "UpdateSecret",
    "UpdateSecretVersionStage",
    "ValidateResourcePolicy",
)


def secretsmanager_spec(service: SecretsManager) -> ServiceSpec:
    handlers: dict[str, Handler] = {name: getattr(service, snake_case(name)) for name in OPERATIONS}
    return ServiceSpec(
        "secretsmanager",
        handlers,
        "AWS::SecretsManager::Secret",
        secret_arns,
        secretsmanager_checks(service, OPERATIONS),
    )


def secret_arns(params: Mapping[str, Any], output: Mapping[str, Any] | None) -> list[str]:
    if output and output.get("ARN"):
        return [str(output["ARN"])]
    secret_id = str(params.get("SecretId", ""))
    return [secret_id] if secret_id.startswith("arn:") else []
