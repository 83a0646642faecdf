"""The KMS service facade (AWS JSON 1.1, target prefix ``TrentService``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strongroom.keys.authorization import kms_checks
from strongroom.keys.kms import KeyService
from strongroom.protocol.service import Handler, ServiceSpec, snake_case

OPERATIONS = (
    "CancelKeyDeletion",
    "CreateAlias",
    "CreateKey",
    "Decrypt",
    "DeleteAlias",
    "DescribeKey",
    "DisableKey",
    "DisableKeyRotation",
    "EnableKey",
    "EnableKeyRotation",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateRandom",
    "GetKeyPolicy",
    "GetKeyRotationStatus",
    "ListAliases",
    "ListKeys",
    "ListResourceTags",
    "PutKeyPolicy",
    "ReEncrypt",
    "RotateKeyOnDemand",
    "ScheduleKeyDeletion",
    "TagResource",
    "UntagResource",
    "UpdateAlias",
)


def _bind(service: KeyService, operation: str) -> Handler:
    method = getattr(service, snake_case(operation))

    return method  # type: ignore[no-any-return]


def key_arns(params: Mapping[str, Any], output: Mapping[str, Any] | None) -> list[str]:
    if output:
        metadata = output.get("KeyMetadata") or {}
        arn = metadata.get("Arn") or output.get("KeyId")
        if isinstance(arn, str) and arn.startswith("arn:"):
            return [arn]
    key_id = str(params.get("KeyId", ""))
    return [key_id] if key_id.startswith("arn:") else []


def kms_spec(service: KeyService) -> ServiceSpec:
    return ServiceSpec(
        "kms",
        {name: _bind(service, name) for name in OPERATIONS},
        "AWS::KMS::Key",
        key_arns,
        kms_checks(service, OPERATIONS),
    )
