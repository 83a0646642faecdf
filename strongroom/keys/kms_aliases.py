"""KMS aliases: CreateAlias, UpdateAlias, DeleteAlias, ListAliases."""

from __future__ import annotations

from sqlalchemy import Connection

from strongroom.clock import from_ms
from strongroom.keys import repository as repo
from strongroom.keys.conditions import alias_arn
from strongroom.keys.kms_base import KmsBase
from strongroom.keys.kms_common import (
    PREDEFINED_ALIASES,
    Output,
    Params,
    _check_alias_name,
    invalid_state,
    not_found,
)
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
        key = self._resolve(conn, caller, ref)
        if key.account_id != caller.account_id:
            # An alias and its key are in one account (and region, which resolving the
            # reference already holds to): the key is looked for in the alias's account.
            raise not_found(f"Key '{key.arn}' does not exist")
        # Customer managed keys only: an AWS managed key's policy allows no alias.
        self._permitted(caller, key, action)
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
        entries = [
            {
                "AliasName": row.alias_name,
                "AliasArn": alias_arn(caller.region, caller.account_id, row.alias_name),
                "TargetKeyId": row.target_key_id,
                "CreationDate": from_ms(row.created_ms),
                "LastUpdatedDate": from_ms(row.updated_ms),
            }
            for row in rows
        ]
        if key_id is None:
            # As on AWS: the predefined aliases of the services served are listed before
            # their AWS managed key exists, without a target (ListAliases).
            present = {row.alias_name for row in rows}
            entries += [
                {"AliasName": name, "AliasArn": alias_arn(caller.region, caller.account_id, name)}
                for name in PREDEFINED_ALIASES
                if name not in present
            ]
            entries.sort(key=lambda entry: str(entry["AliasName"]))
        page, marker = self._page(
            "ListAliases", caller, entries, params, default_limit=50, maximum=100
        )
        return {"Aliases": list(page), "Truncated": marker is not None, "NextMarker": marker}
