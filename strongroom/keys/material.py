"""Key material: each generation sealed by the root barrier and bound to its key id and
generation, cached ready to use per process."""

from __future__ import annotations

import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Connection

from strongroom.keys import repository as repo
from strongroom.keys.envelope import Barrier, DecryptionError
from strongroom.keys.kms_base import KmsBase
from strongroom.keys.kms_common import invalid_ciphertext
from strongroom.protocol.errors import ServiceError
from strongroom.store.cache import Namespace
from strongroom.store.engine import cached

_MATERIAL = Namespace("kms-material", ("kms_key_material",))
_DERIVE_INFO = b"strongroom-kms-blob|v2"


# Key material, also used offline by a rekey and by the re-encryption of stored data keys
# (keys/generations.py).


def material_aad(key_id: str, generation: int) -> bytes:
    """What a generation of a key's material is sealed with: moved to another key or
    generation, it does not open."""
    return f"kms-material|{key_id}|{generation}".encode()


def add_material(
    conn: Connection,
    barrier: Barrier,
    key_id: str,
    generation: int,
    rotation_type: str | None,
    now_ms: int,
) -> None:
    """Fresh material for ``key_id``'s ``generation``, sealed by ``barrier``."""
    material = AESGCM.generate_key(bit_length=256)
    repo.insert_material(
        conn,
        key_id,
        generation,
        os.urandom(32).hex(),
        barrier.seal(material, material_aad(key_id, generation)),
        now_ms,
        rotation_type,
    )


class Material:
    """One generation of a key's material, ready to use. Each blob is encrypted under its
    own key, derived with HKDF-SHA256 from the material over a random 256-bit salt (as
    AWS KMS derives a key per request), so however many Encrypt and GenerateDataKey
    calls a generation serves, no AES-GCM key meets more than one random nonce. Blobs
    of the earlier format, encrypted under the material itself, still open."""

    __slots__ = ("_legacy", "_material")

    def __init__(self, material: bytes) -> None:
        self._material = material
        self._legacy = AESGCM(material)

    def __repr__(self) -> str:
        return "Material(<sealed>)"

    def derived(self, salt: bytes) -> AESGCM:
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_DERIVE_INFO)
        return AESGCM(hkdf.derive(self._material))

    @property
    def legacy(self) -> AESGCM:
        return self._legacy


class KeyMaterial(KmsBase):
    def _add_material(
        self, conn: Connection, key_id: str, generation: int, rotation_type: str | None
    ) -> None:
        add_material(conn, self._barrier, key_id, generation, rotation_type, self._now_ms())

    def _material(
        self, conn: Connection, key_id: str, generation: int | None = None
    ) -> tuple[int, str, Material]:
        """The key's material (its current one, or ``generation``): its generation, id and
        the material ready to use, cached."""
        return cached(
            conn,
            _MATERIAL,
            (key_id, generation),
            lambda: self._load_material(conn, key_id, generation),
        )

    def _load_material(
        self, conn: Connection, key_id: str, generation: int | None
    ) -> tuple[int, str, Material]:
        row = repo.material(conn, key_id, generation)
        if row is None:
            raise invalid_ciphertext()
        try:
            material = self._barrier.open(row.sealed, material_aad(key_id, row.generation))
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
        return row.generation, row.material_id, Material(material)

    def _current_material_id(self, conn: Connection, key_id: str) -> str:
        return repo.current_material_id(conn, key_id)
