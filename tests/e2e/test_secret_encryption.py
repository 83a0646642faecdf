"""Secrets Manager on top of the key service: which KMS key protects each secret version,
how AWS reports it, what happens when the key is unusable, and what an attacker with the
data directory gets: tampered or moved ciphertexts fail with DecryptionFailure, and no
plaintext (nor its base64 or hex) is anywhere on disk.

AWS sources:
- KmsKeyId takes a key id, key ARN, alias name or alias ARN (CreateSecret, UpdateSecret,
  ReplicaRegionType API reference); DescribeSecret returns it as given ("The key ID or
  alias ARN ... Secrets created using the console use an KMS key ID"; omitted for
  aws/secretsmanager) - hashicorp/terraform-provider-aws TestAccSecretsManagerSecret_kmsKeyID
  configures a key id in the non-computed kms_key_id and expects no diff after DescribeSecret;
- ListSecretVersionIds KmsKeyIds: ["DefaultEncryptionKey"] for aws/secretsmanager
  (spec file, LocalStack snapshot); for a customer key the key as the secret names it
  ("KmsKeyIds may be full ARNs, bare key ids, or aliases", mondoohq/mql#8927);
- UpdateSecret KmsKeyId re-encrypts the AWSCURRENT, AWSPENDING and AWSPREVIOUS versions
  only (UpdateSecret API reference);
- an unknown KMS key on CreateSecret is InvalidParameterException "The operation failed
  because of an invalid KMS key: ..." (hashicorp/terraform-provider-aws#13303,
  boto/boto3#1533); a key that cannot encrypt is EncryptionFailure "Secrets Manager can't
  encrypt the protected secret text using the provided KMS key. Check that the KMS key is
  available, enabled, and not in an invalid state." and one that cannot decrypt is
  DecryptionFailure "Secrets Manager can't decrypt the protected secret text using the
  provided KMS key." (error shape documentation in the service model).
"""

from __future__ import annotations

import base64
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.aws import Client, aws_error, body, described, new_key
from tests.rawhttp import token
from tests.server import ServerProcess

ACCOUNT = "000000000000"
REGION = "us-east-1"
REPLICA_REGION = "eu-west-3"
CURRENT, PREVIOUS, PENDING = "AWSCURRENT", "AWSPREVIOUS", "AWSPENDING"
DECRYPTION_FAILURE = {
    "Code": "DecryptionFailure",
    "Message": "Secrets Manager can't decrypt the protected secret text using the provided "
    "KMS key.",
}
ENCRYPTION_FAILURE_TEXT = (
    "Secrets Manager can't encrypt the protected secret text using the provided KMS key. "
    "Check that the KMS key is available, enabled, and not in an invalid state."
)
FORMS = ("KeyId", "Arn", "Alias", "AliasArn")


# Helpers -------------------------------------------------------------------------------


def versions(sm: Client, name: str) -> dict[str, dict[str, Any]]:
    listed = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]
    return {v["VersionId"]: v for v in listed}


def state(sm: Client, name: str) -> dict[str, Any]:
    """What a client can read about a secret, except access dates."""
    result = {"describe": described(sm, name), "versions": versions(sm, name)}
    for entry in result["versions"].values():
        entry.pop("LastAccessedDate", None)
    return result


# Which key, reported how ------------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
def test_create_secret_under_each_form_of_key_reference(
    sm: Client, kms: Client, key: dict[str, str], name: str, form: str
) -> None:
    ref = key[form]
    created = sm.create_secret(Name=name, SecretString="under a customer key", KmsKeyId=ref)
    described = sm.describe_secret(SecretId=name)
    assert described["KmsKeyId"] == ref  # as given, as AWS reports it
    listed = sm.list_secrets(Filters=[{"Key": "name", "Values": [name]}])["SecretList"]
    assert listed[0]["KmsKeyId"] == ref
    assert versions(sm, name)[created["VersionId"]]["KmsKeyIds"] == [ref]
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "under a customer key"
    # the value really is under that key: disabling it makes the secret unreadable
    kms.disable_key(KeyId=key["KeyId"])
    assert aws_error(sm.get_secret_value, SecretId=name) == DECRYPTION_FAILURE
    kms.enable_key(KeyId=key["KeyId"])
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "under a customer key"


def test_the_default_key_is_not_reported(sm: Client, name: str) -> None:
    created = sm.create_secret(Name=name, SecretBinary=b"\x00default\xff")
    assert "KmsKeyId" not in sm.describe_secret(SecretId=name)
    assert versions(sm, name)[created["VersionId"]]["KmsKeyIds"] == ["DefaultEncryptionKey"]
    assert sm.get_secret_value(SecretId=name)["SecretBinary"] == b"\x00default\xff"


@pytest.mark.parametrize("form", FORMS)
def test_update_secret_to_each_form_of_key_reference(
    sm: Client, kms: Client, key: dict[str, str], name: str, form: str
) -> None:
    ref = key[form]
    created = sm.create_secret(Name=name, SecretString="rekeyed")
    updated = sm.update_secret(SecretId=name, KmsKeyId=ref)
    assert body(updated) == {"ARN": created["ARN"], "Name": name}  # no new version
    assert sm.describe_secret(SecretId=name)["KmsKeyId"] == ref
    # Re-encrypted, and still under the default key it had (issue 23 item 1).
    assert versions(sm, name)[created["VersionId"]]["KmsKeyIds"] == [ref, "DefaultEncryptionKey"]
    put = sm.put_secret_value(SecretId=name, SecretString="second")
    assert versions(sm, name)[put["VersionId"]]["KmsKeyIds"] == [ref]
    kms.disable_key(KeyId=key["KeyId"])
    assert aws_error(sm.get_secret_value, SecretId=name) == DECRYPTION_FAILURE
    kms.enable_key(KeyId=key["KeyId"])
    assert sm.get_secret_value(SecretId=name, VersionStage=PREVIOUS)["SecretString"] == "rekeyed"


@pytest.mark.parametrize("form", FORMS)
def test_replica_encrypted_under_its_regions_key(
    server: ServerProcess, sm: Client, name: str, form: str
) -> None:
    kms_eu = server.client("kms", region=REPLICA_REGION)
    sm_eu = server.client(region=REPLICA_REGION)
    replica_key = new_key(kms_eu)
    ref = replica_key[form]
    sm.create_secret(Name=name, SecretString="replicated")
    result = sm.replicate_secret_to_regions(
        SecretId=name, AddReplicaRegions=[{"Region": REPLICA_REGION, "KmsKeyId": ref}]
    )
    [status] = result["ReplicationStatus"]
    assert (status["Region"], status["KmsKeyId"], status["Status"]) == (
        REPLICA_REGION,
        ref,
        "InSync",
    )
    assert sm_eu.get_secret_value(SecretId=name)["SecretString"] == "replicated"
    # the replica's versions are under the replica region's key, the primary's are not
    kms_eu.disable_key(KeyId=replica_key["KeyId"])
    assert aws_error(sm_eu.get_secret_value, SecretId=name) == DECRYPTION_FAILURE
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "replicated"
    kms_eu.enable_key(KeyId=replica_key["KeyId"])
    assert sm_eu.get_secret_value(SecretId=name)["SecretString"] == "replicated"


def test_create_secret_with_replica_key_at_creation(
    server: ServerProcess, sm: Client, name: str
) -> None:
    kms_eu = server.client("kms", region=REPLICA_REGION)
    replica_key = new_key(kms_eu)
    created = sm.create_secret(
        Name=name,
        SecretString="at creation",
        AddReplicaRegions=[{"Region": REPLICA_REGION, "KmsKeyId": replica_key["Alias"]}],
    )
    assert created["ReplicationStatus"][0]["KmsKeyId"] == replica_key["Alias"]
    sm_eu = server.client(region=REPLICA_REGION)
    assert sm_eu.get_secret_value(SecretId=name)["SecretString"] == "at creation"
    kms_eu.schedule_key_deletion(KeyId=replica_key["KeyId"], PendingWindowInDays=7)
    assert aws_error(sm_eu.get_secret_value, SecretId=name) == DECRYPTION_FAILURE
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "at creation"


# Keys that cannot be used ------------------------------------------------------------------


def test_unknown_key_on_create_secret_is_invalid_parameter(
    sm: Client, kms: Client, name: str
) -> None:
    missing = str(uuid.uuid4())
    for ref, named in (
        (missing, f"Key 'arn:aws:kms:{REGION}:{ACCOUNT}:key/{missing}' does not exist"),
        (
            f"alias/none-{missing}",
            f"Alias arn:aws:kms:{REGION}:{ACCOUNT}:alias/none-{missing} is not found.",
        ),
    ):
        for value in ({"SecretString": "v"}, {}):
            error = aws_error(sm.create_secret, Name=name, KmsKeyId=ref, **value)
            assert error == {
                "Code": "InvalidParameterException",
                "Message": f"The operation failed because of an invalid KMS key: {named}",
            }
            assert aws_error(sm.describe_secret, SecretId=name)["Code"] == (
                "ResourceNotFoundException"
            )


def test_disabled_or_doomed_key_on_create_secret_is_encryption_failure(
    sm: Client, kms: Client, key: dict[str, str], name: str
) -> None:
    kms.disable_key(KeyId=key["KeyId"])
    error = aws_error(sm.create_secret, Name=name, SecretString="v", KmsKeyId=key["Alias"])
    assert error["Code"] == "EncryptionFailure"
    assert error["Message"].startswith(ENCRYPTION_FAILURE_TEXT)
    assert aws_error(sm.describe_secret, SecretId=name)["Code"] == "ResourceNotFoundException"
    kms.enable_key(KeyId=key["KeyId"])
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    error = aws_error(sm.create_secret, Name=name, SecretBinary=b"v", KmsKeyId=key["Arn"])
    assert error["Code"] == "EncryptionFailure"
    assert aws_error(sm.describe_secret, SecretId=name)["Code"] == "ResourceNotFoundException"


def test_put_secret_value_under_an_unusable_key_changes_nothing(
    sm: Client, kms: Client, key: dict[str, str], name: str
) -> None:
    sm.create_secret(Name=name, SecretString="kept", KmsKeyId=key["KeyId"])
    before = state(sm, name)
    kms.disable_key(KeyId=key["KeyId"])
    error = aws_error(
        sm.put_secret_value, SecretId=name, SecretString="lost", ClientRequestToken=token()
    )
    assert error["Code"] == "EncryptionFailure"
    assert error["Message"].startswith(ENCRYPTION_FAILURE_TEXT)
    assert "lost" not in error["Message"]
    error = aws_error(
        sm.update_secret, SecretId=name, SecretString="lost too", ClientRequestToken=token()
    )
    assert error["Code"] == "EncryptionFailure"
    assert state(sm, name) == before
    # metadata is readable while the key is off; the value is not
    assert sm.describe_secret(SecretId=name)["KmsKeyId"] == key["KeyId"]
    assert aws_error(sm.get_secret_value, SecretId=name) == DECRYPTION_FAILURE
    batch = sm.batch_get_secret_value(SecretIdList=[name])
    assert batch["SecretValues"] == []
    assert batch["Errors"] == [
        {
            "SecretId": name,
            "ErrorCode": "DecryptionFailure",
            "Message": DECRYPTION_FAILURE["Message"],
        }
    ]
    kms.enable_key(KeyId=key["KeyId"])
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    error = aws_error(sm.put_secret_value, SecretId=name, SecretString="lost")
    assert error["Code"] == "EncryptionFailure"
    assert aws_error(sm.get_secret_value, SecretId=name) == DECRYPTION_FAILURE
    kms.cancel_key_deletion(KeyId=key["KeyId"])  # comes back disabled
    assert aws_error(sm.get_secret_value, SecretId=name) == DECRYPTION_FAILURE
    kms.enable_key(KeyId=key["KeyId"])
    assert state(sm, name)["versions"] == before["versions"]
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "kept"


def test_update_secret_to_an_unusable_key_changes_nothing(
    sm: Client, kms: Client, key: dict[str, str], name: str
) -> None:
    sm.create_secret(Name=name, SecretString="stays")
    before = state(sm, name)
    missing = str(uuid.uuid4())
    error = aws_error(sm.update_secret, SecretId=name, KmsKeyId=missing)
    assert error["Code"] == "InvalidParameterException"
    assert error["Message"].startswith("The operation failed because of an invalid KMS key: ")
    assert state(sm, name) == before
    kms.disable_key(KeyId=key["KeyId"])
    error = aws_error(sm.update_secret, SecretId=name, KmsKeyId=key["Alias"])
    assert error["Code"] == "EncryptionFailure"
    error = aws_error(
        sm.update_secret, SecretId=name, KmsKeyId=key["Alias"], Description="not applied either"
    )
    assert error["Code"] == "EncryptionFailure"
    assert state(sm, name) == before
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "stays"


# Changing the key re-encrypts the labelled versions ---------------------------------------


def test_update_secret_kms_key_re_encrypts_current_pending_and_previous(
    sm: Client, kms: Client, name: str
) -> None:
    # Issue 23 item 1 ("Change the encryption key for a secret", user guide): AWSCURRENT,
    # AWSPENDING and AWSPREVIOUS are re-encrypted under the new key and stay decryptable
    # with the previous one; KmsKeyIds shows both.
    old, new = new_key(kms), new_key(kms)
    v1 = sm.create_secret(Name=name, SecretString="one", KmsKeyId=old["Arn"])["VersionId"]
    v2 = sm.put_secret_value(SecretId=name, SecretString="two")["VersionId"]
    v3 = sm.put_secret_value(SecretId=name, SecretString="three")["VersionId"]
    v4 = sm.put_secret_value(SecretId=name, SecretString="four", VersionStages=[PENDING])[
        "VersionId"
    ]
    v5 = sm.put_secret_value(SecretId=name, SecretString="five", VersionStages=["CUSTOM"])[
        "VersionId"
    ]
    listed = versions(sm, name)
    assert "VersionStages" not in listed[v1]  # deprecated
    assert [listed[v]["VersionStages"] for v in (v2, v3, v4, v5)] == [
        [PREVIOUS],
        [CURRENT],
        [PENDING],
        ["CUSTOM"],
    ]
    assert all(entry["KmsKeyIds"] == [old["Arn"]] for entry in listed.values())

    sm.update_secret(SecretId=name, KmsKeyId=new["Alias"])
    assert sm.describe_secret(SecretId=name)["KmsKeyId"] == new["Alias"]
    listed = versions(sm, name)
    assert {v: listed[v]["KmsKeyIds"] for v in (v1, v2, v3, v4, v5)} == {
        v1: [old["Arn"]],
        v2: [new["Alias"], old["Arn"]],
        v3: [new["Alias"], old["Arn"]],
        v4: [new["Alias"], old["Arn"]],
        v5: [old["Arn"]],
    }
    labelled = {
        "AWSPREVIOUS": ({"VersionStage": PREVIOUS}, "two"),
        "AWSCURRENT": ({}, "three"),
        "AWSPENDING": ({"VersionStage": PENDING}, "four"),
        "CUSTOM": ({"VersionStage": "CUSTOM"}, "five"),
    }

    # With the old key disabled, the re-encrypted versions read under the new key; the
    # versions only the old key sealed do not.
    kms.disable_key(KeyId=old["KeyId"])
    for label in ("AWSPREVIOUS", "AWSCURRENT", "AWSPENDING"):
        how, value = labelled[label]
        assert sm.get_secret_value(SecretId=name, **how)["SecretString"] == value, label
    for stale in (v1, v5):
        assert aws_error(sm.get_secret_value, SecretId=name, VersionId=stale) == (
            DECRYPTION_FAILURE
        )
    kms.enable_key(KeyId=old["KeyId"])

    # With the new key disabled, every labelled version still reads (under the old key).
    kms.disable_key(KeyId=new["KeyId"])
    for label, (how, value) in labelled.items():
        assert sm.get_secret_value(SecretId=name, **how)["SecretString"] == value, label
    assert sm.get_secret_value(SecretId=name, VersionId=v1)["SecretString"] == "one"
    # With both disabled, nothing does.
    kms.disable_key(KeyId=old["KeyId"])
    assert aws_error(sm.get_secret_value, SecretId=name) == DECRYPTION_FAILURE
    kms.enable_key(KeyId=old["KeyId"])
    kms.enable_key(KeyId=new["KeyId"])


def test_empty_kms_key_id_re_encrypts_under_the_default_key(
    sm: Client, kms: Client, key: dict[str, str], name: str
) -> None:
    first = sm.create_secret(Name=name, SecretString="a", KmsKeyId=key["KeyId"])["VersionId"]
    second = sm.put_secret_value(SecretId=name, SecretString="b")["VersionId"]
    sm.update_secret(SecretId=name, KmsKeyId="")
    assert "KmsKeyId" not in sm.describe_secret(SecretId=name)
    listed = versions(sm, name)
    assert listed[first]["KmsKeyIds"] == listed[second]["KmsKeyIds"]
    assert listed[first]["KmsKeyIds"] == ["DefaultEncryptionKey", key["KeyId"]]
    kms.disable_key(KeyId=key["KeyId"])
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "b"
    assert sm.get_secret_value(SecretId=name, VersionStage=PREVIOUS)["SecretString"] == "a"
    kms.enable_key(KeyId=key["KeyId"])


def test_same_key_named_differently_is_still_a_change_of_reference(
    sm: Client, kms: Client, key: dict[str, str], name: str
) -> None:
    created = sm.create_secret(Name=name, SecretString="same", KmsKeyId=key["KeyId"])
    sm.update_secret(SecretId=name, KmsKeyId=key["AliasArn"])
    assert sm.describe_secret(SecretId=name)["KmsKeyId"] == key["AliasArn"]
    assert versions(sm, name)[created["VersionId"]]["KmsKeyIds"] == [
        key["AliasArn"],
        key["KeyId"],
    ]
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "same"


# Tampering with and moving stored ciphertexts ----------------------------------------------


class DataDir:
    """A persistent server and the SQLite file under it, edited while it is stopped."""

    def __init__(self, start: Callable[..., ServerProcess], data: Path) -> None:
        self._start = start
        self.data = data
        self.server = start("--dev", "--data-dir", str(data))

    def restart_after(self, edit: Callable[[sqlite3.Connection], None]) -> None:
        self.server.stop()
        with sqlite3.connect(self.data / "strongroom.db") as db:
            edit(db)
        db.close()
        self.server = self._start("--dev", "--data-dir", str(self.data))

    def sm(self) -> Client:
        return self.server.client()

    def kms(self) -> Client:
        return self.server.client("kms")


def secret_id(db: sqlite3.Connection, name: str) -> int:
    row = db.execute("SELECT id FROM secrets WHERE name = ? AND region = ?", (name, REGION))
    found: int = row.fetchone()[0]
    return found


def ciphertext(db: sqlite3.Connection, name: str, version_id: str) -> bytes:
    row = db.execute(
        "SELECT ciphertext FROM secret_versions WHERE secret_id = ? AND version_id = ?",
        (secret_id(db, name), version_id),
    ).fetchone()
    found: bytes = row[0]
    return found


def set_ciphertext(db: sqlite3.Connection, name: str, version_id: str, value: bytes) -> None:
    changed = db.execute(
        "UPDATE secret_versions SET ciphertext = ? WHERE secret_id = ? AND version_id = ?",
        (value, secret_id(db, name), version_id),
    ).rowcount
    assert changed == 1


@pytest.fixture
def data_dir(new_server: Callable[..., ServerProcess], tmp_path: Path) -> Iterator[DataDir]:
    yield DataDir(new_server, tmp_path / "data")


def test_tampered_or_moved_ciphertexts_fail_with_decryption_failure(data_dir: DataDir) -> None:
    sm, kms = data_dir.sm(), data_dir.kms()
    cmk = new_key(kms)
    values = {
        "flip": "flip-me",
        "truncate": "truncate-me",
        "donor": "donor-value",
        "victim": "victim-value",
        "versions": "first-value",
        "bystander": "bystander-value",
        "under-cmk": "cmk-value",
    }
    made = {}
    for label, value in values.items():
        extra = {"KmsKeyId": cmk["Alias"]} if label == "under-cmk" else {}
        made[label] = sm.create_secret(Name=f"tamper/{label}", SecretString=value, **extra)
    first_version = made["versions"]["VersionId"]
    made["versions"] = sm.put_secret_value(SecretId="tamper/versions", SecretString="second-value")
    sm.create_secret(Name="tamper/binary", SecretBinary=b"\x00\x01binary\xfe\xff")
    blob = kms.encrypt(KeyId=cmk["KeyId"], Plaintext=b"kms direct")["CiphertextBlob"]

    def vid(label: str) -> str:
        found: str = made[label]["VersionId"]
        return found

    def edit(db: sqlite3.Connection) -> None:
        flipped = bytearray(ciphertext(db, "tamper/flip", vid("flip")))
        flipped[len(flipped) // 2] ^= 0x01
        set_ciphertext(db, "tamper/flip", vid("flip"), bytes(flipped))
        whole = ciphertext(db, "tamper/truncate", vid("truncate"))
        set_ciphertext(db, "tamper/truncate", vid("truncate"), whole[:1])
        # a valid ciphertext of another secret, copied over this one's
        donor = ciphertext(db, "tamper/donor", vid("donor"))
        set_ciphertext(db, "tamper/victim", vid("victim"), donor)
        # a valid ciphertext of another version of the same secret
        older = ciphertext(db, "tamper/versions", first_version)
        set_ciphertext(db, "tamper/versions", vid("versions"), older)

    data_dir.restart_after(edit)
    sm, kms = data_dir.sm(), data_dir.kms()
    for label in ("flip", "truncate", "victim", "versions"):
        assert aws_error(sm.get_secret_value, SecretId=f"tamper/{label}") == DECRYPTION_FAILURE
    batch = sm.batch_get_secret_value(SecretIdList=["tamper/victim", "tamper/bystander"])
    assert [v["Name"] for v in batch["SecretValues"]] == ["tamper/bystander"]
    assert [e["ErrorCode"] for e in batch["Errors"]] == ["DecryptionFailure"]
    # the rest is untouched and readable
    for label in ("donor", "bystander", "under-cmk"):
        assert sm.get_secret_value(SecretId=f"tamper/{label}")["SecretString"] == values[label]
    # the version whose ciphertext was copied still opens where it belongs
    older = sm.get_secret_value(SecretId="tamper/versions", VersionId=first_version)
    assert older["SecretString"] == "first-value"
    assert sm.get_secret_value(SecretId="tamper/binary")["SecretBinary"] == (
        b"\x00\x01binary\xfe\xff"
    )
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"kms direct"
    # a failed read changes nothing: describe and versions still answer
    assert sm.describe_secret(SecretId="tamper/flip")["Name"] == "tamper/flip"
    # a new value for a tampered secret is stored and read normally
    sm.put_secret_value(SecretId="tamper/flip", SecretString="fresh")
    assert sm.get_secret_value(SecretId="tamper/flip")["SecretString"] == "fresh"


def test_tampered_key_material_fails_without_crashing(data_dir: DataDir) -> None:
    sm, kms = data_dir.sm(), data_dir.kms()
    cmk, spare = new_key(kms), new_key(kms)
    sm.create_secret(Name="material/victim", SecretString="victim", KmsKeyId=cmk["KeyId"])
    sm.create_secret(Name="material/other", SecretString="other", KmsKeyId=spare["KeyId"])
    sm.create_secret(Name="material/default", SecretString="default")
    blob = kms.encrypt(KeyId=cmk["KeyId"], Plaintext=b"direct")["CiphertextBlob"]
    before = kms.describe_key(KeyId=cmk["KeyId"])["KeyMetadata"]

    def edit(db: sqlite3.Connection) -> None:
        (sealed,) = db.execute(
            "SELECT sealed FROM kms_key_material WHERE key_id = ?", (cmk["KeyId"],)
        ).fetchone()
        altered = bytearray(sealed)
        altered[-5] ^= 0x80
        changed = db.execute(
            "UPDATE kms_key_material SET sealed = ? WHERE key_id = ?",
            (bytes(altered), cmk["KeyId"]),
        ).rowcount
        assert changed == 1

    data_dir.restart_after(edit)
    sm, kms = data_dir.sm(), data_dir.kms()
    assert aws_error(sm.get_secret_value, SecretId="material/victim") == DECRYPTION_FAILURE
    error = aws_error(sm.put_secret_value, SecretId="material/victim", SecretString="new")
    assert error["Code"] == "EncryptionFailure"
    assert aws_error(kms.decrypt, CiphertextBlob=blob) == {
        "Code": "InvalidCiphertextException",
        "Message": "",
    }
    # encrypting under altered material is KMS's internal error, not a crash
    aws_error(
        kms.encrypt, KeyId=cmk["KeyId"], Plaintext=b"x", code="KMSInternalException", status=500
    )
    assert kms.describe_key(KeyId=cmk["KeyId"])["KeyMetadata"] == before
    assert sm.get_secret_value(SecretId="material/other")["SecretString"] == "other"
    assert sm.get_secret_value(SecretId="material/default")["SecretString"] == "default"
    assert "Traceback" not in data_dir.server.log()


# Nothing in the clear on disk --------------------------------------------------------------


def forms(value: bytes) -> dict[str, bytes]:
    """``value`` and the encodings that could carry it, at any byte alignment."""
    found = {"raw": value, "hex": value.hex().encode(), "HEX": value.hex().upper().encode()}
    for shift in range(3):
        tail = value[shift:]
        for name, encode in (("base64", base64.b64encode), ("base64url", base64.urlsafe_b64encode)):
            encoded = encode(tail)
            found[f"{name}+{shift}"] = encoded[: len(encoded) - 4]  # drop the padding block
    return found


def scan(data: Path, values: dict[str, bytes]) -> tuple[list[str], list[str]]:
    leaks, scanned = [], []
    for path in sorted(data.rglob("*")):
        if not path.is_file():
            continue
        scanned.append(str(path.relative_to(data)))
        blob = path.read_bytes()
        for label, value in values.items():
            for form, encoded in forms(value).items():
                if encoded in blob:
                    leaks.append(f"{path.name}: {label} as {form}")
    return leaks, scanned


def test_no_plaintext_of_kms_protected_values_anywhere_in_the_data_directory(
    data_dir: DataDir,
) -> None:
    sm, kms = data_dir.sm(), data_dir.kms()
    cmk, other = new_key(kms), new_key(kms)
    marker = uuid.uuid4().hex
    text = f"kms-protected-string-{marker}-é✓"
    binary = b"\x00\xffkms-protected-binary-" + marker.encode() + os.urandom(48)
    kms_plain = b"kms-encrypt-plaintext-" + marker.encode() + os.urandom(32)
    sm.create_secret(Name="scan/string", SecretString=text, KmsKeyId=cmk["Alias"])
    sm.create_secret(Name="scan/binary", SecretBinary=binary, KmsKeyId=cmk["AliasArn"])
    sm.put_secret_value(SecretId="scan/string", SecretString=text + "-v2")
    sm.update_secret(SecretId="scan/binary", KmsKeyId=other["KeyId"])  # re-encryption
    sm.replicate_secret_to_regions(
        SecretId="scan/string", AddReplicaRegions=[{"Region": REPLICA_REGION}]
    )
    encrypted = kms.encrypt(
        KeyId=cmk["KeyId"], Plaintext=kms_plain, EncryptionContext={"purpose": "scan"}
    )
    moved = kms.re_encrypt(
        CiphertextBlob=encrypted["CiphertextBlob"],
        SourceEncryptionContext={"purpose": "scan"},
        DestinationKeyId=other["KeyId"],
    )
    data_key = kms.generate_data_key(KeyId=cmk["KeyId"], KeySpec="AES_256")["Plaintext"]
    data_key_128 = kms.generate_data_key(KeyId=other["Arn"], NumberOfBytes=64)["Plaintext"]
    opened = kms.decrypt(CiphertextBlob=moved["CiphertextBlob"])
    assert opened["Plaintext"] == kms_plain
    assert sm.get_secret_value(SecretId="scan/binary")["SecretBinary"] == binary
    assert sm.get_secret_value(SecretId="scan/string")["SecretString"] == text + "-v2"
    values = {
        "string": text.encode(),
        "string v2": (text + "-v2").encode(),
        "string (json escaped)": text.encode("ascii", "backslashreplace"),
        "binary": binary,
        "kms plaintext": kms_plain,
        "data key": data_key,
        "data key 64": data_key_128,
    }
    running, scanned = scan(data_dir.data, values)
    assert running == []
    assert "strongroom.db" in scanned and "strongroom.db-wal" in scanned
    assert any(path.startswith("audit") for path in scanned), scanned
    data_dir.server.stop()
    stopped, scanned = scan(data_dir.data, values)
    assert stopped == []
    assert "strongroom.db" in scanned
