"""Key material generations across the whole deployment, worked on offline.

A rekey replaces the root key, but re-wrapping existing material under the new root key
does not change the material: an old root key plus an old copy of the database would
still open every data key made later. So a rekey also gives every KMS key (AWS managed
ones included) a new generation sealed only under the new root key; new data keys use
it. The operator can do the same to the AWS managed keys alone at any time
(``strongroom rotate-managed``), which tenants cannot do through the KMS API.

Older generations stay: the data keys of existing secret versions, and ciphertexts
that callers of ``Encrypt`` hold outside Strongroom, still name them. :class:`DataKeyRewrapper`
re-wraps a stored data key under its key's newest generation; Secrets Manager's
re-encryption (secrets/reencrypt.py) runs it over every secret version, after which no
stored secret value needs an older generation.
"""

from __future__ import annotations

from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from sqlalchemy import Connection, func, select

from strongroom.keys.blobs import (
    blob_origin,
    canonical_context,
    join_sealed,
    split_sealed,
    unwrap,
    wrap,
)
from strongroom.keys.envelope import Barrier, DecryptionError
from strongroom.keys.material import Material, add_material, material_aad
from strongroom.store import schema

REKEY = "REKEY"  # rotation_type of the generation a rekey adds
OPERATOR = "OPERATOR"  # ... and of one the operator asked for (rotate-managed)


def add_generation_to_keys(
    conn: Connection,
    barrier: Barrier,
    now_ms: int,
    rotation_type: str,
    *,
    aws_managed_only: bool = False,
) -> int:
    """Give every KMS key (or every AWS managed key) a new material generation sealed by
    ``barrier``, in ``conn``'s transaction. Keys in every state get one: a disabled key or
    one pending deletion may be enabled again. Returns how many keys."""
    keys, material = schema.kms_keys, schema.kms_key_material
    latest = (
        select(material.c.key_id, func.max(material.c.generation).label("latest"))
        .group_by(material.c.key_id)
        .subquery()
    )
    query = select(keys.c.key_id, latest.c.latest).join(
        latest, latest.c.key_id == keys.c.key_id, isouter=True
    )
    if aws_managed_only:
        query = query.where(keys.c.key_manager == "AWS")
    rows = conn.execute(query.order_by(keys.c.key_id)).all()
    for row in rows:
        add_material(conn, barrier, row.key_id, int(row.latest or 0) + 1, rotation_type, now_ms)
    return len(rows)


class RewrapError(Exception):
    """A stored value could not be re-wrapped. Safe to show (never holds key bytes)."""


class DataKeyRewrapper:
    """Re-wraps sealed values' data keys under the newest generation of their KMS key,
    for one offline re-encryption transaction: material is opened once per (key,
    generation) and forgotten with this object."""

    def __init__(self, conn: Connection, barrier: Barrier) -> None:
        self._conn = conn
        self._barrier = barrier
        self._ciphers: dict[tuple[str, int], Material] = {}
        self._newest: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"DataKeyRewrapper(materials={len(self._ciphers)})"

    def rewrap(self, sealed: bytes, context: Mapping[str, str]) -> bytes | None:
        """``sealed`` (``KeyService.seal_with``'s output) with its data key re-wrapped
        under its key's newest generation, or None when it already is. The value itself is
        not decrypted and its data key stays the same."""
        parts = split_sealed(sealed)
        origin = blob_origin(parts[0]) if parts is not None else None
        if parts is None or origin is None:
            raise RewrapError("not a sealed value")
        wrapped, rest = parts
        key_id, generation = origin
        newest = self._newest_generation(key_id)
        if generation == newest:
            return None
        context_bytes = canonical_context(context)
        old, new = self._cipher(key_id, generation), self._cipher(key_id, newest)
        if old is None or new is None:
            raise RewrapError(f"the material of KMS key {key_id} does not open")
        try:
            data_key = unwrap(wrapped, old, context_bytes)
        except InvalidTag:
            raise RewrapError("the data key does not open under its key material") from None
        return join_sealed(wrap(key_id, newest, new, data_key, context_bytes), rest)

    def _cipher(self, key_id: str, generation: int) -> Material | None:
        found = self._ciphers.get((key_id, generation))
        if found is not None:
            return found
        table = schema.kms_key_material
        sealed = self._conn.execute(
            select(table.c.sealed).where(table.c.key_id == key_id, table.c.generation == generation)
        ).scalar_one_or_none()
        if sealed is None:
            return None
        try:
            material = self._barrier.open(sealed, material_aad(key_id, generation))
        except DecryptionError:
            return None
        opened = self._ciphers[key_id, generation] = Material(material)
        return opened

    def _newest_generation(self, key_id: str) -> int:
        if key_id not in self._newest:
            table = schema.kms_key_material
            latest = self._conn.execute(
                select(func.max(table.c.generation)).where(table.c.key_id == key_id)
            ).scalar_one()
            if latest is None:
                raise RewrapError(f"KMS key {key_id} has no material")
            self._newest[key_id] = int(latest)
        return self._newest[key_id]
