"""IAM groups and their members: CreateGroup, GetGroup, ListGroups, DeleteGroup,
AddUserToGroup, RemoveUserFromGroup, ListGroupsForUser."""

from __future__ import annotations

from strongroom.iam import policy_rows
from strongroom.iam import repository as repo
from strongroom.iam.base import IdentityBase
from strongroom.iam.common import (
    MAX_GROUPS_PER_USER,
    Output,
    Params,
    _already_exists,
    _delete_conflict,
    _limit_exceeded,
    _no_such_entity,
    _page,
    _unique,
    entity_arn,
    new_id,
)
from strongroom.iam.repository import GroupRecord
from strongroom.iam.shapes import _group_out, _user_out
from strongroom.types import Caller


class Groups(IdentityBase):
    def create_group(self, caller: Caller, params: Params) -> Output:
        name: str = params["GroupName"]
        path: str = params.get("Path") or "/"
        with self._write() as conn:
            if repo.find_group(conn, caller.account_id, name) is not None:
                raise _already_exists(f"Group with name {name} already exists.")
            group = GroupRecord(
                id=new_id("AGPA"),
                account_id=caller.account_id,
                name=name,
                name_key=name.lower(),
                path=path,
                arn=entity_arn(caller.account_id, "group", path, name),
                created_ms=self._now_ms(),
            )
            with _unique(_already_exists(f"Group with name {name} already exists.")):
                repo.insert_entity(conn, "group", group)
        return {"Group": _group_out(group)}

    def get_group(self, caller: Caller, params: Params) -> Output:
        with self._store.read() as conn:
            group = self._group(conn, caller, params["GroupName"])
            users = repo.members(conn, group.id)
        page, extra = _page(self._tokens, "GetGroup", params, users, lambda u: (u.name_key,))
        return {
            "Group": _group_out(group),
            "Users": [_user_out(user, full=False) for user in page],
            **extra,
        }

    def list_groups(self, caller: Caller, params: Params) -> Output:
        groups, extra = self._list("group", caller, params)
        return {"Groups": [_group_out(group) for group in groups], **extra}

    def delete_group(self, caller: Caller, params: Params) -> Output:
        with self._write() as conn:
            group = self._group(conn, caller, params["GroupName"])
            if repo.members(conn, group.id):
                raise _delete_conflict("Cannot delete entity, must remove users from group first.")
            if policy_rows.inline_policies(conn, group.id):
                raise _delete_conflict("Cannot delete entity, must delete policies first.")
            if policy_rows.attached(conn, group.id):
                raise _delete_conflict("Cannot delete entity, must detach all policies first.")
            repo.delete_entity(conn, "group", group.id)
        return {}

    def add_user_to_group(self, caller: Caller, params: Params) -> Output:
        with self._write() as conn:
            group = self._group(conn, caller, params["GroupName"])
            user = self._user(conn, caller, params["UserName"])
            if repo.is_member(conn, group.id, user.id):
                return {}
            if len(repo.groups_of(conn, user.id)) >= MAX_GROUPS_PER_USER:
                raise _limit_exceeded(
                    f"Cannot exceed quota for GroupsPerUser: {MAX_GROUPS_PER_USER}"
                )
            repo.add_member(conn, group.id, user.id, self._now_ms())
        return {}

    def remove_user_from_group(self, caller: Caller, params: Params) -> Output:
        with self._write() as conn:
            group = self._group(conn, caller, params["GroupName"])
            user = self._user(conn, caller, params["UserName"])
            if not repo.is_member(conn, group.id, user.id):
                raise _no_such_entity(f"User {user.name} is not in group {group.name}.")
            repo.remove_member(conn, group.id, user.id)
        return {}

    def list_groups_for_user(self, caller: Caller, params: Params) -> Output:
        with self._store.read() as conn:
            user = self._user(conn, caller, params["UserName"])
            groups = repo.groups_of(conn, user.id)
        page, extra = _page(
            self._tokens, "ListGroupsForUser", params, groups, lambda g: (g.name_key,)
        )
        return {"Groups": [_group_out(group) for group in page], **extra}
