"""What each STS operation asks of the authorizer, generated from the Service
Authorization Reference (:mod:`strongroom.policy.operation_checks`).

``sts:AssumeRole`` is authorized on the role like any other action, with the role's
trust policy as its resource policy, evaluated with key-policy semantics (IAM User
Guide, "How IAM roles differ from resource-based policies", and the AssumeRole API
reference):

- a trust policy that names the caller (its user or role session ARN, or the role of its
  session) lets it in by itself when it is in the role's account;
- one that names the caller's account (``arn:aws:iam::ACCOUNT:root``) delegates: the
  caller's own identity policies must allow ``sts:AssumeRole`` on the role too;
- from another account the caller's identity policies must always allow it as well;
- passing session tags (or inheriting transitive ones) needs ``sts:TagSession``, and a
  source identity (passed, or carried by a chained session) ``sts:SetSourceIdentity``,
  checked the same way (IAM User Guide,
  "Passing session tags in AWS STS" and "Monitor and control actions taken with assumed
  roles").

The role's tags are ``aws:ResourceTag/*`` and ``iam:ResourceTag/*``. A role that does
not exist is refused like one whose trust policy says no.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import lru_cache
from typing import Any

from strongroom.iam.credentials import CredentialStore
from strongroom.iam.service import IdentityService
from strongroom.iam.sts import (
    inherited_tags,
    principal_of,
    requested_tags,
    role_named,
    source_identity,
    transitive_keys,
)
from strongroom.policy import reference
from strongroom.policy.checks import Check
from strongroom.policy.operation_checks import (
    Authorization,
    CheckBuilder,
    ContextValues,
    Resource,
    reference_checks,
)
from strongroom.protocol.errors import ServiceError
from strongroom.protocol.query_codec import modeled_error

Params = Mapping[str, Any]


@lru_cache(maxsize=1024)
def trust_policy_text(text: str) -> str:
    """A role's trust policy as a resource policy of the role: its statements name no
    resource (the role is the resource), so each gets ``"*"`` for the engine."""
    parsed = json.loads(text)
    statements = parsed.get("Statement")
    for statement in statements if isinstance(statements, list) else [statements]:
        if isinstance(statement, dict) and "NotResource" not in statement:
            statement.setdefault("Resource", "*")
    return json.dumps(parsed)


def refused(caller: Any, check: Check, denied: Exception) -> Exception:
    """STS's AccessDenied: it names no reason, so it tells neither whether the role
    exists nor which policy said no."""
    if not isinstance(denied, ServiceError) or denied.code != "AccessDeniedException":
        return denied
    return modeled_error(
        "sts",
        "AccessDenied",
        f"User: {principal_of(caller).arn} is not authorized to perform: {check.action} "
        f"on resource: {check.resource}",
    )


def _no_permission(_caller: Any, _operation: str, _params: Params) -> list[Check]:
    # GetCallerIdentity and GetSessionToken API references: "No permissions are required
    # to perform this operation."
    return []


class StsResolvers:
    def __init__(self, identities: IdentityService, credentials: CredentialStore) -> None:
        self._identities = identities
        self._credentials = credentials

    def role(self, caller: Any, _operation: str, params: Params) -> Sequence[Resource]:
        arn = str(params["RoleArn"])
        account = arn.split(":")[4] if arn.count(":") >= 5 else None
        role = role_named(self._identities, arn)
        if role is None:
            # No trust policy: nothing lets the caller in (key-policy semantics).
            return [Resource(arn, account, key_policy=True)]
        keys: dict[str, tuple[str, ...]] = {}
        for key, value in role.tags.items():
            keys[f"aws:ResourceTag/{key}"] = (value,)
            keys[f"iam:ResourceTag/{key}"] = (value,)
        policy = trust_policy_text(role.trust_policy)
        return [Resource(role.arn, account, policy, key_policy=True, keys=keys, bounded=True)]

    def federated_user(self, caller: Any, _operation: str, params: Params) -> Sequence[Resource]:
        """GetFederationToken's resource: the federated user it names, in the caller's
        account (it has no policy of its own)."""
        account = principal_of(caller).account_id
        return [Resource(f"arn:aws:sts::{account}:federated-user/{params['Name']}", account)]

    def request_keys(self, caller: Any, operation: str, params: Params) -> ContextValues:
        if operation == "GetFederationToken":
            return _tag_keys(requested_tags(params.get("Tags")))
        if operation != "AssumeRole":
            return {}
        principal = principal_of(caller)
        keys: dict[str, tuple[str, ...]] = {"sts:RoleSessionName": (params["RoleSessionName"],)}
        if params.get("SerialNumber") and params.get("TokenCode"):
            # "MFA-protected API access": a trust policy's aws:MultiFactorAuthPresent reads
            # the code given with this very request. AssumeRole verifies it before it
            # issues anything and refuses the request if it is not valid.
            keys["aws:MultiFactorAuthPresent"] = ("true",)
            keys["aws:MultiFactorAuthAge"] = ("0",)
        if params.get("ExternalId") is not None:
            keys["sts:ExternalId"] = (params["ExternalId"],)
        tags = requested_tags(params.get("Tags"))
        keys.update(_tag_keys(tags))
        transitive = transitive_keys(params.get("TransitiveTagKeys"), tags)
        if transitive:
            keys["sts:TransitiveTagKeys"] = tuple(transitive)
        identity = source_identity(params.get("SourceIdentity"), principal)
        if identity is not None:
            keys["sts:SourceIdentity"] = (identity,)
        return keys

    def session_permissions(
        self, caller: Any, params: Params, found: Sequence[Check]
    ) -> list[Check]:
        """sts:TagSession when the new session gets tags (passed or inherited), and
        sts:SetSourceIdentity when it gets a source identity (passed or carried from the
        calling session), on the same role."""
        principal = principal_of(caller)
        session = (
            self._credentials.session(principal.access_key_id) if principal.session_token else None
        )
        more: list[Check] = []
        if params.get("Tags") or inherited_tags(session):
            more.extend(_as(found, "TagSession"))
        if params.get("SourceIdentity") or principal.source_identity:
            # A chained session carries its source identity: AWS requires
            # sts:SetSourceIdentity whenever the new session has one.
            more.extend(_as(found, "SetSourceIdentity"))
        return more


def _tag_keys(tags: Sequence[tuple[str, str]]) -> dict[str, tuple[str, ...]]:
    """``aws:RequestTag/*`` and ``aws:TagKeys`` of the session tags a request passes."""
    keys: dict[str, tuple[str, ...]] = {f"aws:RequestTag/{key}": (value,) for key, value in tags}
    if tags:
        keys["aws:TagKeys"] = tuple(key for key, _ in tags)
    return keys


def _as(found: Sequence[Check], name: str) -> list[Check]:
    """The checks of AssumeRole as checks of ``sts:<name>``, with the keys it lists."""
    action = reference.action("sts", name)
    return [
        replace(
            check,
            action=action.iam_action,
            context={k: v for k, v in check.context.items() if action.lists_key(k)},
        )
        for check in found
    ]


def sts_authorization(identities: IdentityService, credentials: CredentialStore) -> Authorization:
    resolvers = StsResolvers(identities, credentials)
    return Authorization(
        "sts",
        {"role": resolvers.role, "federated-user": resolvers.federated_user},
        resolvers.request_keys,
        replace={"GetCallerIdentity": _no_permission, "GetSessionToken": _no_permission},
        dependent={"AssumeRole": resolvers.session_permissions},
    )


def sts_checks(
    identities: IdentityService, credentials: CredentialStore, operations: Sequence[str]
) -> CheckBuilder:
    return reference_checks(sts_authorization(identities, credentials), operations)
