"""Managed policies: the policies and their versions, attaching them to users, groups and
roles, and permissions boundaries (the kind-parameterized handlers are bound to their
kind in :mod:`strongroom.iam.api`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from strongroom.clock import to_ms
from strongroom.iam import managed_policies, policy_rows
from strongroom.iam import repository as repo
from strongroom.iam.base import IdentityBase
from strongroom.iam.common import (
    _NAME_MEMBER,
    _TITLE,
    MANAGED_POLICY_SIZE,
    MAX_ATTACHED_POLICIES,
    MAX_POLICY_VERSIONS,
    Output,
    Params,
    _already_exists,
    _check_tag_quota,
    _delete_conflict,
    _limit_exceeded,
    _no_such_version,
    _not_attachable,
    _page,
    _parse_identity_policy,
    _parse_policy_arn,
    _policy_not_found,
    _policy_size,
    _position,
    _tags_in,
    _unique,
    new_id,
)
from strongroom.iam.policy_rows import PolicyRecord, VersionRecord
from strongroom.iam.repository import Entity, Kind
from strongroom.iam.shapes import _Managed, _version_out
from strongroom.types import Caller


class ManagedPolicies(IdentityBase):
    def create_policy(self, caller: Caller, params: Params) -> Output:
        name: str = params["PolicyName"]
        path: str = params.get("Path") or "/"
        document: str = params["PolicyDocument"]
        _parse_identity_policy(document)
        if _policy_size(document) > MANAGED_POLICY_SIZE:
            raise _limit_exceeded(f"Cannot exceed quota for PolicySize: {MANAGED_POLICY_SIZE}")
        tags = _check_tag_quota(_tags_in(params.get("Tags")), "Policy")
        with self._write() as conn:
            if policy_rows.find_policy_named(conn, caller.account_id, name) is not None:
                raise _already_exists(
                    f"A policy called {name} already exists. Duplicate names are not allowed."
                )
            now = self._now_ms()
            record = PolicyRecord(
                id=new_id("ANPA"),
                account_id=caller.account_id,
                name=name,
                name_key=name.lower(),
                path=path,
                arn=f"arn:aws:iam::{caller.account_id}:policy{path}{name}",
                description=params.get("Description") or None,
                default_version="v1",
                next_version=2,
                tags=tags or None,
                created_ms=now,
                updated_ms=now,
            )
            with _unique(
                _already_exists(
                    f"A policy called {name} already exists. Duplicate names are not allowed."
                )
            ):
                policy_rows.insert_policy(conn, record)
            policy_rows.insert_version(conn, record.id, VersionRecord("v1", document, now))
        return {"Policy": _Managed.local(record).out(0, 0, full=True)}

    def get_policy(self, caller: Caller, params: Params) -> Output:
        arn: str = params["PolicyArn"]
        with self._store.read() as conn:
            policy = self._require_policy(conn, caller, arn)
            attachments, boundaries = self._counts(conn, caller, [arn])
        return {"Policy": policy.out(attachments[arn], boundaries[arn], full=True)}

    def list_policies(self, caller: Caller, params: Params) -> Output:
        scope: str = params.get("Scope") or "All"
        prefix: str = params.get("PathPrefix") or "/"
        only_attached = bool(params.get("OnlyAttached"))
        usage: str | None = params.get("PolicyUsageFilter")
        with self._store.read() as conn:
            candidates: list[_Managed] = []
            if scope in ("All", "AWS"):
                candidates += [_Managed.of_aws(p) for p in managed_policies.CATALOGUE.values()]
            if scope in ("All", "Local"):
                candidates += [
                    _Managed.local(p) for p in policy_rows.policies(conn, caller.account_id)
                ]
            candidates = [p for p in candidates if p.path.startswith(prefix)]
            attachments, boundaries = self._counts(conn, caller, [p.arn for p in candidates])

        def wanted(policy: _Managed) -> bool:
            if usage == "PermissionsBoundary":
                return boundaries[policy.arn] > 0
            return not only_attached or attachments[policy.arn] > 0

        chosen = sorted((p for p in candidates if wanted(p)), key=lambda p: (p.name.lower(), p.arn))
        page, extra = _page(
            self._tokens, "ListPolicies", params, chosen, lambda p: (p.name.lower(), p.arn)
        )
        return {
            "Policies": [p.out(attachments[p.arn], boundaries[p.arn], full=False) for p in page],
            **extra,
        }

    def delete_policy(self, caller: Caller, params: Params) -> Output:
        arn: str = params["PolicyArn"]
        with self._write() as conn:
            record = self._local_policy(conn, caller, arn, "DeletePolicy")
            attachments, boundaries = self._counts(conn, caller, [arn])
            if attachments[arn] or boundaries[arn]:
                raise _delete_conflict("Cannot delete a policy attached to entities.")
            if len(policy_rows.versions(conn, record.id)) > 1:
                raise _delete_conflict(
                    "This policy has more than one version. Before you delete a policy, you "
                    "must delete the policy's versions. The default version is deleted with "
                    "the policy."
                )
            policy_rows.delete_policy(conn, record.id)
        return {}

    def create_policy_version(self, caller: Caller, params: Params) -> Output:
        arn: str = params["PolicyArn"]
        document: str = params["PolicyDocument"]
        set_as_default = bool(params.get("SetAsDefault"))
        _parse_identity_policy(document)
        if _policy_size(document) > MANAGED_POLICY_SIZE:
            raise _limit_exceeded(f"Cannot exceed quota for PolicySize: {MANAGED_POLICY_SIZE}")
        with self._write() as conn:
            record = self._local_policy(conn, caller, arn, "CreatePolicyVersion")
            if len(policy_rows.versions(conn, record.id)) >= MAX_POLICY_VERSIONS:
                raise _limit_exceeded(
                    f"A managed policy can have up to {MAX_POLICY_VERSIONS} versions. Before "
                    "you create a new version, you must delete an existing version."
                )
            now = self._now_ms()
            version = VersionRecord(f"v{record.next_version}", document, now)
            policy_rows.insert_version(conn, record.id, version)
            changes: dict[str, Any] = {"next_version": record.next_version + 1, "updated_ms": now}
            if set_as_default:
                changes["default_version"] = version.version_id
            policy_rows.update_policy(conn, record, **changes)
        return {"PolicyVersion": _version_out(version, record.default_version, document=False)}

    def _versions(self, conn: Connection, policy: _Managed) -> list[VersionRecord]:
        if policy.aws is not None:
            aws = policy.aws
            return [VersionRecord(aws.version_id, aws.document, to_ms(aws.updated))]
        assert policy.record is not None
        return policy_rows.versions(conn, policy.record.id)

    def get_policy_version(self, caller: Caller, params: Params) -> Output:
        arn: str = params["PolicyArn"]
        version_id: str = params["VersionId"]
        with self._store.read() as conn:
            policy = self._require_policy(conn, caller, arn)
            found = [v for v in self._versions(conn, policy) if v.version_id == version_id]
        if not found:
            raise _no_such_version(arn, version_id)
        return {"PolicyVersion": _version_out(found[0], policy.default_version, document=True)}

    def list_policy_versions(self, caller: Caller, params: Params) -> Output:
        arn: str = params["PolicyArn"]
        with self._store.read() as conn:
            policy = self._require_policy(conn, caller, arn)
            versions = self._versions(conn, policy)
        page, extra = _page(
            self._tokens,
            "ListPolicyVersions",
            params,
            versions,
            lambda v: (f"{10**9 - int(v.version_id[1:]):010d}",),
        )
        return {
            "Versions": [_version_out(v, policy.default_version, document=False) for v in page],
            **extra,
        }

    def delete_policy_version(self, caller: Caller, params: Params) -> Output:
        arn: str = params["PolicyArn"]
        version_id: str = params["VersionId"]
        with self._write() as conn:
            record = self._local_policy(conn, caller, arn, "DeletePolicyVersion")
            if policy_rows.version(conn, record.id, version_id) is None:
                raise _no_such_version(arn, version_id)
            if version_id == record.default_version:
                raise _delete_conflict("Cannot delete the default version of a policy.")
            policy_rows.delete_version(conn, record.id, version_id)
        return {}

    def set_default_policy_version(self, caller: Caller, params: Params) -> Output:
        arn: str = params["PolicyArn"]
        version_id: str = params["VersionId"]
        with self._write() as conn:
            record = self._local_policy(conn, caller, arn, "SetDefaultPolicyVersion")
            if policy_rows.version(conn, record.id, version_id) is None:
                raise _no_such_version(arn, version_id)
            policy_rows.update_policy(conn, record, default_version=version_id)
        return {}

    def attach(self, kind: Kind, caller: Caller, params: Params) -> Output:
        arn: str = params["PolicyArn"]
        _parse_policy_arn(arn)
        with self._write() as conn:
            entity = self._require(conn, kind, caller.account_id, params[_NAME_MEMBER[kind]])
            if self._managed(conn, caller, arn) is None:
                raise _not_attachable(arn)
            current = policy_rows.attached(conn, entity.id)
            if arn in current:
                return {}
            if len(current) >= MAX_ATTACHED_POLICIES:
                raise _limit_exceeded(
                    f"Cannot exceed quota for PoliciesPer{_TITLE[kind]}: {MAX_ATTACHED_POLICIES}"
                )
            policy_rows.attach(conn, kind, entity.id, caller.account_id, arn, self._now_ms())
        return {}

    def detach(self, kind: Kind, caller: Caller, params: Params) -> Output:
        arn: str = params["PolicyArn"]
        _parse_policy_arn(arn)
        with self._write() as conn:
            entity = self._require(conn, kind, caller.account_id, params[_NAME_MEMBER[kind]])
            if arn not in policy_rows.attached(conn, entity.id):
                raise _policy_not_found(arn)
            policy_rows.detach(conn, entity.id, arn)
        return {}

    def list_attached(self, kind: Kind, caller: Caller, params: Params) -> Output:
        prefix: str = params.get("PathPrefix") or "/"
        with self._store.read() as conn:
            entity = self._require(conn, kind, caller.account_id, params[_NAME_MEMBER[kind]])
            arns = policy_rows.attached(conn, entity.id)
        listed: list[tuple[int, dict[str, str]]] = []
        for index, arn in enumerate(arns):
            _account, path, name = _parse_policy_arn(arn)
            if path.startswith(prefix):
                listed.append((index, {"PolicyName": name, "PolicyArn": arn}))
        scope = f"ListAttached{_TITLE[kind]}Policies"
        page, extra = _page(self._tokens, scope, params, listed, lambda item: _position(item[0]))
        return {"AttachedPolicies": [item for _index, item in page], **extra}

    def list_entities_for_policy(self, caller: Caller, params: Params) -> Output:
        arn: str = params["PolicyArn"]
        entity_filter: str | None = params.get("EntityFilter")
        prefix: str = params.get("PathPrefix") or "/"
        usage: str | None = params.get("PolicyUsageFilter")
        kinds: tuple[Kind, ...] = ("group", "user", "role")
        filters: dict[str | None, Kind] = {"Group": "group", "User": "user", "Role": "role"}
        if entity_filter in filters:
            kinds = (filters[entity_filter],)
        with self._store.read() as conn:
            self._require_policy(conn, caller, arn)
            found: dict[str, tuple[int, Kind, Entity]] = {}
            if usage != "PermissionsBoundary":
                ids: dict[Kind, list[str]] = {"user": [], "group": [], "role": []}
                for kind, principal_id in policy_rows.attached_to(conn, caller.account_id, arn):
                    ids[kind].append(principal_id)
                for order, kind in enumerate(kinds):
                    for entity in repo.by_ids(conn, kind, ids[kind]):
                        found[entity.id] = (order, kind, entity)
            if usage != "PermissionsPolicy":
                for order, kind in enumerate(kinds):
                    if kind != "group":
                        for entity in repo.with_boundary(conn, kind, caller.account_id, arn):
                            found[entity.id] = (order, kind, entity)
        chosen = sorted(
            (item for item in found.values() if item[2].path.startswith(prefix)),
            key=lambda item: (item[0], item[2].name_key),
        )
        page, extra = _page(
            self._tokens,
            "ListEntitiesForPolicy",
            params,
            chosen,
            lambda item: (str(item[0]), item[2].name_key),
        )
        return {
            "PolicyGroups": [
                {"GroupName": e.name, "GroupId": e.id} for _o, k, e in page if k == "group"
            ],
            "PolicyUsers": [
                {"UserName": e.name, "UserId": e.id} for _o, k, e in page if k == "user"
            ],
            "PolicyRoles": [
                {"RoleName": e.name, "RoleId": e.id} for _o, k, e in page if k == "role"
            ],
            **extra,
        }

    def put_boundary(self, kind: Kind, caller: Caller, params: Params) -> Output:
        arn: str = params["PermissionsBoundary"]
        _parse_policy_arn(arn)
        with self._write() as conn:
            entity = self._require(conn, kind, caller.account_id, params[_NAME_MEMBER[kind]])
            self._check_boundary(conn, caller, arn)
            repo.update_entity(conn, kind, entity, permissions_boundary=arn)
        return {}

    def delete_boundary(self, kind: Kind, caller: Caller, params: Params) -> Output:
        with self._write() as conn:
            entity = self._require(conn, kind, caller.account_id, params[_NAME_MEMBER[kind]])
            repo.update_entity(conn, kind, entity, permissions_boundary=None)
        return {}
