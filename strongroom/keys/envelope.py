"""Envelope encryption: the barrier between plaintext and storage.

Every sealed value gets a fresh AES-256-GCM data key; the data key is wrapped under the
root key. The caller's associated data (e.g. secret ARN and version id) is bound to both
layers, so a ciphertext copied onto another row does not open.
"""

from __future__ import annotations

import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_FORMAT = 1
_NONCE = 12
_WRAPPED_KEY = 32 + 16  # AES-256 key + GCM tag
_HEADER = struct.Struct(">B")


class DecryptionError(Exception):
    """A sealed value did not open: wrong key, tampering, or moved to another row."""

    def __repr__(self) -> str:
        return "DecryptionError()"


class Barrier:
    """Seals and opens values under a root key. Holds the key; never prints it."""

    def __init__(self, root_key: bytes) -> None:
        if len(root_key) != 32:
            raise ValueError("the root key must be 32 bytes")
        self._root = AESGCM(root_key)

    def __repr__(self) -> str:
        return "Barrier(<sealed>)"

    def close(self) -> None:
        """Release what the barrier holds open (a keyholder connection; here nothing)."""

    def seal(self, plaintext: bytes, associated_data: bytes) -> bytes:
        data_key = AESGCM.generate_key(bit_length=256)
        key_nonce, value_nonce = os.urandom(_NONCE), os.urandom(_NONCE)
        wrapped = self._root.encrypt(key_nonce, data_key, b"data-key|" + associated_data)
        body = AESGCM(data_key).encrypt(value_nonce, plaintext, associated_data)
        return _HEADER.pack(_FORMAT) + key_nonce + wrapped + value_nonce + body

    def open(self, sealed: bytes, associated_data: bytes) -> bytes:
        minimum = _HEADER.size + 2 * _NONCE + _WRAPPED_KEY + 16
        if len(sealed) < minimum or sealed[0] != _FORMAT:
            raise DecryptionError
        offset = _HEADER.size
        key_nonce = sealed[offset : offset + _NONCE]
        offset += _NONCE
        wrapped = sealed[offset : offset + _WRAPPED_KEY]
        offset += _WRAPPED_KEY
        value_nonce = sealed[offset : offset + _NONCE]
        body = sealed[offset + _NONCE :]
        try:
            data_key = self._root.decrypt(key_nonce, wrapped, b"data-key|" + associated_data)
            return AESGCM(data_key).decrypt(value_nonce, body, associated_data)
        except InvalidTag:
            raise DecryptionError from None
