"""Envelope encryption: the barrier between plaintext and storage.

Every sealed value is encrypted (AES-256-GCM) under its own key, derived from the root
key with HKDF-SHA256 over a fresh random 256-bit salt, as AWS KMS derives a key per
request. The root key itself never encrypts, so no AES-GCM key sees more than one
random nonce and the NIST SP 800-38D bound on random nonces per key (2^32) cannot be
approached however many values are sealed. The caller's associated data (e.g. the row
the value belongs to) is bound in, so a ciphertext copied onto another row does not open.

Values sealed before this format (format 1: a random data key wrapped under the root key
itself) still open; a rekey re-seals them in the current format.
"""

from __future__ import annotations

import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_LEGACY_FORMAT = 1  # a data key wrapped under the root key
_FORMAT = 2  # a key per value, derived over a random salt
_NONCE = 12
_SALT = 32
_TAG = 16
_WRAPPED_KEY = 32 + _TAG  # AES-256 key + GCM tag
_HEADER = struct.Struct(">B")
_INFO = b"strongroom-barrier|v2"


class DecryptionError(Exception):
    """A sealed value did not open: wrong key, tampering, or moved to another row."""

    def __repr__(self) -> str:
        return "DecryptionError()"


class Barrier:
    """Seals and opens values under a root key. Holds the key; never prints it."""

    def __init__(self, root_key: bytes) -> None:
        if len(root_key) != 32:
            raise ValueError("the root key must be 32 bytes")
        self._root_key = root_key
        self._root = AESGCM(root_key)  # opens format-1 values only

    def __repr__(self) -> str:
        return "Barrier(<sealed>)"

    def close(self) -> None:
        """Release what the barrier holds open (a keyholder connection; here nothing)."""

    def _derived(self, salt: bytes) -> AESGCM:
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_INFO)
        return AESGCM(hkdf.derive(self._root_key))

    def seal(self, plaintext: bytes, associated_data: bytes) -> bytes:
        salt, nonce = os.urandom(_SALT), os.urandom(_NONCE)
        body = self._derived(salt).encrypt(nonce, plaintext, associated_data)
        return _HEADER.pack(_FORMAT) + salt + nonce + body

    def open(self, sealed: bytes, associated_data: bytes) -> bytes:
        if sealed[:1] == _HEADER.pack(_LEGACY_FORMAT):
            return self._open_legacy(sealed, associated_data)
        if len(sealed) < _HEADER.size + _SALT + _NONCE + _TAG or sealed[0] != _FORMAT:
            raise DecryptionError
        offset = _HEADER.size
        salt = sealed[offset : offset + _SALT]
        nonce = sealed[offset + _SALT : offset + _SALT + _NONCE]
        try:
            return self._derived(salt).decrypt(
                nonce, sealed[offset + _SALT + _NONCE :], associated_data
            )
        except InvalidTag:
            raise DecryptionError from None

    def _open_legacy(self, sealed: bytes, associated_data: bytes) -> bytes:
        if len(sealed) < _HEADER.size + 2 * _NONCE + _WRAPPED_KEY + _TAG:
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
