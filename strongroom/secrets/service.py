# long module: to be split by noun (values, versions and labels, listing, replication) after the
# parallel changes of this wave merge (issue 13 section 3).
"""Secrets Manager's domain logic: secrets, versions, staging labels, deletion windows,
tags, resource policies and replication, over the store.

Every public method is one operation: it takes the caller and the parsed input members
(model names) and returns the output members. Checks come before writes and each write
operation is one transaction, so a refused request changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import re
import secrets as stdlib_secrets
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import Connection

from strongroom.clock import Clock, from_ms, midnight_ms, to_ms
from strongroom.keys.conditions import encryption_context_keys, key_check
from strongroom.keys.kms import KeyRecord, KeyService
from strongroom.policy.document import parse_policy
from strongroom.policy.secret_policy import is_public, validate_resource_policy
from strongroom.protocol.errors import ServiceError
from strongroom.protocol.pagination import TokenCodec
from strongroom.secrets import arns, labels
from strongroom.secrets import repository as repo
from strongroom.secrets.checks import request_keys, secret_check
from strongroom.secrets.filters import SecretFacts, compile_filters
from strongroom.secrets.passwords import generate_password
from strongroom.secrets.repository import SecretRecord, VersionRecord
from strongroom.store.engine import Store, per_snapshot
from strongroom.types import Caller

Params = Mapping[str, Any]
Output = dict[str, Any]

MAX_VERSIONS = 100
DEPRECATED_GRACE = timedelta(hours=24)
DEFAULT_RECOVERY_DAYS = 30
LIST_PAGE = 100
BATCH_PAGE = 20
_CHUNK = 200
SCAN_BUDGET = 5000  # rows one ListSecrets call may scan before it answers with a NextToken
MANAGED_KEY = "alias/aws/secretsmanager"


@lru_cache(maxsize=1024)
def _acting_for(account_id: str, region: str) -> Caller:
    """The caller Secrets Manager is when it uses the account's KMS keys for a secret:
    made once per account and region, as every read of a value needs it."""
    return Caller(account_id, region)


# Errors with AWS's own texts ----------------------------------------------------------


def not_found() -> ServiceError:
    return ServiceError(
        "ResourceNotFoundException", "Secrets Manager can't find the specified secret."
    )


def _invalid_request(message: str) -> ServiceError:
    return ServiceError("InvalidRequestException", message)


def _invalid_parameter(message: str) -> ServiceError:
    return ServiceError("InvalidParameterException", message)


def _marked_for_deletion() -> ServiceError:
    return _invalid_request(
        "You can't perform this operation on the secret because it was marked for deletion."
    )


def _replica_readonly() -> ServiceError:
    return _invalid_parameter(
        "Operation not permitted on a replica secret. Call must be made in primary secret's region."
    )


def _check_label_quota(stages: labels.Stages) -> None:
    """AWS quota: at most 20 staging labels across all versions of a secret (user guide,
    "Secrets Manager quotas"); the declared error of PutSecretValue, UpdateSecret and
    UpdateSecretVersionStage for a quota is LimitExceededException."""
    if len(stages) > labels.MAX_LABELS:
        raise ServiceError(
            "LimitExceededException",
            f"A secret can have at most {labels.MAX_LABELS} staging labels attached across "
            "all of its versions.",
        )


def _decryption_failure() -> ServiceError:
    return ServiceError(
        "DecryptionFailure",
        "Secrets Manager can't decrypt the protected secret text using the provided KMS key.",
    )


def _encryption_failure(cause: ServiceError) -> ServiceError:
    # KMS's own message names only the key, never data, so it is safe and useful to pass on.
    return ServiceError(
        "EncryptionFailure",
        "Secrets Manager can't encrypt the protected secret text using the provided KMS key. "
        f"Check that the KMS key is available, enabled, and not in an invalid state. "
        f"({cause.code}: {cause.message})",
    )


_NEED_TOKEN = "You must provide a ClientRequestToken value. We recommend a UUID-type value."  # noqa: S105 - a message, not a password
_BOTH_VALUES = (
    "You can't specify both a binary secret value and a string secret value in the same secret."
)


@dataclass(frozen=True)
class _Value:
    kind: str  # "string" | "binary"
    data: bytes

    def __repr__(self) -> str:
        return f"_Value(kind={self.kind!r}, <{len(self.data)} bytes>)"

    def output(self) -> Output:
        if self.kind == "string":
            return {"SecretString": self.data.decode()}
        return {"SecretBinary": self.data}


def _value_from(params: Params) -> _Value | None:
    string, binary = params.get("SecretString"), params.get("SecretBinary")
    if string is not None and binary is not None:
        raise _invalid_parameter(_BOTH_VALUES)
    if string is not None:
        return _Value("string", string.encode())
    if binary is not None:
        return _Value("binary", binary)
    return None


class SecretsManager:
    def __init__(
        self,
        store: Store,
        keys: KeyService,
        clock: Clock,
        tokens: TokenCodec,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._keys = keys
        self._clock = clock
        self._tokens = tokens
        self._rng = rng or stdlib_secrets.SystemRandom()

    # Plumbing ---------------------------------------------------------------------------

    def _now_ms(self) -> int:
        return to_ms(self._clock.now())

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._store.write() as conn:
            yield conn

    def _resolve(
        self, conn: Connection, caller: Caller, secret_id: str, *, for_update: bool = False
    ) -> SecretRecord:
        record = self._lookup(conn, caller, secret_id, for_update=for_update)
        if record is None:
            raise not_found()
        return record

    def _lookup(
        self, conn: Connection, caller: Caller, secret_id: str, *, for_update: bool = False
    ) -> SecretRecord | None:
        if for_update:
            return self._find(conn, caller, secret_id, for_update=True)
        return per_snapshot(
            conn,
            ("secret-lookup", (caller.account_id, caller.region, secret_id)),
            lambda: self._find(conn, caller, secret_id, for_update=False),
        )

    def _find(
        self, conn: Connection, caller: Caller, secret_id: str, *, for_update: bool
    ) -> SecretRecord | None:
        ref = arns.parse_secret_id(secret_id)
        if not ref.is_arn:
            return repo.find_by_name(
                conn, caller.account_id, caller.region, secret_id, for_update=for_update
            )
        if ref.region != caller.region or ref.account_id is None:
            return None  # another region's secret is not visible from this one, as on AWS
        # Another account's secret is reachable by ARN only; the pipeline has already
        # checked its resource policy and the caller's own policies.
        record = repo.find_by_arn(conn, secret_id, for_update=for_update)
        if record is None:
            # A partial ARN: the ARN without the random suffix names the secret.
            record = repo.find_by_name(
                conn, ref.account_id, caller.region, ref.name_or_arn_tail, for_update=for_update
            )
        return record

    def target(self, caller: Caller, secret_id: str) -> SecretRecord | None:
        """The secret a request names, for authorization; None if there is none."""
        with self._store.read() as conn:
            return self._lookup_or_none(conn, caller, secret_id)

    def kms_key(self, caller: Caller, ref: str) -> KeyRecord | None:
        """The KMS key a request's KmsKeyId names, for authorization; None if none."""
        return self._keys.target(_acting_for(caller.account_id, caller.region), ref)

    def _mutable(self, conn: Connection, caller: Caller, secret_id: str) -> SecretRecord:
        record = self._resolve(conn, caller, secret_id, for_update=True)
        if record.is_replica:
            raise _replica_readonly()
        if record.scheduled_for_deletion:
            raise _marked_for_deletion()
        return record

    # Values are sealed as AWS does: a fresh data key from the secret's KMS key for every
    # version, with the secret ARN and version id as the encryption context, so a
    # ciphertext moved to another secret or version does not open.

    @staticmethod
    def _context(arn: str, version_id: str) -> dict[str, str]:
        return {"SecretARN": arn, "SecretVersionId": version_id}

    def _encryption_key(self, conn: Connection, record: SecretRecord) -> KeyRecord:
        return self._key_named(conn, record, record.kms_key_id)

    def _key_named(self, conn: Connection, record: SecretRecord, ref: str | None) -> KeyRecord:
        """The KMS key ``ref`` (None: aws/secretsmanager) in the secret's region."""
        try:
            return self._keys.key_for_secret(
                conn, _acting_for(record.account_id, record.region), ref
            )
        except ServiceError as error:
            raise _encryption_failure(error) from None

    def _check_key(self, conn: Connection, account_id: str, region: str, ref: str | None) -> None:
        """A KmsKeyId naming no key is refused up front, as AWS does (InvalidParameter); a
        disabled key is refused when a value is to be encrypted under it."""
        if not ref:
            return
        try:
            self._keys.key_for_secret(conn, _acting_for(account_id, region), ref)
        except ServiceError as error:
            if error.code == "NotFoundException":
                raise _invalid_parameter(
                    f"The operation failed because of an invalid KMS key: {error.message}"
                ) from None

    def _check_key_use(
        self,
        caller: Caller | None,
        action: str,
        key: KeyRecord,
        record: SecretRecord,
        version_id: str,
    ) -> None:
        """Secrets Manager uses the secret's KMS key on the caller's behalf, so the caller
        needs the KMS permission too, through the key policy (with kms:ViaService). None:
        the service acting for itself (replication)."""
        if caller is None:
            return
        if key.key_manager == "AWS" and key.account_id != caller.account_id:
            raise _invalid_request(
                "You can't access a secret from a different AWS account if you encrypt the "
                "secret with the default KMS service key."
            )
        context = {
            "kms:ViaService": (f"secretsmanager.{record.region}.amazonaws.com",),
            "kms:CallerAccount": (caller.account_id,),
            **encryption_context_keys(self._context(record.arn, version_id)),
        }
        try:
            caller.authorize(key_check(action, key, context))
        except ServiceError as denied:
            if denied.code != "AccessDeniedException":
                raise
            raise ServiceError("AccessDeniedException", "Access to KMS is not allowed") from None

    def _seal(
        self,
        conn: Connection,
        record: SecretRecord,
        version_id: str,
        value: _Value,
        key: KeyRecord | None = None,
        ref: str | None = None,
        caller: Caller | None = None,
    ) -> tuple[bytes, str | None]:
        """The sealed value and the key id to report for it (None: the managed key). Like
        AWS, a version reports its key as the secret's KmsKeyId named it (``ref``, else the
        secret's own), so key id, ARN, alias name and alias ARN come back as given."""
        key = key or self._encryption_key(conn, record)
        self._check_key_use(caller, "kms:GenerateDataKey", key, record, version_id)
        try:
            sealed = self._keys.seal_with(
                conn, key, value.data, self._context(record.arn, version_id)
            )
        except ServiceError as error:
            raise _encryption_failure(error) from None
        if key.key_manager == "AWS":
            return sealed, None
        return sealed, ref or record.kms_key_id or key.arn

    def _open(
        self,
        conn: Connection,
        record: SecretRecord,
        version: VersionRecord,
        caller: Caller | None = None,
    ) -> _Value:
        assert version.ciphertext is not None and version.value_kind is not None
        key = None
        if caller is not None:
            key = self._keys.sealed_key(conn, version.ciphertext)
            if key is None:
                raise _decryption_failure()
            self._check_key_use(caller, "kms:Decrypt", key, record, version.version_id)
        try:
            data = self._keys.open_sealed(
                conn,
                _acting_for(record.account_id, record.region),
                version.ciphertext,
                self._context(record.arn, version.version_id),
                key,
            )
        except ServiceError:
            raise _decryption_failure() from None
        return _Value(version.value_kind, data)

    def _same_value(
        self,
        conn: Connection,
        record: SecretRecord,
        version: VersionRecord,
        value: _Value,
        caller: Caller | None,
    ) -> bool:
        """Idempotency needs the stored value: like AWS, that is a Decrypt by the caller."""
        if version.ciphertext is None:
            return False
        stored = self._open(conn, record, version, caller)
        return stored.kind == value.kind and hmac.compare_digest(stored.data, value.data)

    # Writing versions -------------------------------------------------------------------

    def _add_version(
        self,
        conn: Connection,
        record: SecretRecord,
        token: str,
        value: _Value,
        stages_to_attach: list[str] | None,
        caller: Caller | None,
    ) -> tuple[str, list[str], bool]:
        """Create (or idempotently find) version ``token``; returns (id, labels, created)."""
        existing = repo.version(conn, record.id, token)
        current = repo.stages(conn, record.id)
        if existing is not None:
            if self._same_value(conn, record, existing, value, caller):
                return token, labels.labels_of(current, token), False
            raise ServiceError(
                "ResourceExistsException",
                f"You can't use ClientRequestToken {token} because that value is already in "
                f"use for a version of secret {record.arn}.",
            )
        self._make_room(conn, record, current)
        sealed, key_id = self._seal(conn, record, token, value, caller=caller)
        repo.insert_version(
            conn,
            record.id,
            VersionRecord(token, self._now_ms(), None, key_id, value.kind, sealed),
        )
        wanted = list(stages_to_attach) if stages_to_attach else [labels.CURRENT]
        if labels.CURRENT not in current and labels.CURRENT not in wanted:
            wanted.append(labels.CURRENT)  # a secret's first value is always current
        new = labels.attach(current, token, wanted, new_value=True)
        _check_label_quota(new)
        repo.replace_stages(conn, record.id, current, new)
        return token, labels.labels_of(new, token), True

    def _make_room(
        self, conn: Connection, record: SecretRecord, current: Mapping[str, str]
    ) -> None:
        """Keep ~100 versions: drop the oldest unlabelled ones older than 24 hours."""
        if repo.count_versions(conn, record.id) < MAX_VERSIONS:
            return
        labelled = set(current.values())
        cutoff = self._now_ms() - int(DEPRECATED_GRACE.total_seconds() * 1000)
        all_versions = repo.versions(conn, record.id)
        removable = [
            v.version_id
            for v in reversed(all_versions)  # oldest first
            if v.version_id not in labelled and v.created_ms < cutoff
        ]
        excess = len(all_versions) - MAX_VERSIONS + 1
        if len(removable) < excess:
            raise ServiceError(
                "LimitExceededException",
                "You have exceeded the maximum number of versions of this secret (100) "
                "that are less than 24 hours old or have staging labels attached.",
            )
        repo.delete_versions(conn, record.id, removable[:excess])

    def _changed(self, conn: Connection, record: SecretRecord, **values: Any) -> None:
        repo.update_secret(conn, record, last_changed_ms=self._now_ms(), **values)
        self._sync_replicas(conn, record)

    # Operations -------------------------------------------------------------------------

    def create_secret(self, caller: Caller, params: Params) -> Output:
        name: str = params["Name"]
        arns.check_name(name)
        value = _value_from(params)
        token = params.get("ClientRequestToken")
        if value is not None and token is None:
            raise _invalid_request(_NEED_TOKEN)
        replicas = params.get("AddReplicaRegions") or []
        self._check_replica_regions(caller.region, replicas)
        with self._write() as conn:
            existing = repo.find_by_name(
                conn, caller.account_id, caller.region, name, for_update=True
            )
            if existing is not None:
                return self._create_again(conn, existing, token, value, caller)
            self._check_key(conn, caller.account_id, caller.region, params.get("KmsKeyId"))
            now = self._now_ms()
            record = repo.insert_secret(
                conn,
                account_id=caller.account_id,
                region=caller.region,
                name=name,
                arn=arns.secret_arn(
                    caller.region, caller.account_id, name, arns.new_suffix(self._rng)
                ),
                # AWS stores no description for an empty one: DescribeSecret omits it.
                description=params.get("Description") or None,
                kms_key_id=params.get("KmsKeyId") or None,
                secret_type=params.get("Type") or None,
                tags=_merge_tags(None, params["Tags"]) if params.get("Tags") else None,
                created_ms=now,
                last_changed_ms=now,
                owning_service=_owning_service(params.get("Tags")),
            )
            # Tags and replicas given at creation need their own actions on the new secret.
            if params.get("Tags"):
                caller.authorize(
                    secret_check(
                        "secretsmanager:TagResource", record, request_keys("TagResource", params)
                    )
                )
            if replicas:
                caller.authorize(
                    secret_check(
                        "secretsmanager:ReplicateSecretToRegions",
                        record,
                        request_keys("ReplicateSecretToRegions", params),
                    )
                )
            output: Output = {"ARN": record.arn, "Name": record.name}
            if value is not None:
                assert token is not None
                output["VersionId"], _, _ = self._add_version(
                    conn, record, token, value, None, caller
                )
            if replicas:
                output["ReplicationStatus"] = self._replicate(
                    conn, record, replicas, bool(params.get("ForceOverwriteReplicaSecret"))
                )
            return output

    def _create_again(
        self,
        conn: Connection,
        existing: SecretRecord,
        token: str | None,
        value: _Value | None,
        caller: Caller,
    ) -> Output:
        if existing.scheduled_for_deletion:
            raise _invalid_request(
                "You can't create this secret because a secret with this name "
                "is already scheduled for deletion."
            )
        version = repo.version(conn, existing.id, token) if token else None
        if version is None or value is None:
            raise ServiceError(
                "ResourceExistsException",
                f"The operation failed because the secret {existing.name} already exists.",
            )
        if not self._same_value(conn, existing, version, value, caller):
            raise ServiceError(
                "ResourceExistsException",
                f"You can't use ClientRequestToken {token} because that value is already in "
                f"use for a version of secret {existing.arn}.",
            )
        return {"ARN": existing.arn, "Name": existing.name, "VersionId": version.version_id}

    def get_secret_value(self, caller: Caller, params: Params) -> Output:
        with self._store.read() as conn:
            record = self._resolve(conn, caller, params["SecretId"])
            output, version = self._read_value(
                conn, record, params.get("VersionId"), params.get("VersionStage"), caller
            )
        self._record_access(record, version)
        return output

    def _read_value(
        self,
        conn: Connection,
        record: SecretRecord,
        version_id: str | None,
        stage: str | None,
        caller: Caller,
    ) -> tuple[Output, VersionRecord]:
        if record.scheduled_for_deletion:
            raise _marked_for_deletion()
        current = repo.stages(conn, record.id)
        if version_id is not None:
            version = repo.version(conn, record.id, version_id)
            if version is None or version.ciphertext is None:
                raise ServiceError(
                    "ResourceNotFoundException",
                    "Secrets Manager can't find the specified secret value for VersionId: "
                    f"{version_id}",
                )
            if stage is not None and current.get(stage) != version_id:
                raise _invalid_request(
                    "You provided a VersionStage that is not associated to the provided VersionId."
                )
        else:
            stage = stage or labels.CURRENT
            holder = current.get(stage)
            version = repo.version(conn, record.id, holder) if holder else None
            if version is None or version.ciphertext is None:
                raise ServiceError(
                    "ResourceNotFoundException",
                    "Secrets Manager can't find the specified secret value for staging label: "
                    f"{stage}",
                )
        value = self._open(conn, record, version, caller)
        output: Output = {
            "ARN": record.arn,
            "Name": record.name,
            "VersionId": version.version_id,
            **value.output(),
            "VersionStages": labels.labels_of(current, version.version_id),
            "CreatedDate": from_ms(version.created_ms),
        }
        return output, version

    def _record_access(self, record: SecretRecord, version: VersionRecord) -> None:
        """LastAccessedDate has date resolution, so at most one write a day per secret
        and version (ListSecretVersionIds reports each version's own LastAccessedDate)."""
        day = midnight_ms(self._clock.now())
        if record.last_accessed_ms == day and version.last_accessed_ms == day:
            return
        with self._write() as conn:
            repo.update_secret(conn, record, last_accessed_ms=day)
            repo.touch_version(conn, record.id, version.version_id, day)

    def batch_get_secret_value(self, caller: Caller, params: Params) -> Output:
        ids, filters = params.get("SecretIdList"), params.get("Filters")
        if (ids is None) == (filters is None):
            raise _invalid_parameter(
                "Either 'SecretIdList' or 'Filters' must be provided, but not both."
            )
        if filters is None and params.get("MaxResults") is not None:
            raise _invalid_parameter(
                "'Filters' not specified. 'Filters' must also be specified when "
                "'MaxResults' is provided."
            )
        values: list[Output] = []
        errors: list[Output] = []
        next_token: str | None = None
        with self._store.read() as conn:
            if ids is not None:
                targets: list[tuple[str, SecretRecord | None]] = [
                    (secret_id, self._lookup_or_none(conn, caller, secret_id)) for secret_id in ids
                ]
            else:
                page, next_token = self._list_page(
                    conn,
                    caller,
                    params,
                    "BatchGetSecretValue",
                    params.get("MaxResults") or BATCH_PAGE,
                    include_deleted=False,
                )
                targets = [(record.arn, record) for record in page]
            accessed: list[tuple[SecretRecord, VersionRecord]] = []
            for secret_id, record in targets:
                try:
                    if record is None:
                        raise not_found()
                    # Each secret of a batch is a GetSecretValue of its own, allowed or not.
                    caller.authorize(secret_check("secretsmanager:GetSecretValue", record, {}))
                    output, version = self._read_value(conn, record, None, None, caller)
                except ServiceError as error:
                    errors.append(
                        {"SecretId": secret_id, "ErrorCode": error.code, "Message": error.message}
                    )
                    continue
                values.append(output)
                accessed.append((record, version))
        for record, version in accessed:
            self._record_access(record, version)
        return {"SecretValues": values, "Errors": errors, "NextToken": next_token}

    def _lookup_or_none(
        self, conn: Connection, caller: Caller, secret_id: str
    ) -> SecretRecord | None:
        try:
            return self._lookup(conn, caller, secret_id)
        except ServiceError:
            return None

    def put_secret_value(self, caller: Caller, params: Params) -> Output:
        value = _value_from(params)
        if value is None:
            raise _invalid_request("You must provide either SecretString or SecretBinary.")
        token = params.get("ClientRequestToken")
        if token is None:
            raise _invalid_request(_NEED_TOKEN)
        with self._write() as conn:
            record = self._mutable(conn, caller, params["SecretId"])
            version_id, stages, created = self._add_version(
                conn, record, token, value, params.get("VersionStages"), caller
            )
            if created:
                self._changed(conn, record)
        return {
            "ARN": record.arn,
            "Name": record.name,
            "VersionId": version_id,
            "VersionStages": stages,
        }

    def update_secret(self, caller: Caller, params: Params) -> Output:
        value = _value_from(params)
        token = params.get("ClientRequestToken")
        if value is not None and token is None:
            raise _invalid_request(_NEED_TOKEN)
        with self._write() as conn:
            record = self._mutable(conn, caller, params["SecretId"])
            changes: dict[str, Any] = {}
            if "Description" in params:
                changes["description"] = params["Description"]
            if "KmsKeyId" in params and (params["KmsKeyId"] or None) != record.kms_key_id:
                self._change_key(conn, record, params["KmsKeyId"] or None, caller)
                changes["kms_key_id"] = record.kms_key_id
            if "Type" in params:
                changes["secret_type"] = params["Type"] or None
            output: Output = {"ARN": record.arn, "Name": record.name}
            created = False
            if value is not None:
                assert token is not None
                output["VersionId"], _, created = self._add_version(
                    conn, record, token, value, None, caller
                )
            if changes or created:
                self._changed(conn, record, **changes)
        return output

    def _change_key(
        self, conn: Connection, record: SecretRecord, ref: str | None, caller: Caller
    ) -> None:
        """Re-encrypt the AWSCURRENT, AWSPENDING and AWSPREVIOUS versions under another
        KMS key, as AWS does; older versions stay under the key that sealed them."""
        self._check_key(conn, record.account_id, record.region, ref)
        key = self._key_named(conn, record, ref)
        current = repo.stages(conn, record.id)
        for stage in (labels.CURRENT, labels.PENDING, labels.PREVIOUS):
            version = repo.version(conn, record.id, current[stage]) if stage in current else None
            if version is None or version.ciphertext is None:
                continue
            value = self._open(conn, record, version, caller)
            sealed, key_id = self._seal(
                conn, record, version.version_id, value, key, ref, caller=caller
            )
            repo.fill_version(conn, record.id, version.version_id, value.kind, sealed, key_id)
        repo.update_secret(conn, record, kms_key_id=ref)

    def update_secret_version_stage(self, caller: Caller, params: Params) -> Output:
        stage: str = params["VersionStage"]
        move_to, remove_from = params.get("MoveToVersionId"), params.get("RemoveFromVersionId")
        with self._write() as conn:
            record = self._mutable(conn, caller, params["SecretId"])
            current = repo.stages(conn, record.id)
            holder = current.get(stage)
            if move_to is not None and repo.version(conn, record.id, move_to) is None:
                raise _invalid_parameter(
                    f"The version {move_to} doesn't exist for secret {record.arn}."
                )
            if remove_from is not None and holder != remove_from:
                raise _invalid_parameter(
                    f"The parameter RemoveFromVersionId doesn't match. Staging label {stage} "
                    f"is currently attached to version {holder}, so you must explicitly "
                    "reference that version in RemoveFromVersionId."
                    if holder is not None
                    else f"The staging label {stage} is not attached to version {remove_from}."
                )
            if move_to is None:
                if remove_from is None:
                    raise _invalid_parameter(
                        "You must specify MoveToVersionId, RemoveFromVersionId, or both."
                    )
                if stage == labels.CURRENT:
                    raise _invalid_parameter(
                        "You can't remove the staging label AWSCURRENT from a version without "
                        "moving it to another version. Specify MoveToVersionId."
                    )
                new = labels.detach(current, stage)
            else:
                if holder is not None and holder != move_to and remove_from is None:
                    raise _invalid_parameter(
                        "The parameter RemoveFromVersionId can't be empty. Staging label "
                        f"{stage} is currently attached to version {holder}, so you must "
                        "explicitly reference that version in RemoveFromVersionId."
                    )
                new = labels.attach(current, move_to, [stage])
            if new != current:
                _check_label_quota(new)
                repo.replace_stages(conn, record.id, current, new)
                self._changed(conn, record)
        return {"ARN": record.arn, "Name": record.name}

    def describe_secret(self, caller: Caller, params: Params) -> Output:
        with self._store.read() as conn:
            record = self._resolve(conn, caller, params["SecretId"])
            stages = repo.stages(conn, record.id)
            output = self._metadata(record, stages, "VersionIdsToStages")
            if output.get("ReplicationStatus"):
                output["ReplicationStatus"] = self._replication_status(conn, record)
        return output

    def _replication_status(self, conn: Connection, primary: SecretRecord) -> list[Output]:
        """The primary's replica statuses, each with the date its replica was last read in
        its region; omitted while it never was (API reference ReplicationStatusType)."""
        statuses: list[Output] = []
        for status in primary.replicas or []:
            replica = repo.find_by_name(conn, primary.account_id, status["Region"], primary.name)
            accessed = None
            if replica is not None and replica.primary_region == primary.region:
                accessed = from_ms(replica.last_accessed_ms)
            statuses.append({**status, "LastAccessedDate": accessed})
        return statuses

    def _metadata(self, record: SecretRecord, stages: Mapping[str, str], stages_key: str) -> Output:
        output: Output = {
            "ARN": record.arn,
            "Name": record.name,
            "Type": record.secret_type,
            "Description": record.description,
            "KmsKeyId": record.kms_key_id,
            "RotationEnabled": record.rotation_enabled,
            "RotationLambdaARN": record.rotation_lambda_arn,
            "RotationRules": record.rotation_rules,
            "LastRotatedDate": from_ms(record.last_rotated_ms),
            "LastChangedDate": from_ms(record.last_changed_ms),
            "LastAccessedDate": from_ms(record.last_accessed_ms),
            "DeletedDate": from_ms(record.deleted_ms),
            "NextRotationDate": from_ms(record.next_rotation_ms),
            "Tags": [{"Key": k, "Value": v} for k, v in record.tags]
            if record.tags is not None
            else None,
            stages_key: labels.by_version(stages) or None,
            "OwningService": record.owning_service,
            "CreatedDate": from_ms(record.created_ms),
        }
        if record.is_replica:
            output["PrimaryRegion"] = record.primary_region
        elif record.replicas:
            output["PrimaryRegion"] = record.region
            output["ReplicationStatus"] = record.replicas
        return output

    def list_secret_version_ids(self, caller: Caller, params: Params) -> Output:
        include_deprecated = bool(params.get("IncludeDeprecated"))
        limit = params.get("MaxResults") or LIST_PAGE
        with self._store.read() as conn:
            record = self._resolve(conn, caller, params["SecretId"])
            stages = repo.stages(conn, record.id)
            versions = repo.versions(conn, record.id)
        grouped = labels.by_version(stages)
        if not include_deprecated:
            versions = [v for v in versions if v.version_id in grouped]
        scope = f"ListSecretVersionIds|{record.arn}|{include_deprecated}"
        start = 0
        if params.get("NextToken"):
            start = int(self._tokens.decode(scope, params["NextToken"])["offset"])
        page = versions[start : start + limit]
        more = start + limit < len(versions)
        return {
            "Versions": [
                {
                    "VersionId": v.version_id,
                    "VersionStages": grouped.get(v.version_id),
                    "LastAccessedDate": from_ms(v.last_accessed_ms),
                    "CreatedDate": from_ms(v.created_ms),
                    "KmsKeyIds": [v.kms_key_id or "DefaultEncryptionKey"],
                }
                for v in page
            ],
            "NextToken": self._tokens.encode(scope, {"offset": start + limit}) if more else None,
            "ARN": record.arn,
            "Name": record.name,
        }

    def list_secrets(self, caller: Caller, params: Params) -> Output:
        include_deleted = bool(params.get("IncludePlannedDeletion"))
        with self._store.read() as conn:
            page, next_token = self._list_page(
                conn,
                caller,
                params,
                "ListSecrets",
                params.get("MaxResults") or LIST_PAGE,
                include_deleted=include_deleted,
            )
            all_stages = repo.stages_of_many(conn, [record.id for record in page])
        return {
            "SecretList": [
                self._metadata(record, all_stages[record.id], "SecretVersionsToStages")
                for record in page
            ],
            "NextToken": next_token,
        }

    def _list_page(
        self,
        conn: Connection,
        caller: Caller,
        params: Params,
        operation: str,
        limit: int,
        *,
        include_deleted: bool,
    ) -> tuple[list[SecretRecord], str | None]:
        """One page of a filtered, sorted listing with a keyset cursor in the NextToken."""
        predicate = compile_filters(params.get("Filters") or [])
        sort_column = _SORT_COLUMNS[params.get("SortBy") or "created-date"]
        descending = params.get("SortOrder") == "desc"
        scope = (
            operation
            + "|"
            + hashlib.sha256(
                orjson.dumps(
                    [
                        caller.account_id,
                        caller.region,
                        params.get("Filters"),
                        sort_column,
                        descending,
                        include_deleted,
                    ]
                )
            ).hexdigest()
        )
        after: tuple[Any, int] | None = None
        if params.get("NextToken"):
            state = self._tokens.decode(scope, params["NextToken"])
            after = (state["key"], state["id"])
        page: list[SecretRecord] = []
        scanned = 0
        exhausted = False
        while len(page) < limit and scanned < SCAN_BUDGET and not exhausted:
            chunk = repo.scan(
                conn,
                caller.account_id,
                caller.region,
                include_deleted=include_deleted,
                sort_column=sort_column,
                descending=descending,
                after=after,
                limit=_CHUNK,
            )
            exhausted = len(chunk) < _CHUNK
            for record in chunk:
                scanned += 1
                after = _key(record, sort_column)
                if predicate(_facts(record)):
                    page.append(record)
                if len(page) == limit or scanned >= SCAN_BUDGET:
                    exhausted = exhausted and record is chunk[-1]
                    break
        if exhausted or after is None:
            return page, None
        # Only promise a next page when one could exist.
        more = repo.scan(
            conn,
            caller.account_id,
            caller.region,
            include_deleted=include_deleted,
            sort_column=sort_column,
            descending=descending,
            after=after,
            limit=1,
        )
        token = self._tokens.encode(scope, {"key": after[0], "id": after[1]}) if more else None
        return page, token

    def delete_secret(self, caller: Caller, params: Params) -> Output:
        force = bool(params.get("ForceDeleteWithoutRecovery"))
        window = params.get("RecoveryWindowInDays")
        if window is not None and not 7 <= window <= 30:
            raise _invalid_parameter(
                "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive)."
            )
        if force and window is not None:
            raise _invalid_parameter(
                "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays."
            )
        now = self._clock.now()
        with self._write() as conn:
            record = self._lookup(conn, caller, params["SecretId"], for_update=True)
            if record is None:
                if force:
                    # AWS answers as if the secret had existed and was deleted: ARN, Name
                    # (the SecretId as given) and DeletionDate (localstack's AWS-validated
                    # test_delete_non_existent_secret_returns_as_if_secret_exists).
                    return {**self._absent_secret(caller, params["SecretId"]), "DeletionDate": now}
                raise not_found()
            if record.is_replica:
                raise _replica_readonly()
            if record.replicas:
                regions = ", ".join(r["Region"] for r in record.replicas)
                raise _invalid_parameter(
                    f"You can't delete secret {record.arn} that still has replica regions "
                    f"[{regions}]."
                )
            if force:
                repo.delete_secret(conn, record.id)
                return {"ARN": record.arn, "Name": record.name, "DeletionDate": now}
            if record.scheduled_for_deletion:
                raise _invalid_request(
                    "You tried to perform the operation on a secret that's currently marked "
                    "deleted."
                )
            deletion = now + timedelta(days=window or DEFAULT_RECOVERY_DAYS)
            repo.update_secret(conn, record, deleted_ms=to_ms(now), deletion_ms=to_ms(deletion))
        return {"ARN": record.arn, "Name": record.name, "DeletionDate": deletion}

    def _absent_secret(self, caller: Caller, secret_id: str) -> Output:
        """ARN and Name for a SecretId that names no secret."""
        ref = arns.parse_secret_id(secret_id)
        if ref.is_arn:
            return {"ARN": secret_id, "Name": re.sub(r"-[A-Za-z0-9]{6}$", "", ref.name_or_arn_tail)}
        suffix = arns.new_suffix(self._rng)
        return {
            "ARN": arns.secret_arn(caller.region, caller.account_id, secret_id, suffix),
            "Name": secret_id,
        }

    def restore_secret(self, caller: Caller, params: Params) -> Output:
        with self._write() as conn:
            record = self._resolve(conn, caller, params["SecretId"], for_update=True)
            if record.is_replica:
                raise _replica_readonly()
            if record.scheduled_for_deletion:
                self._changed(conn, record, deleted_ms=None, deletion_ms=None)
        return {"ARN": record.arn, "Name": record.name}

    def purge_expired(self, observe: Callable[[SecretRecord], None] | None = None) -> int:
        """Remove secrets whose recovery window has ended; returns how many. ``observe``
        hears of each inside the transaction (the background job audits them)."""
        with self._write() as conn:
            expired = repo.expired(conn, self._now_ms())
            for record in expired:
                repo.delete_secret(conn, record.id)
                if observe is not None:
                    observe(record)
        return len(expired)

    def tag_resource(self, caller: Caller, params: Params) -> Output:
        with self._write() as conn:
            record = self._mutable(conn, caller, params["SecretId"])
            tags = _merge_tags(record.tags, params["Tags"])
            self._changed(
                conn,
                record,
                tags=tags,
                owning_service=_owning_service(params["Tags"]) or record.owning_service,
            )
        return {}

    def untag_resource(self, caller: Caller, params: Params) -> Output:
        with self._write() as conn:
            record = self._mutable(conn, caller, params["SecretId"])
            drop = set(params["TagKeys"])
            tags = [pair for pair in record.tags or [] if pair[0] not in drop]
            self._changed(conn, record, tags=tags)
        return {}

    def put_resource_policy(self, caller: Caller, params: Params) -> Output:
        text: str = params["ResourcePolicy"]
        document = parse_policy(text, kind="resource")
        if params.get("BlockPublicPolicy") and is_public(document, account_id=caller.account_id):
            raise ServiceError(
                "PublicPolicyException",
                "The BlockPublicPolicy parameter is set to true, and the resource policy "
                "did not prevent broad access to the secret.",
            )
        with self._write() as conn:
            record = self._mutable(conn, caller, params["SecretId"])
            self._changed(conn, record, resource_policy=text)
        return {"ARN": record.arn, "Name": record.name}

    def get_resource_policy(self, caller: Caller, params: Params) -> Output:
        with self._store.read() as conn:
            record = self._resolve(conn, caller, params["SecretId"])
        return {"ARN": record.arn, "Name": record.name, "ResourcePolicy": record.resource_policy}

    def delete_resource_policy(self, caller: Caller, params: Params) -> Output:
        with self._write() as conn:
            record = self._mutable(conn, caller, params["SecretId"])
            if record.resource_policy is not None:
                self._changed(conn, record, resource_policy=None)
        return {"ARN": record.arn, "Name": record.name}

    def validate_resource_policy(self, caller: Caller, params: Params) -> Output:
        if params.get("SecretId"):
            with self._store.read() as conn:
                self._resolve(conn, caller, params["SecretId"])
        findings = validate_resource_policy(
            params["ResourcePolicy"], account_id=caller.account_id, caller_arn=caller.principal_arn
        )
        return {
            "PolicyValidationPassed": not findings,
            "ValidationErrors": [
                {"CheckName": f.check_name, "ErrorMessage": f.error_message} for f in findings
            ],
        }

    def get_random_password(self, caller: Caller, params: Params) -> Output:
        return {
            "RandomPassword": generate_password(
                length=params.get("PasswordLength", 32),
                exclude_characters=params.get("ExcludeCharacters", ""),
                exclude_numbers=params.get("ExcludeNumbers", False),
                exclude_punctuation=params.get("ExcludePunctuation", False),
                exclude_uppercase=params.get("ExcludeUppercase", False),
                exclude_lowercase=params.get("ExcludeLowercase", False),
                include_space=params.get("IncludeSpace", False),
                require_each_included_type=params.get("RequireEachIncludedType", True),
            )
        }

    # Replication ------------------------------------------------------------------------

    def replicate_secret_to_regions(self, caller: Caller, params: Params) -> Output:
        regions = params["AddReplicaRegions"]
        self._check_replica_regions(caller.region, regions)
        with self._write() as conn:
            record = self._mutable(conn, caller, params["SecretId"])
            statuses = self._replicate(
                conn, record, regions, bool(params.get("ForceOverwriteReplicaSecret"))
            )
        return {"ARN": record.arn, "ReplicationStatus": statuses}

    def remove_regions_from_replication(self, caller: Caller, params: Params) -> Output:
        drop = set(params["RemoveReplicaRegions"])
        with self._write() as conn:
            record = self._mutable(conn, caller, params["SecretId"])
            kept = []
            for status in record.replicas or []:
                if status["Region"] not in drop:
                    kept.append(status)
                    continue
                replica = self._replica_of(conn, record, status["Region"])
                if replica is not None:
                    repo.delete_secret(conn, replica.id)
            self._changed(conn, record, replicas=kept or None)
        return {"ARN": record.arn, "ReplicationStatus": kept}

    def stop_replication_to_replica(self, caller: Caller, params: Params) -> Output:
        with self._write() as conn:
            replica = self._resolve(conn, caller, params["SecretId"], for_update=True)
            if not replica.is_replica:
                raise _invalid_request(
                    f"Secret {replica.arn} is not a replica secret, so it can't be promoted."
                )
            primary = repo.find_by_name(
                conn,
                replica.account_id,
                replica.primary_region or "",
                replica.name,
                for_update=True,
            )
            if primary is not None:
                kept = [s for s in primary.replicas or [] if s["Region"] != replica.region]
                repo.update_secret(
                    conn, primary, replicas=kept or None, last_changed_ms=self._now_ms()
                )
            repo.update_secret(conn, replica, primary_region=None, last_changed_ms=self._now_ms())
        return {"ARN": replica.arn}

    @staticmethod
    def _check_replica_regions(own_region: str, replicas: list[Mapping[str, Any]]) -> None:
        seen: set[str] = set()
        for replica in replicas:
            region = replica.get("Region")
            if not region or region == own_region or region in seen:
                raise _invalid_parameter("Invalid replica region.")
            seen.add(region)

    def _replica_of(
        self, conn: Connection, primary: SecretRecord, region: str
    ) -> SecretRecord | None:
        found = repo.find_by_name(conn, primary.account_id, region, primary.name, for_update=True)
        if found is not None and found.primary_region == primary.region:
            return found
        return None

    def _replicate(
        self,
        conn: Connection,
        primary: SecretRecord,
        regions: list[Mapping[str, Any]],
        force_overwrite: bool,
    ) -> list[dict[str, Any]]:
        statuses = {s["Region"]: s for s in primary.replicas or []}
        for wanted in regions:
            region = wanted["Region"]
            if region in statuses and statuses[region].get("Status") != "Failed":
                continue  # already replicated there; a failed region is tried again
            # The managed key is reported by its alias, as in AWS's examples (aws-cli
            # replicate-secret-to-regions.rst, describe-secret.rst).
            kms_key_id = wanted.get("KmsKeyId") or None
            status: dict[str, Any] = {"Region": region, "KmsKeyId": kms_key_id or MANAGED_KEY}
            occupant = repo.find_by_name(conn, primary.account_id, region, primary.name)
            if occupant is not None and not force_overwrite:
                status.update(
                    Status="Failed",
                    # The model's example text for ReplicationStatusType.StatusMessage.
                    StatusMessage="Secret with this name already exists in this region",
                )
            else:
                if occupant is not None:
                    repo.delete_secret(conn, occupant.id)
                now = self._now_ms()
                repo.insert_secret(
                    conn,
                    account_id=primary.account_id,
                    region=region,
                    name=primary.name,
                    arn=arns.with_region(primary.arn, region),
                    kms_key_id=kms_key_id,
                    created_ms=now,
                    last_changed_ms=now,
                    primary_region=primary.region,
                )
                status.update(Status="InSync", StatusMessage="Replication succeeded")
            statuses[region] = {k: v for k, v in status.items() if v is not None}
        replicas = list(statuses.values())
        repo.update_secret(conn, primary, replicas=replicas, last_changed_ms=self._now_ms())
        self._sync_replicas(conn, primary)
        return replicas

    def _sync_replicas(self, conn: Connection, primary: SecretRecord) -> None:
        """Replicas mirror their primary's metadata, versions and labels in the same
        transaction, so no reader ever sees them out of step.

        Only what differs is written: a version's value never changes once stored, so a
        version the replica already holds is kept as it is, and only versions it lacks are
        decrypted (once, for every replica) and sealed under the replica's key. A change of
        tags or description costs no cryptography at all."""
        in_sync = [s for s in primary.replicas or [] if s.get("Status") == "InSync"]
        if not in_sync:
            return
        stages = repo.stages(conn, primary.id)
        versions = repo.versions(conn, primary.id)
        plain: dict[str, _Value] = {}
        for status in in_sync:
            replica = self._replica_of(conn, primary, status["Region"])
            if replica is None:
                continue
            metadata = {name: getattr(primary, name) for name in _MIRRORED}
            if any(getattr(replica, name) != value for name, value in metadata.items()):
                repo.update_secret(conn, replica, **metadata)
            held = {(v.version_id, v.created_ms) for v in repo.versions(conn, replica.id)}
            wanted = {(v.version_id, v.created_ms) for v in versions}
            labels = repo.stages(conn, replica.id)
            stale = {version_id for version_id, _ in held - wanted}
            if stale:
                # Labels first: a label may still point at a version about to go.
                kept = {stage: v for stage, v in labels.items() if v not in stale}
                repo.replace_stages(conn, replica.id, labels, kept)
                repo.delete_versions(conn, replica.id, stale)
                labels = kept
            missing = [v for v in versions if (v.version_id, v.created_ms) not in held]
            # A replica is encrypted under its own region's key.
            key = self._encryption_key(conn, replica) if missing else None
            for v in missing:
                if v.ciphertext and v.version_id not in plain:
                    plain[v.version_id] = self._open(conn, primary, v)
                value = plain.get(v.version_id)
                sealed, key_id = (
                    self._seal(conn, replica, v.version_id, value, key)
                    if value and key is not None
                    else (None, None)
                )
                repo.insert_version(
                    conn,
                    replica.id,
                    VersionRecord(
                        v.version_id, v.created_ms, v.last_accessed_ms, key_id, v.value_kind, sealed
                    ),
                )
            repo.replace_stages(conn, replica.id, labels, stages)


# What a replica mirrors of its primary's metadata (its versions and labels aside).
_MIRRORED = (
    "description",
    "secret_type",
    "tags",
    "resource_policy",
    "last_changed_ms",
    "rotation_enabled",
    "rotation_lambda_arn",
    "rotation_rules",
    "last_rotated_ms",
    "next_rotation_ms",
    "owning_service",
)


_SORT_COLUMNS = {
    "created-date": "created_ms",
    "last-accessed-date": "last_accessed_ms",
    "last-changed-date": "last_changed_ms",
    "name": "name",
}


def _key(record: SecretRecord, sort_column: str) -> tuple[Any, int]:
    return (getattr(record, sort_column) or 0, record.id)


def _facts(record: SecretRecord) -> SecretFacts:
    return SecretFacts(
        name=record.name,
        description=record.description,
        tags=[(k, v) for k, v in record.tags or []],
        primary_region=record.primary_region or (record.region if record.replicas else None),
        owning_service=record.owning_service,
    )


def _merge_tags(existing: list[list[str]] | None, new: list[Mapping[str, str]]) -> list[list[str]]:
    merged = {k: v for k, v in existing or []}
    for tag in new:
        merged[tag.get("Key", "")] = tag.get("Value", "")
    return [[k, v] for k, v in merged.items()]


def _owning_service(tags: list[Mapping[str, str]] | None) -> str | None:
    for tag in tags or []:
        if tag.get("Key") == "aws:secretsmanager:owningService":
            return tag.get("Value")
    return None
