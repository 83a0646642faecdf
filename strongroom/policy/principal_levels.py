"""Who is asking, as policy evaluation sees it, and how a policy's Principal or
NotPrincipal element names them, level by level (account; role; session or user), as
:mod:`strongroom.policy.evaluate` describes. Pure logic, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from strongroom.policy.document import Principal
from strongroom.policy.variables import ContextKeys

CallerKind = Literal["root", "user", "session", "federated", "service", "other"]

NO_MATCH, ACCOUNT, ROLE, DIRECT = 0, 1, 2, 3
"""How a resource-policy principal matches the caller, weakest to strongest (see
:mod:`strongroom.policy.evaluate`, rule 3)."""


@dataclass(frozen=True, slots=True)
class CallerView:
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
def caller_view(arn: str, account: str) -> CallerView:
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        kind: CallerKind = "service" if "." in arn and ":" not in arn else "other"
        return CallerView(kind, arn, account, "aws", None)
    _, partition, service, _, arn_account, resource = parts
    account = arn_account or account
    if service == "iam" and resource == "root":
        return CallerView("root", arn, account, partition, None)
    if service == "iam" and resource.startswith("user/"):
        return CallerView("user", arn, account, partition, None)
    if service == "sts" and resource.startswith("assumed-role/"):
        role = resource.split("/")
        return CallerView("session", arn, account, partition, role[1] if len(role) > 2 else None)
    if service == "sts" and resource.startswith("federated-user/"):
        return CallerView("federated", arn, account, partition, None)
    return CallerView("other", arn, account, partition, None)


class PrincipalElement:
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

    def levels(self, caller: CallerView, keys: ContextKeys) -> list[bool]:
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

    def level(self, caller: CallerView, keys: ContextKeys) -> int:
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
