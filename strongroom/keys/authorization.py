"""What each KMS operation asks of the authorizer. A key's policy is the resource policy,
evaluated with KMS's rule that nothing is allowed unless the key policy allows it
(directly, or by delegating to the account's IAM policies)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from strongroom.keys.kms import KeyRecord, KeyService, KmsCaller
from strongroom.policy.checks import Check
from strongroom.policy.operation_checks import (
    Authorization,
    CheckBuilder,
    Resolver,
    Resource,
    reference_checks,
)

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


def _kms_caller(caller: Any) -> KmsCaller:
    return KmsCaller(caller.account_id, caller.region, caller.principal_arn)


def key_resource(key: KeyRecord) -> Resource:
    """A key as the resource of a check: its key policy (KMS semantics) and tags."""
    tags: ContextValues = {f"aws:ResourceTag/{k}": (v,) for k, v in key.tags or []}
    return Resource(key.arn, key.account_id, key.policy, key_policy=True, keys=tags)


def kms_request_keys(caller: Any, _operation: str, params: Mapping[str, Any]) -> ContextValues:
    """The condition keys KMS's request members define."""
    context: ContextValues = {"kms:CallerAccount": (caller.account_id,)}
    context.update(encryption_context_keys(params.get("EncryptionContext")))
    context.update(_request_alias(params.get("KeyId")))
    return context


def _request_alias(key_id: Any) -> ContextValues:
    """``kms:RequestAlias``: the alias a request names its key by, if it does."""
    named = str(key_id or "")
    if named.startswith("alias/") or ":alias/" in named:
        return {"kms:RequestAlias": (named.rsplit(":", 1)[-1],)}
    return {}


def key_resolver(service: KeyService) -> Resolver:
    """The resolver of the ``key`` resource type: the stored key a request names (by id,
    ARN or alias, by its ciphertext for Decrypt, by the alias's target for aliases).
    None found: IAM policies alone decide on "*", and the operation then says NotFound."""

    def resolve(caller: Any, operation: str, params: Mapping[str, Any]) -> Sequence[Resource]:
        kms_caller = _kms_caller(caller)
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
            key = None
        return [key_resource(key)] if key is not None else []

    return resolve


def alias_resolver(caller: Any, _operation: str, params: Mapping[str, Any]) -> Sequence[Resource]:
    """The resolver of the ``alias`` resource type: the alias the request names."""
    name = str(params["AliasName"])
    arn = f"arn:aws:kms:{caller.region}:{caller.account_id}:{name}"
    return [Resource(arn, caller.account_id)]


def _re_encrypt(service: KeyService) -> CheckBuilder:
    """ReEncrypt is authorized as two actions the reference lists separately,
    kms:ReEncryptFrom on the source key and kms:ReEncryptTo on the destination (KMS
    Developer Guide, "ReEncrypt": "To perform this operation, you need two
    permissions")."""

    def checks(caller: Any, operation: str, params: Mapping[str, Any]) -> list[Check]:
        context = dict(kms_request_keys(caller, operation, params))
        found: list[Check] = []
        source = service.blob_key(params.get("CiphertextBlob"))
        source_context = {
            **context,
            **encryption_context_keys(params.get("SourceEncryptionContext")),
            **_request_alias(params.get("SourceKeyId")),
        }
        if source is not None:
            found.append(key_check("kms:ReEncryptFrom", source, source_context))
        destination = service.target(_kms_caller(caller), params["DestinationKeyId"])
        if destination is not None:
            destination_context = {
                **context,
                **encryption_context_keys(params.get("DestinationEncryptionContext")),
                **_request_alias(params.get("DestinationKeyId")),
            }
            found.append(key_check("kms:ReEncryptTo", destination, destination_context))
        return found or [Check(f"kms:{operation}", context=context)]

    return checks


def kms_authorization(service: KeyService) -> Authorization:
    return Authorization(
        "kms",
        {"key": key_resolver(service), "alias": alias_resolver},
        kms_request_keys,
        replace={"ReEncrypt": _re_encrypt(service)},
    )


def kms_checks(service: KeyService, operations: Sequence[str]) -> CheckBuilder:
    return reference_checks(kms_authorization(service), operations)
