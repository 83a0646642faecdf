"""What each KMS operation asks of the authorizer. A key's policy is the resource policy,
evaluated with KMS's rule that nothing is allowed unless the key policy allows it
(directly, or by delegating to the account's IAM policies)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strongroom.keys.kms import KeyRecord, KeyService, KmsCaller
from strongroom.policy.checks import Check
from strongroom.protocol.service import CheckBuilder

ContextValues = dict[str, tuple[str, ...]]


def encryption_context_keys(context: Mapping[str, str] | None) -> ContextValues:
    keys: ContextValues = {
        f"kms:EncryptionContext:{name}": (value,) for name, value in (context or {}).items()
    }
    if context:
        keys["kms:EncryptionContextKeys"] = tuple(context)
    return keys


def key_check(action: str, key: KeyRecord, context: Mapping[str, tuple[str, ...]]) -> Check:
    tags: ContextValues = {f"aws:ResourceTag/{k}": (v,) for k, v in key.tags or []}
    return Check(
        action,
        key.arn,
        key.account_id,
        key.policy,
        key_policy=True,
        context={**tags, **context},
    )


def kms_checks(service: KeyService) -> CheckBuilder:
    def checks(caller: Any, operation: str, params: Mapping[str, Any]) -> list[Check]:
        kms_caller = KmsCaller(caller.account_id, caller.region, caller.principal_arn)
        action = f"kms:{operation}"
        context: ContextValues = {"kms:CallerAccount": (caller.account_id,)}
        context.update(encryption_context_keys(params.get("EncryptionContext")))
        if str(params.get("KeyId", "")).startswith("alias/") or ":alias/" in str(
            params.get("KeyId", "")
        ):
            context["kms:RequestAlias"] = (str(params["KeyId"]).rsplit(":", 1)[-1],)

        if operation == "ReEncrypt":
            found: list[Check] = []
            source = service.blob_key(params.get("CiphertextBlob"))
            source_context = {
                **context,
                **encryption_context_keys(params.get("SourceEncryptionContext")),
            }
            if source is not None:
                found.append(key_check("kms:ReEncryptFrom", source, source_context))
            destination = service.target(kms_caller, params["DestinationKeyId"])
            if destination is not None:
                destination_context = {
                    **context,
                    **encryption_context_keys(params.get("DestinationEncryptionContext")),
                }
                found.append(key_check("kms:ReEncryptTo", destination, destination_context))
            return found or [Check(action, context=context)]

        key: KeyRecord | None
        if operation == "Decrypt":
            key = service.blob_key(params.get("CiphertextBlob"))
        elif operation in ("CreateAlias", "UpdateAlias"):
            key = service.target(kms_caller, params["TargetKeyId"])
        elif operation == "DeleteAlias":
            # A reserved alias/aws/ name is refused by the operation itself, as KMS does.
            reserved = str(params["AliasName"]).startswith("alias/aws/")
            key = None if reserved else service.target(kms_caller, params["AliasName"])
        elif params.get("KeyId"):
            key = service.target(kms_caller, params["KeyId"])
        else:
            return [Check(action, context=context)]  # CreateKey, ListKeys, GenerateRandom...
        if key is None:
            # No such key: IAM policies alone decide, and the operation then says NotFound.
            return [Check(action, context=context)]
        return [key_check(action, key, context)]

    return checks
