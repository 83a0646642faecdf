"""The static analyses Secrets Manager runs on a secret's resource policy: whether it is
public (``BlockPublicPolicy`` of PutResourcePolicy, the broad-access check) and whether it
would lock its caller out (ValidateResourcePolicy's lockout check).

Action patterns are matched by the evaluator's own matcher
(:func:`strongroom.policy.matching.action_matches`), so the analyses and the decisions
agree on what a pattern covers.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from strongroom.policy.document import (
    ACCOUNT_ID,
    MALFORMED_POLICY,
    PolicyDocument,
    PolicyError,
    PolicyJsonError,
    Statement,
    parse_document,
    split_operator,
)
from strongroom.policy.matching import action_matches
from strongroom.protocol.errors import ServiceError

# CheckName values of ValidateResourcePolicy. AWS documents the three checks but not the
# strings it returns for them, so these are ours; keep them in one place.
SYNTAX_CHECK = "SYNTAX_CHECK"
BROAD_ACCESS_CHECK = "BROAD_ACCESS_CHECK"
LOCKOUT_CHECK = "LOCKOUT_CHECK"


@dataclass(frozen=True)
class ValidationFinding:
    """One entry of ValidateResourcePolicy's ``ValidationErrors``."""

    check_name: str
    error_message: str


# --------------------------------------------------------------------------- broad access
#
# Which grants are "public" follows S3's documented rules ("The meaning of public",
# S3 User Guide), the written form of the Zelkova analysis Secrets Manager also uses:
# a grant to everyone is public unless a condition pins the caller with fixed values
# (no wildcard, no policy variable) of a key that identifies the caller or its source.
# Naming another account is cross-account access, not public access.

_PINNING_KEYS = frozenset(
    {
        "aws:principalaccount",
        "aws:principalarn",
        "aws:principalorgid",
        "aws:principalorgpaths",
        "aws:sourceaccount",
        "aws:sourcearn",
        "aws:sourcevpc",
        "aws:sourcevpce",
        "aws:sourceowner",
        "aws:userid",
        # aws:username is deliberately absent: any account can have a user of that name.
    }
)
_ARN_KEYS = frozenset({"aws:principalarn", "aws:sourcearn"})
# Operators that admit a request only when the key is present and equal to (or like) a
# listed value. ...IfExists variants and negations admit requests that lack the key or
# differ from it, anonymous ones included, so they never pin.
_MATCHING_OPERATORS = frozenset(
    {"StringEquals", "StringEqualsIgnoreCase", "StringLike", "ArnEquals", "ArnLike"}
)


def is_public(doc: PolicyDocument, *, account_id: str) -> bool:
    """Whether ``doc``, a secret's resource policy, grants access to anyone.

    ``account_id`` is the secret owner's account. The rules below do not use it:
    granting a named account, the owner's or another, is never public.

    Deny statements are not credited with narrowing an Allow: a "deny unless in my
    organization" guard next to an Allow for ``"*"`` still reports public. That can
    only over-report, which for BlockPublicPolicy errs on the safe side.
    """
    return bool(_public_statements(doc))


def _public_statements(doc: PolicyDocument) -> list[str]:
    return [
        _label(index, statement)
        for index, statement in enumerate(doc.statements)
        if _grants_public_access(statement)
    ]


def _grants_public_access(statement: Statement) -> bool:
    if statement.effect != "Allow" or not _reaches_everyone(statement):
        return False
    # Condition entries are ANDed, so one pinning entry restricts the whole statement.
    return not any(
        _pins_caller(operator, key, values)
        for operator, keys in statement.condition.items()
        for key, values in keys.items()
    )


def _reaches_everyone(statement: Statement) -> bool:
    if statement.not_principal is not None:
        return True  # Allow with NotPrincipal: everyone except the listed principals
    principal = statement.principal
    if principal is None:
        return False
    if principal.is_everyone:
        return True
    # Web-identity federation (graph.facebook.com, accounts.google.com, Cognito) admits
    # anyone who can sign in there, which S3 counts as public; a SAML or OIDC provider
    # ARN names a provider that one account configured.
    return any(not value.startswith("arn:") for value in principal.entries.get("Federated", ()))


def _pins_caller(operator: str, key: str, values: tuple[str, ...]) -> bool:
    prefix, base, if_exists = split_operator(operator)
    # ForAllValues holds for a request without the key; ForAnyValue does not.
    if if_exists or prefix == "ForAllValues" or not values:
        return False
    key = key.lower()
    if key == "aws:sourceip":
        return base == "IpAddress" and all(_is_narrow_cidr(v) for v in values)
    if key not in _PINNING_KEYS or base not in _MATCHING_OPERATORS:
        return False
    return all(_is_fixed(key, value) for value in values)


def _has_wildcard(value: str) -> bool:
    return "*" in value or "?" in value


def _is_fixed(key: str, value: str) -> bool:
    if "${" in value:
        return False
    if not _has_wildcard(value):
        return True
    # A wildcard after a fixed account still pins the account (S3 makes the same
    # exception for access point ARNs): arn:aws:iam::111122223333:role/* is one account.
    if key in _ARN_KEYS:
        parts = value.split(":", 5)
        return (
            len(parts) == 6
            and not _has_wildcard(":".join(parts[:5]))
            and bool(ACCOUNT_ID.fullmatch(parts[4]))
        )
    # Likewise o-a1b2c3d4e5/r-ab12/* stays within one organization.
    if key == "aws:principalorgpaths":
        organization, slash, _ = value.partition("/")
        return bool(organization and slash) and not _has_wildcard(organization)
    return False


def _is_narrow_cidr(value: str) -> bool:
    # S3 counts ranges broader than /8 (IPv4) or /32 (IPv6) as public.
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return network.prefixlen >= (8 if network.version == 4 else 32)


# --------------------------------------------------------------------------- lockout

_LOCKOUT_ACTION = "secretsmanager:PutResourcePolicy"


@dataclass(frozen=True)
class _Caller:
    """The identity calling ValidateResourcePolicy.

    AWS matches a principal level by level: the account, then the user, or the role and
    then its session (IAM User Guide, NotPrincipal). :meth:`levels` lists those tests.
    """

    account: str
    arn: str | None = None
    role_name: str | None = None  # for an assumed-role session

    def levels(self) -> list[Callable[[str], bool]]:
        levels: list[Callable[[str], bool]] = [self._is_account]
        if self.arn is not None and not self._is_account(self.arn):
            if self.role_name is not None:
                levels.append(self._is_role)
            levels.append(lambda value: value == self.arn)
        return levels

    def _is_account(self, value: str) -> bool:
        parts = value.split(":", 5)
        return value == self.account or parts[2:] == ["iam", "", self.account, "root"]

    def _is_role(self, value: str) -> bool:
        # Role ARNs may carry a path the session ARN does not show: compare the name.
        parts = value.split(":", 5)
        return (
            len(parts) == 6
            and parts[2:5] == ["iam", "", self.account]
            and parts[5].startswith("role/")
            and parts[5].rsplit("/", 1)[1] == self.role_name
        )


def _caller(caller_arn: str | None, account_id: str) -> _Caller:
    if caller_arn is None:
        return _Caller(account=account_id)
    parts = caller_arn.split(":", 5)
    if len(parts) < 6:
        return _Caller(account=account_id, arn=caller_arn)
    role_name = None
    if parts[2] == "sts" and parts[5].startswith("assumed-role/"):
        role_name = parts[5].split("/")[1]
    return _Caller(account=parts[4], arn=caller_arn, role_name=role_name)


def _denied_principals_include(statement: Statement, caller: _Caller) -> bool:
    if statement.principal is not None:
        # Naming any level denies the caller: its account, its role or itself.
        values = statement.principal.entries.get("AWS", ())
        return statement.principal.is_everyone or any(
            level(value) for level in caller.levels() for value in values
        )
    if statement.not_principal is not None:
        # The caller escapes a NotPrincipal deny only if every level is listed; an
        # exempted user whose account is missing is still denied through the account.
        values = statement.not_principal.entries.get("AWS", ())
        return not statement.not_principal.is_everyone and not all(
            any(level(value) for value in values) for level in caller.levels()
        )
    return False


def _locks_out(statement: Statement, caller: _Caller) -> bool:
    # Only unconditional denies: a conditional one may not hold when the caller retries.
    if statement.effect != "Deny" or statement.condition:
        return False
    if statement.action is not None:
        denied = any(action_matches(p, _LOCKOUT_ACTION) for p in statement.action)
    else:
        assert statement.not_action is not None
        denied = not any(action_matches(p, _LOCKOUT_ACTION) for p in statement.not_action)
    # A secret's policy only ever governs that secret, so Resource is taken to cover it;
    # NotResource "*" is the one form that certainly excludes it.
    if not denied or (statement.not_resource is not None and "*" in statement.not_resource):
        return False
    return _denied_principals_include(statement, caller)


# --------------------------------------------------------------------------- validation


def validate_resource_policy(
    text: str, *, account_id: str, caller_arn: str | None
) -> list[ValidationFinding]:
    """Secrets Manager's ValidateResourcePolicy checks; an empty list means passed.

    Text that is not JSON raises ``MalformedPolicyDocumentException``; a JSON document
    that breaks the grammar is reported as the single syntax finding (the other checks
    need a parsed policy). ``caller_arn`` is the identity calling the API; ``account_id``
    the secret owner's account, taken as the caller's account when the ARN is unknown.
    """
    try:
        doc = parse_document(text, "resource")
    except PolicyJsonError as exc:
        raise ServiceError(MALFORMED_POLICY, str(exc)) from None
    except PolicyError as exc:
        return [ValidationFinding(SYNTAX_CHECK, str(exc))]

    findings = []
    public = _public_statements(doc)
    if public:
        findings.append(
            ValidationFinding(
                BROAD_ACCESS_CHECK,
                f"The policy grants broad access to the secret: {', '.join(public)} "
                f"{_verb(public, 'allows', 'allow')} any principal, anonymous callers "
                "included. Name specific principals, or add a condition with a fixed value "
                "for aws:PrincipalAccount, aws:PrincipalOrgID, aws:PrincipalArn, "
                "aws:SourceAccount, aws:SourceArn, aws:SourceVpc or aws:SourceVpce.",
            )
        )
    caller = _caller(caller_arn, account_id)
    locking = [
        _label(index, statement)
        for index, statement in enumerate(doc.statements)
        if _locks_out(statement, caller)
    ]
    if locking:
        who = caller_arn or f"principals of account {caller.account}"
        findings.append(
            ValidationFinding(
                LOCKOUT_CHECK,
                f"The policy would lock out the caller: {', '.join(locking)} "
                f"{_verb(locking, 'denies', 'deny')} {who} {_LOCKOUT_ACTION}, so this "
                "policy could not be changed again.",
            )
        )
    return findings


def _label(index: int, statement: Statement) -> str:
    return f'Statement[{index}] (Sid "{statement.sid}")' if statement.sid else f"Statement[{index}]"


def _verb(labels: list[str], singular: str, plural: str) -> str:
    return singular if len(labels) == 1 else plural
