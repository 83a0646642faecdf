"""KMS aliases: CreateAlias, UpdateAlias, DeleteAlias, ListAliases."""

from __future__ import annotations

from sqlalchemy import Connection, delete, insert, select, update

from strongroom.clock import from_ms
from strongroom.keys.kms_base import KmsBase
from strongroom.keys.kms_common import Output, Params, _check_alias_name, invalid_state
from strongroom.keys.repository import KeyRecord
from strongroom.protocol.errors import ServiceError, validation_error
from strongroom.store import schema
from strongroom.types import Caller


class Aliases(KmsBase):
    def create_alias(self, caller: Caller, params: Params) -> Output:
        name: str = params["AliasName"]
        _check_alias_name(name)
        aliases = schema.kms_aliases
        with self._store.write() as conn:
            key = self._target(conn, caller, params["TargetKeyId"], "CreateAlias")
            exists = conn.execute(
                select(aliases.c.alias_name).where(
                    aliases.c.account_id == caller.account_id,
                    aliases.c.region == caller.region,
                    aliases.c.alias_name == name,
                )
            ).first()
            if exists is not None:
                raise ServiceError(
                    "AlreadyExistsException",
                    f"An alias with the name arn:aws:kms:{caller.region}:{caller.account_id}:"
                    f"{name} already exists",
                )
            now = self._now_ms()
            conn.execute(
                insert(aliases).values(
                    account_id=caller.account_id,
                    region=caller.region,
                    alias_name=name,
                    target_key_id=key.key_id,
                    created_ms=now,
                    updated_ms=now,
                )
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
        aliases = schema.kms_aliases
        with self._store.write() as conn:
            self._by_alias(conn, caller.account_id, caller.region, name, None)
            key = self._target(conn, caller, params["TargetKeyId"], "UpdateAlias")
            conn.execute(
                update(aliases)
                .where(
                    aliases.c.account_id == caller.account_id,
                    aliases.c.region == caller.region,
                    aliases.c.alias_name == name,
                )
                .values(target_key_id=key.key_id, updated_ms=self._now_ms())
            )
        return {}

    def delete_alias(self, caller: Caller, params: Params) -> Output:
        name: str = params["AliasName"]
        _check_alias_name(name)
        aliases = schema.kms_aliases
        with self._store.write() as conn:
            self._by_alias(conn, caller.account_id, caller.region, name, None)
            conn.execute(
                delete(aliases).where(
                    aliases.c.account_id == caller.account_id,
                    aliases.c.region == caller.region,
                    aliases.c.alias_name == name,
                )
            )
        return {}

    def list_aliases(self, caller: Caller, params: Params) -> Output:
        aliases = schema.kms_aliases
        with self._store.read() as conn:
            query = select(aliases).where(
                aliases.c.account_id == caller.account_id, aliases.c.region == caller.region
            )
            if params.get("KeyId"):
                key = self._resolve(conn, caller, params["KeyId"])
                query = query.where(aliases.c.target_key_id == key.key_id)
            rows = conn.execute(query.order_by(aliases.c.alias_name)).all()
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
