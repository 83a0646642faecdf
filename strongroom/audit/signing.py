"""The Ed25519 key that signs audit digests.

The private key lives in the ``settings`` table sealed by the root barrier (so it is
exactly as safe as the secrets), created the first time a deployment opens. The public
key is written to ``<data-dir>/audit/signing-key.pub`` for operators to copy somewhere
an intruder cannot reach: ``strongroom audit verify --public-key`` then proves the
digests were made by this deployment.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from strongroom.audit.integrity import PUBLIC_KEY_FILE
from strongroom.store import schema
from strongroom.store.engine import Store
from strongroom.types import Sealer

log = logging.getLogger("strongroom.audit")

SETTING = "audit-signing-key"


def raw_public(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """hex(sha256(raw public key)), as digests name their key."""
    return hashlib.sha256(raw_public(public_key)).hexdigest()


def public_der(public_key: Ed25519PublicKey) -> bytes:
    """The key as CloudTrail's ListPublicKeys gives it: DER SubjectPublicKeyInfo."""
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class AuditSigningKey:
    """Signs digests. Holds the private key; never prints it."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private = private_key
        self.public_key = private_key.public_key()
        self.fingerprint = fingerprint(self.public_key)
        self.public_bytes = raw_public(self.public_key)

    @classmethod
    def generate(cls) -> AuditSigningKey:
        return cls(Ed25519PrivateKey.generate())

    def __repr__(self) -> str:
        return f"AuditSigningKey(fingerprint={self.fingerprint[:16]}...)"

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data)

    def raw_private_bytes(self) -> bytes:
        return self._private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )


def load_or_create(store: Store, barrier: Sealer) -> AuditSigningKey:
    """The deployment's signing key, created (once, whichever worker comes first)."""
    sealed = _read(store)
    if sealed is None:
        fresh = AuditSigningKey.generate()
        try:
            with store.write() as conn:  # the write lock: two workers cannot both insert
                sealed = conn.execute(
                    select(schema.settings.c.value).where(schema.settings.c.name == SETTING)
                ).scalar_one_or_none()
                if sealed is None:
                    sealed = barrier.seal(fresh.raw_private_bytes(), SETTING.encode())
                    conn.execute(insert(schema.settings).values(name=SETTING, value=sealed))
        except IntegrityError:  # a database without SQLite's write lock: another inserted first
            sealed = _read(store)
        if sealed is None:
            raise RuntimeError("the audit signing key could not be stored")
    raw = barrier.open(sealed, SETTING.encode())
    return AuditSigningKey(Ed25519PrivateKey.from_private_bytes(raw))


def _read(store: Store) -> bytes | None:
    with store.read() as conn:
        value: bytes | None = conn.execute(
            select(schema.settings.c.value).where(schema.settings.c.name == SETTING)
        ).scalar_one_or_none()
    return value


def write_public_key(audit_dir: Path, key: AuditSigningKey) -> Path:
    """Publish the public key as ``audit/signing-key.pub`` (PEM); replaced atomically."""
    audit_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = audit_dir / PUBLIC_KEY_FILE
    pem = public_pem(key.public_key)
    try:
        current = path.read_bytes()
    except FileNotFoundError:
        current = None
    if current == pem:
        return path
    if current is not None:
        log.warning("%s did not hold this deployment's audit signing key; rewritten", path)
    temporary = path.with_name(f".{PUBLIC_KEY_FILE}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    return path


def read_public_key(path: Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file; ValueError if it is anything else."""
    loaded = serialization.load_pem_public_key(path.read_bytes())
    if not isinstance(loaded, Ed25519PublicKey):
        raise ValueError(f"{path} does not hold an Ed25519 public key")
    return loaded
