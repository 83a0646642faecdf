"""AWS's policy evaluation logic: given a request and the policies that apply, allow or deny.

Pure logic, no I/O. The rules, from the IAM User Guide ("Policy evaluation logic",
"Policy evaluation for requests within a single account", "Cross-account policy
evaluation logic", "Permissions boundaries for IAM entities", "Session policies",
"AWS JSON policy elements: Principal" and "NotPrincipal") and the KMS Developer Guide
("Key policies in AWS KMS"):

1. An explicit ``Deny`` that applies, in any policy of any type, denies.
2. The account root user has every permission in its own account that no Deny takes
   away; it has no boundary and no session policies.
3. **Same account.** The request is allowed if

   - an identity policy allows it, and the permissions boundary (if any) and the session
     policies (for a session) allow it too; or
   - the resource policy allows it *directly*: it names the caller's own ARN (IAM user,
     assumed-role session, federated-user session), or everyone (``"*"``; AWS: "Identity-
     based policy types, such as permissions boundaries or session policies, do not
     limit permissions granted using the aws:PrincipalArn condition key with a wildcard
     (*) in the Principal element"), or the calling service. Such a grant is limited by
     no implicit deny; or
   - the resource policy names the *role* of the calling session: that stands in for
     the identity policy but is still limited by the boundary and session policies.

   Naming the account (``"111122223333"`` or ``arn:aws:iam::111122223333:root``)
   delegates to the account: it allows nothing unless an identity policy allows too.
4. **Cross account** (the caller's account differs from the resource's): the resource
   policy must allow the caller (at any of those levels, the account included) *and*
   the caller's own account must allow it (identity policy, boundary, session policies).
5. **KMS key policies** (``key_policy=True``, also the right mode for role trust
   policies): IAM policies allow nothing unless the key policy lets them, by naming the
   account. Without a key-policy allow at some level, nobody has access, the root user
   included.
6. **Session policies**: for a session that was given session policies, at least one of
   them must allow (inline and managed session policies together, like identity
   policies). A role session without session policies is not limited; a federated-user
   session (GetFederationToken) without one has no permissions of its own.
7. **Role trust policies** (``bounded=True``): a trust policy that names the caller
   itself (or ``"*"``) needs no identity policy in the same account, but the caller's
   permissions boundary and session policies must still allow ``sts:AssumeRole``
   (IAM User Guide, "Permissions boundaries for IAM entities": a boundary limits what
   the entity may do, and role trust policies are an exception to the resource-policy
   rule that a direct grant escapes the boundary).

Principals match level by level, like AWS: a role ARN matches the sessions of that role
(by account and role name, since a session ARN does not show the role's path), an
account matches every principal of the account. ``NotPrincipal`` excludes a caller from
a Deny only if every level of it is listed (account; role; session or user), as AWS
warns; from an Allow, naming any level excludes it, which is the cautious reading of a
form AWS advises against.

Decisions about behaviour AWS does not spell out are marked "Decision:" below.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

from strongroom.policy.compiled import clear_compiled, compiled
from strongroom.policy.document import MALFORMED_POLICY, PolicyDocument, PolicyKind, parse_policy
from strongroom.policy.principal_levels import ACCOUNT, DIRECT, ROLE, caller_view
from strongroom.policy.variables import ContextKeys

PolicyType = Literal["identity", "resource", "permissions_boundary", "session"]
Reason = Literal["explicit_deny", "allowed", "implicit_deny"]

# --------------------------------------------------------------------------- public types


@dataclass(frozen=True)
class RequestContext:
    """What is being asked, by whom, with which condition keys.

    ``principal_arn`` is an IAM user (``arn:aws:iam::111122223333:user/alice``), a role
    session (``arn:aws:sts::111122223333:assumed-role/R/session``), a federated user
    (``arn:aws:sts::111122223333:federated-user/name``), the root user
    (``arn:aws:iam::111122223333:root``), or, for a call an AWS service makes on its own
    behalf, the service principal (``secretsmanager.amazonaws.com``).

    ``context`` maps condition keys (any case) to their values; a single-valued key is a
    1-tuple. ``aws:PrincipalArn`` and ``aws:PrincipalAccount`` are filled in from the
    principal when absent; for a session, pass the role's real ARN as
    ``aws:PrincipalArn`` if the role has a path (the session ARN does not show it).
    """

    principal_arn: str
    principal_account: str
    action: str
    resource: str
    resource_account: str | None
    context: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)
    condition_keys: ContextKeys = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        keys: dict[str, tuple[str, ...]] = {}
        for name, values in self.context.items():
            if isinstance(values, str):  # a lone string is one value, not its characters
                values = (values,)
            if values:
                keys[name.lower()] = tuple(values)
        if "aws:principalaccount" not in keys and self.principal_account:
            keys["aws:principalaccount"] = (self.principal_account,)
        if "aws:principalarn" not in keys:
            caller = caller_view(self.principal_arn, self.principal_account)
            keys["aws:principalarn"] = (caller.principal_arn,)
        object.__setattr__(self, "condition_keys", keys)


@dataclass(frozen=True)
class PolicySet:
    """The policies that apply to one request.

    ``identity``: the principal's identity policies (inline, managed, and its groups').
    ``resource``: the resource's policy (secret resource policy, KMS key policy).
    ``session_policies``: the session's inline and managed session policies.
    The ``*_names`` give each policy the label used in :attr:`Decision.matched` (a policy
    name or ARN); without them labels are ``identity[0]``, ``resource``,
    ``permissions_boundary``, ``session[0]``.
    """

    identity: Sequence[PolicyDocument] = ()
    resource: PolicyDocument | None = None
    permissions_boundary: PolicyDocument | None = None
    session_policies: Sequence[PolicyDocument] = ()
    identity_names: Sequence[str] = ()
    resource_name: str = "resource"
    permissions_boundary_name: str = "permissions_boundary"
    session_names: Sequence[str] = ()


@dataclass(frozen=True)
class Decision:
    """The outcome. ``denied_by`` names the policy type that denied (explicitly, or by
    not allowing) for AWS-style messages; ``matched`` lists (policy label, statement
    index) of the statements that decided: the applicable Deny statements for an
    explicit deny, the Allow statements of the path that granted for an allow, and
    nothing for an implicit deny."""

    allowed: bool
    reason: Reason
    denied_by: PolicyType | None
    matched: tuple[tuple[str, int], ...] = ()


# --------------------------------------------------------------------------- parse cache


@lru_cache(maxsize=2048)
def load_policy(text: str, kind: PolicyKind, error_code: str = MALFORMED_POLICY) -> PolicyDocument:
    """:func:`parse_policy`, cached by text: stored policies are parsed once.

    Invalid text raises every time (exceptions are not cached). The same text always
    yields the same document object, so its compiled form is cached too.
    """
    return parse_policy(text, kind=kind, error_code=error_code)


def clear_caches() -> None:
    """Forget parsed and compiled policies (for tests and after bulk policy changes)."""
    clear_compiled()
    load_policy.cache_clear()


# --------------------------------------------------------------------------- evaluation

Match = tuple[str, int]


def _label(names: Sequence[str], index: int, kind: str) -> str:
    return names[index] if index < len(names) else f"{kind}[{index}]"


def evaluate(
    request: RequestContext,
    policies: PolicySet,
    *,
    key_policy: bool = False,
    bounded: bool = False,
) -> Decision:
    """Allow or deny ``request`` under ``policies`` (see the module docstring).

    ``key_policy=True`` when ``policies.resource`` is a KMS key policy (or a role trust
    policy): it must allow, by itself or by naming the account for IAM policies to allow.
    ``bounded=True`` for a role trust policy: a grant that names the caller itself (or
    everyone) is still limited by the caller's permissions boundary and session policies
    (rule 7).
    """
    caller = caller_view(request.principal_arn, request.principal_account)
    keys = request.condition_keys
    action = request.action
    resource = request.resource
    denies: list[tuple[PolicyType, Match]] = []

    identity_allows: list[Match] = []
    for number, document in enumerate(policies.identity):
        for statement in compiled(document).for_action(action):
            if statement.applies(resource, keys):
                match = (_label(policies.identity_names, number, "identity"), statement.index)
                if statement.allow:
                    identity_allows.append(match)
                else:
                    denies.append(("identity", match))

    by_level: dict[int, list[Match]] = {ACCOUNT: [], ROLE: [], DIRECT: []}
    if policies.resource is not None:
        for statement in compiled(policies.resource).for_action(action):
            level = statement.principal_level(caller, keys)
            if level and statement.applies(resource, keys):
                match = (policies.resource_name, statement.index)
                if statement.allow:
                    by_level[level].append(match)
                else:
                    denies.append(("resource", match))

    boundary_allows: list[Match] = []
    if policies.permissions_boundary is not None:
        for statement in compiled(policies.permissions_boundary).for_action(action):
            if statement.applies(resource, keys):
                match = (policies.permissions_boundary_name, statement.index)
                if statement.allow:
                    boundary_allows.append(match)
                else:
                    denies.append(("permissions_boundary", match))

    session_allows: list[Match] = []
    for number, document in enumerate(policies.session_policies):
        for statement in compiled(document).for_action(action):
            if statement.applies(resource, keys):
                match = (_label(policies.session_names, number, "session"), statement.index)
                if statement.allow:
                    session_allows.append(match)
                else:
                    denies.append(("session", match))

    if denies:
        # Decision: AWS names one policy type when several deny; this names the first in
        # the order identity, resource, permissions boundary, session.
        return Decision(False, "explicit_deny", denies[0][0], tuple(m for _, m in denies))

    # Which limits hold. The root user and services have no identity policies, boundary
    # or session policies; root's identity allows everything in its account.
    if caller.kind == "root":
        identity, boundary, session = True, True, True
    elif caller.kind == "service":
        identity, boundary, session = False, True, True
    else:
        identity = bool(identity_allows)
        boundary = policies.permissions_boundary is None or bool(boundary_allows)
        # Decision: several session policies (inline and managed) allow if any allows.
        # A federated-user session without a session policy has no permissions of its own.
        session = bool(session_allows) if policies.session_policies else caller.kind != "federated"

    account_grant = by_level[ACCOUNT] + by_level[ROLE] + by_level[DIRECT]
    limits = boundary_allows + session_allows
    cross_account = (
        caller.kind != "service"
        and request.resource_account is not None
        and request.resource_account != caller.account
    )

    if cross_account:
        # Decision: when both accounts fail to allow, the caller's side is named.
        if account_grant and identity and boundary and session:
            return _allowed(account_grant + identity_allows + limits)
        if not identity:
            return _implicit("identity")
        if not boundary:
            return _implicit("permissions_boundary")
        if not session:
            return _implicit("session")
        return _implicit("resource")

    # Same account. For a key policy, IAM policies count only if the key policy lets them
    # (by naming the account, or the caller more specifically).
    via_identity = identity and (bool(account_grant) or not key_policy)
    if via_identity and boundary and session:
        delegated = account_grant if key_policy else []
        return _allowed(identity_allows + delegated + limits)
    if by_level[DIRECT] and (not bounded or (boundary and session)):
        return _allowed(by_level[DIRECT] + (limits if bounded else []))
    if by_level[ROLE] and boundary and session:
        return _allowed(by_level[ROLE] + limits)
    if key_policy and not account_grant:
        return _implicit("resource")
    if not via_identity and not by_level[ROLE] and not by_level[DIRECT]:
        return _implicit("identity")
    if not boundary:
        return _implicit("permissions_boundary")
    return _implicit("session")


def _allowed(matched: list[Match]) -> Decision:
    return Decision(True, "allowed", None, tuple(dict.fromkeys(matched)))


def _implicit(policy_type: PolicyType) -> Decision:
    return Decision(False, "implicit_deny", policy_type)


# --------------------------------------------------------------------------- messages

_EXPLICIT: Mapping[PolicyType, str] = {
    "identity": "an identity-based policy",
    "resource": "a resource-based policy",
    "permissions_boundary": "a permissions boundary",
    "session": "a session policy",
}
_IMPLICIT: Mapping[PolicyType, str] = {
    "identity": "identity-based policy",
    "resource": "resource-based policy",
    "permissions_boundary": "permissions boundary",
    "session": "session policy",
}


def _policy_arn(label: str) -> str | None:
    """The managed policy's ARN in a policy label: the label itself, or as IAM labels its
    policies, ``managed policy ARN`` with `` (via group NAME)`` after it. Inline policy
    labels hold none: policy and entity names cannot contain a colon."""
    return next((word for word in label.split() if word.startswith("arn:")), None)


def access_denied_message(request: RequestContext, decision: Decision) -> str:
    """AWS's AccessDenied text ("Troubleshooting access denied error messages", IAM User
    Guide): ``User: ARN is not authorized to perform: ACTION on resource: ARN`` followed
    by ``with an explicit deny in a|an TYPE`` or ``because no TYPE allows the ACTION
    action``.

    Like Secrets Manager, the ``on resource`` part is left out for actions on ``*``
    (ListSecrets). For an explicit deny by a managed policy of the caller's own account,
    the policy's ARN follows, as AWS has added since 2025 (the label must be the ARN).
    """
    if decision.allowed or decision.denied_by is None:
        raise ValueError("the request was allowed: there is no access-denied message")
    text = f"User: {request.principal_arn} is not authorized to perform: {request.action}"
    if request.resource != "*":
        text += f" on resource: {request.resource}"
    if decision.reason == "explicit_deny":
        text += f" with an explicit deny in {_EXPLICIT[decision.denied_by]}"
        arn = _policy_arn(decision.matched[0][0]) if decision.matched else None
        same_account = request.resource_account in (None, request.principal_account)
        if arn is not None and same_account:
            text += f": {arn}"
        return text
    return text + (
        f" because no {_IMPLICIT[decision.denied_by]} allows the {request.action} action"
    )
