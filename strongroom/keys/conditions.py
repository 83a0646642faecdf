"""The condition keys of KMS authorization, with the values AWS gives them: the key
resource's attributes, and what each operation's request defines (Service
Authorization Reference for KMS, and the KMS developer guide's condition keys page).

Two resource types: a key, whose key policy governs it, and an alias, which has no
policy of its own and is governed by IAM policies alone ("Controlling access to
aliases"). An alias operation needs the permission on the alias and on every key it
affects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from strongroom.policy.checks import Check

if TYPE_CHECKING:
    from strongroom.keys.kms import KeyRecord

ContextValues = dict[str, tuple[str, ...]]

SYMMETRIC = "SYMMETRIC_DEFAULT"
# The attributes of every key Strongroom makes, and CreateKey's defaults for them.
KEY_USAGE = "ENCRYPT_DECRYPT"
ORIGIN = "AWS_KMS"

# Request members whose value, when the request gives one, is a condition key: AWS
# documents each as constraining "the values principals can specify in" the member.
_MEMBER_KEYS: dict[str, dict[str, str]] = {
    "CreateKey": {"BypassPolicyLockoutSafetyCheck": "kms:BypassPolicyLockoutSafetyCheck"},
    "PutKeyPolicy": {"BypassPolicyLockoutSafetyCheck": "kms:BypassPolicyLockoutSafetyCheck"},
    "ScheduleKeyDeletion": {"PendingWindowInDays": "kms:ScheduleKeyDeletionPendingWindowInDays"},
    "EnableKeyRotation": {"RotationPeriodInDays": "kms:RotationPeriodInDays"},
}

# The member naming each operation's encryption algorithm; absent, it is the default
# (symmetric) one. GenerateDataKey* have no member: they always use the default.
_ALGORITHM_MEMBER = {
    "Encrypt": "EncryptionAlgorithm",
    "Decrypt": "EncryptionAlgorithm",
    "GenerateDataKey": None,
    "GenerateDataKeyWithoutPlaintext": None,
    "ReEncryptFrom": "SourceEncryptionAlgorithm",
    "ReEncryptTo": "DestinationEncryptionAlgorithm",
}


# The actions of the operations we serve that the reference gives kms:RequestAlias.
_REQUEST_ALIAS_ACTIONS = frozenset(
    f"kms:{name}"
    for name in (
        "Decrypt",
        "DescribeKey",
        "Encrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "ReEncryptFrom",
        "ReEncryptTo",
    )
)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# The attributes every key Strongroom makes has, as condition keys (key_resource_keys):
# copied into each check's context in one step.
_FIXED_KEY_KEYS: ContextValues = {
    "kms:KeySpec": (SYMMETRIC,),
    "kms:KeyUsage": (KEY_USAGE,),
    "kms:KeyOrigin": (ORIGIN,),
    "kms:MultiRegion": ("false",),
}


def key_resource_keys(key: KeyRecord) -> ContextValues:
    """The condition keys of a key resource: its tags, aliases and fixed attributes."""
    tags = key.tags
    keys: ContextValues = {f"aws:ResourceTag/{k}": (v,) for k, v in tags} if tags else {}
    if key.aliases:
        keys["kms:ResourceAliases"] = key.aliases
    keys.update(_FIXED_KEY_KEYS)
    return keys


def encryption_context_keys(context: Mapping[str, str] | None) -> ContextValues:
    keys: ContextValues = {
        f"kms:EncryptionContext:{name}": (value,) for name, value in (context or {}).items()
    }
    if context:
        keys["kms:EncryptionContextKeys"] = tuple(context)
    return keys


def request_alias_keys(action: str, ref: Any) -> ContextValues:
    """kms:RequestAlias: the alias a request names its key by (alias name or alias ARN),
    for the actions the reference gives the key to (cryptographic ones, DescribeKey)."""
    text = str(ref or "")
    if action not in _REQUEST_ALIAS_ACTIONS:
        return {}
    if text.startswith("alias/") or ":alias/" in text:
        return {"kms:RequestAlias": (text.rsplit(":", 1)[-1],)}
    return {}


def tag_request_keys(operation: str, params: Mapping[str, Any]) -> ContextValues:
    """aws:RequestTag/* and aws:TagKeys of CreateKey, TagResource and UntagResource."""
    keys: ContextValues = {}
    if operation in ("CreateKey", "TagResource") and params.get("Tags"):
        tags = params["Tags"]
        for tag in tags:
            keys[f"aws:RequestTag/{tag.get('TagKey', '')}"] = (tag.get("TagValue", ""),)
        keys["aws:TagKeys"] = tuple(tag.get("TagKey", "") for tag in tags)
    if operation == "UntagResource" and params.get("TagKeys"):
        keys["aws:TagKeys"] = tuple(params["TagKeys"])
    return keys


def grant_constraint_keys(constraints: Mapping[str, Any] | None) -> ContextValues:
    """The keys a grant's constraints define (CreateGrant's request, RetireGrant's grant):
    kms:GrantConstraintType and the constraint's encryption context."""
    if not constraints:
        return {}
    keys: ContextValues = {}
    kinds = tuple(
        kind
        for kind in ("EncryptionContextEquals", "EncryptionContextSubset")
        if constraints.get(kind) is not None
    )
    if kinds:
        keys["kms:GrantConstraintType"] = kinds
    for kind in kinds:
        keys.update(encryption_context_keys(constraints[kind]))
    return keys


def grant_request_keys(operation: str, params: Mapping[str, Any]) -> ContextValues:
    """The grant keys of CreateGrant's members, and kms:GrantIsForAWSResource: a request
    to Strongroom's KMS API never comes from an AWS service's integration."""
    keys: ContextValues = {}
    if operation in ("CreateGrant", "ListGrants", "RevokeGrant"):
        keys["kms:GrantIsForAWSResource"] = ("false",)
    if operation != "CreateGrant":
        return keys
    keys["kms:GrantOperations"] = tuple(str(o) for o in params.get("Operations") or ())
    for member, key in (
        ("GranteePrincipal", "kms:GranteePrincipal"),
        ("RetiringPrincipal", "kms:RetiringPrincipal"),
        ("GranteeServicePrincipal", "kms:GranteeServicePrincipal"),
        ("RetiringServicePrincipal", "kms:RetiringServicePrincipal"),
    ):
        if params.get(member):
            keys[key] = (str(params[member]),)
    constraints = params.get("Constraints") or {}
    keys.update(grant_constraint_keys(constraints))
    if constraints.get("SourceArn"):
        keys["kms:GrantConstraintSourceArn"] = (str(constraints["SourceArn"]),)
    return keys


def create_key_request_keys(params: Mapping[str, Any]) -> ContextValues:
    """The attributes of the key CreateKey would make, as the request asks or defaults."""
    spec = params.get("KeySpec") or params.get("CustomerMasterKeySpec") or SYMMETRIC
    return {
        "kms:KeySpec": (str(spec),),
        "kms:KeyUsage": (str(params.get("KeyUsage") or KEY_USAGE),),
        "kms:KeyOrigin": (str(params.get("Origin") or ORIGIN),),
        "kms:MultiRegion": (_text(bool(params.get("MultiRegion"))),),
    }


def operation_request_keys(action: str, params: Mapping[str, Any]) -> ContextValues:
    """The request keys of ``action`` (``kms:Name``) that its members define, besides
    encryption context, aliases and tags."""
    operation = action.removeprefix("kms:")
    keys: ContextValues = {
        key: (_text(params[member]),)
        for member, key in _MEMBER_KEYS.get(operation, {}).items()
        if params.get(member) is not None
    }
    if operation in _ALGORITHM_MEMBER:
        member = _ALGORITHM_MEMBER[operation]
        algorithm = params.get(member) if member else None
        keys["kms:EncryptionAlgorithm"] = (str(algorithm or SYMMETRIC),)
    if operation == "CreateKey":
        keys.update(create_key_request_keys(params))
    keys.update(grant_request_keys(operation, params))
    keys.update(tag_request_keys(operation, params))
    return keys


def re_encrypt_keys(source: KeyRecord | None, destination: KeyRecord | None) -> ContextValues:
    """kms:ReEncryptOnSameKey: whether ReEncrypt's source and destination are one key."""
    if source is None or destination is None:
        return {}
    return {"kms:ReEncryptOnSameKey": (_text(source.key_id == destination.key_id),)}


def key_check(
    action: str,
    key: KeyRecord,
    context: Mapping[str, tuple[str, ...]],
    policy: str | None = None,
) -> Check:
    """``action`` on ``key``: decided by its key policy (``policy``: with what grants add
    to it), with its resource keys."""
    return Check(
        action,
        key.arn,
        key.account_id,
        policy or key.policy,
        key_policy=True,
        context={**key_resource_keys(key), **context},
    )


def key_use_check(
    action: str,
    key: KeyRecord,
    via_service: str,
    caller_account: str,
    encryption_context: Mapping[str, str],
    policy: str | None = None,
) -> Check:
    """:func:`key_check` of a key used on a caller's behalf by a service (Secrets Manager
    decrypting a secret's value): kms:ViaService, kms:CallerAccount and the encryption
    context's keys, after the key's own. Built as one dictionary (a check per read), with
    the same items in the same order as ``key_check(action, key, {"kms:ViaService": ...,
    "kms:CallerAccount": ..., **encryption_context_keys(encryption_context)}, policy)``."""
    context = key_resource_keys(key)
    context["kms:ViaService"] = (via_service,)
    context["kms:CallerAccount"] = (caller_account,)
    if encryption_context:
        for name, value in encryption_context.items():
            context[f"kms:EncryptionContext:{name}"] = (value,)
        context["kms:EncryptionContextKeys"] = tuple(encryption_context)
    return Check(
        action, key.arn, key.account_id, policy or key.policy, key_policy=True, context=context
    )


def alias_arn(region: str, account: str, alias_name: str) -> str:
    return f"arn:aws:kms:{region}:{account}:{alias_name}"


def alias_check(
    action: str, region: str, account: str, alias_name: str, context: Mapping[str, Any]
) -> Check:
    """``action`` on the alias resource: an alias has no policy, IAM policies decide."""
    return Check(action, alias_arn(region, account, alias_name), account, context=dict(context))
