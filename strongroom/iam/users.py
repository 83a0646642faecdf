"""IAM users: CreateUser, GetUser, ListUsers, UpdateUser, DeleteUser."""

from __future__ import annotations

from strongroom.iam import policy_rows
from strongroom.iam import repository as repo
from strongroom.iam.base import IdentityBase
from strongroom.iam.common import (
    Output,
    Params,
    _already_exists,
    _check_tag_quota,
    _delete_conflict,
    _tags_in,
    _unique,
    entity_arn,
    new_id,
)
from strongroom.iam.repository import UserRecord
from strongroom.iam.shapes import _user_out
from strongroom.types import Caller


class Users(IdentityBase):
    def create_user(self, caller: Caller, params: Params) -> Output:
        name: str = params["UserName"]
        path: str = params.get("Path") or "/"
        tags = _check_tag_quota(_tags_in(params.get("Tags")), "User")
        boundary: str | None = params.get("PermissionsBoundary") or None
        with self._write() as conn:
            if repo.find_user(conn, caller.account_id, name) is not None:
                raise _already_exists(f"User with name {name} already exists.")
            if boundary is not None:
                self._check_boundary(conn, caller, boundary)
            user = UserRecord(
                id=new_id("AIDA"),
                account_id=caller.account_id,
                name=name,
                name_key=name.lower(),
                path=path,
                arn=entity_arn(caller.account_id, "user", path, name),
                permissions_boundary=boundary,
                tags=tags or None,
                created_ms=self._now_ms(),
                password_last_used_ms=None,
            )
            with _unique(_already_exists(f"User with name {name} already exists.")):
                repo.insert_entity(conn, "user", user)
        return {"User": _user_out(user, full=True)}

    def get_user(self, caller: Caller, params: Params) -> Output:
        name = self._user_name(caller, params)
        with self._store.read() as conn:
            user = self._user(conn, caller, name)
        return {"User": _user_out(user, full=True)}

    def list_users(self, caller: Caller, params: Params) -> Output:
        users, extra = self._list("user", caller, params)
        return {"Users": [_user_out(user, full=False) for user in users], **extra}

    def update_user(self, caller: Caller, params: Params) -> Output:
        new_name: str | None = params.get("NewUserName") or None
        new_path: str | None = params.get("NewPath") or None
        with self._write() as conn:
            user = self._user(conn, caller, params["UserName"])
            if (
                new_name is not None
                and new_name.lower() != user.name_key
                and repo.find_user(conn, caller.account_id, new_name) is not None
            ):
                raise _already_exists(f"User with name {new_name} already exists.")
            name = new_name or user.name
            path = new_path or user.path
            arn = entity_arn(caller.account_id, "user", path, name)
            if (name, path) != (user.name, user.path):
                old_arn = user.arn
                repo.update_entity(
                    conn, "user", user, name=name, name_key=name.lower(), path=path, arn=arn
                )
                if arn != old_arn:
                    repo.move_access_keys(conn, old_arn, arn)
        return {}

    def delete_user(self, caller: Caller, params: Params) -> Output:
        with self._write() as conn:
            user = self._user(conn, caller, params["UserName"])
            # What must go first, in the order of the DeleteUser documentation.
            if repo.login_profile(conn, user.id) is not None:
                raise _delete_conflict("Cannot delete entity, must delete login profile first.")
            if repo.access_keys_of(conn, user.arn):
                raise _delete_conflict("Cannot delete entity, must delete access keys first.")
            if repo.has_mfa_devices(conn, user.id):
                raise _delete_conflict("Cannot delete entity, must delete MFA device first.")
            if policy_rows.inline_policies(conn, user.id):
                raise _delete_conflict("Cannot delete entity, must delete policies first.")
            if policy_rows.attached(conn, user.id):
                raise _delete_conflict("Cannot delete entity, must detach all policies first.")
            if repo.groups_of(conn, user.id):
                raise _delete_conflict("Cannot delete entity, must remove users from group first.")
            repo.delete_entity(conn, "user", user.id)
        return {}
