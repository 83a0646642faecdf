"""KMS keys: CreateKey, DescribeKey, ListKeys, EnableKey, DisableKey, the deletion window
(ScheduleKeyDeletion, CancelKeyDeletion, the purge), tags, and aws/secretsmanager."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import Connection

from strongroom.clock import from_ms, to_ms
from strongroom.keys import repository as repo
from strongroom.keys.blobs import Ciphertexts
from strongroom.keys.key_policies import (
    _authorize_tags,
    _check_lockout,
    _check_policy,
    default_key_policy,
    managed_key_policy,
)
from strongroom.keys.kms_common import (
    SECRETS_MANAGER_ALIAS,
    SYMMETRIC,
    Output,
    Params,
    _days_ms,
    _tags,
    invalid_state,
    unsupported,
)
from strongroom.keys.repository import KeyRecord
from strongroom.protocol.errors import ServiceError, validation_error
from strongroom.types import Caller


class Keys(Ciphertexts):
    def _create(
        self,
        conn: Connection,
        caller: Caller,
        *,
        description: str,
        policy: str,
        tags: list[list[str]] | None,
        key_manager: str,
    ) -> KeyRecord:
        key_id = str(uuid.uuid4())
        values = {
            "key_id": key_id,
            "account_id": caller.account_id,
            "region": caller.region,
            "arn": self._arn(caller, key_id),
            "description": description,
            "key_manager": key_manager,
            "state": "Enabled",
            "policy": policy,
            "tags": tags,
            "created_ms": self._now_ms(),
        }
        if key_manager == "AWS":
            # AWS managed keys rotate every year, and that cannot be turned off.
            values["rotation_period_days"] = 365
            values["next_rotation_ms"] = self._now_ms() + _days_ms(365)
        repo.insert_key(conn, values)
        self._add_material(conn, key_id, 1, None)
        return self._resolve(conn, caller, key_id)

    def _metadata(self, conn: Connection, key: KeyRecord) -> Output:
        material_id = self._current_material_id(conn, key.key_id)
        pending = key.state == "PendingDeletion"
        return {
            "AWSAccountId": key.account_id,
            "KeyId": key.key_id,
            "Arn": key.arn,
            "CreationDate": from_ms(key.created_ms),
            "Enabled": key.state == "Enabled",
            "Description": key.description,
            "KeyUsage": "ENCRYPT_DECRYPT",
            "KeyState": key.state,
            "DeletionDate": from_ms(key.deletion_ms) if pending else None,
            "Origin": "AWS_KMS",
            "KeyManager": key.key_manager,
            "CustomerMasterKeySpec": SYMMETRIC,
            "KeySpec": SYMMETRIC,
            "EncryptionAlgorithms": [SYMMETRIC],
            "MultiRegion": False,
            "PendingDeletionWindowInDays": key.pending_window_days if pending else None,
            "CurrentKeyMaterialId": material_id,
        }

    def create_key(self, caller: Caller, params: Params) -> Output:
        for member in ("KeySpec", "CustomerMasterKeySpec"):
            if params.get(member, SYMMETRIC) != SYMMETRIC:
                raise unsupported(f"{member} {params[member]} is not supported by Strongroom.")
        if params.get("KeyUsage", "ENCRYPT_DECRYPT") != "ENCRYPT_DECRYPT":
            raise unsupported(f"KeyUsage {params['KeyUsage']} is not supported by Strongroom.")
        if params.get("Origin", "AWS_KMS") != "AWS_KMS":
            raise unsupported(f"Origin {params['Origin']} is not supported by Strongroom.")
        if params.get("MultiRegion"):
            raise unsupported("Multi-Region keys are not supported by Strongroom.")
        if params.get("CustomKeyStoreId") or params.get("XksKeyId"):
            raise unsupported("Custom key stores are not supported by Strongroom.")
        policy = params.get("Policy")
        if policy is not None:
            _check_policy(policy)
            policy = self._bound(policy)
        with self._store.write() as conn:
            key = self._create(
                conn,
                caller,
                description=params.get("Description", ""),
                policy=policy or default_key_policy(caller.account_id),
                tags=_tags(None, params["Tags"]) if params.get("Tags") else None,
                key_manager="CUSTOMER",
            )
            # Checked on the new key, inside the transaction: a refusal creates nothing.
            if params.get("Tags"):
                _authorize_tags(caller, key, params)
            if policy is not None and not params.get("BypassPolicyLockoutSafetyCheck"):
                _check_lockout(caller, key, policy)
            return {"KeyMetadata": self._metadata(conn, key)}

    def describe_key(self, caller: Caller, params: Params) -> Output:
        managed_arn = f"arn:aws:kms:{caller.region}:{caller.account_id}:{SECRETS_MANAGER_ALIAS}"
        if params["KeyId"] in (SECRETS_MANAGER_ALIAS, managed_arn):
            # As AWS: describing a predefined AWS alias creates its AWS managed key.
            with self._store.write() as conn:
                return {"KeyMetadata": self._metadata(conn, self.managed_key(conn, caller))}
        with self._store.read() as conn:
            key = self._resolve(conn, caller, params["KeyId"])
            return {"KeyMetadata": self._metadata(conn, key)}

    def list_keys(self, caller: Caller, params: Params) -> Output:
        with self._store.read() as conn:
            rows = repo.key_listing(conn, caller.account_id, caller.region)
        page, marker = self._page("ListKeys", caller, rows, params, default_limit=100, maximum=1000)
        return {
            "Keys": [{"KeyId": row.key_id, "KeyArn": row.arn} for row in page],
            "Truncated": marker is not None,
            "NextMarker": marker,
        }

    def update_key_description(self, caller: Caller, params: Params) -> Output:
        with self._store.write() as conn:
            key = self._changeable(
                caller, self._resolve(conn, caller, params["KeyId"]), "UpdateKeyDescription"
            )
            self._update(conn, key, description=params["Description"])
        return {}

    def enable_key(self, caller: Caller, params: Params) -> Output:
        return self._set_state(caller, params["KeyId"], "Enabled", "EnableKey")

    def disable_key(self, caller: Caller, params: Params) -> Output:
        return self._set_state(caller, params["KeyId"], "Disabled", "DisableKey")

    def _set_state(self, caller: Caller, ref: str, state: str, action: str) -> Output:
        with self._store.write() as conn:
            key = self._changeable(caller, self._resolve(conn, caller, ref), action)
            self._update(conn, key, state=state)
        return {}

    def schedule_key_deletion(self, caller: Caller, params: Params) -> Output:
        window = params.get("PendingWindowInDays", 30)
        if not 7 <= window <= 30:
            raise validation_error("PendingWindowInDays must be between 7 and 30")
        with self._store.write() as conn:
            key = self._changeable(
                caller, self._resolve(conn, caller, params["KeyId"]), "ScheduleKeyDeletion"
            )
            deletion = self._clock.now() + timedelta(days=window)
            self._update(
                conn,
                key,
                state="PendingDeletion",
                deletion_ms=to_ms(deletion),
                pending_window_days=window,
            )
        return {
            "KeyId": key.arn,
            "DeletionDate": deletion,
            "KeyState": "PendingDeletion",
            "PendingWindowInDays": window,
        }

    def cancel_key_deletion(self, caller: Caller, params: Params) -> Output:
        with self._store.write() as conn:
            key = self._permitted(
                caller, self._resolve(conn, caller, params["KeyId"]), "CancelKeyDeletion"
            )
            if key.state != "PendingDeletion":
                raise invalid_state(key, "not pending deletion")
            # As on AWS, a key whose deletion was cancelled comes back disabled.
            self._update(conn, key, state="Disabled", deletion_ms=None, pending_window_days=None)
        return {"KeyId": key.arn}

    def purge_expired_keys(self, observe: Callable[[KeyRecord], None] | None = None) -> int:
        """Delete keys whose waiting period has ended; returns how many. ``observe`` hears
        of each inside the transaction (the background job audits them)."""
        with self._store.write() as conn:
            doomed = repo.keys_to_purge(conn, self._now_ms())
            for record in doomed:
                repo.delete_key(conn, record.key_id)
                if observe is not None:
                    observe(record)
        return len(doomed)

    def tag_resource(self, caller: Caller, params: Params) -> Output:
        with self._store.write() as conn:
            key = self._changeable(
                caller, self._resolve(conn, caller, params["KeyId"]), "TagResource"
            )
            self._update(conn, key, tags=_tags(key.tags, params["Tags"]))
        return {}

    def untag_resource(self, caller: Caller, params: Params) -> Output:
        drop = set(params["TagKeys"])
        with self._store.write() as conn:
            key = self._changeable(
                caller, self._resolve(conn, caller, params["KeyId"]), "UntagResource"
            )
            self._update(conn, key, tags=[t for t in key.tags or [] if t[0] not in drop])
        return {}

    def list_resource_tags(self, caller: Caller, params: Params) -> Output:
        with self._store.read() as conn:
            key = self._resolve(conn, caller, params["KeyId"])
        page, marker = self._page(
            "ListResourceTags", caller, key.tags or [], params, default_limit=50, maximum=50
        )
        return {
            "Tags": [{"TagKey": k, "TagValue": v} for k, v in page],
            "Truncated": marker is not None,
            "NextMarker": marker,
        }

    def managed_key(self, conn: Connection, caller: Caller) -> KeyRecord:
        """aws/secretsmanager, created on first use in each account and region."""
        try:
            return self._by_alias(
                conn, caller.account_id, caller.region, SECRETS_MANAGER_ALIAS, None
            )
        except ServiceError:
            pass
        key = self._create(
            conn,
            caller,
            description="Default key that protects my Secrets Manager data when no other key "
            "is defined",
            policy=managed_key_policy(caller.account_id, caller.region),
            tags=None,
            key_manager="AWS",
        )
        repo.insert_alias(
            conn,
            caller.account_id,
            caller.region,
            SECRETS_MANAGER_ALIAS,
            key.key_id,
            self._now_ms(),
        )
        return key
