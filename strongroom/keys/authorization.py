"""What each KMS operation asks of the authorizer. A key's policy is the resource policy,
evaluated with KMS's rule that nothing is allowed unless the key policy allows it
(directly, or by delegating to the account's IAM policies). An alias is a resource of
its own, governed by IAM policies (see :mod:`strongroom.keys.conditions`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strongroom.keys.conditions import (
    ContextValues,
    alias_check,
    encryption_context_keys,
    key_check,
    operation_request_keys,
    re_encrypt_keys,
    request_alias_keys,
)
from strongroom.keys.kms import KeyRecord, KeyService
from strongroom.types import Caller, Check, CheckBuilder

_ALIAS_OPERATIONS = ("CreateAlias", "UpdateAlias", "DeleteAlias")


def re_encrypt_checks(
    service: KeyService, caller: Caller, params: Mapping[str, Any], base: ContextValues
) -> list[Check]:
    """ReEncrypt: kms:ReEncryptFrom on the ciphertext's key, kms:ReEncryptTo on the
    destination, each with its own encryption context, algorithm and alias."""
    source = service.blob_key(params.get("CiphertextBlob"))
    destination = service.target(caller, params["DestinationKeyId"])
    same = re_encrypt_keys(source, destination)
    found: list[Check] = []
    if source is not None:
        context = {
            **base,
            **encryption_context_keys(params.get("SourceEncryptionContext")),
            **request_alias_keys("kms:ReEncryptFrom", params.get("SourceKeyId")),
            **operation_request_keys("kms:ReEncryptFrom", params),
            **same,
        }
        found.append(key_check("kms:ReEncryptFrom", source, context))
    if destination is not None:
        context = {
            **base,
            **encryption_context_keys(params.get("DestinationEncryptionContext")),
            **request_alias_keys("kms:ReEncryptTo", params.get("DestinationKeyId")),
            **operation_request_keys("kms:ReEncryptTo", params),
            **same,
        }
        found.append(key_check("kms:ReEncryptTo", destination, context))
    return found or [Check("kms:ReEncrypt", context=base)]


def alias_checks(
    service: KeyService,
    caller: Caller,
    operation: str,
    params: Mapping[str, Any],
    base: ContextValues,
) -> list[Check]:
    """CreateAlias, UpdateAlias, DeleteAlias: the action on the alias (IAM policies) and
    on every key the change affects: the new target, and for UpdateAlias and DeleteAlias
    the key the alias points to now."""
    action = f"kms:{operation}"
    name = str(params["AliasName"])
    found = [alias_check(action, caller.region, caller.account_id, name, base)]
    affected: list[KeyRecord] = []
    if operation in ("CreateAlias", "UpdateAlias"):
        target = service.target(caller, params["TargetKeyId"])
        if target is not None:
            affected.append(target)
    # A reserved alias/aws/ name is refused by the operation itself, as KMS does.
    if operation in ("UpdateAlias", "DeleteAlias") and not name.startswith("alias/aws/"):
        current = service.target(caller, name)
        if current is not None and all(current.key_id != k.key_id for k in affected):
            affected.append(current)
    found.extend(key_check(action, key, base) for key in affected)
    return found


def kms_checks(service: KeyService) -> CheckBuilder:
    def checks(caller: Caller, operation: str, params: Mapping[str, Any]) -> list[Check]:
        action = f"kms:{operation}"
        context: ContextValues = {"kms:CallerAccount": (caller.account_id,)}
        if operation == "ReEncrypt":
            return re_encrypt_checks(service, caller, params, context)
        if operation in _ALIAS_OPERATIONS:
            return alias_checks(service, caller, operation, params, context)

        context.update(encryption_context_keys(params.get("EncryptionContext")))
        context.update(request_alias_keys(action, params.get("KeyId")))
        context.update(operation_request_keys(action, params))
        key: KeyRecord | None
        if operation == "Decrypt":
            key = service.blob_key(params.get("CiphertextBlob"))
        elif params.get("KeyId"):
            key = service.target(caller, params["KeyId"])
        else:
            return [Check(action, context=context)]  # CreateKey, ListKeys, GenerateRandom...
        if key is None:
            # No such key: IAM policies alone decide, and the operation then says NotFound.
            return [Check(action, context=context)]
        return [key_check(action, key, context)]

    return checks
