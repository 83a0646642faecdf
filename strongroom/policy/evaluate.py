# long module: being changed by issue 19 in parallel; to be split after that merges (issue 13
# section 3).
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
from threading import Lock
from typing import Literal

from strongroom.policy.conditions import Condition, compile_conditions
from strongroom.policy.document import (
    CURRENT_VERSION,
    MALFORMED_POLICY,
    PolicyDocument,
    PolicyKind,
    Principal,
    Statement,
    parse_policy,
)
from strongroom.policy.matching import ActionMatcher, ArnMatcher
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
            caller = _caller(self.principal_arn, self.principal_account)
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


# --------------------------------------------------------------------------- the caller

CallerKind = Literal["root", "user", "session", "federated", "service", "other"]

NO_MATCH, ACCOUNT, ROLE, DIRECT = 0, 1, 2, 3
"""How a resource-policy principal matches the caller, weakest to strongest (see the
module docstring, rule 3)."""


@dataclass(frozen=True, slots=True)
class _Caller:
    kind: CallerKind
    arn: str
    account: str
    partition: str
    role_name: str | None  # for a role session

    @property
    def principal_arn(self) -> str:
        """``aws:PrincipalArn``: the role's ARN for a role session (without a path)."""
        if self.kind == "session" and self.role_name is not None:
            return f"arn:{self.partition}:iam::{self.account}:role/{self.role_name}"
        return self.arn


@lru_cache(maxsize=4096)
def _caller(arn: str, account: str) -> _Caller:
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        kind: CallerKind = "service" if "." in arn and ":" not in arn else "other"
        return _Caller(kind, arn, account, "aws", None)
    _, partition, service, _, arn_account, resource = parts
    account = arn_account or account
    if service == "iam" and resource == "root":
        return _Caller("root", arn, account, partition, None)
    if service == "iam" and resource.startswith("user/"):
        return _Caller("user", arn, account, partition, None)
    if service == "sts" and resource.startswith("assumed-role/"):
        role = resource.split("/")
        return _Caller("session", arn, account, partition, role[1] if len(role) > 2 else None)
    if service == "sts" and resource.startswith("federated-user/"):
        return _Caller("federated", arn, account, partition, None)
    return _Caller("other", arn, account, partition, None)


class _Principals:
    """A Principal/NotPrincipal element, indexed for matching."""

    __slots__ = ("accounts", "arns", "everyone", "roles", "services", "unique_ids")

    def __init__(self, principal: Principal) -> None:
        self.everyone = principal.is_everyone
        accounts: set[str] = set()
        arns: set[str] = set()
        roles: set[tuple[str, str]] = set()
        unique_ids: set[str] = set()
        for value in principal.entries.get("AWS", ()):
            parts = value.split(":", 5)
            if len(parts) == 1:
                (unique_ids if value.startswith("A") else accounts).add(value)
            elif len(parts) == 6 and parts[2] == "iam" and parts[5] == "root":
                accounts.add(parts[4])
            elif len(parts) == 6 and parts[2] == "iam" and parts[5].startswith("role/"):
                # A role ARN may carry a path; its sessions' ARNs show only the name.
                roles.add((parts[4], parts[5].rsplit("/", 1)[1]))
                arns.add(value)
            else:
                arns.add(value)
        self.accounts = frozenset(accounts)
        self.arns = frozenset(arns)
        self.roles = frozenset(roles)
        self.unique_ids = frozenset(unique_ids)
        # Decision: Federated and CanonicalUser principals never match: web-identity,
        # SAML and S3 canonical-user callers do not exist here.
        self.services = frozenset(v.lower() for v in principal.entries.get("Service", ()))

    def levels(self, caller: _Caller, keys: ContextKeys) -> list[bool]:
        """For each level of the caller's identity, whether this element names it."""
        if caller.kind == "service":
            return [self.everyone or caller.arn.lower() in self.services]
        userid = keys.get("aws:userid", ("",))[0]
        account = self.everyone or caller.account in self.accounts
        if caller.kind == "root":
            return [account]
        own = self.everyone or caller.arn in self.arns or userid in self.unique_ids
        if caller.kind == "session":
            role = (
                self.everyone
                or (caller.account, caller.role_name or "") in self.roles
                or userid.split(":", 1)[0] in self.unique_ids
            )
            return [account, role, own]
        return [account, own]

    def level(self, caller: _Caller, keys: ContextKeys) -> int:
        """How strongly a Principal element naming these values matches the caller."""
        if self.everyone:
            return DIRECT
        named = self.levels(caller, keys)
        if caller.kind in ("service", "root"):
            return DIRECT if named[0] else NO_MATCH
        if named[-1]:
            return DIRECT
        if caller.kind == "session" and named[1]:
            return ROLE
        return ACCOUNT if named[0] else NO_MATCH


# --------------------------------------------------------------------------- compiled policies


class _Statement:
    __slots__ = (
        "actions",
        "allow",
        "conditions",
        "index",
        "not_action",
        "not_principal",
        "not_resource",
        "principals",
        "resources",
    )

    def __init__(self, index: int, statement: Statement, *, variables: bool) -> None:
        self.index = index
        self.allow = statement.effect == "Allow"
        self.not_action = statement.action is None
        self.actions = ActionMatcher(statement.action or statement.not_action or ())
        self.not_resource = statement.resource is None
        self.resources = ArnMatcher(
            statement.resource or statement.not_resource or (),
            variables=variables,
            resource_part_only=True,
        )
        self.not_principal = statement.not_principal is not None
        element = statement.principal or statement.not_principal
        self.principals = _Principals(element) if element is not None else None
        self.conditions: tuple[Condition, ...] = compile_conditions(
            statement.condition, variables=variables
        )

    def covers(self, action: str) -> bool:
        """Whether Action (or NotAction) lets this statement apply to ``action``."""
        return self.actions(action) != self.not_action

    def applies(self, request: RequestContext, keys: ContextKeys) -> bool:
        """Resource, policy variables and conditions, for a statement that covers the
        request's action (the principal is matched separately)."""
        # A policy variable without a value makes only the value holding it null (see
        # strongroom.policy.variables), never the whole statement.
        if self.resources(request.resource, keys) == self.not_resource:
            return False
        for condition in self.conditions:  # noqa: SIM110 - no generator on the hot path
            if not condition(keys):
                return False
        return True

    def principal_level(self, caller: _Caller, keys: ContextKeys) -> int:
        """How this resource-policy statement's Principal/NotPrincipal matches the caller."""
        principals = self.principals
        if principals is None:
            return NO_MATCH
        if not self.not_principal:
            return principals.level(caller, keys)
        named = [True] if principals.everyone else principals.levels(caller, keys)
        # NotPrincipal: a Deny spares the caller only if every level is listed (AWS).
        # Decision: an Allow leaves it out if any level is listed. Everyone else is
        # matched as if by "*". AWS's quirk that a Deny with NotPrincipal always denies
        # principals that have a permissions boundary is not reproduced.
        excluded = any(named) if self.allow else all(named)
        return NO_MATCH if excluded else DIRECT


class _Compiled:
    __slots__ = ("_by_action", "_mentioned", "_text", "reads_clock", "statements")

    def __init__(self, document: PolicyDocument) -> None:
        variables = document.version == CURRENT_VERSION
        self.statements = tuple(
            _Statement(index, statement, variables=variables)
            for index, statement in enumerate(document.statements)
        )
        self._by_action: dict[str, tuple[_Statement, ...]] = {}
        self._text = _text_of(document)
        self._mentioned: dict[str, bool] = {}
        self.reads_clock = any(self.mentions(key) for key in _CLOCK_KEYS_LOWER)

    def mentions(self, key: str) -> bool:
        """Whether the policy may read condition key ``key`` (lower-case): see
        :func:`_text_of`. Memoized per key: a policy is asked about few distinct keys."""
        found = self._mentioned.get(key)
        if found is None:
            found = key in self._text
            if len(self._mentioned) >= _ACTION_MEMO_LIMIT:
                self._mentioned.clear()
            self._mentioned[key] = found
        return found

    def for_action(self, action: str) -> tuple[_Statement, ...]:
        """The statements whose Action or NotAction covers ``action`` (memoized: a
        policy sees few distinct actions, and big managed policies list many)."""
        found = self._by_action.get(action)
        if found is None:
            found = tuple(s for s in self.statements if s.covers(action))
            if len(self._by_action) >= _ACTION_MEMO_LIMIT:
                self._by_action.clear()
            self._by_action[action] = found
        return found


_ACTION_MEMO_LIMIT = 512


CLOCK_KEYS: tuple[str, ...] = ("aws:CurrentTime", "aws:EpochTime")
"""The condition keys whose values are the clock's reading."""

TIME_KEYS: tuple[str, ...] = (*CLOCK_KEYS, "aws:MultiFactorAuthAge")
"""The condition keys whose values change as time passes: the clock's, and the seconds
since the session's MFA code was verified. A policy that names none of them decides a
request the same way at any time (see :func:`reads_clock`)."""

_CLOCK_KEYS_LOWER = tuple(key.lower() for key in TIME_KEYS)


def _text_of(document: PolicyDocument) -> str:
    """Every string of ``document``, lower-cased: a policy may read a condition key only if
    the key is a substring of this.

    Deliberately coarse, so that it cannot miss a way a policy reads a key: a policy
    reads a key only by naming it, as a Condition key (under any operator or set prefix:
    ``Null``, ``...IfExists``, ``ForAnyValue:``) or as a policy variable ``${key}`` (in
    Resource, NotResource or a condition value), and condition keys and variable names
    are matched by their lower-cased text. Every string of the document is searched
    (Action, Principal and Sid too), so a mention anywhere counts: at worst a policy is
    said to read a key it does not.
    """
    texts: list[str] = [document.version or "", document.id or ""]
    for statement in document.statements:
        texts.append(statement.sid or "")
        for element in (
            statement.action,
            statement.not_action,
            statement.resource,
            statement.not_resource,
        ):
            texts.extend(element or ())
        for principal in (statement.principal, statement.not_principal):
            if principal is not None:
                for kind, values in principal.entries.items():
                    texts.append(kind)
                    texts.extend(values)
        for operator_name, block in statement.condition.items():
            texts.append(operator_name)
            for key, values in block.items():
                texts.append(key)
                texts.extend(values)
    return "\n".join(texts).lower()


def mentions(document: PolicyDocument, key: str) -> bool:
    """Whether ``document`` may read condition key ``key`` (any case), as a Condition key
    or a policy variable, under any operator. A key it does not mention cannot change how
    it decides a request. Coarse by design (:func:`_text_of`): at worst a key is said to
    be read when it is not."""
    return _compiled(document).mentions(key.lower())


def reads_clock(document: PolicyDocument) -> bool:
    """Whether ``document`` may read a key of :data:`TIME_KEYS` (``aws:CurrentTime``,
    ``aws:EpochTime``, ``aws:MultiFactorAuthAge``) anywhere: if not, its decisions do not
    depend on the time.
    Computed once per compiled policy."""
    return _compiled(document).reads_clock


_CACHE_LIMIT = 4096
_compiled_cache: dict[int, tuple[PolicyDocument, _Compiled]] = {}
_compiled_lock = Lock()


def _compiled(document: PolicyDocument) -> _Compiled:
    # Keyed by identity, not equality: hashing a document costs more than evaluating it.
    # The entry keeps the document alive, so its id cannot be reused while cached.
    entry = _compiled_cache.get(id(document))
    if entry is not None and entry[0] is document:
        return entry[1]
    compiled = _Compiled(document)
    with _compiled_lock:
        if len(_compiled_cache) >= _CACHE_LIMIT:
            del _compiled_cache[next(iter(_compiled_cache))]
        _compiled_cache[id(document)] = (document, compiled)
    return compiled


def clear_caches() -> None:
    """Forget parsed and compiled policies (for tests and after bulk policy changes)."""
    with _compiled_lock:
        _compiled_cache.clear()
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
    caller = _caller(request.principal_arn, request.principal_account)
    keys = request.condition_keys
    action = request.action
    denies: list[tuple[PolicyType, Match]] = []

    identity_allows: list[Match] = []
    for number, document in enumerate(policies.identity):
        for statement in _compiled(document).for_action(action):
            if statement.applies(request, keys):
                match = (_label(policies.identity_names, number, "identity"), statement.index)
                if statement.allow:
                    identity_allows.append(match)
                else:
                    denies.append(("identity", match))

    by_level: dict[int, list[Match]] = {ACCOUNT: [], ROLE: [], DIRECT: []}
    if policies.resource is not None:
        for statement in _compiled(policies.resource).for_action(action):
            level = statement.principal_level(caller, keys)
            if level and statement.applies(request, keys):
                match = (policies.resource_name, statement.index)
                if statement.allow:
                    by_level[level].append(match)
                else:
                    denies.append(("resource", match))

    boundary_allows: list[Match] = []
    if policies.permissions_boundary is not None:
        for statement in _compiled(policies.permissions_boundary).for_action(action):
            if statement.applies(request, keys):
                match = (policies.permissions_boundary_name, statement.index)
                if statement.allow:
                    boundary_allows.append(match)
                else:
                    denies.append(("permissions_boundary", match))

    session_allows: list[Match] = []
    for number, document in enumerate(policies.session_policies):
        for statement in _compiled(document).for_action(action):
            if statement.applies(request, keys):
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
