"""KMS's cryptographic operations: Encrypt, Decrypt, ReEncrypt, GenerateDataKey(WithoutPlaintext),
GenerateRandom."""

from __future__ import annotations

import os

from strongroom.keys.blobs import Ciphertexts
from strongroom.keys.kms_common import (
    SYMMETRIC,
    Output,
    Params,
    _check_algorithm,
    _data_key_size,
    ignores_ciphertext,
    unsupported,
)
from strongroom.protocol.errors import validation_error
from strongroom.types import Caller


class CryptoOperations(Ciphertexts):
    def encrypt(self, caller: Caller, params: Params) -> Output:
        _check_algorithm(params.get("EncryptionAlgorithm"))
        with self._store.read() as conn:
            key = self._usable(
                self._permitted(caller, self._resolve(conn, caller, params["KeyId"]), "Encrypt")
            )
            blob, _ = self._encrypt(conn, key, params["Plaintext"], params.get("EncryptionContext"))
        return {"CiphertextBlob": blob, "KeyId": key.arn, "EncryptionAlgorithm": SYMMETRIC}

    def _ignoring_ciphertext(
        self, caller: Caller, member: str, action: str, params: Params
    ) -> Output:
        """A dry run that checks only the key named in ``member`` (the facade then answers
        DryRunOperationException)."""
        if not params.get(member):
            raise validation_error(
                f"{member} is required when DryRunModifiers is IGNORE_CIPHERTEXT."
            )
        with self._store.read() as conn:
            key = self._usable(
                self._permitted(caller, self._resolve(conn, caller, params[member]), action)
            )
        return {"KeyId": key.arn}

    def decrypt(self, caller: Caller, params: Params) -> Output:
        _check_algorithm(params.get("EncryptionAlgorithm"))
        if ignores_ciphertext(params):
            return self._ignoring_ciphertext(caller, "KeyId", "Decrypt", params)
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
        if ignores_ciphertext(params):
            self._ignoring_ciphertext(caller, "DestinationKeyId", "ReEncryptTo", params)
            return self._ignoring_ciphertext(caller, "SourceKeyId", "ReEncryptFrom", params)
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
