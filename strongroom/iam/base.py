"""What every IAM noun module shares: the store, the clock, the credential store, the Marker
codec, one write transaction that moves IAM's generation, and entity and policy lookups."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection

from strongroom.clock import Clock, to_ms
from strongroom.iam import managed_policies, policy_rows
from strongroom.iam import repository as repo
from strongroom.iam.common import (
    _TITLE,
    MALFORMED,
    Output,
    Params,
    _aws_managed_is_read_only,
    _decode_marker,
    _encode_marker,
    _entity_not_found,
    _max_items,
    _no_such_entity,
    _parse_policy_arn,
    _policy_not_found,
    _principal_name,
    _validation_error,
)
from strongroom.iam.credentials import CredentialStore
from strongroom.iam.policy_rows import PolicyRecord
from strongroom.iam.principal_ids import IamPrincipalIds
from strongroom.iam.repository import GroupRecord, Kind, RoleRecord, UserRecord
from strongroom.iam.shapes import _Managed
from strongroom.keys.envelope import Barrier
from strongroom.protocol.errors import ServiceError
from strongroom.protocol.pagination import MIN_KEY_LENGTH, TokenCodec
from strongroom.store.engine import Store
from strongroom.types import Caller, UnknownPrincipal


class IdentityBase:
    def __init__(
        self,
        store: Store,
        barrier: Barrier,
        clock: Clock,
        credentials: CredentialStore | None = None,
        tokens: TokenCodec | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._credentials = credentials or CredentialStore(store, barrier, clock)
        # Markers sign with the deployment's shared key, so every worker reads another's;
        # without one (a standalone service), with a key of this instance's own.
        self._tokens = tokens or TokenCodec(os.urandom(MIN_KEY_LENGTH))
        self._principal_ids = IamPrincipalIds(store)

    @property
    def principal_ids(self) -> IamPrincipalIds:
        """How resource policies bind the users and roles they name (iam/principal_ids.py):
        handed to Secrets Manager and KMS for their resource and key policies."""
        return self._principal_ids

    def _bind_trust_policy(self, document: str) -> str:
        """A trust policy as stored: its user and role principals bound by unique id;
        IAM's MalformedPolicyDocument for one that does not exist."""
        try:
            return self._principal_ids.bind(document)
        except UnknownPrincipal as unknown:
            raise ServiceError(
                MALFORMED, f'Invalid principal in policy: "AWS":"{unknown.arn}"'
            ) from None

    def _shown(self, role: RoleRecord) -> RoleRecord:
        """``role`` with its trust policy as the client sees it (ids of entities that
        still exist shown as their ARNs)."""
        return dataclasses.replace(role, trust_policy=self._principal_ids.show(role.trust_policy))

    @property
    def store(self) -> Store:
        """IAM's store, for the policy simulator's reads (:mod:`strongroom.iam.simulate`)."""
        return self._store

    @property
    def tokens(self) -> TokenCodec:
        """The codec of IAM's Marker values, shared with the policy simulator."""
        return self._tokens

    def _now_ms(self) -> int:
        return to_ms(self._clock.now())

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """One write transaction; every IAM write moves the generation on."""
        with self._store.write() as conn:
            yield conn
            repo.bump_generation(conn)

    def _require(self, conn: Connection, kind: Kind, account_id: str, name: str) -> Any:
        entity = repo.find(conn, kind, account_id, name)
        if entity is None:
            raise _entity_not_found(kind, name)
        return entity

    def _user(self, conn: Connection, caller: Caller, name: str) -> UserRecord:
        user: UserRecord = self._require(conn, "user", caller.account_id, name)
        return user

    def _group(self, conn: Connection, caller: Caller, name: str) -> GroupRecord:
        group: GroupRecord = self._require(conn, "group", caller.account_id, name)
        return group

    def _role(self, conn: Connection, caller: Caller, name: str) -> RoleRecord:
        role: RoleRecord = self._require(conn, "role", caller.account_id, name)
        return role

    @staticmethod
    def _user_name(caller: Caller, params: Params) -> str:
        """UserName, or the calling user's own name when it is left out."""
        name = params.get("UserName")
        if name:
            return str(name)
        principal = _principal_name(caller.principal_arn)
        if (
            principal is None
            or principal[1] != "user"
            or principal[0] != caller.account_id
            or ":sts::" in caller.principal_arn
        ):
            raise _validation_error("Must specify userName when calling with non-User credentials")
        return principal[2]

    def _managed(self, conn: Connection, caller: Caller, arn: str) -> _Managed | None:
        """The managed policy ``arn`` as the caller's account sees it, or None."""
        account, _path, _name = _parse_policy_arn(arn)
        if account == "aws":
            policy = managed_policies.find(arn)
            return _Managed.of_aws(policy) if policy is not None else None
        if account != caller.account_id:
            return None
        record = policy_rows.find_policy(conn, arn)
        return _Managed.local(record) if record is not None else None

    def _require_policy(self, conn: Connection, caller: Caller, arn: str) -> _Managed:
        policy = self._managed(conn, caller, arn)
        if policy is None:
            raise _policy_not_found(arn)
        return policy

    def _local_policy(
        self, conn: Connection, caller: Caller, arn: str, action: str
    ) -> PolicyRecord:
        policy = self._require_policy(conn, caller, arn)
        if policy.record is None:
            raise _aws_managed_is_read_only(caller, action, arn)
        return policy.record

    def _check_boundary(self, conn: Connection, caller: Caller, arn: str) -> None:
        if self._managed(conn, caller, arn) is None:
            raise _no_such_entity(f"Scope ARN: {arn} does not exist or is not attachable.")

    def _counts(
        self, conn: Connection, caller: Caller, arns: Sequence[str]
    ) -> tuple[dict[str, int], dict[str, int]]:
        """(attachment count, permissions boundary use count) of each policy ARN."""
        return (
            policy_rows.attachment_counts(conn, caller.account_id, arns),
            repo.boundary_counts(conn, caller.account_id, arns),
        )

    def _list(self, kind: Kind, caller: Caller, params: Params) -> tuple[list[Any], Output]:
        """A page of ListUsers, ListGroups or ListRoles, read in name order from the store."""
        scope = f"List{_TITLE[kind]}s"
        after = _decode_marker(self._tokens, scope, params)
        limit = _max_items(params)
        with self._store.read() as conn:
            found = repo.scan(
                conn,
                kind,
                caller.account_id,
                params.get("PathPrefix") or "/",
                after[0] if after else None,
                limit + 1,
            )
        page = found[:limit]
        extra: Output = {"IsTruncated": len(found) > limit}
        if len(found) > limit:
            extra["Marker"] = _encode_marker(self._tokens, scope, (page[-1].name_key,))
        return page, extra
