"""The end of a recovery window (spec 3.6), at domain level: a real data directory and
SQLite store, with time moved by a ManualClock instead of waited for."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from strongroom.clock import ManualClock
from strongroom.iam.credentials import admin_arn
from strongroom.protocol.errors import ServiceError
from strongroom.secrets.service import SecretsManager
from strongroom.server.deployment import DEV_ACCOUNT, Deployment, initialize, open_deployment
from strongroom.store import schema
from strongroom.types import Caller

CALLER = Caller(DEV_ACCOUNT, "us-east-1", admin_arn(DEV_ACCOUNT))
NOT_FOUND = "Secrets Manager can't find the specified secret."


@pytest.fixture
def sm(deployment: Deployment) -> SecretsManager:
    return deployment.secrets


def create(sm: SecretsManager, name: str, value: str = "v1") -> dict[str, Any]:
    return sm.create_secret(
        CALLER, {"Name": name, "SecretString": value, "ClientRequestToken": str(uuid.uuid4())}
    )


def put(sm: SecretsManager, name: str, value: str) -> dict[str, Any]:
    return sm.put_secret_value(
        CALLER, {"SecretId": name, "SecretString": value, "ClientRequestToken": str(uuid.uuid4())}
    )


def rows_by_id(deployment: Deployment, secret_id: int) -> dict[str, int]:
    """How many rows the secret with row id ``secret_id`` has in each secrets table."""
    with deployment.store.read() as conn:
        return {
            table.name: conn.execute(
                select(func.count()).where(
                    (table.c.id if table is schema.secrets else table.c.secret_id) == secret_id
                )
            ).scalar_one()
            for table in (schema.secrets, schema.secret_versions, schema.version_stages)
        }


def secret_row_id(deployment: Deployment, arn: str) -> int:
    with deployment.store.read() as conn:
        query = select(schema.secrets.c.id).where(schema.secrets.c.arn == arn)
        return int(conn.execute(query).scalar_one())


def not_found(call: Any) -> None:
    with pytest.raises(ServiceError) as raised:
        call()
    assert raised.value.code == "ResourceNotFoundException"
    assert raised.value.message == NOT_FOUND
    assert raised.value.status == 400


def test_secret_is_kept_until_its_window_ends_then_purged(
    deployment: Deployment, sm: SecretsManager, clock: ManualClock
) -> None:
    created = create(sm, "app/db")
    put(sm, "app/db", "v2")
    row_id = secret_row_id(deployment, created["ARN"])
    assert rows_by_id(deployment, row_id) == {
        "secrets": 1,
        "secret_versions": 2,
        "version_stages": 2,
    }

    deleted = sm.delete_secret(CALLER, {"SecretId": "app/db", "RecoveryWindowInDays": 7})
    assert deleted["DeletionDate"] == clock.now() + timedelta(days=7)

    clock.advance(timedelta(days=6, hours=23))
    assert sm.purge_expired() == 0
    described = sm.describe_secret(CALLER, {"SecretId": "app/db"})
    assert described["DeletedDate"] is not None
    assert rows_by_id(deployment, row_id) == {
        "secrets": 1,
        "secret_versions": 2,
        "version_stages": 2,
    }

    clock.advance(timedelta(hours=1))  # exactly seven days after the deletion
    assert sm.purge_expired() == 1
    not_found(lambda: sm.describe_secret(CALLER, {"SecretId": "app/db"}))
    not_found(lambda: sm.describe_secret(CALLER, {"SecretId": created["ARN"]}))
    not_found(lambda: sm.get_secret_value(CALLER, {"SecretId": "app/db"}))
    not_found(lambda: sm.restore_secret(CALLER, {"SecretId": "app/db"}))
    assert rows_by_id(deployment, row_id) == {
        "secrets": 0,
        "secret_versions": 0,
        "version_stages": 0,
    }
    assert sm.list_secrets(CALLER, {"IncludePlannedDeletion": True})["SecretList"] == []
    assert sm.purge_expired() == 0

    # The name is free again, for a new secret with a new ARN.
    again = create(sm, "app/db", "fresh")
    assert again["ARN"] != created["ARN"]
    assert again["ARN"].startswith(created["ARN"][:-6])
    assert sm.get_secret_value(CALLER, {"SecretId": "app/db"})["SecretString"] == "fresh"
    assert rows_by_id(deployment, secret_row_id(deployment, again["ARN"])) == {
        "secrets": 1,
        "secret_versions": 1,
        "version_stages": 1,
    }


def test_default_window_is_thirty_days(sm: SecretsManager, clock: ManualClock) -> None:
    create(sm, "default/window")
    sm.delete_secret(CALLER, {"SecretId": "default/window"})
    clock.advance(timedelta(days=29, hours=23, minutes=59))
    assert sm.purge_expired() == 0
    assert sm.describe_secret(CALLER, {"SecretId": "default/window"})["DeletedDate"]
    clock.advance(timedelta(minutes=1))
    assert sm.purge_expired() == 1
    not_found(lambda: sm.describe_secret(CALLER, {"SecretId": "default/window"}))


def test_restored_secret_is_never_purged(
    deployment: Deployment, sm: SecretsManager, clock: ManualClock
) -> None:
    created = create(sm, "kept/secret", "precious")
    sm.delete_secret(CALLER, {"SecretId": "kept/secret", "RecoveryWindowInDays": 7})
    clock.advance(timedelta(days=3))
    sm.restore_secret(CALLER, {"SecretId": "kept/secret"})
    for _ in range(4):
        clock.advance(timedelta(days=30))
        assert sm.purge_expired() == 0
    described = sm.describe_secret(CALLER, {"SecretId": "kept/secret"})
    assert described["DeletedDate"] is None
    assert sm.get_secret_value(CALLER, {"SecretId": "kept/secret"})["SecretString"] == "precious"
    assert rows_by_id(deployment, secret_row_id(deployment, created["ARN"])) == {
        "secrets": 1,
        "secret_versions": 1,
        "version_stages": 1,
    }


def test_only_expired_windows_are_purged(sm: SecretsManager, clock: ManualClock) -> None:
    create(sm, "short")
    create(sm, "long")
    create(sm, "live")
    sm.delete_secret(CALLER, {"SecretId": "short", "RecoveryWindowInDays": 7})
    sm.delete_secret(CALLER, {"SecretId": "long", "RecoveryWindowInDays": 30})
    clock.advance(timedelta(days=8))
    assert sm.purge_expired() == 1
    not_found(lambda: sm.describe_secret(CALLER, {"SecretId": "short"}))
    assert sm.describe_secret(CALLER, {"SecretId": "long"})["DeletedDate"] is not None
    assert sm.get_secret_value(CALLER, {"SecretId": "live"})["SecretString"] == "v1"
    clock.advance(timedelta(days=22))
    assert sm.purge_expired() == 1
    not_found(lambda: sm.describe_secret(CALLER, {"SecretId": "long"}))
    assert sm.get_secret_value(CALLER, {"SecretId": "live"})["SecretString"] == "v1"


def test_deleted_again_after_restore_uses_the_new_window(
    sm: SecretsManager, clock: ManualClock
) -> None:
    create(sm, "twice")
    sm.delete_secret(CALLER, {"SecretId": "twice", "RecoveryWindowInDays": 7})
    clock.advance(timedelta(days=5))
    sm.restore_secret(CALLER, {"SecretId": "twice"})
    sm.delete_secret(CALLER, {"SecretId": "twice", "RecoveryWindowInDays": 10})
    clock.advance(timedelta(days=9))  # 14 days after the first deletion
    assert sm.purge_expired() == 0
    clock.advance(timedelta(days=1))
    assert sm.purge_expired() == 1
    not_found(lambda: sm.describe_secret(CALLER, {"SecretId": "twice"}))


def test_purge_survives_reopening_the_data_directory(tmp_path: Path, clock: ManualClock) -> None:
    data_dir = tmp_path / "data"
    initialize(data_dir, dev=True, clock=clock)
    first = open_deployment(data_dir, clock=clock)
    create(first.secrets, "durable")
    first.secrets.delete_secret(CALLER, {"SecretId": "durable", "RecoveryWindowInDays": 7})
    first.close()

    clock.advance(timedelta(days=7))
    second = open_deployment(data_dir, clock=clock)
    try:
        assert second.secrets.purge_expired() == 1
        not_found(lambda: second.secrets.describe_secret(CALLER, {"SecretId": "durable"}))
    finally:
        second.close()
