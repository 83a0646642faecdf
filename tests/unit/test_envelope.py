"""The root barrier's format: a key per sealed value, derived with HKDF-SHA256 over a
random 256-bit salt, so the root key itself never encrypts; values of the earlier format
(a data key wrapped under the root key) still open."""

from __future__ import annotations

import os

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from strongroom.keys.envelope import Barrier, DecryptionError

ROOT = os.urandom(32)
AAD = b"access-key|AKIAEXAMPLE"


def derived(salt: bytes) -> AESGCM:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"strongroom-barrier|v2")
    return AESGCM(hkdf.derive(ROOT))


def test_each_value_is_sealed_under_its_own_derived_key() -> None:
    barrier = Barrier(ROOT)
    first, second = barrier.seal(b"value", AAD), barrier.seal(b"value", AAD)
    assert first[0] == 2 and len(first) == 1 + 32 + 12 + len(b"value") + 16
    salt, nonce, body = first[1:33], first[33:45], first[45:]
    assert salt != second[1:33]  # a fresh salt, so a fresh key, every time
    assert derived(salt).decrypt(nonce, body, AAD) == b"value"
    with pytest.raises(InvalidTag):
        AESGCM(ROOT).decrypt(nonce, body, AAD)  # the root key did not encrypt it
    assert barrier.open(first, AAD) == barrier.open(second, AAD) == b"value"


def test_a_moved_altered_or_foreign_value_does_not_open() -> None:
    barrier = Barrier(ROOT)
    sealed = barrier.seal(b"value", AAD)
    altered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    other_salt = sealed[:1] + os.urandom(32) + sealed[33:]
    for candidate, aad in (
        (sealed, b"access-key|AKIAOTHER"),
        (altered, AAD),
        (other_salt, AAD),
        (sealed[:40], AAD),
        (b"\x03" + sealed[1:], AAD),
        (b"", AAD),
    ):
        with pytest.raises(DecryptionError):
            barrier.open(candidate, aad)
    with pytest.raises(DecryptionError):
        Barrier(os.urandom(32)).open(sealed, AAD)


def test_values_of_the_earlier_format_still_open() -> None:
    data_key = AESGCM.generate_key(bit_length=256)
    key_nonce, value_nonce = os.urandom(12), os.urandom(12)
    wrapped = AESGCM(ROOT).encrypt(key_nonce, data_key, b"data-key|" + AAD)
    body = AESGCM(data_key).encrypt(value_nonce, b"old value", AAD)
    legacy = b"\x01" + key_nonce + wrapped + value_nonce + body
    assert Barrier(ROOT).open(legacy, AAD) == b"old value"
    with pytest.raises(DecryptionError):
        Barrier(ROOT).open(legacy, b"access-key|AKIAOTHER")
    with pytest.raises(DecryptionError):
        Barrier(ROOT).open(legacy[:30], AAD)
