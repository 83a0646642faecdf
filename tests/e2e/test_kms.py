"""The KMS-compatible key service (TrentService), end to end with the AWS CLI and boto3
against a real server.

AWS sources for the texts asserted here:
- NotFoundException "Key '<arn>' does not exist" and "Alias <alias arn> is not found.",
  DisabledException "<arn> is disabled.", KMSInvalidStateException "<arn> is pending
  deletion." (real AWS errors quoted in boto/botocore#2107, cloudposse/docs#152,
  fugue/credstash#86, segmentio/chamber#355);
- ValidationException "PendingWindowInDays must be between 7 and 30"
  (Skyscanner/kms-issuer#8);
- AccessDeniedException "User: <principal> is not authorized to perform: kms:<Action> on
  resource: <key arn> because no resource-based policy allows the kms:<Action> action"
  for changes to AWS managed keys, whose key policy grants only Describe*/Get*/List*
  (aws-ia/terraform-aws-eks-blueprints#485, elastic/cloudbeat#1749);
- NotAuthorizedException for aliases under the reserved alias/aws/ prefix
  (localstack/localstack#4604; KMS developer guide "alias-create");
- DescribeKey of a predefined AWS alias creates its AWS managed key (DescribeKey KeyId
  documentation);
- a cancelled deletion leaves the key Disabled; InvalidCiphertextException (empty
  message) for a wrong encryption context; IncorrectKeyException "The key ID in the
  request does not identify a CMK that can perform this operation." (KMS API reference).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from strongroom.keys.api import OPERATIONS
from tests.aws import Client, aws_error, body, unique_alias
from tests.server import ServerProcess

ACCOUNT = "000000000000"
REGION = "us-east-1"
ADMIN = f"arn:aws:iam::{ACCOUNT}:user/admin"
BIN = Path(sys.executable).parent


# Helpers -------------------------------------------------------------------------------


def key_arn(key_id: str, region: str = REGION) -> str:
    return f"arn:aws:kms:{region}:{ACCOUNT}:key/{key_id}"


def alias_arn(alias: str, region: str = REGION) -> str:
    return f"arn:aws:kms:{region}:{ACCOUNT}:{alias}"


def metadata(kms: Client, key_id: str) -> dict[str, Any]:
    described: dict[str, Any] = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    return described


def all_pages(call: Callable[..., Any], member: str, **kwargs: Any) -> list[Any]:
    items: list[Any] = []
    marker = None
    while True:
        page = call(**kwargs, **({"Marker": marker} if marker else {}))
        items.extend(page[member])
        if not page["Truncated"]:
            assert "NextMarker" not in page
            return items
        marker = page["NextMarker"]


def references(key: dict[str, str]) -> list[str]:
    """The four ways to name a key: key id, key ARN, alias name, alias ARN."""
    return [key["KeyId"], key["Arn"], key["Alias"], alias_arn(key["Alias"])]


# The operation list ----------------------------------------------------------------------


def test_the_facade_serves_every_operation_the_issue_lists() -> None:
    wanted = {
        "CreateKey",
        "DescribeKey",
        "ListKeys",
        "CreateAlias",
        "UpdateAlias",
        "DeleteAlias",
        "ListAliases",
        "EnableKey",
        "DisableKey",
        "ScheduleKeyDeletion",
        "CancelKeyDeletion",
        "EnableKeyRotation",
        "DisableKeyRotation",
        "GetKeyRotationStatus",
        "RotateKeyOnDemand",
        "Encrypt",
        "Decrypt",
        "ReEncrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "GenerateRandom",
        "GetKeyPolicy",
        "PutKeyPolicy",
        "TagResource",
        "UntagResource",
        "ListResourceTags",
        # issue 22: grants, and the smaller operations of item 13
        "CreateGrant",
        "ListGrants",
        "ListRetirableGrants",
        "RetireGrant",
        "RevokeGrant",
        "ListKeyPolicies",
        "ListKeyRotations",
        "UpdateKeyDescription",
    }
    assert set(OPERATIONS) == wanted


def test_an_operation_outside_the_subset_is_refused(kms: Client) -> None:
    error = aws_error(kms.get_public_key, KeyId=str(uuid.uuid4()))
    assert error["Code"] == "UnknownOperationException"


# The AWS CLI -------------------------------------------------------------------------------


def aws(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "STRONGROOM_"))}
    env.update(
        AWS_ENDPOINT_URL=server.url,
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_RETRY_MODE="standard",
        AWS_MAX_ATTEMPTS="1",
    )
    return subprocess.run(
        [str(BIN / "aws"), *args, "--output", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def aws_json(server: ServerProcess, *args: str) -> dict[str, Any]:
    done = aws(server, *args)
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout) if done.stdout.strip() else {}
    return out


def test_cli_round_trips_and_a_disabled_key_blocks_its_secrets(
    server: ServerProcess, tmp_path: Path
) -> None:
    created = aws_json(server, "kms", "create-key", "--description", "cli key")["KeyMetadata"]
    assert created["KeyState"] == "Enabled" and created["KeyManager"] == "CUSTOMER"
    key_id = created["KeyId"]
    alias = unique_alias()
    assert (
        aws_json(server, "kms", "create-alias", "--alias-name", alias, "--target-key-id", key_id)
        == {}
    )

    # encrypt / decrypt with an encryption context, plaintext from a binary file
    plaintext = os.urandom(200) + b"strongroom-cli-plaintext"
    (tmp_path / "plain.bin").write_bytes(plaintext)
    encrypted = aws_json(
        server,
        "kms",
        "encrypt",
        "--key-id",
        alias,
        "--plaintext",
        f"fileb://{tmp_path / 'plain.bin'}",
        "--encryption-context",
        "purpose=e2e,team=kms",
    )
    assert encrypted["KeyId"] == key_arn(key_id)
    assert encrypted["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    blob = base64.b64decode(encrypted["CiphertextBlob"])
    assert plaintext not in blob
    (tmp_path / "blob.bin").write_bytes(blob)
    decrypt = ("kms", "decrypt", "--ciphertext-blob", f"fileb://{tmp_path / 'blob.bin'}")
    decrypted = aws_json(server, *decrypt, "--encryption-context", "team=kms,purpose=e2e")
    assert base64.b64decode(decrypted["Plaintext"]) == plaintext
    assert decrypted["KeyId"] == key_arn(key_id)

    # the wrong encryption context is refused
    refused = aws(server, *decrypt, "--encryption-context", "purpose=other,team=kms")
    assert refused.returncode != 0
    assert "(InvalidCiphertextException)" in refused.stderr
    refused = aws(server, *decrypt)
    assert "(InvalidCiphertextException)" in refused.stderr

    # generate-data-key: the plaintext key and its encrypted copy agree
    data_key = aws_json(
        server, "kms", "generate-data-key", "--key-id", key_id, "--key-spec", "AES_256"
    )
    plain_key = base64.b64decode(data_key["Plaintext"])
    assert len(plain_key) == 32
    (tmp_path / "dk.bin").write_bytes(base64.b64decode(data_key["CiphertextBlob"]))
    opened = aws_json(
        server, "kms", "decrypt", "--ciphertext-blob", f"fileb://{tmp_path / 'dk.bin'}"
    )
    assert base64.b64decode(opened["Plaintext"]) == plain_key

    # a secret under the key; disable-key makes it unreadable, enable-key brings it back
    name = f"cli/{uuid.uuid4().hex[:12]}"
    aws_json(
        server,
        "secretsmanager",
        "create-secret",
        "--name",
        name,
        "--secret-string",
        "cli-secret-value",
        "--kms-key-id",
        alias,
    )
    assert aws_json(server, "kms", "disable-key", "--key-id", key_id) == {}
    failed = aws(server, "secretsmanager", "get-secret-value", "--secret-id", name)
    assert failed.returncode != 0
    assert "(DecryptionFailure)" in failed.stderr
    assert "Secrets Manager can't decrypt the protected secret text" in failed.stderr
    assert "cli-secret-value" not in failed.stderr
    failed = aws(
        server,
        "kms",
        "encrypt",
        "--key-id",
        key_id,
        "--plaintext",
        f"fileb://{tmp_path / 'plain.bin'}",
    )
    assert "(DisabledException) when calling the Encrypt operation" in failed.stderr
    assert f": {key_arn(key_id)} is disabled.\n" in failed.stderr
    assert aws_json(server, "kms", "enable-key", "--key-id", key_id) == {}
    read = aws_json(server, "secretsmanager", "get-secret-value", "--secret-id", name)
    assert read["SecretString"] == "cli-secret-value"


# Keys and how they are named ------------------------------------------------------------


def test_create_key_and_describe_key_fields_as_aws(kms: Client) -> None:
    created = kms.create_key(Description="fields", Tags=[{"TagKey": "t", "TagValue": "v"}])
    meta = created["KeyMetadata"]
    uuid.UUID(meta["KeyId"])
    assert set(meta) == {
        "AWSAccountId",
        "KeyId",
        "Arn",
        "CreationDate",
        "Enabled",
        "Description",
        "KeyUsage",
        "KeyState",
        "Origin",
        "KeyManager",
        "CustomerMasterKeySpec",
        "KeySpec",
        "EncryptionAlgorithms",
        "MultiRegion",
        "CurrentKeyMaterialId",
    }
    assert meta["AWSAccountId"] == ACCOUNT
    assert meta["Arn"] == key_arn(meta["KeyId"])
    assert (meta["Enabled"], meta["KeyState"]) == (True, "Enabled")
    assert meta["Description"] == "fields"
    assert (meta["KeyUsage"], meta["Origin"], meta["KeyManager"]) == (
        "ENCRYPT_DECRYPT",
        "AWS_KMS",
        "CUSTOMER",
    )
    assert meta["KeySpec"] == meta["CustomerMasterKeySpec"] == "SYMMETRIC_DEFAULT"
    assert meta["EncryptionAlgorithms"] == ["SYMMETRIC_DEFAULT"]
    assert meta["MultiRegion"] is False
    assert abs(meta["CreationDate"] - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    assert metadata(kms, meta["KeyId"]) == meta
    plain = kms.create_key()["KeyMetadata"]
    assert plain["Description"] == ""


def test_a_key_is_named_by_id_arn_alias_name_and_alias_arn(
    kms: Client, key: dict[str, str]
) -> None:
    blobs = []
    for ref in references(key):
        assert metadata(kms, ref)["KeyId"] == key["KeyId"]
        encrypted = kms.encrypt(KeyId=ref, Plaintext=b"named")
        assert encrypted["KeyId"] == key["Arn"]
        blobs.append(encrypted["CiphertextBlob"])
        assert kms.get_key_rotation_status(KeyId=ref)["KeyId"] == key["Arn"]
        assert kms.list_resource_tags(KeyId=ref)["Tags"] == []
    for blob in blobs:
        for ref in references(key):
            assert kms.decrypt(CiphertextBlob=blob, KeyId=ref)["Plaintext"] == b"named"


def test_unknown_keys_and_aliases_are_not_found(kms: Client) -> None:
    missing = str(uuid.uuid4())
    for ref in (missing, key_arn(missing)):
        for call, extra in (
            (kms.describe_key, {}),
            (kms.encrypt, {"Plaintext": b"x"}),
            (kms.disable_key, {}),
            (kms.get_key_policy, {}),
        ):
            error = aws_error(call, KeyId=ref, **extra)
            assert error == {
                "Code": "NotFoundException",
                "Message": f"Key '{key_arn(missing)}' does not exist",
            }
    alias = unique_alias()
    for ref in (alias, alias_arn(alias)):
        error = aws_error(kms.describe_key, KeyId=ref)
        assert error == {
            "Code": "NotFoundException",
            "Message": f"Alias {alias_arn(alias)} is not found.",
        }
    assert aws_error(kms.describe_key, KeyId="not-a-key-id")["Code"] == "NotFoundException"
    # a key of another region is not visible here
    other = kms.create_key()["KeyMetadata"]
    error = aws_error(kms.describe_key, KeyId=other["Arn"].replace(REGION, "us-west-2"))
    assert error["Code"] == "NotFoundException"


# Encrypt, Decrypt, ReEncrypt, GenerateDataKey, GenerateRandom ----------------------------


def test_encryption_context_is_enforced(kms: Client, key: dict[str, str]) -> None:
    context = {"SecretARN": "arn:aws:secretsmanager:x", "SecretVersionId": "v1"}
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"bound", EncryptionContext=context)[
        "CiphertextBlob"
    ]
    reordered = dict(reversed(list(context.items())))
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=reordered)["Plaintext"] == b"bound"
    for wrong in (
        {},
        {"SecretARN": "arn:aws:secretsmanager:x"},
        {**context, "SecretVersionId": "v2"},
        {**context, "extra": "1"},
    ):
        kwargs = {"EncryptionContext": wrong} if wrong else {}
        error = aws_error(kms.decrypt, CiphertextBlob=blob, **kwargs)
        assert error == {"Code": "InvalidCiphertextException", "Message": ""}
        error = aws_error(
            kms.re_encrypt,
            CiphertextBlob=blob,
            DestinationKeyId=key["KeyId"],
            **({"SourceEncryptionContext": wrong} if wrong else {}),
        )
        assert error["Code"] == "InvalidCiphertextException"
    # without a context at encryption, any context at decryption is wrong
    bare = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"bare")["CiphertextBlob"]
    error = aws_error(kms.decrypt, CiphertextBlob=bare, EncryptionContext={"a": "b"})
    assert error["Code"] == "InvalidCiphertextException"
    assert kms.decrypt(CiphertextBlob=bare)["Plaintext"] == b"bare"


def test_altered_or_foreign_ciphertexts_are_invalid(kms: Client, key: dict[str, str]) -> None:
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"intact")["CiphertextBlob"]
    for position in (len(blob) - 1, len(blob) // 2, 45):
        altered = bytearray(blob)
        altered[position] ^= 0x01
        error = aws_error(kms.decrypt, CiphertextBlob=bytes(altered))
        assert error["Code"] == "InvalidCiphertextException", position
    for junk in (b"x", os.urandom(64), blob[:20]):
        assert aws_error(kms.decrypt, CiphertextBlob=junk)["Code"] == "InvalidCiphertextException"
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"intact"


def test_decrypt_with_another_key_named_is_incorrect_key(kms: Client, key: dict[str, str]) -> None:
    other = kms.create_key()["KeyMetadata"]
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"mine")["CiphertextBlob"]
    message = "The key ID in the request does not identify a CMK that can perform this operation."
    error = aws_error(kms.decrypt, CiphertextBlob=blob, KeyId=other["KeyId"])
    assert error == {"Code": "IncorrectKeyException", "Message": message}
    error = aws_error(
        kms.re_encrypt,
        CiphertextBlob=blob,
        SourceKeyId=other["Arn"],
        DestinationKeyId=other["KeyId"],
    )
    assert error == {"Code": "IncorrectKeyException", "Message": message}


def test_re_encrypt_moves_a_ciphertext_to_another_key(kms: Client, key: dict[str, str]) -> None:
    other = kms.create_key()["KeyMetadata"]
    blob = kms.encrypt(KeyId=key["Alias"], Plaintext=b"moving", EncryptionContext={"from": "a"})[
        "CiphertextBlob"
    ]
    moved = kms.re_encrypt(
        CiphertextBlob=blob,
        SourceEncryptionContext={"from": "a"},
        SourceKeyId=key["KeyId"],
        DestinationKeyId=other["KeyId"],
        DestinationEncryptionContext={"to": "b"},
    )
    assert moved["SourceKeyId"] == key["Arn"]
    assert moved["KeyId"] == other["Arn"]
    assert (
        moved["SourceEncryptionAlgorithm"]
        == moved["DestinationEncryptionAlgorithm"]
        == ("SYMMETRIC_DEFAULT")
    )
    assert moved["DestinationKeyMaterialId"] == other["CurrentKeyMaterialId"]
    opened = kms.decrypt(CiphertextBlob=moved["CiphertextBlob"], EncryptionContext={"to": "b"})
    assert (opened["Plaintext"], opened["KeyId"]) == (b"moving", other["Arn"])
    error = aws_error(
        kms.decrypt,
        CiphertextBlob=moved["CiphertextBlob"],
        KeyId=key["KeyId"],
        EncryptionContext={"to": "b"},
    )
    assert error["Code"] == "IncorrectKeyException"


def test_generate_data_key_sizes_and_round_trips(kms: Client, key: dict[str, str]) -> None:
    for spec, size in (
        ({"KeySpec": "AES_256"}, 32),
        ({"KeySpec": "AES_128"}, 16),
        ({"NumberOfBytes": 1}, 1),
        ({"NumberOfBytes": 1024}, 1024),
    ):
        made = kms.generate_data_key(KeyId=key["Alias"], EncryptionContext={"k": "v"}, **spec)
        assert len(made["Plaintext"]) == size
        assert made["KeyId"] == key["Arn"]
        assert made["KeyMaterialId"] == metadata(kms, key["KeyId"])["CurrentKeyMaterialId"]
        opened = kms.decrypt(CiphertextBlob=made["CiphertextBlob"], EncryptionContext={"k": "v"})
        assert opened["Plaintext"] == made["Plaintext"]
    bare = kms.generate_data_key_without_plaintext(KeyId=key["KeyId"], KeySpec="AES_256")
    assert "Plaintext" not in bare
    assert len(kms.decrypt(CiphertextBlob=bare["CiphertextBlob"])["Plaintext"]) == 32
    one = kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")["Plaintext"]
    two = kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")["Plaintext"]
    assert one != two
    for bad in ({}, {"KeySpec": "AES_256", "NumberOfBytes": 32}):
        assert aws_error(kms.generate_data_key, KeyId=key["KeyId"], **bad)["Code"] == (
            "ValidationException"
        )


def test_generate_random(kms: Client) -> None:
    for size in (1, 32, 1024):
        assert len(kms.generate_random(NumberOfBytes=size)["Plaintext"]) == size
    assert kms.generate_random(NumberOfBytes=32) != kms.generate_random(NumberOfBytes=32)


# Key states: disable, enable, schedule and cancel deletion --------------------------------


def test_a_disabled_key_refuses_cryptography_until_enabled(
    kms: Client, key: dict[str, str]
) -> None:
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"before")["CiphertextBlob"]
    assert body(kms.disable_key(KeyId=key["Alias"])) == {}
    meta = metadata(kms, key["KeyId"])
    assert (meta["Enabled"], meta["KeyState"]) == (False, "Disabled")
    expected = {"Code": "DisabledException", "Message": f"{key['Arn']} is disabled."}
    assert aws_error(kms.encrypt, KeyId=key["KeyId"], Plaintext=b"x") == expected
    assert aws_error(kms.decrypt, CiphertextBlob=blob) == expected
    assert aws_error(kms.generate_data_key, KeyId=key["Alias"], KeySpec="AES_256") == expected
    assert (
        aws_error(kms.generate_data_key_without_plaintext, KeyId=key["Arn"], KeySpec="AES_256")
        == expected
    )
    assert aws_error(kms.re_encrypt, CiphertextBlob=blob, DestinationKeyId=key["KeyId"]) == (
        expected
    )
    assert aws_error(kms.rotate_key_on_demand, KeyId=key["KeyId"]) == expected
    assert aws_error(kms.enable_key_rotation, KeyId=key["KeyId"]) == expected
    assert metadata(kms, key["KeyId"]) == meta  # nothing changed
    assert body(kms.disable_key(KeyId=key["KeyId"])) == {}  # idempotent
    assert body(kms.enable_key(KeyId=key["Arn"])) == {}
    assert metadata(kms, key["KeyId"])["KeyState"] == "Enabled"
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"before"


def test_schedule_and_cancel_key_deletion(kms: Client, key: dict[str, str]) -> None:
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"doomed")["CiphertextBlob"]
    before = metadata(kms, key["KeyId"])
    for window in (1, 6, 31, 365):
        error = aws_error(kms.schedule_key_deletion, KeyId=key["KeyId"], PendingWindowInDays=window)
        assert error == {
            "Code": "ValidationException",
            "Message": "PendingWindowInDays must be between 7 and 30",
        }
    assert metadata(kms, key["KeyId"]) == before

    scheduled = kms.schedule_key_deletion(KeyId=key["Alias"], PendingWindowInDays=7)
    assert set(body(scheduled)) == {"KeyId", "DeletionDate", "KeyState", "PendingWindowInDays"}
    assert (scheduled["KeyId"], scheduled["KeyState"], scheduled["PendingWindowInDays"]) == (
        key["Arn"],
        "PendingDeletion",
        7,
    )
    expected_date = dt.datetime.now(dt.UTC) + dt.timedelta(days=7)
    assert abs(scheduled["DeletionDate"] - expected_date) < dt.timedelta(minutes=5)
    meta = metadata(kms, key["KeyId"])
    assert (meta["KeyState"], meta["Enabled"]) == ("PendingDeletion", False)
    assert meta["DeletionDate"] == scheduled["DeletionDate"]
    assert meta["PendingDeletionWindowInDays"] == 7

    pending = {"Code": "KMSInvalidStateException", "Message": f"{key['Arn']} is pending deletion."}
    assert aws_error(kms.encrypt, KeyId=key["KeyId"], Plaintext=b"x") == pending
    assert aws_error(kms.decrypt, CiphertextBlob=blob) == pending
    assert aws_error(kms.generate_data_key, KeyId=key["KeyId"], KeySpec="AES_256") == pending
    assert aws_error(kms.enable_key, KeyId=key["KeyId"]) == pending
    assert aws_error(kms.disable_key, KeyId=key["KeyId"]) == pending
    assert aws_error(kms.schedule_key_deletion, KeyId=key["KeyId"]) == pending
    assert (
        aws_error(kms.tag_resource, KeyId=key["KeyId"], Tags=[{"TagKey": "a", "TagValue": "b"}])
        == pending
    )
    # As on AWS, GetKeyRotationStatus answers for a key pending deletion.
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is False
    assert (
        aws_error(kms.create_alias, AliasName=unique_alias(), TargetKeyId=key["KeyId"]) == pending
    )
    assert metadata(kms, key["KeyId"]) == meta  # nothing changed

    cancelled = kms.cancel_key_deletion(KeyId=key["KeyId"])
    assert body(cancelled) == {"KeyId": key["Arn"]}
    meta = metadata(kms, key["KeyId"])
    assert (meta["KeyState"], meta["Enabled"]) == ("Disabled", False)  # as AWS: disabled
    assert "DeletionDate" not in meta and "PendingDeletionWindowInDays" not in meta
    assert aws_error(kms.cancel_key_deletion, KeyId=key["KeyId"])["Code"] == (
        "KMSInvalidStateException"
    )
    kms.enable_key(KeyId=key["KeyId"])
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"doomed"
    default = kms.schedule_key_deletion(KeyId=key["KeyId"])
    assert default["PendingWindowInDays"] == 30
    kms.cancel_key_deletion(KeyId=key["KeyId"])


# Rotation --------------------------------------------------------------------------------


def test_rotation_status_enable_and_disable(kms: Client, key: dict[str, str]) -> None:
    status = body(kms.get_key_rotation_status(KeyId=key["KeyId"]))
    assert status == {"KeyRotationEnabled": False, "KeyId": key["Arn"]}
    assert body(kms.enable_key_rotation(KeyId=key["Alias"])) == {}
    status = kms.get_key_rotation_status(KeyId=key["KeyId"])
    assert (status["KeyRotationEnabled"], status["RotationPeriodInDays"]) == (True, 365)
    expected = dt.datetime.now(dt.UTC) + dt.timedelta(days=365)
    assert abs(status["NextRotationDate"] - expected) < dt.timedelta(minutes=5)
    kms.enable_key_rotation(KeyId=key["KeyId"], RotationPeriodInDays=90)
    status = kms.get_key_rotation_status(KeyId=key["KeyId"])
    assert status["RotationPeriodInDays"] == 90
    expected = dt.datetime.now(dt.UTC) + dt.timedelta(days=90)
    assert abs(status["NextRotationDate"] - expected) < dt.timedelta(minutes=5)
    assert body(kms.disable_key_rotation(KeyId=key["Arn"])) == {}
    status = body(kms.get_key_rotation_status(KeyId=key["KeyId"]))
    assert status == {"KeyRotationEnabled": False, "KeyId": key["Arn"]}


def test_rotate_on_demand_keeps_old_ciphertexts_and_uses_new_material(
    kms: Client, key: dict[str, str]
) -> None:
    first = metadata(kms, key["KeyId"])["CurrentKeyMaterialId"]
    old = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"old", EncryptionContext={"c": "1"})
    old_data_key = kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")
    assert old_data_key["KeyMaterialId"] == first
    assert body(kms.rotate_key_on_demand(KeyId=key["Alias"])) == {"KeyId": key["Arn"]}
    second = metadata(kms, key["KeyId"])["CurrentKeyMaterialId"]
    assert second != first
    opened = kms.decrypt(CiphertextBlob=old["CiphertextBlob"], EncryptionContext={"c": "1"})
    assert (opened["Plaintext"], opened["KeyMaterialId"]) == (b"old", first)
    opened = kms.decrypt(CiphertextBlob=old_data_key["CiphertextBlob"])
    assert opened["Plaintext"] == old_data_key["Plaintext"]
    new = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"new")
    assert new["CiphertextBlob"] != old["CiphertextBlob"]
    opened = kms.decrypt(CiphertextBlob=new["CiphertextBlob"])
    assert (opened["Plaintext"], opened["KeyMaterialId"]) == (b"new", second)
    assert kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")["KeyMaterialId"] == (second)
    moved = kms.re_encrypt(
        CiphertextBlob=old["CiphertextBlob"],
        DestinationKeyId=key["KeyId"],
        SourceEncryptionContext={"c": "1"},
    )
    assert (moved["SourceKeyMaterialId"], moved["DestinationKeyMaterialId"]) == (first, second)
    kms.rotate_key_on_demand(KeyId=key["KeyId"])
    third = metadata(kms, key["KeyId"])["CurrentKeyMaterialId"]
    assert third not in (first, second)
    for blob, plain in ((old["CiphertextBlob"], b"old"), (new["CiphertextBlob"], b"new")):
        context = {"c": "1"} if plain == b"old" else {}
        assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=context)["Plaintext"] == plain
    # rotation does not turn automatic rotation on
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is False


# Aliases -------------------------------------------------------------------------------------


def aliases_of(kms: Client, key_id: str) -> list[str]:
    return [a["AliasName"] for a in all_pages(kms.list_aliases, "Aliases", KeyId=key_id)]


def test_alias_lifecycle(kms: Client, key: dict[str, str]) -> None:
    listed = kms.list_aliases(KeyId=key["KeyId"])["Aliases"]
    assert len(listed) == 1
    entry = listed[0]
    assert set(entry) == {"AliasName", "AliasArn", "TargetKeyId", "CreationDate", "LastUpdatedDate"}
    assert (entry["AliasName"], entry["AliasArn"], entry["TargetKeyId"]) == (
        key["Alias"],
        alias_arn(key["Alias"]),
        key["KeyId"],
    )

    other = kms.create_key()["KeyMetadata"]
    second = unique_alias()
    assert body(kms.create_alias(AliasName=second, TargetKeyId=key["Arn"])) == {}
    assert sorted(aliases_of(kms, key["KeyId"])) == sorted([key["Alias"], second])

    # UpdateAlias points the alias at another key: new encryptions use it
    assert body(kms.update_alias(AliasName=second, TargetKeyId=other["KeyId"])) == {}
    assert aliases_of(kms, key["KeyId"]) == [key["Alias"]]
    assert aliases_of(kms, other["KeyId"]) == [second]
    assert kms.encrypt(KeyId=second, Plaintext=b"x")["KeyId"] == other["Arn"]
    assert metadata(kms, alias_arn(second))["KeyId"] == other["KeyId"]

    assert body(kms.delete_alias(AliasName=second)) == {}
    assert aliases_of(kms, other["KeyId"]) == []
    error = aws_error(kms.delete_alias, AliasName=second)
    assert error == {
        "Code": "NotFoundException",
        "Message": f"Alias {alias_arn(second)} is not found.",
    }
    error = aws_error(kms.update_alias, AliasName=second, TargetKeyId=key["KeyId"])
    assert error["Code"] == "NotFoundException"
    assert aws_error(kms.encrypt, KeyId=second, Plaintext=b"x")["Code"] == "NotFoundException"
    # the key itself is untouched by its aliases
    assert metadata(kms, other["KeyId"])["KeyState"] == "Enabled"


def test_alias_errors_change_nothing(kms: Client, key: dict[str, str]) -> None:
    before = all_pages(kms.list_aliases, "Aliases")
    error = aws_error(kms.create_alias, AliasName=key["Alias"], TargetKeyId=key["KeyId"])
    assert error == {
        "Code": "AlreadyExistsException",
        "Message": f"An alias with the name {alias_arn(key['Alias'])} already exists",
    }
    for reserved in ("alias/aws/mine", "alias/aws/secretsmanager"):
        error = aws_error(kms.create_alias, AliasName=reserved, TargetKeyId=key["KeyId"])
        assert error["Code"] == "NotAuthorizedException"
    error = aws_error(kms.create_alias, AliasName="no-prefix", TargetKeyId=key["KeyId"])
    assert error["Code"] == "ValidationException"
    error = aws_error(kms.create_alias, AliasName=unique_alias(), TargetKeyId=key["Alias"])
    assert error["Code"] == "ValidationException"
    missing = str(uuid.uuid4())
    error = aws_error(kms.create_alias, AliasName=unique_alias(), TargetKeyId=missing)
    assert error == {
        "Code": "NotFoundException",
        "Message": f"Key '{key_arn(missing)}' does not exist",
    }
    error = aws_error(kms.update_alias, AliasName=key["Alias"], TargetKeyId=missing)
    assert error["Code"] == "NotFoundException"
    assert all_pages(kms.list_aliases, "Aliases") == before


# Pagination -------------------------------------------------------------------------------


def test_list_keys_pages_with_limit_and_marker(kms: Client) -> None:
    mine = [kms.create_key()["KeyMetadata"] for _ in range(5)]
    everything = all_pages(kms.list_keys, "Keys", Limit=1000)
    assert {"KeyId": mine[0]["KeyId"], "KeyArn": mine[0]["Arn"]} in everything
    paged = all_pages(kms.list_keys, "Keys", Limit=2)
    assert paged == everything  # same order, nothing lost or repeated
    first = kms.list_keys(Limit=2)
    assert len(first["Keys"]) == 2 and first["Truncated"] is True
    assert set(body(first)) == {"Keys", "Truncated", "NextMarker"}
    marker = first["NextMarker"]
    middle = len(marker) // 2
    altered = marker[:middle] + ("A" if marker[middle] != "A" else "B") + marker[middle + 1 :]
    for bad in ("garbage", altered):
        error = aws_error(kms.list_keys, Limit=2, Marker=bad)
        assert error["Code"] == "InvalidMarkerException"
    # a marker from another listing is not accepted here
    for _ in range(2):
        kms.create_alias(AliasName=unique_alias(), TargetKeyId=mine[0]["KeyId"])
    aliases = kms.list_aliases(Limit=1)
    assert aliases["Truncated"] is True
    error = aws_error(kms.list_keys, Marker=aliases["NextMarker"])
    assert error["Code"] == "InvalidMarkerException"


def test_list_aliases_and_resource_tags_page(kms: Client, key: dict[str, str]) -> None:
    for _ in range(3):
        kms.create_alias(AliasName=unique_alias(), TargetKeyId=key["KeyId"])
    everything = all_pages(kms.list_aliases, "Aliases", KeyId=key["KeyId"])
    assert len(everything) == 4
    assert all_pages(kms.list_aliases, "Aliases", KeyId=key["KeyId"], Limit=1) == everything
    page = kms.list_aliases(KeyId=key["KeyId"], Limit=3)
    assert (len(page["Aliases"]), page["Truncated"]) == (3, True)

    tags = [{"TagKey": f"key-{i:02d}", "TagValue": f"value-{i}"} for i in range(7)]
    assert body(kms.tag_resource(KeyId=key["KeyId"], Tags=tags)) == {}
    assert all_pages(kms.list_resource_tags, "Tags", KeyId=key["KeyId"]) == tags
    assert all_pages(kms.list_resource_tags, "Tags", KeyId=key["Alias"], Limit=3) == tags
    first = kms.list_resource_tags(KeyId=key["KeyId"], Limit=3)
    assert first["Truncated"] is True
    other = kms.create_key(Tags=tags)["KeyMetadata"]
    error = aws_error(kms.list_resource_tags, KeyId=other["KeyId"], Marker=first["NextMarker"])
    assert error["Code"] == "InvalidMarkerException"
    error = aws_error(kms.list_resource_tags, KeyId=key["KeyId"], Marker="AAAA")
    assert error["Code"] == "InvalidMarkerException"


# Tags and policies -------------------------------------------------------------------------


def test_tag_and_untag(kms: Client, key: dict[str, str]) -> None:
    kms.tag_resource(
        KeyId=key["KeyId"],
        Tags=[{"TagKey": "a", "TagValue": "1"}, {"TagKey": "b", "TagValue": "2"}],
    )
    kms.tag_resource(KeyId=key["Arn"], Tags=[{"TagKey": "a", "TagValue": "3"}])
    assert kms.list_resource_tags(KeyId=key["KeyId"])["Tags"] == [
        {"TagKey": "a", "TagValue": "3"},
        {"TagKey": "b", "TagValue": "2"},
    ]
    assert body(kms.untag_resource(KeyId=key["Alias"], TagKeys=["a", "missing"])) == {}
    assert kms.list_resource_tags(KeyId=key["KeyId"])["Tags"] == [{"TagKey": "b", "TagValue": "2"}]


def test_default_key_policy_and_put_key_policy(kms: Client, key: dict[str, str]) -> None:
    got = kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")
    assert got["PolicyName"] == "default"
    policy = json.loads(got["Policy"])
    assert policy["Version"] == "2012-10-17"
    assert policy["Statement"] == [
        {
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    ]
    assert kms.get_key_policy(KeyId=key["Alias"])["Policy"] == got["Policy"]
    # the default policy (a Sid with spaces, as AWS writes it) can be put back as it is
    assert body(kms.put_key_policy(KeyId=key["KeyId"], Policy=got["Policy"])) == {}
    assert kms.get_key_policy(KeyId=key["KeyId"])["Policy"] == got["Policy"]

    for malformed in (
        "{not json",
        json.dumps({"Version": "2012-10-17"}),
        json.dumps({"Statement": [{"Effect": "Maybe", "Action": "kms:*", "Resource": "*"}]}),
    ):
        error = aws_error(
            kms.put_key_policy, KeyId=key["KeyId"], PolicyName="default", Policy=malformed
        )
        assert error["Code"] == "MalformedPolicyDocumentException", malformed
        assert kms.get_key_policy(KeyId=key["KeyId"])["Policy"] == got["Policy"]

    mine = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "Root",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ],
        }
    )
    assert body(kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=mine)) == {}
    assert kms.get_key_policy(KeyId=key["KeyId"])["Policy"] == mine
    created = kms.create_key(Policy=mine)["KeyMetadata"]
    assert kms.get_key_policy(KeyId=created["KeyId"])["Policy"] == mine
    error = aws_error(kms.create_key, Policy="{broken")
    assert error["Code"] == "MalformedPolicyDocumentException"


# The AWS managed key aws/secretsmanager -----------------------------------------------------


@pytest.fixture
def fresh_region() -> Iterator[str]:
    """A region no other test touches, so its aws/secretsmanager key starts absent."""
    yield "ca-central-1"


def test_managed_key_appears_with_the_first_secret_and_cannot_be_changed(
    server: ServerProcess, fresh_region: str
) -> None:
    kms = server.client("kms", region=fresh_region)
    sm = server.client(region=fresh_region)
    assert kms.list_keys()["Keys"] == []
    # As on AWS, the predefined alias is listed before first use, without a target.
    assert {
        "AliasName": "alias/aws/secretsmanager",
        "AliasArn": alias_arn("alias/aws/secretsmanager", fresh_region),
    } in kms.list_aliases()["Aliases"]

    sm.create_secret(Name=f"managed/{uuid.uuid4().hex[:8]}", SecretString="first")
    keys = kms.list_keys()["Keys"]
    assert len(keys) == 1
    managed = metadata(kms, "alias/aws/secretsmanager")
    assert managed["KeyId"] == keys[0]["KeyId"]
    assert managed["Arn"] == key_arn(managed["KeyId"], fresh_region)
    assert (managed["KeyManager"], managed["KeyState"], managed["Enabled"]) == (
        "AWS",
        "Enabled",
        True,
    )
    assert managed["Description"] == (
        "Default key that protects my Secrets Manager data when no other key is defined"
    )
    assert metadata(kms, alias_arn("alias/aws/secretsmanager", fresh_region)) == managed
    [alias] = [
        a for a in kms.list_aliases()["Aliases"] if a["AliasName"] == "alias/aws/secretsmanager"
    ]
    assert alias["TargetKeyId"] == managed["KeyId"]
    assert alias["AliasArn"] == alias_arn("alias/aws/secretsmanager", fresh_region)
    # a second secret reuses it
    sm.create_secret(Name=f"managed/{uuid.uuid4().hex[:8]}", SecretString="second")
    assert len(kms.list_keys()["Keys"]) == 1
    # AWS managed keys rotate every year; their policy and status can be read
    status = kms.get_key_rotation_status(KeyId=managed["KeyId"])
    assert (status["KeyRotationEnabled"], status["RotationPeriodInDays"]) == (True, 365)
    policy = json.loads(kms.get_key_policy(KeyId=managed["KeyId"])["Policy"])
    assert any("secretsmanager" in json.dumps(s.get("Condition", {})) for s in policy["Statement"])

    def denied(action: str) -> dict[str, str]:
        return {
            "Code": "AccessDeniedException",
            "Message": f"User: {ADMIN} is not authorized to perform: kms:{action} on resource: "
            f"{managed['Arn']} because no resource-based policy allows the kms:{action} action",
        }

    ref = managed["KeyId"]
    assert aws_error(kms.disable_key, KeyId=ref) == denied("DisableKey")
    assert aws_error(kms.enable_key, KeyId="alias/aws/secretsmanager") == denied("EnableKey")
    assert aws_error(kms.schedule_key_deletion, KeyId=ref, PendingWindowInDays=7) == denied(
        "ScheduleKeyDeletion"
    )
    assert aws_error(kms.cancel_key_deletion, KeyId=ref) == denied("CancelKeyDeletion")
    assert aws_error(kms.disable_key_rotation, KeyId=ref) == denied("DisableKeyRotation")
    assert aws_error(kms.enable_key_rotation, KeyId=ref) == denied("EnableKeyRotation")
    assert aws_error(kms.rotate_key_on_demand, KeyId=ref) == denied("RotateKeyOnDemand")
    assert aws_error(
        kms.put_key_policy, KeyId=ref, PolicyName="default", Policy=json.dumps(policy)
    ) == denied("PutKeyPolicy")
    assert aws_error(
        kms.tag_resource, KeyId=ref, Tags=[{"TagKey": "a", "TagValue": "b"}]
    ) == denied("TagResource")
    assert aws_error(kms.untag_resource, KeyId=ref, TagKeys=["a"]) == denied("UntagResource")
    assert aws_error(kms.create_alias, AliasName=unique_alias(), TargetKeyId=ref) == denied(
        "CreateAlias"
    )
    assert aws_error(kms.encrypt, KeyId=ref, Plaintext=b"x") == denied("Encrypt")
    assert aws_error(
        kms.generate_data_key, KeyId="alias/aws/secretsmanager", KeySpec="AES_256"
    ) == denied("GenerateDataKey")
    # its alias is reserved: it cannot be re-pointed or deleted
    own = kms.create_key()["KeyMetadata"]
    error = aws_error(
        kms.update_alias, AliasName="alias/aws/secretsmanager", TargetKeyId=own["KeyId"]
    )
    assert error["Code"] == "NotAuthorizedException"
    error = aws_error(kms.delete_alias, AliasName="alias/aws/secretsmanager")
    assert error["Code"] == "NotAuthorizedException"
    # nothing changed: the key, its alias, and the secrets it protects
    assert metadata(kms, "alias/aws/secretsmanager") == managed
    assert kms.list_resource_tags(KeyId=ref)["Tags"] == []
    assert kms.get_key_rotation_status(KeyId=ref)["KeyRotationEnabled"] is True
    names = [s["Name"] for s in sm.list_secrets()["SecretList"]]
    assert sorted(sm.get_secret_value(SecretId=n)["SecretString"] for n in names) == [
        "first",
        "second",
    ]


def test_describing_the_predefined_alias_creates_the_managed_key(server: ServerProcess) -> None:
    kms = server.client("kms", region="eu-north-1")
    assert kms.list_keys()["Keys"] == []
    described = metadata(kms, "alias/aws/secretsmanager")
    assert described["KeyManager"] == "AWS"
    assert kms.list_keys()["Keys"] == [{"KeyId": described["KeyId"], "KeyArn": described["Arn"]}]
    assert metadata(kms, alias_arn("alias/aws/secretsmanager", "eu-north-1")) == described
    # the secrets of the region then use that very key
    sm = server.client(region="eu-north-1")
    sm.create_secret(Name=f"predefined/{uuid.uuid4().hex[:8]}", SecretString="v")
    assert len(kms.list_keys()["Keys"]) == 1
