"""KMS aliases: CreateAlias, UpdateAlias, DeleteAlias, ListAliases."""

from __future__ import annotations

from sqlalchemy import Connection

from strongroom.clock import from_ms
from strongroom.keys import repository as repo
from strongroom.keys.kms_base import KmsBase
from strongroom.keys.kms_common import Output, Params, _check_alias_name, invalid_state
from strongroom.keys.repository import KeyRecord
from strongroom.protocol.errors import ServiceError, validation_error
from strongroom.types import Caller


class Aliases(KmsBase):
    def create_alias(self, caller: Caller, params: Params) -> Output:
        name: str = params["AliasName"]
        _check_alias_name(name)
        with self._store.write() as conn:
            key = self._target(conn, caller, params["TargetKeyId"], "CreateAlias")
            if repo.alias_exists(conn, caller.account_id, caller.region, name):
                raise ServiceError(
                    "AlreadyExistsException",
                    f"An alias with the name arn:aws:kms:{caller.region}:{caller.account_id}:"
                    f"{name} already exists",
                )
            repo.insert_alias(
                conn, caller.account_id, caller.region, name, key.key_id, self._now_ms()
            )
        return {}

    def _target(self, conn: Connection, caller: Caller, ref: str, action: str) -> KeyRecord:
        if ref.startswith("alias/") or ":alias/" in ref:
            raise validation_error("Aliases must refer to keys. Not aliases")
        key = self._permitted(caller, self._resolve(conn, caller, ref), action)
        if key.state == "PendingDeletion":
            raise invalid_state(key, "pending deletion")
        return key

    def update_alias(self, caller: Caller, params: Params) -> Output:
        name: str = params["AliasName"]
        _check_alias_name(name)
        with self._store.write() as conn:
            self._by_alias(conn, caller.account_id, caller.region, name, None)
            key = self._target(conn, caller, params["TargetKeyId"], "UpdateAlias")
            repo.retarget_alias(
                conn, caller.account_id, caller.region, name, key.key_id, self._now_ms()
            )
        return {}

    def delete_alias(self, caller: Caller, params: Params) -> Output:
        name: str = params["AliasName"]
        _check_alias_name(name)
        with self._store.write() as conn:
            self._by_alias(conn, caller.account_id, caller.region, name, None)
            repo.delete_alias(conn, caller.account_id, caller.region, name)
        return {}

    def list_aliases(self, caller: Caller, params: Params) -> Output:
        with self._store.read() as conn:
            key_id = None
            if params.get("KeyId"):
                key_id = self._resolve(conn, caller, params["KeyId"]).key_id
            rows = repo.alias_listing(conn, caller.account_id, caller.region, key_id)
        page, marker = self._page(
            "ListAliases", caller, rows, params, default_limit=50, maximum=100
        )
        return {
            "Aliases": [
                {
                    "AliasName": row.alias_name,
                    "AliasArn": f"arn:aws:kms:{caller.region}:{caller.account_id}:{row.alias_name}",
                    "TargetKeyId": row.target_key_id,
                    "CreationDate": from_ms(row.created_ms),
                    "LastUpdatedDate": from_ms(row.updated_ms),
                }
                for row in page
            ],
            "Truncated": marker is not None,
            "NextMarker": marker,
        }
