"""Tags of users and roles (TagUser/TagRole, UntagUser/UntagRole, ListUserTags/ListRoleTags):
one handler per operation pair, bound to its kind in :mod:`strongroom.iam.api`."""

from __future__ import annotations

from strongroom.iam import repository as repo
from strongroom.iam.base import IdentityBase
from strongroom.iam.common import (
    _NAME_MEMBER,
    _TITLE,
    Output,
    Params,
    _merge_tags,
    _page,
    _position,
    _tags_in,
    _tags_out,
)
from strongroom.iam.repository import Kind
from strongroom.types import Caller


class Tagging(IdentityBase):
    def tag(self, kind: Kind, caller: Caller, params: Params) -> Output:
        new = _tags_in(params["Tags"])
        with self._write() as conn:
            entity = self._require(conn, kind, caller.account_id, params[_NAME_MEMBER[kind]])
            repo.update_entity(conn, kind, entity, tags=_merge_tags(entity.tags, new, kind))
        return {}

    def untag(self, kind: Kind, caller: Caller, params: Params) -> Output:
        gone = {key.lower() for key in params["TagKeys"]}
        with self._write() as conn:
            entity = self._require(conn, kind, caller.account_id, params[_NAME_MEMBER[kind]])
            kept = [tag for tag in entity.tags or [] if tag[0].lower() not in gone]
            repo.update_entity(conn, kind, entity, tags=kept or None)
        return {}

    def list_tags(self, kind: Kind, caller: Caller, params: Params) -> Output:
        with self._store.read() as conn:
            entity = self._require(conn, kind, caller.account_id, params[_NAME_MEMBER[kind]])
        indexed = list(enumerate(_tags_out(entity.tags)))
        page, extra = _page(
            self._tokens, f"List{_TITLE[kind]}Tags", params, indexed, lambda i: _position(i[0])
        )
        return {"Tags": [tag for _index, tag in page], **extra}
