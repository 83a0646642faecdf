"""ClientRequestToken idempotency of CreateSecret, PutSecretValue and UpdateSecret, end to
end with boto3 (and raw signed HTTP) against a real server.

AWS source: /work/shared/reference/aws-secretsmanager-api.md section 3.4 (VERIFIED texts:
moto aws_verified tests, localstack AWS-validated snapshots).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.aws import aws_error, body, snapshot
from tests.rawhttp import send, token
from tests.server import ServerProcess

NEED_TOKEN = "You must provide a ClientRequestToken value. We recommend a UUID-type value."


def token_in_use(token_: str, arn: str) -> str:
    return (
        f"You can't use ClientRequestToken {token_} because that value is already in use for a "
        f"version of secret {arn}."
    )


# Same token, same value ----------------------------------------------------------------


@pytest.mark.parametrize("value", [{"SecretString": "v1"}, {"SecretBinary": b"\x00v1\xff"}])
def test_create_same_token_same_value_returns_the_same_version(
    sm: Any, name: str, value: dict[str, Any]
) -> None:
    t = token()
    first = sm.create_secret(Name=name, ClientRequestToken=t, **value)
    before = snapshot(sm, name)
    again = sm.create_secret(Name=name, ClientRequestToken=t, **value)
    assert body(again) == body(first)
    assert again["VersionId"] == t
    after = snapshot(sm, name)
    assert after == before
    assert list(after["values"]) == [t]


def test_put_same_token_same_value_returns_the_same_version(sm: Any, name: str) -> None:
    v1 = sm.create_secret(Name=name, SecretString="one")["VersionId"]
    t = token()
    first = sm.put_secret_value(SecretId=name, SecretString="two", ClientRequestToken=t)
    assert first["VersionStages"] == ["AWSCURRENT"]
    before = snapshot(sm, name)
    again = sm.put_secret_value(SecretId=name, SecretString="two", ClientRequestToken=t)
    assert body(again) == body(first)
    after = snapshot(sm, name)
    assert after == before  # no version, no label moved, LastChangedDate unchanged
    assert set(after["values"]) == {v1, t}


def test_put_same_token_same_binary_value(sm: Any, name: str) -> None:
    sm.create_secret(Name=name, SecretBinary=b"one")
    t = token()
    first = sm.put_secret_value(SecretId=name, SecretBinary=b"\x01\x02", ClientRequestToken=t)
    before = snapshot(sm, name)
    again = sm.put_secret_value(SecretId=name, SecretBinary=b"\x01\x02", ClientRequestToken=t)
    assert body(again) == body(first)
    assert snapshot(sm, name) == before


def test_put_with_the_create_token_and_same_value(sm: Any, name: str) -> None:
    t = token()
    sm.create_secret(Name=name, SecretString="one", ClientRequestToken=t)
    before = snapshot(sm, name)
    again = sm.put_secret_value(SecretId=name, SecretString="one", ClientRequestToken=t)
    assert (again["VersionId"], again["VersionStages"]) == (t, ["AWSCURRENT"])
    assert snapshot(sm, name) == before


def test_update_same_token_same_value_returns_the_same_version(sm: Any, name: str) -> None:
    v1 = sm.create_secret(Name=name, SecretString="one")["VersionId"]
    t = token()
    first = sm.update_secret(SecretId=name, SecretString="two", ClientRequestToken=t)
    before = snapshot(sm, name)
    again = sm.update_secret(SecretId=name, SecretString="two", ClientRequestToken=t)
    assert body(again) == body(first)
    assert again["VersionId"] == t
    after = snapshot(sm, name)
    assert after == before
    assert set(after["values"]) == {v1, t}


# Same token, different value -----------------------------------------------------------


def test_create_same_token_different_value(sm: Any, name: str) -> None:
    t = token()
    arn = sm.create_secret(Name=name, SecretString="v1", ClientRequestToken=t)["ARN"]
    before = snapshot(sm, name)
    error = aws_error(sm.create_secret, Name=name, SecretString="v2", ClientRequestToken=t)
    assert error["Code"] == "ResourceExistsException"
    assert error["Message"] == token_in_use(t, arn)
    assert snapshot(sm, name) == before


def test_put_same_token_different_value(sm: Any, name: str) -> None:
    arn = sm.create_secret(Name=name, SecretString="one")["ARN"]
    t = token()
    sm.put_secret_value(SecretId=name, SecretString="two", ClientRequestToken=t)
    before = snapshot(sm, name)
    for kwargs in (
        {"SecretString": "other"},
        {"SecretString": "tw0", "VersionStages": ["AWSPENDING"]},
        {"SecretBinary": b"\x00"},
    ):
        error = aws_error(sm.put_secret_value, SecretId=name, ClientRequestToken=t, **kwargs)
        assert error["Code"] == "ResourceExistsException"
        assert error["Message"] == token_in_use(t, arn)
    assert snapshot(sm, name) == before


def test_update_same_token_different_value(sm: Any, name: str) -> None:
    arn = sm.create_secret(Name=name, SecretString="one")["ARN"]
    t = token()
    sm.update_secret(SecretId=name, SecretString="two", ClientRequestToken=t)
    before = snapshot(sm, name)
    error = aws_error(sm.update_secret, SecretId=name, SecretString="three", ClientRequestToken=t)
    assert error["Code"] == "ResourceExistsException"
    assert error["Message"] == token_in_use(t, arn)
    # The token of an older version, with a new value: also in use.
    v1 = sm.list_secret_version_ids(SecretId=name)["Versions"][-1]["VersionId"]
    error = aws_error(sm.update_secret, SecretId=name, SecretString="four", ClientRequestToken=v1)
    assert (error["Code"], error["Message"]) == ("ResourceExistsException", token_in_use(v1, arn))
    assert snapshot(sm, name) == before


def test_string_and_binary_with_the_same_bytes_are_different_values(sm: Any, name: str) -> None:
    t1, t2 = token(), token()
    arn = sm.create_secret(Name=name, SecretString="same", ClientRequestToken=t1)["ARN"]
    sm.put_secret_value(SecretId=name, SecretBinary=b"bytes", ClientRequestToken=t2)
    before = snapshot(sm, name)
    cases: list[tuple[Callable[..., Any], dict[str, Any]]] = [
        (sm.create_secret, {"Name": name, "SecretBinary": b"same", "ClientRequestToken": t1}),
        (
            sm.put_secret_value,
            {"SecretId": name, "SecretBinary": b"same", "ClientRequestToken": t1},
        ),
        (sm.update_secret, {"SecretId": name, "SecretBinary": b"same", "ClientRequestToken": t1}),
        (
            sm.put_secret_value,
            {"SecretId": name, "SecretString": "bytes", "ClientRequestToken": t2},
        ),
        (sm.update_secret, {"SecretId": name, "SecretString": "bytes", "ClientRequestToken": t2}),
    ]
    for call, kwargs in cases:
        error = aws_error(call, **kwargs)
        assert error["Code"] == "ResourceExistsException", kwargs
        assert error["Message"] == token_in_use(kwargs["ClientRequestToken"], arn)
    assert snapshot(sm, name) == before


# A name that exists ----------------------------------------------------------------------


def test_create_existing_name_with_a_fresh_token(sm: Any, name: str) -> None:
    sm.create_secret(Name=name, SecretString="v1")
    before = snapshot(sm, name)
    expected = f"The operation failed because the secret {name} already exists."
    for kwargs in (
        {"SecretString": "v1"},  # boto3 fills in a fresh token
        {"SecretString": "v2", "ClientRequestToken": token()},
        {"SecretBinary": b"v1"},
        {},  # no value at all
        {"Description": "again"},
    ):
        error = aws_error(sm.create_secret, Name=name, **kwargs)
        assert error["Code"] == "ResourceExistsException", kwargs
        assert error["Message"] == expected
    assert snapshot(sm, name) == before


def test_create_existing_valueless_secret(sm: Any, name: str) -> None:
    sm.create_secret(Name=name)
    error = aws_error(sm.create_secret, Name=name, SecretString="now")
    assert error["Code"] == "ResourceExistsException"
    assert error["Message"] == f"The operation failed because the secret {name} already exists."
    assert sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"] == []


def test_a_token_is_scoped_to_its_secret(sm: Any, name: str) -> None:
    t = token()
    sm.create_secret(Name=name, SecretString="a", ClientRequestToken=t)
    other = sm.create_secret(Name=name + "-b", SecretString="b", ClientRequestToken=t)
    assert other["VersionId"] == t
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "a"
    assert sm.get_secret_value(SecretId=name + "-b")["SecretString"] == "b"


# Requests without a ClientRequestToken -----------------------------------------------------


@pytest.fixture
def tokenless(server: ServerProcess) -> Any:
    """A boto3 client whose requests lose the ClientRequestToken botocore fills in, as a
    raw HTTP client or another SDK without idempotency auto-fill would send them."""
    client = server.client()

    def strip(params: dict[str, Any], **_: Any) -> None:
        # before-call: the body is serialized but not yet signed.
        payload = json.loads(params["body"] or b"{}")
        if payload.pop("ClientRequestToken", None) is not None:
            params["body"] = json.dumps(payload).encode()

    client.meta.events.register("before-call.secrets-manager.*", strip)
    return client


def test_requests_without_a_token_are_rejected(sm: Any, tokenless: Any, name: str) -> None:
    error = aws_error(tokenless.create_secret, Name=name, SecretString="v")
    assert (error["Code"], error["Message"]) == ("InvalidRequestException", NEED_TOKEN)
    error = aws_error(tokenless.create_secret, Name=name, SecretBinary=b"v")
    assert (error["Code"], error["Message"]) == ("InvalidRequestException", NEED_TOKEN)
    missing = aws_error(sm.describe_secret, SecretId=name)
    assert missing["Code"] == "ResourceNotFoundException"  # nothing created

    sm.create_secret(Name=name, SecretString="keep")
    before = snapshot(sm, name)
    for call, kwargs in (
        (tokenless.put_secret_value, {"SecretString": "v2"}),
        (tokenless.put_secret_value, {"SecretBinary": b"v2", "VersionStages": ["AWSPENDING"]}),
        (tokenless.update_secret, {"SecretString": "v2"}),
        (tokenless.update_secret, {"SecretBinary": b"v2", "Description": "changed"}),
    ):
        error = aws_error(call, SecretId=name, **kwargs)
        assert (error["Code"], error["Message"]) == ("InvalidRequestException", NEED_TOKEN)
    assert snapshot(sm, name) == before


def _raw(
    server: ServerProcess, target: str, payload: dict[str, Any]
) -> tuple[int, dict[str, str], dict[str, Any]]:
    """One SigV4-signed AWS JSON 1.1 request (no SDK in between): status, headers (names
    lower-cased) and the JSON answer."""
    answer = send(server.url, f"secretsmanager.{target}", payload)
    return answer.status, dict(answer.headers), answer.json()


def test_raw_requests_without_a_token(server: ServerProcess, sm: Any, name: str) -> None:
    status, headers, answer = _raw(server, "CreateSecret", {"Name": name, "SecretString": "v"})
    assert status == 400
    assert answer == {"__type": "InvalidRequestException", "Message": NEED_TOKEN}
    assert headers["x-amzn-errortype"].split(":")[0] == "InvalidRequestException"
    assert aws_error(sm.describe_secret, SecretId=name)["Code"] == "ResourceNotFoundException"

    sm.create_secret(Name=name, SecretString="keep")
    before = snapshot(sm, name)
    for target, payload in (
        ("PutSecretValue", {"SecretId": name, "SecretString": "v2"}),
        ("UpdateSecret", {"SecretId": name, "SecretString": "v2"}),
    ):
        status, _, answer = _raw(server, target, payload)
        assert status == 400
        assert answer == {"__type": "InvalidRequestException", "Message": NEED_TOKEN}
    assert snapshot(sm, name) == before

    # The same raw request with a token goes through: the token is what was missing.
    t = token()
    status, _, answer = _raw(
        server, "PutSecretValue", {"SecretId": name, "SecretString": "v2", "ClientRequestToken": t}
    )
    assert status == 200
    assert (answer["VersionId"], answer["VersionStages"]) == (t, ["AWSCURRENT"])
