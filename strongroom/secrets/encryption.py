"""Sealing and opening secret values with the secret's KMS key (a fresh data key per
version, the secret ARN and version id as encryption context), and the checks on that key."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from sqlalchemy import Connection

from strongroom.audit.derived import OnBehalf, on_behalf
from strongroom.keys.conditions import key_use_check
from strongroom.keys.kms import KeyRecord
from strongroom.protocol.errors import ServiceError
from strongroom.secrets.base import SecretsBase
from strongroom.secrets.common import (
    _acting_for,
    _decryption_failure,
    _encryption_failure,
    _invalid_parameter,
    _invalid_request,
    _Value,
)
from strongroom.secrets.repository import SecretRecord, VersionRecord
from strongroom.types import Caller


class SecretEncryption(SecretsBase):
    # Values are sealed as AWS does: a fresh data key from the secret's KMS key for every
    # version, with the secret ARN and version id as the encryption context, so a
    # ciphertext moved to another secret or version does not open.

    @staticmethod
    def context(arn: str, version_id: str) -> dict[str, str]:
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
        encryption_context: Mapping[str, str],
        conn: Connection,
    ) -> None:
        """Secrets Manager uses the secret's KMS key on the caller's behalf, so the caller
        needs the KMS permission too, through the key policy (with kms:ViaService) or a
        grant of the key. None: the service acting for itself (replication)."""
        if caller is None:
            return
        if key.key_manager == "AWS" and key.account_id != caller.account_id:
            raise _invalid_request(
                "You can't access a secret from a different AWS account if you encrypt the "
                "secret with the default KMS service key."
            )
        policy = self._keys.grant_policy(
            caller,
            key,
            action.removeprefix("kms:"),
            {"EncryptionContext": encryption_context},
            conn,
        )
        check = key_use_check(
            action,
            key,
            f"secretsmanager.{record.region}.amazonaws.com",
            caller.account_id,
            encryption_context,
            policy,
        )
        try:
            caller.authorize(check)
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
        context = self.context(record.arn, version_id)
        self._check_key_use(caller, "kms:GenerateDataKey", key, record, context, conn)
        try:
            sealed = self._keys.seal_with(conn, key, value.data, context)
        except ServiceError as error:
            raise _encryption_failure(error) from None
        if caller is not None:
            _record_kms_call("GenerateDataKey", key, context, keySpec="AES_256")
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
        """The version's value. After a key change a version is sealed under both the new
        key and the previous one: if the new key cannot open it (disabled, pending
        deletion, or the caller may not use it), the previous key is tried, and if
        that fails too, the first failure is what the caller hears."""
        assert version.ciphertext is not None and version.value_kind is not None
        try:
            data = self._open_sealed(conn, record, version.version_id, version.ciphertext, caller)
        except ServiceError:
            if version.previous_ciphertext is None:
                raise
            try:
                data = self._open_sealed(
                    conn, record, version.version_id, version.previous_ciphertext, caller
                )
            except ServiceError:
                pass
            else:
                return _Value(version.value_kind, data)
            raise
        return _Value(version.value_kind, data)

    def _open_sealed(
        self,
        conn: Connection,
        record: SecretRecord,
        version_id: str,
        ciphertext: bytes,
        caller: Caller | None,
    ) -> bytes:
        key = None
        context = self.context(record.arn, version_id)
        if caller is not None:
            key = self._keys.sealed_key(conn, ciphertext)
            if key is None:
                raise _decryption_failure()
            self._check_key_use(caller, "kms:Decrypt", key, record, context, conn)
        try:
            data = self._keys.open_sealed(
                conn,
                _acting_for(record.account_id, record.region),
                ciphertext,
                context,
                key,
            )
        except ServiceError:
            raise _decryption_failure() from None
        if key is not None:  # a caller's read (its key was checked above)
            _record_kms_call("Decrypt", key, context, encryptionAlgorithm="SYMMETRIC_DEFAULT")
        return data

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


def _record_kms_call(name: str, key: KeyRecord, context: dict[str, str], **extra: str) -> None:
    """Audit the KMS call made on the caller's behalf (CloudTrail: a KMS event with
    ``invokedBy: secretsmanager.amazonaws.com`` and the encryption context), written with
    the request's own record."""
    # tuple.__new__ makes the OnBehalf from its fields in order (asserted below), without
    # the generated __new__'s Python frame: one a read.
    on_behalf(
        tuple.__new__(
            OnBehalf,
            (
                "secretsmanager.amazonaws.com",  # invoked_by
                "kms.amazonaws.com",  # event_source
                name,  # event_name
                {"keyId": key.arn, "encryptionContext": context, **extra},  # request_parameters
                (key.arn,),  # resources
            ),
        )
    )


assert OnBehalf._fields == (
    "invoked_by",
    "event_source",
    "event_name",
    "request_parameters",
    "resources",
), "_record_kms_call makes an OnBehalf field by field: keep them in step"
