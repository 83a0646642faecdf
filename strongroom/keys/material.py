"""Key material: each generation sealed by the root barrier and bound to its key id and
generation, cached ready to use per process."""

from __future__ import annotations

import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection

from strongroom.keys import repository as repo
from strongroom.keys.envelope import DecryptionError
from strongroom.keys.kms_base import KmsBase
from strongroom.keys.kms_common import invalid_ciphertext
from strongroom.protocol.errors import ServiceError
from strongroom.store.cache import Namespace
from strongroom.store.engine import cached

_MATERIAL = Namespace("kms-material", ("kms_key_material",))


class KeyMaterial(KmsBase):
    def _material_aad(self, key_id: str, generation: int) -> bytes:
        return f"kms-material|{key_id}|{generation}".encode()

    def _add_material(
        self, conn: Connection, key_id: str, generation: int, rotation_type: str | None
    ) -> None:
        material = AESGCM.generate_key(bit_length=256)
        repo.insert_material(
            conn,
            key_id,
            generation,
            os.urandom(32).hex(),
            self._barrier.seal(material, self._material_aad(key_id, generation)),
            self._now_ms(),
            rotation_type,
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
        row = repo.material(conn, key_id, generation)
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
        return repo.current_material_id(conn, key_id)
