"""The key service at domain level: a real data directory and SQLite store, time moved by a
ManualClock. Automatic rotation when it falls due, keys purged at the end of their
waiting period, and key material that is stored sealed.

AWS behaviour followed: automatic rotation every RotationPeriodInDays (default 365; AWS
managed keys yearly) keeps the old material for decryption and encrypts with the new
(KMS developer guide "rotate-keys"); a key is deleted when its waiting period ends, after
which "data encrypted under the key is unrecoverable" (ScheduleKeyDeletion reference).
"""

from __future__ import annotations

import base64
import os
import struct
import tracemalloc
import uuid
from datetime import timedelta
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select

from strongroom.clock import ManualClock
from strongroom.iam.credentials import admin_arn
from strongroom.keys.envelope import DecryptionError
from strongroom.keys.kms import DataKeys, KeyService, canonical_context
from strongroom.protocol.errors import ServiceError
from strongroom.secrets.service import SecretsManager
from strongroom.server.deployment import DEV_ACCOUNT, Deployment
from strongroom.store import schema
from strongroom.types import Caller

REGION = "us-east-1"
KMS = Caller(DEV_ACCOUNT, REGION, admin_arn(DEV_ACCOUNT))
SM = Caller(DEV_ACCOUNT, REGION, admin_arn(DEV_ACCOUNT))
DAY = timedelta(days=1)


@pytest.fixture
def keys(deployment: Deployment) -> KeyService:
    return deployment.keys


@pytest.fixture
def sm(deployment: Deployment) -> SecretsManager:
    return deployment.secrets


def new_key(keys: KeyService) -> str:
    key_id: str = keys.create_key(KMS, {})["KeyMetadata"]["KeyId"]
    return key_id


def material_id(keys: KeyService, key_id: str) -> str:
    found: str = keys.describe_key(KMS, {"KeyId": key_id})["KeyMetadata"]["CurrentKeyMaterialId"]
    return found


def encrypt(keys: KeyService, key_id: str, plaintext: bytes) -> bytes:
    blob: bytes = keys.encrypt(KMS, {"KeyId": key_id, "Plaintext": plaintext})["CiphertextBlob"]
    return blob


def decrypt(keys: KeyService, blob: bytes) -> dict[str, Any]:
    return keys.decrypt(KMS, {"CiphertextBlob": blob})


def create_secret(sm: SecretsManager, name: str, value: str, key: str | None = None) -> str:
    params: dict[str, Any] = {
        "Name": name,
        "SecretString": value,
        "ClientRequestToken": str(uuid.uuid4()),
    }
    if key is not None:
        params["KmsKeyId"] = key
    version: str = sm.create_secret(SM, params)["VersionId"]
    return version


def put_secret(sm: SecretsManager, name: str, value: str) -> str:
    params = {"SecretId": name, "SecretString": value, "ClientRequestToken": str(uuid.uuid4())}
    version: str = sm.put_secret_value(SM, params)["VersionId"]
    return version


def read_secret(sm: SecretsManager, name: str) -> str:
    value: str = sm.get_secret_value(SM, {"SecretId": name})["SecretString"]
    return value


def raises(code: str, call: Any) -> ServiceError:
    with pytest.raises(ServiceError) as raised:
        call()
    assert raised.value.code == code, raised.value
    return raised.value


# Automatic rotation ------------------------------------------------------------------------


def test_automatic_rotation_happens_when_due_and_old_ciphertexts_still_decrypt(
    keys: KeyService, clock: ManualClock
) -> None:
    key_id = new_key(keys)
    untouched = new_key(keys)  # rotation never enabled
    keys.enable_key_rotation(KMS, {"KeyId": key_id, "RotationPeriodInDays": 90})
    first = material_id(keys, key_id)
    old_blob = encrypt(keys, key_id, b"before rotation")
    untouched_material = material_id(keys, untouched)

    clock.advance(89 * DAY)
    assert keys.run_due_rotations() == 0
    assert material_id(keys, key_id) == first

    clock.advance(DAY)
    assert keys.run_due_rotations() == 1
    second = material_id(keys, key_id)
    assert second != first
    assert keys.run_due_rotations() == 0  # done once, not again
    status = keys.get_key_rotation_status(KMS, {"KeyId": key_id})
    assert status["NextRotationDate"] == clock.now() + 90 * DAY
    opened = decrypt(keys, old_blob)
    assert (opened["Plaintext"], opened["KeyMaterialId"]) == (b"before rotation", first)
    new_blob = encrypt(keys, key_id, b"after rotation")
    opened = decrypt(keys, new_blob)
    assert (opened["Plaintext"], opened["KeyMaterialId"]) == (b"after rotation", second)

    clock.advance(90 * DAY)
    assert keys.run_due_rotations() == 1
    third = material_id(keys, key_id)
    assert third not in (first, second)
    for blob, plain in ((old_blob, b"before rotation"), (new_blob, b"after rotation")):
        assert decrypt(keys, blob)["Plaintext"] == plain
    assert material_id(keys, untouched) == untouched_material


def test_disabled_or_non_rotating_keys_are_not_rotated(
    keys: KeyService, clock: ManualClock
) -> None:
    key_id = new_key(keys)
    keys.enable_key_rotation(KMS, {"KeyId": key_id, "RotationPeriodInDays": 90})
    keys.disable_key(KMS, {"KeyId": key_id})
    before = material_id(keys, key_id)
    clock.advance(200 * DAY)
    assert keys.run_due_rotations() == 0
    assert material_id(keys, key_id) == before
    # re-enabled, the overdue rotation happens on the next run
    keys.enable_key(KMS, {"KeyId": key_id})
    assert keys.run_due_rotations() == 1
    assert material_id(keys, key_id) != before
    # turning rotation off stops it
    keys.disable_key_rotation(KMS, {"KeyId": key_id})
    after = material_id(keys, key_id)
    clock.advance(400 * DAY)
    assert keys.run_due_rotations() == 0
    assert material_id(keys, key_id) == after


def test_the_aws_managed_key_rotates_yearly_and_secrets_stay_readable(
    keys: KeyService, sm: SecretsManager, clock: ManualClock
) -> None:
    create_secret(sm, "rotating/default", "managed value")
    managed = keys.describe_key(KMS, {"KeyId": "alias/aws/secretsmanager"})["KeyMetadata"]
    first = managed["CurrentKeyMaterialId"]
    clock.advance(364 * DAY)
    assert keys.run_due_rotations() == 0
    clock.advance(DAY)
    assert keys.run_due_rotations() == 1
    assert material_id(keys, managed["KeyId"]) != first
    assert read_secret(sm, "rotating/default") == "managed value"
    put_secret(sm, "rotating/default", "after")
    assert read_secret(sm, "rotating/default") == "after"
    previous = sm.get_secret_value(
        SM, {"SecretId": "rotating/default", "VersionStage": "AWSPREVIOUS"}
    )
    assert previous["SecretString"] == "managed value"


def test_a_secret_under_a_rotated_key_reads_both_generations(
    keys: KeyService, sm: SecretsManager, clock: ManualClock
) -> None:
    key_id = new_key(keys)
    keys.enable_key_rotation(KMS, {"KeyId": key_id, "RotationPeriodInDays": 90})
    create_secret(sm, "rotating/cmk", "generation one", key_id)
    clock.advance(90 * DAY)
    assert keys.run_due_rotations() == 1
    put_secret(sm, "rotating/cmk", "generation two")
    assert read_secret(sm, "rotating/cmk") == "generation two"
    previous = sm.get_secret_value(SM, {"SecretId": "rotating/cmk", "VersionStage": "AWSPREVIOUS"})
    assert previous["SecretString"] == "generation one"


# Deletion at the end of the waiting period --------------------------------------------------


def test_a_key_past_its_waiting_period_is_purged_and_its_secrets_fail(
    deployment: Deployment, keys: KeyService, sm: SecretsManager, clock: ManualClock
) -> None:
    doomed = new_key(keys)
    alias = "alias/doomed"
    keys.create_alias(KMS, {"AliasName": alias, "TargetKeyId": doomed})
    spared = new_key(keys)
    create_secret(sm, "purge/doomed", "lost forever", alias)
    create_secret(sm, "purge/spared", "kept", spared)
    create_secret(sm, "purge/default", "kept too")
    blob = encrypt(keys, doomed, b"direct")
    keys.schedule_key_deletion(KMS, {"KeyId": doomed, "PendingWindowInDays": 7})
    cancelled = new_key(keys)
    keys.schedule_key_deletion(KMS, {"KeyId": cancelled, "PendingWindowInDays": 7})

    clock.advance(7 * DAY - timedelta(seconds=1))
    assert keys.purge_expired_keys() == 0
    keys.cancel_key_deletion(KMS, {"KeyId": cancelled})
    raises("DecryptionFailure", lambda: read_secret(sm, "purge/doomed"))  # pending deletion

    clock.advance(timedelta(seconds=1))
    assert keys.purge_expired_keys() == 1
    assert keys.purge_expired_keys() == 0
    arn = f"arn:aws:kms:{REGION}:{DEV_ACCOUNT}:key/{doomed}"
    error = raises("NotFoundException", lambda: keys.describe_key(KMS, {"KeyId": doomed}))
    assert error.message == f"Key '{arn}' does not exist"
    raises("NotFoundException", lambda: keys.describe_key(KMS, {"KeyId": alias}))
    aliases = keys.list_aliases(KMS, {})["Aliases"]
    assert alias not in [a["AliasName"] for a in aliases]
    with deployment.store.read() as conn:
        left = conn.execute(
            select(schema.kms_key_material.c.generation).where(
                schema.kms_key_material.c.key_id == doomed
            )
        ).all()
    assert left == []
    error = raises("DecryptionFailure", lambda: read_secret(sm, "purge/doomed"))
    assert error.message == (
        "Secrets Manager can't decrypt the protected secret text using the provided KMS key."
    )
    # As on AWS: a ciphertext of a deleted key answers as one the caller may not use.
    error = raises("AccessDeniedException", lambda: decrypt(keys, blob))
    assert error.message.startswith("The ciphertext refers to a customer master key that does")
    # a new value cannot be encrypted under the deleted key either
    raises("EncryptionFailure", lambda: put_secret(sm, "purge/doomed", "x"))
    assert read_secret(sm, "purge/spared") == "kept"
    assert read_secret(sm, "purge/default") == "kept too"
    # the cancelled key survived, disabled
    meta = keys.describe_key(KMS, {"KeyId": cancelled})["KeyMetadata"]
    assert meta["KeyState"] == "Disabled"


def test_the_default_waiting_period_is_thirty_days(keys: KeyService, clock: ManualClock) -> None:
    key_id = new_key(keys)
    scheduled = keys.schedule_key_deletion(KMS, {"KeyId": key_id})
    assert scheduled["DeletionDate"] == clock.now() + 30 * DAY
    clock.advance(29 * DAY)
    assert keys.purge_expired_keys() == 0
    clock.advance(DAY)
    assert keys.purge_expired_keys() == 1


# Key material at rest ---------------------------------------------------------------------------


def material_rows(deployment: Deployment, key_id: str) -> list[Any]:
    table = schema.kms_key_material
    with deployment.store.read() as conn:
        return list(
            conn.execute(
                select(table).where(table.c.key_id == key_id).order_by(table.c.generation)
            ).all()
        )


def aad(key_id: str, generation: int) -> bytes:
    return f"kms-material|{key_id}|{generation}".encode()


def encodings(value: bytes) -> list[bytes]:
    return [value, value.hex().encode(), base64.b64encode(value), base64.urlsafe_b64encode(value)]


def decrypt_with(keys: KeyService, blob: bytes, context: dict[str, str]) -> bytes:
    found: bytes = keys.decrypt(KMS, {"CiphertextBlob": blob, "EncryptionContext": context})[
        "Plaintext"
    ]
    return found


def test_key_material_is_stored_sealed(deployment: Deployment, keys: KeyService) -> None:
    key_id = new_key(keys)
    keys.rotate_key_on_demand(KMS, {"KeyId": key_id})
    context = {"purpose": "material test"}
    blob = keys.encrypt(
        KMS, {"KeyId": key_id, "Plaintext": b"which material?", "EncryptionContext": context}
    )["CiphertextBlob"]
    rows = material_rows(deployment, key_id)
    assert [row.generation for row in rows] == [1, 2]
    materials = [deployment.barrier.open(row.sealed, aad(key_id, row.generation)) for row in rows]
    assert all(len(material) == 32 for material in materials)
    assert materials[0] != materials[1]

    # what the barrier opens is really the material: a key derived from it over the
    # blob's salt (HKDF-SHA256) decrypts the KMS ciphertext; the material itself does not
    header = struct.calcsize(">B36sI")
    version, (generation,) = blob[0], struct.unpack_from(">I", blob, 1 + 36)
    assert (version, generation) == (2, 2)
    salt = blob[header : header + 32]
    nonce, sealed_body = blob[header + 32 : header + 44], blob[header + 44 :]
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"strongroom-kms-blob|v2")
    associated = blob[:header] + canonical_context(context)
    opened = AESGCM(hkdf.derive(materials[1])).decrypt(nonce, sealed_body, associated)
    assert opened == b"which material?"
    with pytest.raises(InvalidTag):
        AESGCM(materials[1]).decrypt(nonce, sealed_body, associated)

    # a blob of the earlier format (encrypted under the material itself) still decrypts
    legacy_header = b"\x01" + blob[1:header]
    legacy_nonce = os.urandom(12)
    legacy = (
        legacy_header
        + legacy_nonce
        + AESGCM(materials[1]).encrypt(
            legacy_nonce, b"older blob", legacy_header + canonical_context(context)
        )
    )
    assert decrypt_with(keys, legacy, context) == b"older blob"

    # ... and it is nowhere in the clear: not in its row, not anywhere in the database
    for row, material in zip(rows, materials, strict=True):
        assert all(form not in row.sealed for form in encodings(material))
    files = [p for p in deployment.data_dir.iterdir() if p.name.startswith("strongroom.db")]
    assert files
    for path in files:
        content = path.read_bytes()
        for material in materials:
            assert all(form not in content for form in encodings(material)), path.name

    # a sealed row is bound to its key and generation: it does not open as another
    with pytest.raises(DecryptionError):
        deployment.barrier.open(rows[0].sealed, aad(key_id, 2))
    other = new_key(keys)
    with pytest.raises(DecryptionError):
        deployment.barrier.open(rows[0].sealed, aad(other, 1))


def test_a_material_row_moved_to_another_key_does_not_open(
    deployment: Deployment, keys: KeyService, sm: SecretsManager
) -> None:
    victim, donor = new_key(keys), new_key(keys)
    create_secret(sm, "material/victim", "victim value", victim)
    blob = encrypt(keys, victim, b"victim direct")
    table = schema.kms_key_material
    [donor_row] = material_rows(deployment, donor)
    with deployment.store.write() as conn:
        conn.execute(
            table.update()
            .where(table.c.key_id == victim, table.c.generation == 1)
            .values(sealed=donor_row.sealed)
        )
    raises("DecryptionFailure", lambda: read_secret(sm, "material/victim"))
    raises("InvalidCiphertextException", lambda: decrypt(keys, blob))
    assert keys.describe_key(KMS, {"KeyId": victim})["KeyMetadata"]["KeyState"] == "Enabled"
    assert decrypt(keys, encrypt(keys, donor, b"donor"))["Plaintext"] == b"donor"


# Unwrapped data keys -------------------------------------------------------------------------


def sealed_value(deployment: Deployment, name: str) -> tuple[bytes, dict[str, str]]:
    """The stored ciphertext of a secret's current version and its encryption context."""
    with deployment.store.read() as conn:
        row = conn.execute(
            select(schema.secrets.c.arn, schema.secret_versions)
            .join(schema.secret_versions, schema.secret_versions.c.secret_id == schema.secrets.c.id)
            .where(schema.secrets.c.name == name)
        ).one()
    context = {"SecretARN": row.arn, "SecretVersionId": row.version_id}
    return row.ciphertext, context


def test_a_data_key_is_unwrapped_once_but_the_key_is_checked_on_every_read(
    keys: KeyService, sm: SecretsManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_id = new_key(keys)
    create_secret(sm, "dk/remembered", "v1", key_id)
    unwraps: list[str] = []
    real = keys._unwrap

    def counted(*args: Any) -> Any:
        unwraps.append("unwrap")
        return real(*args)

    monkeypatch.setattr(keys, "_unwrap", counted)
    assert read_secret(sm, "dk/remembered") == "v1"
    assert read_secret(sm, "dk/remembered") == "v1"
    assert unwraps == ["unwrap"]  # the second read used the remembered data key
    keys.disable_key(KMS, {"KeyId": key_id})
    raises("DecryptionFailure", lambda: read_secret(sm, "dk/remembered"))
    keys.enable_key(KMS, {"KeyId": key_id})
    assert read_secret(sm, "dk/remembered") == "v1"
    keys.schedule_key_deletion(KMS, {"KeyId": key_id, "PendingWindowInDays": 7})
    raises("DecryptionFailure", lambda: read_secret(sm, "dk/remembered"))
    assert unwraps == ["unwrap"]


def test_a_remembered_data_key_opens_nothing_under_another_context(
    deployment: Deployment, keys: KeyService, sm: SecretsManager
) -> None:
    create_secret(sm, "dk/context", "bound")
    assert read_secret(sm, "dk/context") == "bound"
    sealed, context = sealed_value(deployment, "dk/context")
    moved = {**context, "SecretVersionId": str(uuid.uuid4())}
    with deployment.store.read() as conn:
        assert keys.open_sealed(conn, KMS, sealed, context) == b"bound"
        raises("InvalidCiphertextException", lambda: keys.open_sealed(conn, KMS, sealed, moved))
        tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
        raises("InvalidCiphertextException", lambda: keys.open_sealed(conn, KMS, tampered, context))


def test_a_remembered_encryption_context_takes_its_own_size_in_memory() -> None:
    arn = f"arn:aws:secretsmanager:us-east-1:{DEV_ACCOUNT}:secret:app/db-AbCdEf"
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [
            canonical_context({"SecretARN": arn, "SecretVersionId": str(n)}) for n in range(1000)
        ]
        per_context = (tracemalloc.get_traced_memory()[0] - before) / len(kept)
    finally:
        tracemalloc.stop()
    assert kept[0] == b'{"SecretARN":"%s","SecretVersionId":"0"}' % arn.encode()
    # A DataKeys key lives as long as the process: not orjson's 4 KiB buffer each.
    assert per_context < 300


def test_data_keys_are_bounded_oldest_first() -> None:
    remembered = DataKeys(limit=2)
    data_keys = [AESGCM.generate_key(bit_length=256) for _ in range(3)]
    for number, data_key in enumerate(data_keys):
        remembered.put(b"wrapped-%d" % number, b"{}", data_key)
    assert len(remembered) == 2
    assert remembered.get(b"wrapped-0", b"{}") is None
    assert remembered.get(b"wrapped-2", b"{}") == data_keys[2]
    assert remembered.get(b"wrapped-2", b'{"a":"b"}') is None
    assert "wrapped" not in repr(remembered)


def test_data_keys_are_forgotten_after_their_time(clock: ManualClock) -> None:
    remembered = DataKeys(limit=8, clock=clock, ttl_ms=60_000)
    data_key = AESGCM.generate_key(bit_length=256)
    remembered.put(b"wrapped", b"{}", data_key)
    clock.advance(timedelta(seconds=59))
    assert remembered.get(b"wrapped", b"{}") == data_key
    clock.advance(timedelta(seconds=1))
    assert remembered.get(b"wrapped", b"{}") is None and len(remembered) == 0


def test_a_secret_sealed_under_another_regions_key_before_keys_were_regional_still_opens(
    deployment: Deployment, keys: KeyService, sm: SecretsManager
) -> None:
    """Existing data: before keys were regional, Secrets Manager in us-east-1 accepted a
    us-west-2 KmsKeyId. Such a value still opens through Secrets Manager (and moves to a
    key of its region with UpdateSecret), while the KMS API refuses the ciphertext and no
    new value is sealed under the foreign key."""
    west = Caller(DEV_ACCOUNT, "us-west-2", admin_arn(DEV_ACCOUNT))
    west_key = keys.create_key(west, {})["KeyMetadata"]
    create_secret(sm, "legacy/foreign-key", "old value")
    arn = sm.describe_secret(SM, {"SecretId": "legacy/foreign-key"})["ARN"]
    versions = schema.secret_versions
    with deployment.store.write() as conn:
        record = keys._resolve(conn, west, west_key["KeyId"])
        (version_id,) = conn.execute(select(versions.c.version_id)).scalars()
        context = {"SecretARN": arn, "SecretVersionId": version_id}
        sealed = keys.seal_with(conn, record, b"old value", context)
        conn.execute(versions.update().values(ciphertext=sealed, kms_key_id=west_key["Arn"]))
        conn.execute(schema.secrets.update().values(kms_key_id=west_key["Arn"]))
    assert read_secret(sm, "legacy/foreign-key") == "old value"
    wrapped = sealed[2 : 2 + struct.unpack_from(">H", sealed)[0]]
    error = raises("AccessDeniedException", lambda: decrypt(keys, wrapped))
    assert error.message.startswith("The ciphertext refers to a customer master key")
    raises("EncryptionFailure", lambda: put_secret(sm, "legacy/foreign-key", "new value"))
    east_key = new_key(keys)
    sm.update_secret(SM, {"SecretId": "legacy/foreign-key", "KmsKeyId": east_key})
    assert read_secret(sm, "legacy/foreign-key") == "old value"
    put_secret(sm, "legacy/foreign-key", "new value")
    assert read_secret(sm, "legacy/foreign-key") == "new value"
