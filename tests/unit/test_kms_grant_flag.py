"""The "this key has grants" flag (KeyRecord.grants): a check on a key without grants skips
the grant lookup, so the flag must follow every grant change at once, in the writing
transaction and in every other worker (the row cache's invalidation of kms_grants).

Two deployments on one data directory stand for two workers: grants are made and removed
through one, the grantee reads through the other's pipeline, as a real request does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from strongroom.clock import ManualClock
from strongroom.iam.credentials import admin_arn
from strongroom.keys import repository as repo
from strongroom.server.deployment import DEV_ACCOUNT, Deployment, open_deployment
from strongroom.types import Caller
from tests.inprocess import client, signing_at

KMS_NOT_ALLOWED = "Access to KMS is not allowed"
ADMIN = Caller(DEV_ACCOUNT, "us-east-1", admin_arn(DEV_ACCOUNT))


@pytest.fixture
def second(deployment: Deployment, clock: ManualClock) -> Iterator[Deployment]:
    """Another worker: the same data directory opened again."""
    opened = open_deployment(deployment.data_dir, clock=clock)
    yield opened
    opened.close()


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _refused_by_kms(sm: Any, secret_id: str) -> None:
    with pytest.raises(sm.exceptions.ClientError) as info:
        sm.get_secret_value(SecretId=secret_id)
    error = info.value.response["Error"]
    assert (error["Code"], error["Message"]) == ("AccessDeniedException", KMS_NOT_ALLOWED)


def _sealed_key(deployment: Deployment, secret_arn: str) -> repo.KeyRecord:
    """The secret's key as a read of its value finds it (the cached lookup by key id)."""
    with deployment.store.read() as conn:
        (row,) = conn.exec_driver_sql(
            "SELECT v.ciphertext FROM secret_versions v JOIN secrets s "
            "ON s.id = v.secret_id WHERE s.arn = ?",
            (secret_arn,),
        ).all()
        key = deployment.keys.sealed_key(conn, row[0])
    assert key is not None
    return key


def test_grants_made_and_removed_in_one_worker_reach_a_read_in_another(
    deployment: Deployment, second: Deployment, clock: ManualClock
) -> None:
    a, b = deployment, second
    with signing_at(clock):
        iam, kms, sm_a = (client(a, name) for name in ("iam", "kms", "secretsmanager"))
        admin_only = _policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": admin_arn(DEV_ACCOUNT)},
                "Action": "kms:*",
                "Resource": "*",
            }
        )
        key = kms.create_key(Policy=admin_only)["KeyMetadata"]["Arn"]
        secret = sm_a.create_secret(Name="granted", SecretString="s1", KmsKeyId=key)["ARN"]
        iam.create_user(UserName="gina")
        iam.put_user_policy(
            UserName="gina",
            PolicyName="read",
            PolicyDocument=_policy(
                {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}
            ),
        )
        access = iam.create_access_key(UserName="gina")["AccessKey"]
        gina_b = client(
            b, "secretsmanager", key=access["AccessKeyId"], secret=access["SecretAccessKey"]
        )
        user_arn = f"arn:aws:iam::{DEV_ACCOUNT}:user/gina"

        # No grant: refused, and the key is known to have none (so no lookup is made).
        _refused_by_kms(gina_b, secret)
        _refused_by_kms(gina_b, secret)  # again, from worker B's cache
        assert _sealed_key(b, secret).grants is False

        # A grant naming someone else: the flag is up, the decision unchanged.
        kms.create_grant(KeyId=key, GranteePrincipal=admin_arn(DEV_ACCOUNT), Operations=["Decrypt"])
        assert _sealed_key(b, secret).grants is True
        _refused_by_kms(gina_b, secret)

        # A grant to gina, made in worker A: worker B's very next read is allowed.
        granted = kms.create_grant(KeyId=key, GranteePrincipal=user_arn, Operations=["Decrypt"])
        assert gina_b.get_secret_value(SecretId=secret)["SecretString"] == "s1"
        assert gina_b.get_secret_value(SecretId=secret)["SecretString"] == "s1"

        # Retired: refused again at once; revoking the other leaves the key without grants.
        kms.retire_grant(GrantToken=granted["GrantToken"])
        _refused_by_kms(gina_b, secret)
        (other,) = kms.list_grants(KeyId=key)["Grants"]
        kms.revoke_grant(KeyId=key, GrantId=other["GrantId"])
        assert _sealed_key(b, secret).grants is False
        _refused_by_kms(gina_b, secret)

        # Granted and revoked again: allowed, then refused.
        granted = kms.create_grant(KeyId=key, GranteePrincipal=user_arn, Operations=["Decrypt"])
        assert gina_b.get_secret_value(SecretId=secret)["SecretString"] == "s1"
        kms.revoke_grant(KeyId=key, GrantId=granted["GrantId"])
        _refused_by_kms(gina_b, secret)


def test_inside_the_transaction_that_writes_a_grant_the_key_reads_as_having_one(
    deployment: Deployment,
) -> None:
    keys = deployment.keys
    key_id = keys.create_key(ADMIN, {})["KeyMetadata"]["KeyId"]
    blob = keys.encrypt(ADMIN, {"KeyId": key_id, "Plaintext": b"x"})["CiphertextBlob"]
    found = keys.blob_key(ADMIN, blob)  # cached as having none
    assert found is not None and found.grants is False
    batch = deployment.store.begin_write_batch()
    try:
        with batch.unit():
            found = keys.blob_key(ADMIN, blob)  # the batch reads through the cache
            assert found is not None and found.grants is False
            repo.insert_grant(batch.connection, _grant(key_id))
            found = keys.blob_key(ADMIN, blob)  # not any more: it wrote kms_grants
            assert found is not None and found.grants is True
    finally:
        batch.close()
    found = keys.blob_key(ADMIN, blob)  # rolled back: none again
    assert found is not None and found.grants is False


def _grant(key_id: str) -> repo.GrantRecord:
    return repo.GrantRecord(
        grant_id="f" * 64,
        key_id=key_id,
        account_id=DEV_ACCOUNT,
        region="us-east-1",
        name=None,
        grantee_principal=admin_arn(DEV_ACCOUNT),
        retiring_principal=None,
        issuing_account=f"arn:aws:iam::{DEV_ACCOUNT}:root",
        operations=("Decrypt",),
        constraints=None,
        created_ms=0,
    )
