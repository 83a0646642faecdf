"""The key lifecycle at domain level, over a real data directory: what the root barrier
seals is exactly what a rekey re-wraps; a rekey gives every KMS key a new material
generation that new data keys use; re-encryption moves stored data keys onto it; the
operator's rotation of AWS managed keys leaves customer keys alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from strongroom.clock import ManualClock
from strongroom.keys import providers
from strongroom.keys.blobs import blob_origin, split_sealed
from strongroom.keys.envelope import Barrier
from strongroom.keys.generations import OPERATOR, REKEY, add_generation_to_keys
from strongroom.keys.rekey import NEW_GENERATIONS, rekey, sealed_rows
from strongroom.secrets.reencrypt import reencrypt
from strongroom.server.deployment import Deployment, initialize, open_deployment
from strongroom.server.keyring import ROOT_SEALED
from strongroom.store import schema
from strongroom.store.engine import Store, sqlite_url
from tests.inprocess import client, credentials_client, signing_at


@pytest.fixture(autouse=True)
def signing(clock: ManualClock) -> Iterator[None]:
    with signing_at(clock):
        yield


def listed_values(store: Store) -> set[tuple[bytes, bytes]]:
    with store.read() as conn:
        return {
            (bytes(getattr(row, entry.column)), entry.aad(row))
            for entry in ROOT_SEALED
            for row in sealed_rows(conn, entry)
        }


def exercise(deployment: Deployment) -> None:
    """Everything that makes the root barrier seal something: an IAM user's access key,
    an STS session, a customer key and its rotation, the managed key (a secret)."""
    iam = client(deployment, "iam")
    iam.create_user(UserName="sealer")
    key = iam.create_access_key(UserName="sealer")["AccessKey"]
    assert key["SecretAccessKey"]
    session = client(deployment, "sts").get_session_token()["Credentials"]
    assert credentials_client(deployment, "sts", session).get_caller_identity()["Arn"]
    kms = client(deployment, "kms")
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.rotate_key_on_demand(KeyId=key_id)
    client(deployment, "secretsmanager").create_secret(Name="sealed", SecretString="v")


def test_every_use_of_the_root_barriers_seal_is_listed_in_what_rekey_rewraps(
    tmp_path: Path, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    sealed: list[tuple[bytes, bytes]] = []
    original = Barrier.seal

    def recording(self: Barrier, plaintext: bytes, associated_data: bytes) -> bytes:
        value = original(self, plaintext, associated_data)
        sealed.append((value, associated_data))
        return value

    monkeypatch.setattr(Barrier, "seal", recording)
    data_dir = tmp_path / "data"
    initialize(data_dir, dev=True, clock=clock)
    deployment = open_deployment(data_dir, clock=clock)
    try:
        exercise(deployment)
        listed = listed_values(deployment.store)
    finally:
        deployment.close()
    kinds = {aad.split(b"|")[0] for _, aad in sealed}
    assert {b"access-key", b"sts-session", b"kms-material", b"next-token-key"} <= kinds
    missed = [aad.split(b"|")[0] for value, aad in sealed if (value, aad) not in listed]
    assert missed == []


def generations(store: Store) -> dict[str, list[tuple[int, str | None]]]:
    table = schema.kms_key_material
    found: dict[str, list[tuple[int, str | None]]] = {}
    with store.read() as conn:
        for row in conn.execute(select(table).order_by(table.c.key_id, table.c.generation)):
            found.setdefault(row.key_id, []).append((row.generation, row.rotation_type))
    return found


def version_generations(store: Store) -> dict[str, int]:
    versions = schema.secret_versions
    found: dict[str, int] = {}
    with store.read() as conn:
        for row in conn.execute(select(versions.c.version_id, versions.c.ciphertext)):
            parts = split_sealed(bytes(row.ciphertext))
            assert parts is not None
            origin = blob_origin(parts[0])
            assert origin is not None
            found[row.version_id] = origin[1]
    return found


@pytest.fixture
def data_dir(tmp_path: Path, clock: ManualClock) -> Path:
    """A dev data directory holding a secret under the managed key, one under a customer
    key, and a disabled customer key."""
    data_dir = tmp_path / "data"
    initialize(data_dir, dev=True, clock=clock)
    deployment = open_deployment(data_dir, clock=clock)
    try:
        kms = client(deployment, "kms")
        sm = client(deployment, "secretsmanager")
        custom = kms.create_key()["KeyMetadata"]["KeyId"]
        kms.disable_key(KeyId=kms.create_key()["KeyMetadata"]["KeyId"])
        sm.create_secret(Name="managed", SecretString="managed before")
        sm.create_secret(Name="custom", SecretString="custom before", KmsKeyId=custom)
    finally:
        deployment.close()
    return data_dir


def read(deployment: Deployment, name: str, stage: str = "AWSCURRENT") -> Any:
    sm = client(deployment, "secretsmanager")
    return sm.get_secret_value(SecretId=name, VersionStage=stage)["SecretString"]


def test_a_rekey_gives_every_key_a_new_generation_that_new_data_keys_use(
    data_dir: Path, clock: ManualClock
) -> None:
    old_key = providers.unseal_unattended(data_dir)
    store = Store(sqlite_url(data_dir))
    before = generations(store)
    store.dispose()
    assert len(before) == 3 and all(len(found) == 1 for found in before.values())

    counts = rekey(
        data_dir, old_key, providers.protect(providers.FileChoice()), ROOT_SEALED, clock=clock
    )
    assert counts[NEW_GENERATIONS] == 3

    deployment = open_deployment(data_dir, clock=clock)
    try:
        after = generations(deployment.store)
        assert after == {key_id: [(1, None), (2, REKEY)] for key_id in before}
        old_versions = version_generations(deployment.store)
        assert set(old_versions.values()) == {1}  # not re-encrypted yet: still readable
        assert read(deployment, "managed") == "managed before"
        assert read(deployment, "custom") == "custom before"
        sm = client(deployment, "secretsmanager")
        sm.put_secret_value(SecretId="managed", SecretString="managed after")
        sm.put_secret_value(SecretId="custom", SecretString="custom after")
        new_versions = {
            version: generation
            for version, generation in version_generations(deployment.store).items()
            if version not in old_versions
        }
        assert len(new_versions) == 2 and set(new_versions.values()) == {2}
        assert read(deployment, "custom") == "custom after"
        assert read(deployment, "managed", "AWSPREVIOUS") == "managed before"
    finally:
        deployment.close()


def test_reencryption_moves_every_data_key_to_the_newest_generation_once(
    data_dir: Path, clock: ManualClock
) -> None:
    root_key = providers.unseal_unattended(data_dir)
    store = Store(sqlite_url(data_dir))
    try:
        with store.write() as conn:
            assert add_generation_to_keys(conn, Barrier(root_key), 0, OPERATOR) == 3
        batches: list[int] = []
        outcome = reencrypt(store, Barrier(root_key), progress=batches.append, batch=1)
        assert (outcome.rewrapped, outcome.current) == (2, 0)
        assert batches == [1, 1]
        assert set(version_generations(store).values()) == {2}
        again = reencrypt(store, Barrier(root_key))
        assert (again.rewrapped, again.current) == (0, 2)
    finally:
        store.dispose()
    deployment = open_deployment(data_dir, clock=clock)
    try:
        assert read(deployment, "managed") == "managed before"
        assert read(deployment, "custom") == "custom before"
    finally:
        deployment.close()


def test_the_operator_rotates_only_the_aws_managed_keys(data_dir: Path) -> None:
    root_key = providers.unseal_unattended(data_dir)
    store = Store(sqlite_url(data_dir))
    try:
        with store.write() as conn:
            rotated = add_generation_to_keys(
                conn, Barrier(root_key), 0, OPERATOR, aws_managed_only=True
            )
        assert rotated == 1
        keys, material = schema.kms_keys, schema.kms_key_material
        with store.read() as conn:
            newest = dict(
                conn.execute(
                    select(keys.c.key_manager, func.max(material.c.generation))
                    .join(material, material.c.key_id == keys.c.key_id)
                    .group_by(keys.c.key_id, keys.c.key_manager)
                    .where(keys.c.key_manager == "AWS")
                ).all()
            )
            customer = conn.execute(
                select(func.max(material.c.generation))
                .join(keys, material.c.key_id == keys.c.key_id)
                .where(keys.c.key_manager == "CUSTOMER")
            ).scalar_one()
        assert newest == {"AWS": 2} and customer == 1
    finally:
        store.dispose()
