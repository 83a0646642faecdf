"""The authorization step of the pipeline: IAM policy evaluation for every check.

Identity policies, permissions boundaries and tags come from IAM; session policies from
the caller's temporary credentials; resource policies (secret policies, KMS key policies)
from the check. What is read from IAM is cached per principal and revalidated against
IAM's generation counter, so a policy change applies to the very next request on every
worker while an unchanged IAM costs one small read.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC
from typing import Protocol

from strongroom.clock import Clock
from strongroom.iam.credentials import Principal
from strongroom.iam.service import IdentityService, PrincipalPolicies
from strongroom.policy.checks import Check
from strongroom.policy.document import PolicyDocument
from strongroom.policy.evaluate import (
    PolicySet,
    RequestContext,
    access_denied_message,
    evaluate,
    load_policy,
)
from strongroom.protocol.errors import ServiceError

_ALLOW_ALL = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'


@dataclass(frozen=True)
class CallFacts:
    """What the authorizer knows of the request itself, for global condition keys. One per
    request: it also remembers IAM's generation, so the several checks of one request
    (the secret, then its KMS key) cost one read of it."""

    source_ip: str
    region: str
    secure_transport: bool = False
    memo: dict[str, int] = field(default_factory=dict, compare=False, repr=False)
    keys: dict[str, dict[str, tuple[str, ...]]] = field(
        default_factory=dict, compare=False, repr=False
    )


class Authorizer(Protocol):
    def authorize(self, principal: Principal, check: Check, facts: CallFacts) -> None:
        """Raise AccessDeniedException unless ``principal`` may do ``check``."""


@dataclass(frozen=True)
class _Identity:
    documents: tuple[PolicyDocument, ...]
    names: tuple[str, ...]
    boundary: PolicyDocument | None
    tags: Mapping[str, str]
    user_id: str
    user_name: str | None


class PolicyAuthorizer:
    def __init__(self, identities: IdentityService, clock: Clock) -> None:
        self._identities = identities
        self._clock = clock
        self._cache: dict[str, _Identity | None] = {}
        self._generation: int | None = None
        self._lock = threading.Lock()

    def authorize(self, principal: Principal, check: Check, facts: CallFacts) -> None:
        identity = self._identity(principal, facts)
        request = RequestContext(
            principal_arn=principal.arn,
            principal_account=principal.account_id,
            action=check.action,
            resource=check.resource,
            resource_account=check.resource_account,
            context={**self._request_keys(principal, identity, facts), **check.context},
        )
        policies = PolicySet(
            identity=identity.documents if identity else (),
            identity_names=identity.names if identity else (),
            resource=load_policy(check.resource_policy, "key" if check.key_policy else "resource")
            if check.resource_policy
            else None,
            permissions_boundary=identity.boundary if identity else None,
            session_policies=tuple(
                load_policy(text, "identity") for text in principal.session_policies
            ),
        )
        decision = evaluate(request, policies, key_policy=check.key_policy)
        if not decision.allowed:
            raise ServiceError("AccessDeniedException", access_denied_message(request, decision))

    def _identity(self, principal: Principal, facts: CallFacts) -> _Identity | None:
        if principal.kind == "root":
            return _Identity(
                (load_policy(_ALLOW_ALL, "identity"),),
                ("root",),
                None,
                {},
                principal.account_id,
                None,
            )
        if self._identities.reads_uncommitted():
            # Inside a transaction that changed IAM and may still roll back: what is read
            # here must not be remembered past it.
            found = self._identities.principal_policies(principal.identity_arn)
            return _compile(found) if found is not None else None
        generation = facts.memo.get("iam-generation")
        if generation is None:
            generation = facts.memo["iam-generation"] = self._identities.generation()
        with self._lock:
            if generation != self._generation:
                self._cache.clear()
                self._generation = generation
            if principal.identity_arn in self._cache:
                return self._cache[principal.identity_arn]
        found = self._identities.principal_policies(principal.identity_arn)
        identity = _compile(found) if found is not None else None
        with self._lock:
            if generation == self._generation:
                self._cache[principal.identity_arn] = identity
        return identity

    def _request_keys(
        self, principal: Principal, identity: _Identity | None, facts: CallFacts
    ) -> dict[str, tuple[str, ...]]:
        """The global condition keys, once per request (its checks share them)."""
        known = facts.keys.get(principal.arn)
        if known is None:
            known = facts.keys[principal.arn] = self._global_keys(principal, identity, facts)
        return known

    def _global_keys(
        self, principal: Principal, identity: _Identity | None, facts: CallFacts
    ) -> dict[str, tuple[str, ...]]:
        now = self._clock.now().astimezone(UTC)
        keys: dict[str, tuple[str, ...]] = {
            "aws:PrincipalArn": (principal.identity_arn,),
            "aws:PrincipalAccount": (principal.account_id,),
            "aws:PrincipalType": (
                {"user": "User", "assumed-role": "AssumedRole", "root": "Account"}[principal.kind],
            ),
            "aws:SourceIp": (facts.source_ip,),
            "aws:CurrentTime": (now.strftime("%Y-%m-%dT%H:%M:%SZ"),),
            "aws:EpochTime": (str(int(now.timestamp())),),
            "aws:SecureTransport": ("true" if facts.secure_transport else "false",),
            "aws:RequestedRegion": (facts.region,),
            "aws:ViaAWSService": ("false",),
        }
        if identity is not None:
            keys["aws:userid"] = (
                f"{identity.user_id}:{principal.arn.rsplit('/', 1)[-1]}"
                if principal.kind == "assumed-role"
                else identity.user_id,
            )
            if identity.user_name is not None and principal.kind == "user":
                keys["aws:username"] = (identity.user_name,)
            tags = dict(identity.tags)
        else:
            tags = {}
        tags.update(dict(principal.session_tags))  # session tags win over the role's
        for key, value in tags.items():
            keys[f"aws:PrincipalTag/{key}"] = (value,)
        if principal.source_identity:
            keys["aws:SourceIdentity"] = (principal.source_identity,)
        return keys


def _compile(found: PrincipalPolicies) -> _Identity:
    return _Identity(
        documents=tuple(load_policy(text, "identity") for _, text in found.identity),
        names=tuple(label for label, _ in found.identity),
        boundary=load_policy(found.permissions_boundary, "identity")
        if found.permissions_boundary
        else None,
        tags=found.tags,
        user_id=found.user_id,
        user_name=found.user_name,
    )
