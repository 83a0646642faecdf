"""Helpers for tests that talk to a Strongroom server through boto3: expected AWS errors,
response bodies, unique names and regions, KMS keys, and what a client can read about a
secret (to check that a refused call changed nothing)."""

from __future__ import annotations

import random
import string
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

Client = Any  # a boto3 client (boto3 ships no types)
ACCOUNT = "000000000000"  # the dev server's account
NOT_FOUND = "Secrets Manager can't find the specified secret."


def aws_error(
    call: Callable[..., Any],
    /,
    *args: Any,
    code: str | None = None,
    message: str | None = None,
    status: int = 400,
    **kwargs: Any,
) -> dict[str, Any]:
    """Run ``call(*args, **kwargs)`` and expect a botocore ClientError with HTTP ``status``
    (and the error ``code`` and ``message``, when given); return its Error member."""
    with pytest.raises(ClientError) as raised:
        call(*args, **kwargs)
    response = raised.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == status, response
    error: dict[str, Any] = response["Error"]
    if code is not None:
        assert error["Code"] == code, error
    if message is not None:
        assert error["Message"] == message, error
    return error


def error_message(
    call: Callable[..., Any], code: str, message: str | None = None, status: int = 400
) -> str:
    """``aws_error`` for a call taking no arguments; the error's message."""
    return str(aws_error(call, code=code, message=message, status=status)["Message"])


def not_found(call: Callable[..., Any], /, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """``aws_error`` for a secret that does not exist (or is not visible to the caller)."""
    return aws_error(call, *args, code="ResourceNotFoundException", message=NOT_FOUND, **kwargs)


def body(response: dict[str, Any]) -> dict[str, Any]:
    """A boto3 response without its ResponseMetadata."""
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def random_region(prefix: str) -> str:
    """A region name no other test uses, e.g. ``ls-abcdefghij-1``: a client there sees only
    the secrets its test created."""
    return f"{prefix}-{''.join(random.choices(string.ascii_lowercase, k=10))}-1"


def unique_alias() -> str:
    return f"alias/e2e-{uuid.uuid4().hex[:12]}"


def new_key(kms: Client) -> dict[str, str]:
    """A fresh customer managed KMS key with an alias in the client's region, and the four
    ways to name it: KeyId, Arn, Alias and AliasArn."""
    created = kms.create_key(Description="e2e key")["KeyMetadata"]
    alias = unique_alias()
    kms.create_alias(AliasName=alias, TargetKeyId=created["KeyId"])
    return {
        "KeyId": created["KeyId"],
        "Arn": created["Arn"],
        "Alias": alias,
        "AliasArn": f"arn:aws:kms:{kms.meta.region_name}:{ACCOUNT}:{alias}",
    }


def described(client: Client, secret_id: str) -> dict[str, Any]:
    """DescribeSecret without the access dates (reading a secret is itself an access)."""
    result = body(client.describe_secret(SecretId=secret_id))
    result.pop("LastAccessedDate", None)
    for status in result.get("ReplicationStatus", []):
        status.pop("LastAccessedDate", None)
    return result


def state(
    client: Client, secret_id: str, *, policy: bool = False, values: bool = False
) -> dict[str, Any]:
    """What a client can read about a secret, except access dates: DescribeSecret and
    ListSecretVersionIds (deprecated versions too), and when asked the resource policy and
    every version's GetSecretValue. Compare it before and after a call that must change
    nothing."""
    result: dict[str, Any] = {"describe": described(client, secret_id)}
    listed = body(client.list_secret_version_ids(SecretId=secret_id, IncludeDeprecated=True))
    for version in listed["Versions"]:
        version.pop("LastAccessedDate", None)
    result["versions"] = listed
    if policy:
        result["policy"] = body(client.get_resource_policy(SecretId=secret_id))
    if values:
        result["values"] = {
            v["VersionId"]: body(
                client.get_secret_value(SecretId=secret_id, VersionId=v["VersionId"])
            )
            for v in listed["Versions"]
        }
    return result


def snapshot(client: Client, name: str) -> dict[str, Any]:
    """Everything observable about a secret, access dates included: every version's value,
    then the metadata (DescribeSecret, ListSecretVersionIds with deprecated versions) - the
    values first, so their reads' LastAccessedDate is already in the metadata."""
    listed = client.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]
    values = {}
    for v in listed:
        got = client.get_secret_value(SecretId=name, VersionId=v["VersionId"])
        values[v["VersionId"]] = got.get("SecretString", got.get("SecretBinary"))
    return {
        "values": values,
        "describe": body(client.describe_secret(SecretId=name)),
        "versions": client.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)[
            "Versions"
        ],
    }


def create_account(orgs: Client, **params: Any) -> dict[str, Any]:
    """Organizations CreateAccount, which answers IN_PROGRESS as AWS's does, then the
    request's outcome as DescribeCreateAccountStatus tells it (with the new AccountId)."""
    started = orgs.create_account(**params)["CreateAccountStatus"]
    assert started["State"] == "IN_PROGRESS", started
    assert "AccountId" not in started and "CompletedTimestamp" not in started
    status: dict[str, Any] = orgs.describe_create_account_status(
        CreateAccountRequestId=started["Id"]
    )["CreateAccountStatus"]
    return status
