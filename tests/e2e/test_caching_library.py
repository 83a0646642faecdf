"""aws-secretsmanager-caching, unmodified, against the server: it reads DescribeSecret's
VersionIdsToStages and then GetSecretValue by VersionId."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_secretsmanager_caching import (
    InjectKeywordedSecretString,
    InjectSecretString,
    SecretCache,
    SecretCacheConfig,
)
from aws_secretsmanager_caching.cache import items
from botocore.exceptions import ClientError


class CountingClient:
    """The boto3 client, counting the calls the cache makes through it."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: list[str] = []
        self.meta = client.meta  # SecretCache adds its user-agent suffix here

    def describe_secret(self, **kwargs: Any) -> Any:
        self.calls.append("DescribeSecret")
        return self._client.describe_secret(**kwargs)

    def get_secret_value(self, **kwargs: Any) -> Any:
        self.calls.append("GetSecretValue")
        assert "VersionId" in kwargs  # the library asks for the version DescribeSecret named
        return self._client.get_secret_value(**kwargs)


def test_get_secret_string_is_cached(sm: Any, name: str) -> None:
    sm.create_secret(Name=name, SecretString='{"user":"u","password":"first"}')
    client = CountingClient(sm)
    cache = SecretCache(client=client)
    assert cache.get_secret_string(name) == '{"user":"u","password":"first"}'
    assert client.calls == ["DescribeSecret", "GetSecretValue"]
    sm.put_secret_value(SecretId=name, SecretString='{"user":"u","password":"second"}')
    # Within the refresh interval the cached value is served without a call.
    assert cache.get_secret_string(name) == '{"user":"u","password":"first"}'
    assert client.calls == ["DescribeSecret", "GetSecretValue"]


def test_get_secret_binary(sm: Any, name: str) -> None:
    blob = bytes(range(256)) * 4
    sm.create_secret(Name=name, SecretBinary=blob)
    cache = SecretCache(client=sm)
    assert cache.get_secret_binary(name) == blob
    assert cache.get_secret_string(name) is None


def test_refresh_interval_picks_up_a_new_value(sm: Any, name: str) -> None:
    sm.create_secret(Name=name, SecretString="v1")
    # An interval of 0 makes every read revalidate with DescribeSecret (no waiting).
    cache = SecretCache(config=SecretCacheConfig(secret_refresh_interval=0), client=sm)
    assert cache.get_secret_string(name) == "v1"
    sm.put_secret_value(SecretId=name, SecretString="v2")
    assert cache.get_secret_string(name) == "v2"
    assert cache.get_secret_string(name, "AWSPREVIOUS") == "v1"
    sm.update_secret_version_stage(
        SecretId=name,
        VersionStage="AWSCURRENT",
        MoveToVersionId=_version_with(sm, name, "AWSPREVIOUS"),
        RemoveFromVersionId=_version_with(sm, name, "AWSCURRENT"),
    )
    assert cache.get_secret_string(name) == "v1"  # rolled back


def _version_with(sm: Any, name: str, stage: str) -> str:
    stages = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
    (version,) = [v for v, labels in stages.items() if stage in labels]
    return str(version)


def test_refresh_secret_now(sm: Any, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    sm.create_secret(Name=name, SecretString="old")
    cache = SecretCache(client=sm)  # default hour-long refresh interval
    assert cache.get_secret_string(name) == "old"
    sm.put_secret_value(SecretId=name, SecretString="new")
    assert cache.get_secret_string(name) == "old"
    slept: list[float] = []
    # The library sleeps a random jitter of seconds before a forced refresh; skip the wait.
    monkeypatch.setattr(items.time, "sleep", slept.append)
    assert cache.refresh_secret_now(name) is True
    assert slept and 0 < slept[0] <= 10
    assert cache.get_secret_string(name) == "new"


def test_custom_version_stage(sm: Any, name: str) -> None:
    created = sm.create_secret(Name=name, SecretString="labelled")
    sm.put_secret_value(SecretId=name, SecretString="current")
    sm.update_secret_version_stage(
        SecretId=name, VersionStage="BLUE", MoveToVersionId=created["VersionId"]
    )
    cache = SecretCache(client=sm)
    assert cache.get_secret_string(name) == "current"
    assert cache.get_secret_string(name, "BLUE") == "labelled"
    assert cache.get_secret_string(name, "NO-SUCH-STAGE") is None


def test_missing_secret_raises_the_aws_error(sm: Any, name: str) -> None:
    cache = SecretCache(client=sm)
    with pytest.raises(ClientError) as exc:
        cache.get_secret_string(name)
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_inject_secret_string(sm: Any, name: str) -> None:
    sm.create_secret(Name=name, SecretString="injected-value")
    cache = SecretCache(client=sm)

    @InjectSecretString(name, cache)
    def use(secret: str, suffix: str) -> str:
        return secret + suffix

    assert use("!") == "injected-value!"


def test_inject_keyworded_secret_string(sm: Any, name: str) -> None:
    sm.create_secret(
        Name=name, SecretString=json.dumps({"username": "admin", "password": "P@ssw0rd123"})
    )
    cache = SecretCache(client=sm)

    @InjectKeywordedSecretString(name, cache, user="username", pw="password")
    def connect(user: str, pw: str, host: str) -> tuple[str, str, str]:
        return user, pw, host

    assert connect(host="db") == ("admin", "P@ssw0rd123", "db")
