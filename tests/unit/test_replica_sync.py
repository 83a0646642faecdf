"""Replica sync writes only what changed: a version a replica already holds is never
decrypted and re-encrypted again (ciphertexts carry fresh nonces, so a re-encryption
would show as different bytes)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from strongroom.iam.credentials import admin_arn
from strongroom.secrets.service import SecretsManager
from strongroom.server.deployment import DEV_ACCOUNT, Deployment
from strongroom.store import schema
from strongroom.types import Caller

CALLER = Caller(DEV_ACCOUNT, "us-east-1", admin_arn(DEV_ACCOUNT))
REPLICA = Caller(DEV_ACCOUNT, "eu-west-1", admin_arn(DEV_ACCOUNT))


@pytest.fixture
def sm(deployment: Deployment) -> SecretsManager:
    return deployment.secrets


def replicated(sm: SecretsManager, name: str) -> dict[str, Any]:
    created = sm.create_secret(
        CALLER,
        {
            "Name": name,
            "SecretString": "first",
            "ClientRequestToken": str(uuid.uuid4()),
            "AddReplicaRegions": [{"Region": "eu-west-1"}],
        },
    )
    assert [s["Status"] for s in created["ReplicationStatus"]] == ["InSync"]
    return created


def replica_rows(deployment: Deployment, name: str) -> dict[str, bytes]:
    """version id -> ciphertext of the replica's versions, read from the store."""
    secrets, versions = schema.secrets, schema.secret_versions
    with deployment.store.read() as conn:
        rows = conn.execute(
            select(versions.c.version_id, versions.c.ciphertext)
            .join(secrets, secrets.c.id == versions.c.secret_id)
            .where(secrets.c.name == name, secrets.c.region == "eu-west-1")
        ).all()
    return {row.version_id: bytes(row.ciphertext) for row in rows}


def test_a_tag_change_reaches_the_replica_without_re_encrypting_it(
    deployment: Deployment, sm: SecretsManager
) -> None:
    replicated(sm, "app/tagged")
    before = replica_rows(deployment, "app/tagged")
    assert len(before) == 1
    sm.tag_resource(CALLER, {"SecretId": "app/tagged", "Tags": [{"Key": "team", "Value": "a"}]})
    sm.update_secret(CALLER, {"SecretId": "app/tagged", "Description": "now described"})
    assert replica_rows(deployment, "app/tagged") == before  # the same bytes: not re-sealed
    described = sm.describe_secret(REPLICA, {"SecretId": "app/tagged"})
    assert described["Tags"] == [{"Key": "team", "Value": "a"}]
    assert described["Description"] == "now described"
    assert sm.get_secret_value(REPLICA, {"SecretId": "app/tagged"})["SecretString"] == "first"


def test_a_new_version_seals_only_itself_into_the_replica(
    deployment: Deployment, sm: SecretsManager
) -> None:
    replicated(sm, "app/versioned")
    before = replica_rows(deployment, "app/versioned")
    put = sm.put_secret_value(
        CALLER,
        {"SecretId": "app/versioned", "SecretString": "second", "ClientRequestToken": "b" * 32},
    )
    after = replica_rows(deployment, "app/versioned")
    assert set(after) == {*before, put["VersionId"]}
    assert {k: after[k] for k in before} == before  # the older version kept as it was
    value = sm.get_secret_value(REPLICA, {"SecretId": "app/versioned"})
    assert value["SecretString"] == "second" and value["VersionId"] == put["VersionId"]
    previous = sm.get_secret_value(
        REPLICA, {"SecretId": "app/versioned", "VersionStage": "AWSPREVIOUS"}
    )
    assert previous["SecretString"] == "first"


def test_a_label_moved_on_the_primary_moves_on_the_replica_without_re_encrypting(
    deployment: Deployment, sm: SecretsManager
) -> None:
    created = replicated(sm, "app/labelled")
    sm.put_secret_value(
        CALLER,
        {"SecretId": "app/labelled", "SecretString": "second", "ClientRequestToken": "c" * 32},
    )
    before = replica_rows(deployment, "app/labelled")
    sm.update_secret_version_stage(
        CALLER,
        {
            "SecretId": "app/labelled",
            "VersionStage": "AWSCURRENT",
            "MoveToVersionId": created["VersionId"],
            "RemoveFromVersionId": "c" * 32,
        },
    )
    assert replica_rows(deployment, "app/labelled") == before
    primary = sm.describe_secret(CALLER, {"SecretId": "app/labelled"})["VersionIdsToStages"]
    replica = sm.describe_secret(REPLICA, {"SecretId": "app/labelled"})["VersionIdsToStages"]
    assert replica == primary and "AWSCURRENT" in primary[created["VersionId"]]
    assert sm.get_secret_value(REPLICA, {"SecretId": "app/labelled"})["SecretString"] == "first"
