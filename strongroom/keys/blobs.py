"""The ciphertext blob format: a header naming the format version, the key and the material
generation, a salt (format 2), a nonce and the AES-GCM body, the header and encryption
context bound as associated data; encrypting into it, checking and opening it, finding
the key it names."""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping
from dataclasses import replace

import orjson
from cryptography.exceptions import InvalidTag
from sqlalchemy import Connection

from strongroom.keys import repository as repo
from strongroom.keys.kms_common import invalid_ciphertext, unknown_ciphertext_key
from strongroom.keys.material import KeyMaterial, Material
from strongroom.keys.repository import KeyRecord
from strongroom.protocol.errors import ServiceError
from strongroom.store.cache import Namespace
from strongroom.store.engine import cached
from strongroom.types import Caller

# Read to open every secret value: cached per process (store/cache.py).
# A key record carries its aliases (kms:ResourceAliases), so alias changes drop it too;
# and whether it has grants (KeyRecord.grants), so grant changes drop it too: every
# CreateGrant, RetireGrant, RevokeGrant and key deletion writes kms_grants, which drops
# this namespace in every worker at its next refresh, and inside the writing transaction
# its reads go to the database (store/engine.py, cached).
_KEY_BY_ID = Namespace("kms-key", ("kms_keys", "kms_aliases", "kms_grants"))
_LEGACY_BLOB = 1  # encrypted under the material itself
_BLOB_VERSION = 2  # encrypted under a key derived from the material over a random salt
_SALT = 32
_KEY_ID_LEN = 36
_NONCE = 12
_BLOB_HEADER = struct.Struct(">B36sI")
# The shortest well-formed blob of each format (header, [salt,] nonce, tag): checked on
# every decryption, so worked out once.
_SHORTEST_LEGACY = _BLOB_HEADER.size + _NONCE + 16
_SHORTEST = _BLOB_HEADER.size + _SALT + _NONCE + 16
_WRAPPED_LENGTH = struct.Struct(">H")  # before a sealed secret value's wrapped data key


def canonical_context(context: Mapping[str, str] | None) -> bytes:
    """The encryption context as bytes independent of member order.

    Copied to its own length: the bytes orjson returns keep the 4 KiB buffer they were
    written into, and a context outlives the request as part of a :class:`DataKeys` key
    (32,768 of them were 130 MiB instead of 15)."""
    return bytes(memoryview(orjson.dumps(dict(sorted((context or {}).items())))))


# The ciphertext blob format, also used offline by a rekey and by the re-encryption of
# stored data keys (keys/generations.py).


def wrap(
    key_id: str, generation: int, material: Material, plaintext: bytes, context: bytes
) -> bytes:
    """A ciphertext blob: header (naming the key and generation), salt, nonce, body. The
    header is authenticated together with the encryption context (``canonical_context``)."""
    header = _BLOB_HEADER.pack(_BLOB_VERSION, key_id.encode(), generation)
    salt, nonce = os.urandom(_SALT), os.urandom(_NONCE)
    return (
        header + salt + nonce + material.derived(salt).encrypt(nonce, plaintext, header + context)
    )


def unwrap(blob: bytes, material: Material, context: bytes) -> bytes:
    """The plaintext of a well-formed ``blob`` (see :func:`blob_origin`) under its
    generation's ``material``; raises ``InvalidTag`` when it does not open."""
    header, offset = blob[: _BLOB_HEADER.size], _BLOB_HEADER.size
    if blob[0] == _LEGACY_BLOB:
        cipher = material.legacy
    else:
        cipher = material.derived(blob[offset : offset + _SALT])
        offset += _SALT
    nonce = blob[offset : offset + _NONCE]
    return cipher.decrypt(nonce, blob[offset + _NONCE :], header + context)


def _well_formed(blob: bytes) -> bool:
    if len(blob) < _SHORTEST_LEGACY:
        return False
    version = blob[0]
    return version == _LEGACY_BLOB or (version == _BLOB_VERSION and len(blob) >= _SHORTEST)


def blob_origin(blob: bytes) -> tuple[str, int] | None:
    """The key id and material generation a well-formed ``blob`` names, else None."""
    if not _well_formed(blob):
        return None
    _, raw_key_id, generation = _BLOB_HEADER.unpack_from(blob)
    try:
        return raw_key_id.decode("ascii"), generation
    except UnicodeDecodeError:
        return None


def split_sealed(sealed: bytes) -> tuple[bytes, bytes] | None:
    """A secret value sealed by ``KeyService.seal_with``: (wrapped data key, the rest)."""
    if len(sealed) < 2:
        return None
    end = 2 + _WRAPPED_LENGTH.unpack_from(sealed)[0]
    return sealed[2:end], sealed[end:]


def join_sealed(wrapped: bytes, rest: bytes) -> bytes:
    return _WRAPPED_LENGTH.pack(len(wrapped)) + wrapped + rest


class Ciphertexts(KeyMaterial):
    def _encrypt(
        self, conn: Connection, key: KeyRecord, plaintext: bytes, context: Mapping[str, str] | None
    ) -> tuple[bytes, str]:
        generation, material_id, material = self._material(conn, key.key_id)
        return wrap(key.key_id, generation, material, plaintext, canonical_context(context)), (
            material_id
        )

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
        if not _well_formed(blob):
            raise invalid_ciphertext()
        _, raw_key_id, generation = _BLOB_HEADER.unpack_from(blob)
        key = known if known is not None and known.key_id.encode() == raw_key_id else None
        key = key or self._blob_key(conn, blob)
        if key is None or (action is not None and key.region != caller.region):
            # A ciphertext decrypts only in its key's region; a missing key answers alike.
            # Secrets Manager's own opening (no action) is exempt: a secret's value sealed
            # before keys were regional may name a key of another region, and must still
            # open (to be read, or re-encrypted by UpdateSecret under a key of its region);
            # no new value is sealed under such a key (the reference is not found).
            raise unknown_ciphertext_key()
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
        _, material_id, material = self._material(conn, key.key_id, generation)
        try:
            plaintext = unwrap(blob, material, context)
        except InvalidTag:
            raise invalid_ciphertext() from None
        return plaintext, material_id

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
        key = repo.key_by_id(conn, key_id)
        if key is not None:
            # Read in the key's own snapshot: a key without grants skips the grant lookup
            # of every check on it (Grants.grant_policy).
            return replace(key, grants=repo.key_has_grants(conn, key_id))
        return key

    def blob_key(self, caller: Caller, blob: bytes | None) -> KeyRecord | None:
        """The key of a ciphertext, for authorization: None when there is none in the
        caller's region (the operation then refuses it, naming no key)."""
        if not blob:
            return None
        with self._store.read() as conn:
            key = self._blob_key(conn, blob)
        return key if key is not None and key.region == caller.region else None

    def sealed_key(self, conn: Connection, sealed: bytes) -> KeyRecord | None:
        """The key under which a secret value (``seal_with``'s output) was sealed: the one
        its wrapped data key names (split_sealed's first part, without copying the rest)."""
        if len(sealed) < 2:
            return None
        return self._blob_key(conn, sealed[2 : 2 + _WRAPPED_LENGTH.unpack_from(sealed)[0]])
