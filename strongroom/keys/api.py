"""The KMS service facade (AWS JSON 1.1, target prefix ``TrentService``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strongroom.keys.authorization import kms_checks
from strongroom.keys.kms import KeyService
from strongroom.keys.kms_common import unknown_ciphertext_key
from strongroom.models import service_model
from strongroom.protocol.errors import ServiceError
from strongroom.protocol.service import Handler, ServiceSpec, snake_case
from strongroom.types import Caller, Check

OPERATIONS = (
    "CancelKeyDeletion",
    "CreateAlias",
    "CreateGrant",
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
    "ListGrants",
    "ListKeyPolicies",
    "ListKeyRotations",
    "ListKeys",
    "ListResourceTags",
    "ListRetirableGrants",
    "PutKeyPolicy",
    "ReEncrypt",
    "RetireGrant",
    "RevokeGrant",
    "RotateKeyOnDemand",
    "ScheduleKeyDeletion",
    "TagResource",
    "UntagResource",
    "UpdateAlias",
    "UpdateKeyDescription",
)
_MEMBERS = {
    name: service_model("kms").operation_model(name).input_shape.members for name in OPERATIONS
}
# The operations whose input has DryRun, or GrantTokens, in botocore's model.
_DRY_RUN = frozenset(name for name in OPERATIONS if "DryRun" in _MEMBERS[name])
_GRANT_TOKENS = frozenset(name for name in OPERATIONS if "GrantTokens" in _MEMBERS[name])


def dry_run() -> ServiceError:
    return ServiceError(
        "DryRunOperationException",
        "The request would have succeeded, but the DryRun option is set.",
    )


def _bind(service: KeyService, operation: str) -> Handler:
    method: Handler = getattr(service, snake_case(operation))
    if operation not in _DRY_RUN and operation not in _GRANT_TOKENS:
        return method

    def checked(caller: Caller, params: Mapping[str, Any]) -> Any:
        """GrantTokens must be tokens Strongroom issued (their grants are in effect already).
        DryRun: everything is checked and done as for real, then refused, so the unit of
        work rolls the request back (a read changed nothing) and its result is dropped."""
        service.check_grant_tokens(params.get("GrantTokens"))
        output = method(caller, params)
        if params.get("DryRun"):
            raise dry_run()
        return output

    return checked


def key_arns(params: Mapping[str, Any], output: Mapping[str, Any] | None) -> list[str]:
    if output:
        metadata = output.get("KeyMetadata") or {}
        arn = metadata.get("Arn") or output.get("KeyId")
        if isinstance(arn, str) and arn.startswith("arn:"):
            return [arn]
    key_id = str(params.get("KeyId", ""))
    return [key_id] if key_id.startswith("arn:") else []


def refused(caller: Any, check: Check, denied: Exception) -> Exception:
    """A ciphertext whose key is not found (the check is on "*") or is another account's
    that the caller may not use answers as one whose key does not exist: the refusal
    neither confirms the other account's key nor tells absent from denied."""
    if (
        check.action in ("kms:Decrypt", "kms:ReEncryptFrom")
        and isinstance(denied, ServiceError)
        and denied.code == "AccessDeniedException"
        and (check.resource == "*" or check.resource_account != caller.account_id)
    ):
        return unknown_ciphertext_key()
    return denied


def kms_spec(service: KeyService) -> ServiceSpec:
    return ServiceSpec(
        "kms",
        {name: _bind(service, name) for name in OPERATIONS},
        "AWS::KMS::Key",
        key_arns,
        kms_checks(service, OPERATIONS),
        refused,
    )
