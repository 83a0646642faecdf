"""For Secrets Manager: envelope encryption of secret values (a fresh data key under the
secret's KMS key per value) and opening them with the data-key cache."""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection

from strongroom.keys.blobs import _NONCE, _WRAPPED_LENGTH, canonical_context, join_sealed
from strongroom.keys.kms_common import SECRETS_MANAGER_ALIAS, invalid_ciphertext
from strongroom.keys.kms_keys import Keys
from strongroom.keys.repository import KeyRecord
from strongroom.types import Caller


class SecretEnvelopes(Keys):
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
        return join_sealed(wrapped, nonce + body)

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
            (length,) = _WRAPPED_LENGTH.unpack_from(sealed)
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
