"""IAM roles: CreateRole, GetRole, ListRoles, DeleteRole, UpdateAssumeRolePolicy, UpdateRole."""

from __future__ import annotations

from typing import Any

from strongroom.iam import policy_rows
from strongroom.iam import repository as repo
from strongroom.iam.base import IdentityBase
from strongroom.iam.common import (
    DEFAULT_SESSION_DURATION,
    Output,
    Params,
    _already_exists,
    _check_session_duration,
    _check_tag_quota,
    _delete_conflict,
    _parse_trust_policy,
    _tags_in,
    _unique,
    entity_arn,
    new_id,
)
from strongroom.iam.repository import RoleRecord
from strongroom.iam.shapes import _role_out
from strongroom.types import Caller


class Roles(IdentityBase):
    def create_role(self, caller: Caller, params: Params) -> Output:
        name: str = params["RoleName"]
        path: str = params.get("Path") or "/"
        trust_policy: str = params["AssumeRolePolicyDocument"]
        duration = int(params.get("MaxSessionDuration") or DEFAULT_SESSION_DURATION)
        _check_session_duration(duration)
        _parse_trust_policy(trust_policy)
        trust_policy = self._bind_trust_policy(trust_policy)
        tags = _check_tag_quota(_tags_in(params.get("Tags")), "Role")
        boundary: str | None = params.get("PermissionsBoundary") or None
        with self._write() as conn:
            if repo.find_role(conn, caller.account_id, name) is not None:
                raise _already_exists(f"Role with name {name} already exists.")
            if boundary is not None:
                self._check_boundary(conn, caller, boundary)
            role = RoleRecord(
                id=new_id("AROA"),
                account_id=caller.account_id,
                name=name,
                name_key=name.lower(),
                path=path,
                arn=entity_arn(caller.account_id, "role", path, name),
                description=params.get("Description"),
                trust_policy=trust_policy,
                max_session_duration=duration,
                permissions_boundary=boundary,
                tags=tags or None,
                created_ms=self._now_ms(),
                last_used_ms=None,
                last_used_region=None,
            )
            with _unique(_already_exists(f"Role with name {name} already exists.")):
                repo.insert_entity(conn, "role", role)
        return {"Role": _role_out(self._shown(role), full=True)}

    def get_role(self, caller: Caller, params: Params) -> Output:
        with self._store.read() as conn:
            role = self._role(conn, caller, params["RoleName"])
        return {"Role": _role_out(self._shown(role), full=True, last_used=True)}

    def list_roles(self, caller: Caller, params: Params) -> Output:
        roles, extra = self._list("role", caller, params)
        return {"Roles": [_role_out(self._shown(role), full=False) for role in roles], **extra}

    def delete_role(self, caller: Caller, params: Params) -> Output:
        with self._write() as conn:
            role = self._role(conn, caller, params["RoleName"])
            if policy_rows.inline_policies(conn, role.id):
                raise _delete_conflict("Cannot delete entity, must delete policies first.")
            if policy_rows.attached(conn, role.id):
                raise _delete_conflict("Cannot delete entity, must detach all policies first.")
            repo.delete_entity(conn, "role", role.id)
        return {}

    def update_assume_role_policy(self, caller: Caller, params: Params) -> Output:
        document: str = params["PolicyDocument"]
        _parse_trust_policy(document)
        document = self._bind_trust_policy(document)
        with self._write() as conn:
            role = self._role(conn, caller, params["RoleName"])
            repo.update_entity(conn, "role", role, trust_policy=document)
        return {}

    def update_role(self, caller: Caller, params: Params) -> Output:
        values: dict[str, Any] = {}
        if params.get("Description") is not None:
            values["description"] = params["Description"]
        if params.get("MaxSessionDuration") is not None:
            _check_session_duration(int(params["MaxSessionDuration"]))
            values["max_session_duration"] = int(params["MaxSessionDuration"])
        with self._write() as conn:
            role = self._role(conn, caller, params["RoleName"])
            if values:
                repo.update_entity(conn, "role", role, **values)
        return {}
