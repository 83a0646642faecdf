"""What each KMS operation asks of the authorizer, generated from the Service
Authorization Reference (:mod:`strongroom.policy.operation_checks`). A key's policy is
the resource policy, evaluated with KMS's rule that nothing is allowed unless the key
policy allows it (directly, or by delegating to the account's IAM policies). An alias is
a resource of its own, governed by IAM policies (see :mod:`strongroom.keys.conditions`).

KMS supplies the resolvers of its two resource types (``key``, ``alias``) and its
request keys; ReEncrypt, which the reference lists as two actions, is done by hand. A
check on a key carries the key policy with what the key's grants allow the caller for
the request (:meth:`~strongroom.keys.kms_grants.Grants.grant_policy`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from strongroom.keys.conditions import (
    ContextValues,
    alias_arn,
    encryption_context_keys,
    key_check,
    key_resource_keys,
    operation_request_keys,
    re_encrypt_keys,
    request_alias_keys,
)
from strongroom.keys.kms import KeyRecord, KeyService
from strongroom.keys.kms_common import ignores_ciphertext
from strongroom.policy.operation_checks import (
    Authorization,
    CheckBuilder,
    Resolver,
    Resource,
    reference_checks,
)
from strongroom.types import Check

# The operations the reference gives no condition key at all.
_NO_KEYS = frozenset({"ListRetirableGrants"})


def key_resource(
    key: KeyRecord, policy: str | None = None, extra: ContextValues | None = None
) -> Resource:
    """A key as the resource of a check: its key policy (KMS semantics; ``policy`` when
    grants add to it) and the condition keys it defines (tags, aliases, attributes, and
    ``extra``: those of the grant a RetireGrant names)."""
    keys = key_resource_keys(key)
    if extra:
        keys.update(extra)
    return Resource(key.arn, key.account_id, policy or key.policy, key_policy=True, keys=keys)


def kms_request_keys(caller: Any, operation: str, params: Mapping[str, Any]) -> ContextValues:
    """The condition keys KMS's request members define."""
    action = f"kms:{operation}"
    if operation in _NO_KEYS:
        return {}
    context: ContextValues = {"kms:CallerAccount": (caller.account_id,)}
    context.update(encryption_context_keys(params.get("EncryptionContext")))
    context.update(request_alias_keys(action, params.get("KeyId")))
    context.update(operation_request_keys(action, params))
    return context


def key_resolver(service: KeyService) -> Resolver:
    """The resolver of the ``key`` resource type: the stored key a request names (by id,
    ARN or alias, or by its ciphertext for Decrypt); for an alias operation every key the
    change affects: the new target, and for UpdateAlias and DeleteAlias the key the alias
    points to now. None found: IAM policies alone decide on "*", and the operation then
    says NotFound."""

    def resolve(caller: Any, operation: str, params: Mapping[str, Any]) -> Sequence[Resource]:
        found: list[KeyRecord] = []
        if operation == "Decrypt" and ignores_ciphertext(params):
            key = service.target(caller, params["KeyId"]) if params.get("KeyId") else None
            found = [key] if key is not None else []
        elif operation == "Decrypt":
            key = service.blob_key(caller, params.get("CiphertextBlob"))
            found = [key] if key is not None else []
        elif operation in ("CreateAlias", "UpdateAlias", "DeleteAlias"):
            if operation != "DeleteAlias":
                target = service.target(caller, params["TargetKeyId"])
                found = [target] if target is not None else []
            name = str(params["AliasName"])
            # A reserved alias/aws/ name is refused by the operation itself, as KMS does.
            if operation != "CreateAlias" and not name.startswith("alias/aws/"):
                current = service.target(caller, name)
                if current is not None and all(current.key_id != k.key_id for k in found):
                    found.append(current)
        elif operation == "RetireGrant":
            key = service.retire_target(caller, params)
            if key is not None:
                extra = service.retire_grant_keys(caller, params)
                policy = service.grant_policy(caller, key, operation, params)
                return [key_resource(key, policy, extra)]
        elif params.get("KeyId"):
            key = service.target(caller, params["KeyId"])
            found = [key] if key is not None else []
        return [
            key_resource(key, service.grant_policy(caller, key, operation, params)) for key in found
        ]

    return resolve


def alias_resolver(caller: Any, _operation: str, params: Mapping[str, Any]) -> Sequence[Resource]:
    """The resolver of the ``alias`` resource type: the alias the request names. An alias
    has no policy: IAM policies decide."""
    arn = alias_arn(caller.region, caller.account_id, str(params["AliasName"]))
    return [Resource(arn, caller.account_id)]


def _re_encrypt(service: KeyService) -> CheckBuilder:
    """ReEncrypt is authorized as two actions the reference lists separately,
    kms:ReEncryptFrom on the ciphertext's key and kms:ReEncryptTo on the destination,
    each with its own encryption context, algorithm and alias (KMS Developer Guide,
    "ReEncrypt": "To perform this operation, you need two permissions")."""

    def checks(caller: Any, operation: str, params: Mapping[str, Any]) -> list[Check]:
        base: ContextValues = {"kms:CallerAccount": (caller.account_id,)}
        if ignores_ciphertext(params):
            source_ref = params.get("SourceKeyId")
            source = service.target(caller, source_ref) if source_ref else None
        else:
            source = service.blob_key(caller, params.get("CiphertextBlob"))
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
            found.append(
                key_check(
                    "kms:ReEncryptFrom",
                    source,
                    context,
                    service.grant_policy(caller, source, "ReEncryptFrom", params),
                )
            )
        if destination is not None:
            context = {
                **base,
                **encryption_context_keys(params.get("DestinationEncryptionContext")),
                **request_alias_keys("kms:ReEncryptTo", params.get("DestinationKeyId")),
                **operation_request_keys("kms:ReEncryptTo", params),
                **same,
            }
            found.append(
                key_check(
                    "kms:ReEncryptTo",
                    destination,
                    context,
                    service.grant_policy(caller, destination, "ReEncryptTo", params),
                )
            )
        return found or [Check(f"kms:{operation}", context=base)]

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
