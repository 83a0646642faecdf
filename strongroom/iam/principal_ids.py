"""Resource policies bound to the unique ids of the IAM users and roles they name.

AWS: "If your Principal element in a role trust policy contains an ARN that points to a
specific IAM role, then that ARN transforms to the role's unique principal ID when you
save the policy. [...] If someone deletes and recreates the role, the role has a new,
different principal ID" ("AWS JSON policy elements: Principal", IAM User Guide); the
same holds for users, and for every resource policy (trust policies, secret resource
policies, KMS key policies). Strongroom does it the same way:

- :meth:`IamPrincipalIds.bind`, when a policy is written: each ``AWS`` principal that is a
  user or role ARN is replaced by that entity's id in the stored text; one naming no
  existing entity (its path included) is refused (:class:`UnknownPrincipal`);
- the evaluator matches an id against the caller's ``aws:userid`` (``AIDA...`` of a user,
  ``AROA...:session`` of a role session), so a new entity with the old name is not the
  principal the policy named;
- :meth:`IamPrincipalIds.show`, when a policy is read back (GetRole, GetResourcePolicy,
  GetKeyPolicy): each id of an entity that still exists is shown as its current ARN, and
  the id of a deleted one stays, as AWS shows it.

KMS grants bind their grantee and retiring principals the same way, one principal at a
time (:meth:`IamPrincipalIds.bind_principal`, :meth:`IamPrincipalIds.current_arns`).
"""

from __future__ import annotations

from collections.abc import Iterable

from strongroom.iam import repository as repo
from strongroom.iam.repository import Kind
from strongroom.policy.principal_ids import ENTITY_ARN, principal_strings, rewrite_principals
from strongroom.store.engine import Store
from strongroom.types import UnknownPrincipal

_ID_PREFIXES = {"AIDA": "user", "AROA": "role"}


class IamPrincipalIds:
    def __init__(self, store: Store) -> None:
        self._store = store

    def bind(self, policy: str) -> str:
        if not any(ENTITY_ARN.fullmatch(found) for _, _, found in principal_strings(policy)):
            return policy
        return rewrite_principals(policy, self.bind_principal)

    def bind_principal(self, value: str) -> str:
        """One principal as stored: a user or role ARN becomes the entity's id; anything
        else (an account, ``*``, a role session, an id already) stays as it is."""
        match = ENTITY_ARN.fullmatch(value)
        if match is None:
            return value
        kind: Kind = "user" if match.group(2) == "user" else "role"
        with self._store.read() as conn:
            entity = repo.find(conn, kind, match.group(1), match.group(4))
        if entity is None or entity.arn != value:
            raise UnknownPrincipal(value)
        return str(entity.id)

    def show(self, policy: str) -> str:
        arns = self.current_arns(found for _, _, found in principal_strings(policy))
        if not arns:
            return policy
        return rewrite_principals(policy, lambda value: arns.get(value, value))

    def current_arns(self, values: Iterable[str]) -> dict[str, str]:
        """For each of ``values`` that is the id of a user or role that exists, its current
        ARN (one read for them all); ids of deleted entities and other values are left out."""
        ids = {found for found in values if found[:4] in _ID_PREFIXES and ":" not in found}
        if not ids:
            return {}
        arns: dict[str, str] = {}
        with self._store.read() as conn:
            for kind in ("user", "role"):
                wanted = [i for i in ids if _ID_PREFIXES[i[:4]] == kind]
                arns.update((entity.id, entity.arn) for entity in repo.by_ids(conn, kind, wanted))
        return arns
