"""IAM access keys: CreateAccessKey, ListAccessKeys, UpdateAccessKey, DeleteAccessKey,
GetAccessKeyLastUsed."""

from __future__ import annotations

from sqlalchemy import Connection

from strongroom.clock import from_ms
from strongroom.iam import repository as repo
from strongroom.iam.base import IdentityBase
from strongroom.iam.common import (
    MAX_ACCESS_KEYS,
    Output,
    Params,
    _access_key_not_found,
    _invalid_input,
    _limit_exceeded,
    _page,
    _principal_name,
)
from strongroom.types import Caller


class AccessKeys(IdentityBase):
    def create_access_key(self, caller: Caller, params: Params) -> Output:
        name = self._user_name(caller, params)
        with self._write() as conn:
            user = self._user(conn, caller, name)
            if len(repo.access_keys_of(conn, user.arn)) >= MAX_ACCESS_KEYS:
                raise _limit_exceeded(
                    f"Cannot exceed quota for AccessKeysPerUser: {MAX_ACCESS_KEYS}"
                )
            key_id, secret = self._credentials.create_access_key(conn, caller.account_id, user.arn)
            key = repo.access_key(conn, key_id)
            assert key is not None
        return {
            "AccessKey": {
                "UserName": user.name,
                "AccessKeyId": key_id,
                "Status": key.status,
                "SecretAccessKey": secret,
                "CreateDate": from_ms(key.created_ms),
            }
        }

    def list_access_keys(self, caller: Caller, params: Params) -> Output:
        name = self._user_name(caller, params)
        with self._store.read() as conn:
            user = self._user(conn, caller, name)
            keys = repo.access_keys_of(conn, user.arn)
        page, extra = _page(
            self._tokens,
            "ListAccessKeys",
            params,
            keys,
            lambda k: (f"{k.created_ms:015d}", k.access_key_id),
        )
        return {
            "AccessKeyMetadata": [
                {
                    "UserName": user.name,
                    "AccessKeyId": key.access_key_id,
                    "Status": key.status,
                    "CreateDate": from_ms(key.created_ms),
                }
                for key in page
            ],
            **extra,
        }

    def _user_key(self, conn: Connection, caller: Caller, params: Params) -> repo.AccessKeyRecord:
        user = self._user(conn, caller, self._user_name(caller, params))
        key_id: str = params["AccessKeyId"]
        key = repo.access_key(conn, key_id)
        if key is None or key.principal_arn != user.arn:
            raise _access_key_not_found(key_id)
        return key

    def update_access_key(self, caller: Caller, params: Params) -> Output:
        status: str = params["Status"]
        if status not in ("Active", "Inactive"):
            raise _invalid_input(
                f"Invalid value for parameter Status, value: {status}, "
                "valid values: Active, Inactive"
            )
        with self._write() as conn:
            key = self._user_key(conn, caller, params)
            repo.set_access_key_status(conn, key.access_key_id, status)
        return {}

    def delete_access_key(self, caller: Caller, params: Params) -> Output:
        with self._write() as conn:
            key = self._user_key(conn, caller, params)
            repo.delete_access_key(conn, key.access_key_id)
        return {}

    def get_access_key_last_used(self, caller: Caller, params: Params) -> Output:
        key_id: str = params["AccessKeyId"]
        with self._store.read() as conn:
            key = repo.access_key(conn, key_id)
        if key is None or key.account_id != caller.account_id:
            raise _access_key_not_found(key_id)
        used: Output = {
            "ServiceName": key.last_used_service or "N/A",
            "Region": key.last_used_region or "N/A",
        }
        if key.last_used_ms is not None:
            used["LastUsedDate"] = from_ms(key.last_used_ms)
        out: Output = {"AccessKeyLastUsed": used}
        owner = _principal_name(key.principal_arn)
        if owner is not None and owner[1] == "user":
            out["UserName"] = owner[2]
        return out
