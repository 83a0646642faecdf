# long module: to be split (repository, blob format, material cache, key policies) after the
# parallel changes of this wave merge (issue 13 section 3).
"""A KMS-compatible key service: symmetric keys, aliases, key policies, rotation,
deletion windows, and the cryptographic operations.

Key material never leaves this module in the clear except as data keys handed to a
caller. Each generation of a key's material is sealed by the root barrier and bound to
the key id and generation; ciphertext blobs name the key and generation that made them,
and bind the encryption context as associated data.
"""

from __future__ import annotations

import dataclasses
import os
import struct
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, Row, delete, func, insert, select, update

from strongroom.clock import Clock, from_ms, to_ms
from strongroom.keys.conditions import key_check, key_resource_keys, tag_request_keys
from strongroom.keys.envelope import Barrier, DecryptionError
from strongroom.policy.checks import Check
from strongroom.policy.document import parse_policy
from strongroom.protocol.errors import ServiceError, validation_error
from strongroom.protocol.pagination import TokenCodec
from strongroom.store import schema
from strongroom.store.cache import Namespace
from strongroom.store.engine import Store, cached
from strongroom.types import Caller

Params = Mapping[str, Any]
Output = dict[str, Any]

# Read to open every secret value: cached per process (store/cache.py).
# A key record carries its aliases (kms:ResourceAliases), so alias changes drop it too.
_KEY_BY_ID = Namespace("kms-key", ("kms_keys", "kms_aliases"), copy=True)
_MATERIAL = Namespace("kms-material", ("kms_key_material",))
DATA_KEY_LIMIT = 32_768  # unwrapped data keys remembered per process (DataKeys), ~500 B each
# Every secret write without its own key resolves aws/secretsmanager.
_BY_ALIAS = Namespace("kms-alias", ("kms_aliases", "kms_keys"), copy=True, remember_absent=False)


def _aliased(conn: Connection, account: str, region: str, alias: str) -> KeyRecord | None:
    aliases, keys = schema.kms_aliases, schema.kms_keys
    row = conn.execute(
        select(keys)
        .join(aliases, aliases.c.target_key_id == keys.c.key_id)
        .where(
            aliases.c.account_id == account,
            aliases.c.region == region,
            aliases.c.alias_name == alias,
        )
    ).first()
    return _loaded(conn, row) if row is not None else None


SECRETS_MANAGER_ALIAS = "alias/aws/secretsmanager"
SYMMETRIC = "SYMMETRIC_DEFAULT"
_BLOB_VERSION = 1
_KEY_ID_LEN = 36
_NONCE = 12
_BLOB_HEADER = struct.Struct(">B36sI")
MAX_ON_DEMAND_ROTATIONS = 25


@dataclass
class KeyRecord:
    key_id: str
    account_id: str
    region: str
    arn: str
    description: str
    key_manager: str
    state: str
    policy: str
    tags: list[list[str]] | None
    created_ms: int
    deletion_ms: int | None
    pending_window_days: int | None
    rotation_period_days: int | None
    next_rotation_ms: int | None
    on_demand_rotation_ms: int | None
    # The alias names pointing at the key (not a column): its kms:ResourceAliases.
    aliases: tuple[str, ...] = ()


def _key(row: Row[Any], aliases: tuple[str, ...] = ()) -> KeyRecord:
    return KeyRecord(
        **{c.name: getattr(row, c.name) for c in schema.kms_keys.columns}, aliases=aliases
    )


def _loaded(conn: Connection, row: Row[Any]) -> KeyRecord:
    """The key of ``row`` with its aliases, for authorization on its resource keys."""
    aliases = schema.kms_aliases
    names = conn.execute(
        select(aliases.c.alias_name)
        .where(aliases.c.target_key_id == row.key_id)
        .order_by(aliases.c.alias_name)
    ).scalars()
    return _key(row, tuple(names))


# Errors, in KMS's words ----------------------------------------------------------------


def not_found(message: str) -> ServiceError:
    return ServiceError("NotFoundException", message)


def disabled(key: KeyRecord) -> ServiceError:
    return ServiceError("DisabledException", f"{key.arn} is disabled.")


def invalid_state(key: KeyRecord, what: str) -> ServiceError:
    return ServiceError("KMSInvalidStateException", f"{key.arn} is {what}.")


def invalid_ciphertext() -> ServiceError:
    return ServiceError("InvalidCiphertextException", "")


def unsupported(message: str) -> ServiceError:
    return ServiceError("UnsupportedOperationException", message)


def access_denied(caller: Caller, action: str, key: KeyRecord) -> ServiceError:
    """What AWS answers when a key policy grants nothing: e.g. changing an AWS managed key,
    whose policy allows only Describe*/Get*/List* (and use through its service)."""
    return ServiceError(
        "AccessDeniedException",
        f"User: {caller.arn} is not authorized to perform: kms:{action} on resource: "
        f"{key.arn} because no resource-based policy allows the kms:{action} action",
    )


def default_key_policy(account_id: str) -> str:
    return orjson.dumps(
        {
            "Version": "2012-10-17",
            "Id": "key-default-1",
            "Statement": [
                {
                    "Sid": "Enable IAM User Permissions",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ],
        },
        option=orjson.OPT_INDENT_2,
    ).decode()


def managed_key_policy(account_id: str, region: str) -> str:
    """The policy AWS gives aws/secretsmanager: usable only through Secrets Manager, by
    principals of the account."""
    return orjson.dumps(
        {
            "Version": "2012-10-17",
            "Id": "auto-secretsmanager-2",
            "Statement": [
                {
                    "Sid": "Allow access through AWS Secrets Manager for all principals in the "
                    "account that are authorized to use AWS Secrets Manager",
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": [
                        "kms:Encrypt",
                        "kms:Decrypt",
                        "kms:ReEncrypt*",
                        "kms:CreateGrant",
                        "kms:DescribeKey",
                    ],
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": {
                            "kms:CallerAccount": account_id,
                            "kms:ViaService": f"secretsmanager.{region}.amazonaws.com",
                        }
                    },
                },
                {
                    "Sid": "Allow access through AWS Secrets Manager for all principals in the "
                    "account that are authorized to use AWS Secrets Manager",
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": "kms:GenerateDataKey*",
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": {"kms:CallerAccount": account_id},
                        "StringLike": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"},
                    },
                },
                {
                    "Sid": "Allow direct access to key metadata to the account",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
                    "Action": ["kms:Describe*", "kms:Get*", "kms:List*", "kms:RevokeGrant"],
                    "Resource": "*",
                },
            ],
        },
        option=orjson.OPT_INDENT_2,
    ).decode()


def canonical_context(context: Mapping[str, str] | None) -> bytes:
    """The encryption context as bytes independent of member order.

    Copied to its own length: the bytes orjson returns keep the 4 KiB buffer they were
    written into, and a context outlives the request as part of a :class:`DataKeys` key
    (32,768 of them were 130 MiB instead of 15)."""
    return bytes(memoryview(orjson.dumps(dict(sorted((context or {}).items())))))


class KeyService:
    def __init__(self, store: Store, barrier: Barrier, clock: Clock, tokens: TokenCodec) -> None:
        self._store = store
        self._barrier = barrier
        self._clock = clock
        self._tokens = tokens
        self._data_keys = DataKeys()

    def _now_ms(self) -> int:
        return to_ms(self._clock.now())

    # Resolving key references --------------------------------------------------------

    def _resolve(self, conn: Connection, caller: Caller, ref: str) -> KeyRecord:
        """A key id, key ARN, alias name or alias ARN -> the key."""
        keys = schema.kms_keys
        if ref.startswith("arn:"):
            parts = ref.split(":", 5)
            if len(parts) != 6 or parts[2] != "kms":
                raise not_found(f"Invalid arn {ref}")
            region, account, resource = parts[3], parts[4], parts[5]
            if resource.startswith("alias/"):
                return self._by_alias(conn, account, region, resource, ref)
            row = conn.execute(select(keys).where(keys.c.arn == ref)).first()
            if row is None:
                raise not_found(f"Key '{ref}' does not exist")
            return _loaded(conn, row)
        if ref.startswith("alias/"):
            return self._by_alias(conn, caller.account_id, caller.region, ref, None)
        try:
            uuid.UUID(ref)
        except ValueError:
            raise not_found(f"Invalid keyId '{ref}'") from None
        row = conn.execute(
            select(keys).where(
                keys.c.key_id == ref,
                keys.c.account_id == caller.account_id,
                keys.c.region == caller.region,
            )
        ).first()
        if row is None:
            raise not_found(f"Key '{self._arn(caller, ref)}' does not exist")
        return _loaded(conn, row)

    def _by_alias(
        self, conn: Connection, account: str, region: str, alias: str, arn: str | None
    ) -> KeyRecord:
        key = cached(
            conn,
            _BY_ALIAS,
            (account, region, alias),
            lambda: _aliased(conn, account, region, alias),
        )
        if key is None:
            alias_arn = arn or f"arn:aws:kms:{region}:{account}:{alias}"
            raise not_found(f"Alias {alias_arn} is not found.")
        return key

    @staticmethod
    def _arn(caller: Caller, key_id: str) -> str:
        return f"arn:aws:kms:{caller.region}:{caller.account_id}:key/{key_id}"

    def _usable(self, key: KeyRecord) -> KeyRecord:
        if key.state == "Disabled":
            raise disabled(key)
        if key.state == "PendingDeletion":
            raise invalid_state(key, "pending deletion")
        return key

    @staticmethod
    def _permitted(caller: Caller, key: KeyRecord, action: str) -> KeyRecord:
        """AWS managed keys are used only through their service and never changed."""
        if key.key_manager == "AWS":
            raise access_denied(caller, action, key)
        return key

    def _changeable(self, caller: Caller, key: KeyRecord, action: str) -> KeyRecord:
        self._permitted(caller, key, action)
        if key.state == "PendingDeletion":
            raise invalid_state(key, "pending deletion")
        return key

    # Material -----------------------------------------------------------------------

    def _material_aad(self, key_id: str, generation: int) -> bytes:
        return f"kms-material|{key_id}|{generation}".encode()

    def _add_material(
        self, conn: Connection, key_id: str, generation: int, rotation_type: str | None
    ) -> None:
        material = AESGCM.generate_key(bit_length=256)
        conn.execute(
            insert(schema.kms_key_material).values(
                key_id=key_id,
                generation=generation,
                material_id=os.urandom(32).hex(),
                sealed=self._barrier.seal(material, self._material_aad(key_id, generation)),
                created_ms=self._now_ms(),
                rotation_type=rotation_type,
            )
        )

    def _material(
        self, conn: Connection, key_id: str, generation: int | None = None
    ) -> tuple[int, str, AESGCM]:
        """The key's material (its current one, or ``generation``): its generation, id and
        the cipher over it, cached ready to use (its key schedule is built once)."""
        return cached(
            conn,
            _MATERIAL,
            (key_id, generation),
            lambda: self._load_material(conn, key_id, generation),
        )

    def _load_material(
        self, conn: Connection, key_id: str, generation: int | None
    ) -> tuple[int, str, AESGCM]:
        table = schema.kms_key_material
        query = select(table).where(table.c.key_id == key_id)
        if generation is None:
            query = query.order_by(table.c.generation.desc()).limit(1)
        else:
            query = query.where(table.c.generation == generation)
        row = conn.execute(query).first()
        if row is None:
            raise invalid_ciphertext()
        try:
            material = self._barrier.open(row.sealed, self._material_aad(key_id, row.generation))
        except DecryptionError:
            # The stored material was altered: nothing encrypted under it can be trusted.
            if generation is not None:
                raise invalid_ciphertext() from None
            raise ServiceError(
                "KMSInternalException",
                "The request was rejected because an internal exception occurred. "
                "The request can be retried.",
                status=500,
                sender_fault=False,
            ) from None
        return row.generation, row.material_id, AESGCM(material)

    def _current_material_id(self, conn: Connection, key_id: str) -> str:
        table = schema.kms_key_material
        material_id: str = conn.execute(
            select(table.c.material_id)
            .where(table.c.key_id == key_id)
            .order_by(table.c.generation.desc())
            .limit(1)
        ).scalar_one()
        return material_id

    def _encrypt(
        self, conn: Connection, key: KeyRecord, plaintext: bytes, context: Mapping[str, str] | None
    ) -> tuple[bytes, str]:
        generation, material_id, cipher = self._material(conn, key.key_id)
        header = _BLOB_HEADER.pack(_BLOB_VERSION, key.key_id.encode(), generation)
        nonce = os.urandom(_NONCE)
        body = cipher.encrypt(nonce, plaintext, header + canonical_context(context))
        return header + nonce + body, material_id

    def _decrypt(
        self,
        conn: Connection,
        caller: Caller,
        blob: bytes,
        context: Mapping[str, str] | None,
        expected_key: str | None,
        action: str | None = None,
        known: KeyRecord | None = None,
    ) -> tuple[KeyRecord, bytes, str]:
        """``known``: the blob's key when the caller already resolved it (to authorize its
        use), so it is not looked up twice."""
        key, generation = self._blob_checks(conn, caller, blob, expected_key, action, known)
        plaintext, material_id = self._unwrap(
            conn, key, generation, blob, canonical_context(context)
        )
        return key, plaintext, material_id

    def _blob_checks(
        self,
        conn: Connection,
        caller: Caller,
        blob: bytes,
        expected_key: str | None,
        action: str | None,
        known: KeyRecord | None,
    ) -> tuple[KeyRecord, int]:
        """Whether ``blob`` may be decrypted now: its key and material generation, or the
        error (malformed, no such key, another key than expected, not permitted, disabled or
        pending deletion)."""
        if len(blob) < _BLOB_HEADER.size + _NONCE + 16:
            raise invalid_ciphertext()
        version, raw_key_id, generation = _BLOB_HEADER.unpack_from(blob)
        if version != _BLOB_VERSION:
            raise invalid_ciphertext()
        key = known if known is not None and known.key_id.encode() == raw_key_id else None
        key = key or self._blob_key(conn, blob)
        if key is None:
            try:
                key_id = raw_key_id.decode("ascii")
            except UnicodeDecodeError:
                raise invalid_ciphertext() from None
            raise not_found(f"Key '{self._arn(caller, key_id)}' does not exist")
        if expected_key is not None:
            named = self._resolve(conn, caller, expected_key)
            if named.key_id != key.key_id:
                raise ServiceError(
                    "IncorrectKeyException",
                    "The key ID in the request does not identify a CMK that can perform "
                    "this operation.",
                )
        if action is not None:  # a direct KMS call, not Secrets Manager's own use
            self._permitted(caller, key, action)
        self._usable(key)
        return key, generation

    def _unwrap(
        self, conn: Connection, key: KeyRecord, generation: int, blob: bytes, context: bytes
    ) -> tuple[bytes, str]:
        """The plaintext of a checked ``blob`` (encryption context serialized as
        ``context``) and the id of the material that opened it."""
        header = blob[: _BLOB_HEADER.size]
        nonce = blob[_BLOB_HEADER.size : _BLOB_HEADER.size + _NONCE]
        _, material_id, cipher = self._material(conn, key.key_id, generation)
        try:
            plaintext = cipher.decrypt(nonce, blob[_BLOB_HEADER.size + _NONCE :], header + context)
        except InvalidTag:
            raise invalid_ciphertext() from None
        return plaintext, material_id

    # Keys ---------------------------------------------------------------------------

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
        conn.execute(insert(schema.kms_keys).values(**values))
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
        keys = schema.kms_keys
        with self._store.read() as conn:
            rows = conn.execute(
                select(keys.c.key_id, keys.c.arn)
                .where(keys.c.account_id == caller.account_id, keys.c.region == caller.region)
                .order_by(keys.c.created_ms, keys.c.key_id)
            ).all()
        page, marker = self._page("ListKeys", caller, rows, params, default_limit=100, maximum=1000)
        return {
            "Keys": [{"KeyId": row.key_id, "KeyArn": row.arn} for row in page],
            "Truncated": marker is not None,
            "NextMarker": marker,
        }

    def _page(
        self,
        operation: str,
        caller: Caller,
        items: Sequence[Any],
        params: Params,
        *,
        default_limit: int,
        maximum: int,
    ) -> tuple[Sequence[Any], str | None]:
        scope = f"kms:{operation}:{caller.account_id}:{caller.region}:{params.get('KeyId', '')}"
        start = 0
        if params.get("Marker"):
            try:
                start = int(self._tokens.decode(scope, params["Marker"])["offset"])
            except ServiceError:
                raise ServiceError(
                    "InvalidMarkerException",
                    "The request was rejected because the marker "
                    "that specifies where pagination should next begin is not valid.",
                ) from None
        limit = min(params.get("Limit") or default_limit, maximum)
        page = items[start : start + limit]
        more = start + limit < len(items)
        return page, self._tokens.encode(scope, {"offset": start + limit}) if more else None

    def enable_key(self, caller: Caller, params: Params) -> Output:
        return self._set_state(caller, params["KeyId"], "Enabled", "EnableKey")

    def disable_key(self, caller: Caller, params: Params) -> Output:
        return self._set_state(caller, params["KeyId"], "Disabled", "DisableKey")

    def _set_state(self, caller: Caller, ref: str, state: str, action: str) -> Output:
        with self._store.write() as conn:
            key = self._changeable(caller, self._resolve(conn, caller, ref), action)
            self._update(conn, key, state=state)
        return {}

    def _update(self, conn: Connection, key: KeyRecord, **values: Any) -> None:
        conn.execute(
            update(schema.kms_keys).where(schema.kms_keys.c.key_id == key.key_id).values(**values)
        )
        for name, value in values.items():
            setattr(key, name, value)

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
        keys = schema.kms_keys
        with self._store.write() as conn:
            doomed = [
                _key(row)
                for row in conn.execute(
                    select(keys).where(
                        keys.c.state == "PendingDeletion", keys.c.deletion_ms <= self._now_ms()
                    )
                )
            ]
            for record in doomed:
                key_id = record.key_id
                conn.execute(
                    delete(schema.kms_aliases).where(schema.kms_aliases.c.target_key_id == key_id)
                )
                conn.execute(
                    delete(schema.kms_key_material).where(
                        schema.kms_key_material.c.key_id == key_id
                    )
                )
                conn.execute(delete(keys).where(keys.c.key_id == key_id))
                if observe is not None:
                    observe(record)
        return len(doomed)

    # Rotation -----------------------------------------------------------------------

    def enable_key_rotation(self, caller: Caller, params: Params) -> Output:
        period = params.get("RotationPeriodInDays", 365)
        with self._store.write() as conn:
            key = self._usable(
                self._changeable(
                    caller, self._resolve(conn, caller, params["KeyId"]), "EnableKeyRotation"
                )
            )
            self._update(
                conn,
                key,
                rotation_period_days=period,
                next_rotation_ms=self._now_ms() + _days_ms(period),
            )
        return {}

    def disable_key_rotation(self, caller: Caller, params: Params) -> Output:
        with self._store.write() as conn:
            key = self._usable(
                self._changeable(
                    caller, self._resolve(conn, caller, params["KeyId"]), "DisableKeyRotation"
                )
            )
            self._update(conn, key, rotation_period_days=None, next_rotation_ms=None)
        return {}

    def get_key_rotation_status(self, caller: Caller, params: Params) -> Output:
        with self._store.read() as conn:
            key = self._resolve(conn, caller, params["KeyId"])
        if key.state == "PendingDeletion":
            raise invalid_state(key, "pending deletion")
        enabled = key.rotation_period_days is not None
        return {
            "KeyRotationEnabled": enabled,
            "KeyId": key.arn,
            "RotationPeriodInDays": key.rotation_period_days,
            "NextRotationDate": from_ms(key.next_rotation_ms) if enabled else None,
        }

    def rotate_key_on_demand(self, caller: Caller, params: Params) -> Output:
        table = schema.kms_key_material
        with self._store.write() as conn:
            key = self._usable(
                self._changeable(
                    caller, self._resolve(conn, caller, params["KeyId"]), "RotateKeyOnDemand"
                )
            )
            on_demand = conn.execute(
                select(func.count()).where(
                    table.c.key_id == key.key_id, table.c.rotation_type == "ON_DEMAND"
                )
            ).scalar_one()
            if on_demand >= MAX_ON_DEMAND_ROTATIONS:
                raise ServiceError(
                    "LimitExceededException",
                    f"{key.arn} has reached the maximum number of on-demand rotations "
                    f"({MAX_ON_DEMAND_ROTATIONS}).",
                )
            self._rotate(conn, key, "ON_DEMAND")
        return {"KeyId": key.arn}

    def _rotate(self, conn: Connection, key: KeyRecord, rotation_type: str) -> None:
        table = schema.kms_key_material
        latest = conn.execute(
            select(func.max(table.c.generation)).where(table.c.key_id == key.key_id)
        ).scalar_one()
        self._add_material(conn, key.key_id, int(latest) + 1, rotation_type)
        if key.rotation_period_days is not None:
            self._update(
                conn, key, next_rotation_ms=self._now_ms() + _days_ms(key.rotation_period_days)
            )

    def run_due_rotations(self, observe: Callable[[KeyRecord], None] | None = None) -> int:
        """Automatic rotation: new material for every enabled key whose date has come.
        ``observe`` hears of each inside the transaction (the background job audits them)."""
        keys = schema.kms_keys
        with self._store.write() as conn:
            due = conn.execute(
                select(keys).where(
                    keys.c.state == "Enabled",
                    keys.c.next_rotation_ms.is_not(None),
                    keys.c.next_rotation_ms <= self._now_ms(),
                )
            ).all()
            for row in due:
                record = _key(row)
                self._rotate(conn, record, "AUTOMATIC")
                if observe is not None:
                    observe(record)
        return len(due)

    # Aliases ------------------------------------------------------------------------

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

    # Cryptographic operations -------------------------------------------------------

    def encrypt(self, caller: Caller, params: Params) -> Output:
        _check_algorithm(params.get("EncryptionAlgorithm"))
        with self._store.read() as conn:
            key = self._usable(
                self._permitted(caller, self._resolve(conn, caller, params["KeyId"]), "Encrypt")
            )
            blob, _ = self._encrypt(conn, key, params["Plaintext"], params.get("EncryptionContext"))
        return {"CiphertextBlob": blob, "KeyId": key.arn, "EncryptionAlgorithm": SYMMETRIC}

    def decrypt(self, caller: Caller, params: Params) -> Output:
        _check_algorithm(params.get("EncryptionAlgorithm"))
        if "CiphertextBlob" not in params:
            raise validation_error(
                "1 validation error detected: Value null at 'ciphertextBlob' failed to satisfy "
                "constraint: Member must not be null"
            )
        with self._store.read() as conn:
            key, plaintext, material_id = self._decrypt(
                conn,
                caller,
                params["CiphertextBlob"],
                params.get("EncryptionContext"),
                params.get("KeyId"),
                "Decrypt",
            )
        return {
            "KeyId": key.arn,
            "Plaintext": plaintext,
            "EncryptionAlgorithm": SYMMETRIC,
            "KeyMaterialId": material_id,
        }

    def re_encrypt(self, caller: Caller, params: Params) -> Output:
        _check_algorithm(params.get("SourceEncryptionAlgorithm"))
        _check_algorithm(params.get("DestinationEncryptionAlgorithm"))
        if "CiphertextBlob" not in params:
            raise validation_error(
                "1 validation error detected: Value null at 'ciphertextBlob' failed to satisfy "
                "constraint: Member must not be null"
            )
        with self._store.read() as conn:
            source, plaintext, source_material = self._decrypt(
                conn,
                caller,
                params["CiphertextBlob"],
                params.get("SourceEncryptionContext"),
                params.get("SourceKeyId"),
                "ReEncryptFrom",
            )
            destination = self._usable(
                self._permitted(
                    caller, self._resolve(conn, caller, params["DestinationKeyId"]), "ReEncryptTo"
                )
            )
            blob, material_id = self._encrypt(
                conn, destination, plaintext, params.get("DestinationEncryptionContext")
            )
        return {
            "CiphertextBlob": blob,
            "SourceKeyId": source.arn,
            "KeyId": destination.arn,
            "SourceEncryptionAlgorithm": SYMMETRIC,
            "DestinationEncryptionAlgorithm": SYMMETRIC,
            "SourceKeyMaterialId": source_material,
            "DestinationKeyMaterialId": material_id,
        }

    def generate_data_key(
        self, caller: Caller, params: Params, action: str = "GenerateDataKey"
    ) -> Output:
        size = _data_key_size(params)
        with self._store.read() as conn:
            key = self._usable(
                self._permitted(caller, self._resolve(conn, caller, params["KeyId"]), action)
            )
            plaintext = os.urandom(size)
            blob, material_id = self._encrypt(conn, key, plaintext, params.get("EncryptionContext"))
        return {
            "CiphertextBlob": blob,
            "Plaintext": plaintext,
            "KeyId": key.arn,
            "KeyMaterialId": material_id,
        }

    def generate_data_key_without_plaintext(self, caller: Caller, params: Params) -> Output:
        output = self.generate_data_key(caller, params, "GenerateDataKeyWithoutPlaintext")
        output.pop("Plaintext")
        return output

    def generate_random(self, caller: Caller, params: Params) -> Output:
        if params.get("CustomKeyStoreId"):
            raise unsupported("Custom key stores are not supported by Strongroom.")
        size = params.get("NumberOfBytes")
        if size is None:
            raise validation_error("NumberOfBytes is required.")
        return {"Plaintext": os.urandom(size)}

    # Policies and tags --------------------------------------------------------------

    def get_key_policy(self, caller: Caller, params: Params) -> Output:
        name = params.get("PolicyName", "default")
        with self._store.read() as conn:
            key = self._resolve(conn, caller, params["KeyId"])
        if name != "default":
            raise not_found("No such policy exists")
        return {"Policy": key.policy, "PolicyName": "default"}

    def put_key_policy(self, caller: Caller, params: Params) -> Output:
        if params.get("PolicyName", "default") != "default":
            raise not_found("No such policy exists")
        with self._store.write() as conn:
            key = self._changeable(
                caller, self._resolve(conn, caller, params["KeyId"]), "PutKeyPolicy"
            )
            _check_policy(params["Policy"])
            if not params.get("BypassPolicyLockoutSafetyCheck"):
                _check_lockout(caller, key, params["Policy"])
            self._update(conn, key, policy=params["Policy"])
        return {}

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

    # For Secrets Manager: envelope encryption of secret values ------------------------

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
        now = self._now_ms()
        conn.execute(
            insert(schema.kms_aliases).values(
                account_id=caller.account_id,
                region=caller.region,
                alias_name=SECRETS_MANAGER_ALIAS,
                target_key_id=key.key_id,
                created_ms=now,
                updated_ms=now,
            )
        )
        return key

    def key_for_secret(self, conn: Connection, caller: Caller, ref: str | None) -> KeyRecord:
        """The key a secret names (or the managed key), usable for encryption."""
        managed = (
            not ref or ref == SECRETS_MANAGER_ALIAS or ref.endswith(f":{SECRETS_MANAGER_ALIAS}")
        )
        key = self.managed_key(conn, caller) if managed else self._resolve(conn, caller, ref or "")
        return self._usable(key)

    def seal_with(
        self, conn: Connection, key: KeyRecord, plaintext: bytes, context: Mapping[str, str]
    ) -> bytes:
        """A fresh data key under ``key`` encrypts ``plaintext``; returns both, packed."""
        data_key = AESGCM.generate_key(bit_length=256)
        wrapped, _ = self._encrypt(conn, key, data_key, context)
        nonce = os.urandom(_NONCE)
        body = AESGCM(data_key).encrypt(nonce, plaintext, canonical_context(context))
        return struct.pack(">H", len(wrapped)) + wrapped + nonce + body

    # Which key a ciphertext needs, for authorization before it is opened ---------------

    def _blob_key(self, conn: Connection, blob: bytes) -> KeyRecord | None:
        """The key that made a ciphertext blob. Key ids are UUIDs, unique across accounts,
        so a blob from another account's key finds its key (whose policy then decides)."""
        if len(blob) < _BLOB_HEADER.size:
            return None
        _, raw_key_id, _ = _BLOB_HEADER.unpack_from(blob)
        try:
            key_id = raw_key_id.decode("ascii")
        except UnicodeDecodeError:
            return None
        return cached(conn, _KEY_BY_ID, key_id, lambda: self._key_by_id(conn, key_id))

    @staticmethod
    def _key_by_id(conn: Connection, key_id: str) -> KeyRecord | None:
        row = conn.execute(
            select(schema.kms_keys).where(schema.kms_keys.c.key_id == key_id)
        ).first()
        return _loaded(conn, row) if row is not None else None

    def blob_key(self, blob: bytes | None) -> KeyRecord | None:
        if not blob:
            return None
        with self._store.read() as conn:
            return self._blob_key(conn, blob)

    def sealed_key(self, conn: Connection, sealed: bytes) -> KeyRecord | None:
        """The key under which a secret value (``seal_with``'s output) was sealed."""
        if len(sealed) < 2:
            return None
        (length,) = struct.unpack_from(">H", sealed)
        return self._blob_key(conn, sealed[2 : 2 + length])

    def target(self, caller: Caller, ref: str) -> KeyRecord | None:
        """The key a request names (id, ARN, alias), for authorization; None if none."""
        with self._store.read() as conn:
            try:
                return self._resolve(conn, caller, ref)
            except ServiceError:
                return None

    def open_sealed(
        self,
        conn: Connection,
        caller: Caller,
        sealed: bytes,
        context: Mapping[str, str],
        key: KeyRecord | None = None,
    ) -> bytes:
        """Open a value sealed by :meth:`seal_with`. The key's state is checked every time;
        the unwrapped data key is remembered (see :class:`DataKeys`)."""
        try:
            (length,) = struct.unpack_from(">H", sealed)
        except struct.error:
            raise invalid_ciphertext() from None
        wrapped = sealed[2 : 2 + length]
        context_bytes = canonical_context(context)
        found, generation = self._blob_checks(conn, caller, wrapped, None, None, key)
        nonce = sealed[2 + length : 2 + length + _NONCE]
        try:
            data_key = self._data_keys.get(wrapped, context_bytes)
            if data_key is None:
                data_key, _ = self._unwrap(conn, found, generation, wrapped, context_bytes)
                self._data_keys.put(wrapped, context_bytes, data_key)
            cipher = AESGCM(data_key)
            return cipher.decrypt(nonce, sealed[2 + length + _NONCE :], context_bytes)
        except (InvalidTag, ValueError):  # altered bytes: a bad tag, or a truncated nonce
            raise invalid_ciphertext() from None


class DataKeys:
    """Unwrapped data keys of sealed values, by (wrapped key, encryption context), bounded
    (the oldest go first).

    Unwrapping is a pure function of the key material (immutable per generation), the
    wrapped blob and its context, so a remembered answer never goes stale; whether the
    key may be used (it exists, is enabled, the caller may use it) is still decided on
    every open. The memory holds nothing the process did not already hold: the key
    material that unwraps every one of them is cached too.

    The 32 key bytes are kept, not a cipher object: the smallest thing to keep, and
    making the cipher again costs about a microsecond."""

    def __init__(self, limit: int = DATA_KEY_LIMIT) -> None:
        self._limit = limit
        self._keys: dict[tuple[bytes, bytes], bytes] = {}
        self._lock = threading.Lock()

    def get(self, wrapped: bytes, context: bytes) -> bytes | None:
        return self._keys.get((wrapped, context))

    def put(self, wrapped: bytes, context: bytes, data_key: bytes) -> None:
        with self._lock:
            if len(self._keys) >= self._limit:
                del self._keys[next(iter(self._keys))]
            self._keys[wrapped, context] = data_key

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"DataKeys(size={len(self)}, limit={self._limit})"


def _days_ms(days: int) -> int:
    return days * 86_400_000


def _check_algorithm(algorithm: str | None) -> None:
    if algorithm not in (None, SYMMETRIC):
        raise ServiceError(
            "InvalidKeyUsageException",
            f"The encryption algorithm {algorithm} is not compatible with symmetric keys.",
        )


def _check_alias_name(name: str) -> None:
    if not name.startswith("alias/") or name == "alias/":
        raise validation_error(
            'Alias must start with the prefix "alias/". Please see '
            "https://docs.aws.amazon.com/kms/latest/developerguide/"
            "kms-alias.html"
        )
    if name.startswith("alias/aws/"):
        raise ServiceError(
            "NotAuthorizedException",
            "AliasName cannot begin with alias/aws/: that prefix is reserved for AWS managed keys.",
        )


def _check_policy(text: str) -> None:
    try:
        parse_policy(text, kind="key")
    except ServiceError as error:
        raise ServiceError("MalformedPolicyDocumentException", error.message) from None


def _check_lockout(caller: Caller, key: KeyRecord, policy: str) -> None:
    """KMS's policy lockout safety check: the new key policy must let the caller change
    the key policy again (with the caller's IAM policies, when it delegates to them)."""
    would_be = dataclasses.replace(key, policy=policy)
    try:
        caller.authorize(
            key_check("kms:PutKeyPolicy", would_be, {"kms:CallerAccount": (caller.account_id,)})
        )
    except ServiceError as denied:
        if denied.code != "AccessDeniedException":
            raise
        raise ServiceError(
            "MalformedPolicyDocumentException",
            "The new key policy will not allow you to update the key policy in the future.",
        ) from None


def _authorize_tags(caller: Caller, key: KeyRecord, params: Params) -> None:
    """CreateKey with Tags also needs kms:TagResource, which AWS grants in IAM policies:
    asked on the new key's ARN with the request's tags, without the key policy."""
    context = {
        **key_resource_keys(key),
        "kms:CallerAccount": (caller.account_id,),
        **tag_request_keys("TagResource", params),
    }
    caller.authorize(Check("kms:TagResource", key.arn, key.account_id, context=context))


def _data_key_size(params: Params) -> int:
    spec, size = params.get("KeySpec"), params.get("NumberOfBytes")
    if spec is None and size is None:
        raise validation_error("Please specify either number of bytes or key spec.")
    if spec is not None and size is not None:
        raise validation_error("Please specify either number of bytes or key spec, not both.")
    if spec is not None:
        return {"AES_256": 32, "AES_128": 16}[spec]
    assert size is not None
    return int(size)


def _tags(existing: list[list[str]] | None, new: list[Mapping[str, str]]) -> list[list[str]]:
    merged = {k: v for k, v in existing or []}
    for tag in new:
        merged[tag["TagKey"]] = tag["TagValue"]
    return [[k, v] for k, v in merged.items()]
