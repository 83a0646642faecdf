"""Inline policies of users, groups and roles (Put/Get/List/Delete{User,Group,Role}Policy):
one handler per operation, bound to its kind in :mod:`strongroom.iam.api`."""

from __future__ import annotations

from strongroom.iam import policy_rows
from strongroom.iam.base import IdentityBase
from strongroom.iam.common import (
    _NAME_MEMBER,
    _TITLE,
    INLINE_POLICY_SIZE,
    Output,
    Params,
    _limit_exceeded,
    _no_such_entity,
    _page,
    _parse_identity_policy,
    _policy_size,
    _url_encoded,
)
from strongroom.iam.repository import Kind
from strongroom.types import Caller


class InlinePolicies(IdentityBase):
    def put_inline(self, kind: Kind, caller: Caller, params: Params) -> Output:
        policy_name: str = params["PolicyName"]
        document: str = params["PolicyDocument"]
        _parse_identity_policy(document)
        with self._write() as conn:
            entity = self._require(conn, kind, caller.account_id, params[_NAME_MEMBER[kind]])
            documents = policy_rows.inline_policies(conn, entity.id)
            documents[policy_name] = document
            limit = INLINE_POLICY_SIZE[kind]
            if sum(_policy_size(text) for text in documents.values()) > limit:
                raise _limit_exceeded(
                    f"Maximum policy size of {limit} bytes exceeded for {kind} {entity.name}"
                )
            policy_rows.put_inline(conn, kind, entity.id, policy_name, document)
        return {}

    def get_inline(self, kind: Kind, caller: Caller, params: Params) -> Output:
        policy_name: str = params["PolicyName"]
        with self._store.read() as conn:
            entity = self._require(conn, kind, caller.account_id, params[_NAME_MEMBER[kind]])
            document = policy_rows.inline_policies(conn, entity.id).get(policy_name)
        if document is None:
            raise _no_such_entity(f"The {kind} policy with name {policy_name} cannot be found.")
        return {
            _NAME_MEMBER[kind]: entity.name,
            "PolicyName": policy_name,
            "PolicyDocument": _url_encoded(document),
        }

    def list_inline(self, kind: Kind, caller: Caller, params: Params) -> Output:
        with self._store.read() as conn:
            entity = self._require(conn, kind, caller.account_id, params[_NAME_MEMBER[kind]])
            names = list(policy_rows.inline_policies(conn, entity.id))
        page, extra = _page(
            self._tokens, f"List{_TITLE[kind]}Policies", params, names, lambda n: (n,)
        )
        return {"PolicyNames": page, **extra}

    def delete_inline(self, kind: Kind, caller: Caller, params: Params) -> Output:
        policy_name: str = params["PolicyName"]
        with self._write() as conn:
            entity = self._require(conn, kind, caller.account_id, params[_NAME_MEMBER[kind]])
            if policy_name not in policy_rows.inline_policies(conn, entity.id):
                raise _no_such_entity(f"The {kind} policy with name {policy_name} cannot be found.")
            policy_rows.delete_inline(conn, entity.id, policy_name)
        return {}
