"""The identity read model: what the authorizer (through :class:`strongroom.types.Identities`)
and STS read of IAM: a principal's policies, roles, the generation that keys their caches."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from strongroom.iam import managed_policies, policy_rows
from strongroom.iam import repository as repo
from strongroom.iam.base import IdentityBase
from strongroom.iam.common import _principal_name, _tag_dict
from strongroom.iam.repository import Entity, Kind, RoleRecord, UserRecord
from strongroom.store.cache import EVERYTHING, Namespace
from strongroom.store.engine import cached
from strongroom.types import PrincipalPolicies

# Read by every authorization: cached per process (store/cache.py).
_GENERATION = Namespace("iam-generation", ("iam_generation",))
_ORGANIZATION = Namespace("account-organization", ("organization_accounts",))


@dataclass(frozen=True)
class RoleInfo:
    """A role as STS AssumeRole needs it."""

    arn: str
    role_id: str
    role_name: str
    path: str
    trust_policy: str
    max_session_duration: int
    permissions_boundary: str | None  # the boundary policy's ARN
    tags: dict[str, str]


class IdentityReads(IdentityBase):
    def reads_uncommitted(self) -> bool:
        """Whether IAM reads here may see IAM writes that could still roll back."""
        written = self._store.uncommitted_writes()
        # Every authorization asks, and a read has written nothing: no generator for it.
        return bool(written) and any(
            table == EVERYTHING or table.startswith("iam_") for table in written
        )

    def generation(self) -> int:
        """A number that changes whenever IAM changes: anything computed from IAM state
        (policies of a principal) stays valid while the generation stays the same."""
        with self._store.read() as conn:
            return cached(conn, _GENERATION, None, lambda: repo.generation(conn))

    def organization_id(self, account_id: str) -> str | None:
        """The organization ``account_id`` belongs to (``aws:PrincipalOrgID``). Joining an
        organization moves IAM's generation (iam/organizations.py), so what is computed from
        it stays valid while the generation stays the same."""
        with self._store.read() as conn:
            return cached(
                conn, _ORGANIZATION, account_id, lambda: repo.organization_id(conn, account_id)
            )

    def principal_policies(self, principal_arn: str) -> PrincipalPolicies | None:
        """The identity-based policies, permissions boundary and tags of a user, a role or
        a role session (``arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION``); None if there
        is no such principal."""
        principal = _principal_name(principal_arn)
        if principal is None:
            return None
        account_id, kind, name = principal
        with self._store.read() as conn:
            entity: UserRecord | RoleRecord | None = repo.find(conn, kind, account_id, name)
            if entity is None:
                return None
            if ":sts::" not in principal_arn and entity.arn != principal_arn:
                return None  # a stale ARN: the entity has been renamed or moved since
            identity: list[tuple[str, str]] = []
            seen: set[str] = set()
            self._gather(conn, kind, entity, identity, seen, None)
            if isinstance(entity, UserRecord):
                for group in repo.groups_of(conn, entity.id):
                    self._gather(conn, "group", group, identity, seen, group.name)
            boundary = None
            if entity.permissions_boundary:
                boundary = self._default_document(conn, account_id, entity.permissions_boundary)
        return PrincipalPolicies(
            identity=identity,
            permissions_boundary=boundary,
            tags=_tag_dict(entity.tags),
            user_id=entity.id,
            user_name=entity.name if isinstance(entity, UserRecord) else None,
        )

    def _gather(
        self,
        conn: Connection,
        kind: Kind,
        entity: Entity,
        identity: list[tuple[str, str]],
        seen: set[str],
        via_group: str | None,
    ) -> None:
        owner = f"{kind} {entity.name}"
        for policy_name, document in policy_rows.inline_policies(conn, entity.id).items():
            identity.append((f"inline policy {policy_name} of {owner}", document))
        for arn in policy_rows.attached(conn, entity.id):
            if arn in seen:
                continue
            managed = self._default_document(conn, entity.account_id, arn)
            if managed is not None:
                seen.add(arn)
                suffix = f" (via group {via_group})" if via_group else ""
                identity.append((f"managed policy {arn}{suffix}", managed))

    @staticmethod
    def _default_document(conn: Connection, account_id: str, arn: str) -> str | None:
        aws = managed_policies.find(arn)
        if aws is not None:
            return aws.document
        record = policy_rows.find_policy(conn, arn)
        if record is None or record.account_id != account_id:
            return None
        version = policy_rows.version(conn, record.id, record.default_version)
        return version.document if version is not None else None

    def managed_policy_document(self, account_id: str, arn: str) -> str | None:
        """The default version's document of managed policy ``arn`` as ``account_id`` sees
        it (an AWS managed policy, or one of the account's own), or None (STS session
        policies given by ARN)."""
        with self._store.read() as conn:
            return self._default_document(conn, account_id, arn)

    def role(self, account_id: str, role_name: str) -> RoleInfo | None:
        """The role STS AssumeRole is asked for, or None."""
        with self._store.read() as conn:
            role = repo.find_role(conn, account_id, role_name)
        if role is None:
            return None
        return RoleInfo(
            arn=role.arn,
            role_id=role.id,
            role_name=role.name,
            path=role.path,
            trust_policy=role.trust_policy,
            max_session_duration=role.max_session_duration,
            permissions_boundary=role.permissions_boundary,
            tags=_tag_dict(role.tags),
        )

    def record_role_use(self, account_id: str, role_name: str, region: str) -> None:
        """Note that the role was assumed now (GetRole's RoleLastUsed)."""
        with self._store.write() as conn:
            role = repo.find_role(conn, account_id, role_name)
            if role is not None:
                repo.update_entity(
                    conn, "role", role, last_used_ms=self._now_ms(), last_used_region=region
                )
