"""The AWS JSON 1.1 wire protocol, spoken with raw HTTP (signed by botocore's SigV4Auth)
and checked against what boto3 sees: headers, error shapes, serialization and
validation errors with AWS's texts."""

from __future__ import annotations

import base64
import re
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.rawhttp import JSON_11, RawResponse, send, token
from tests.server import ServerProcess

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def sm_call(server: ServerProcess, operation: str, body: dict[str, Any] | bytes) -> RawResponse:
    return send(server.url, f"secretsmanager.{operation}", body)


def assert_aws_error(response: RawResponse, code: str, status: int = 400) -> str:
    """The AWS JSON error shape; returns the message."""
    assert response.status == status, response.body
    assert response.headers["content-type"] == JSON_11
    assert response.headers["x-amzn-errortype"] == code
    assert UUID.fullmatch(response.headers["x-amzn-requestid"])
    body = response.json()
    assert set(body) == {"__type", "Message"}
    assert body["__type"] == code
    return str(body["Message"])


def assert_absent(sm: Any, name: str) -> None:
    with pytest.raises(ClientError) as exc:
        sm.describe_secret(SecretId=name)
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"


# ------------------------------------------------------------------------ success shape


def test_success_carries_request_id_and_json_content_type(
    server: ServerProcess, sm: Any, name: str
) -> None:
    response = sm_call(
        server,
        "CreateSecret",
        {"Name": name, "SecretString": "s3cr3t", "ClientRequestToken": token()},
    )
    assert response.status == 200, response.body
    assert response.headers["content-type"] == JSON_11
    assert UUID.fullmatch(response.headers["x-amzn-requestid"])
    assert "x-amzn-errortype" not in response.headers
    body = response.json()
    assert set(body) == {"ARN", "Name", "VersionId"}
    assert body["Name"] == name
    assert re.fullmatch(
        rf"arn:aws:secretsmanager:us-east-1:000000000000:secret:{re.escape(name)}-[A-Za-z0-9]{{6}}",
        body["ARN"],
    )

    second = sm_call(server, "DescribeSecret", {"SecretId": name})
    assert second.status == 200
    assert second.headers["x-amzn-requestid"] != response.headers["x-amzn-requestid"]
    assert isinstance(second.json()["CreatedDate"], float | int)  # epoch seconds on the wire


def test_boto3_request_id_is_the_header(sm: Any, name: str) -> None:
    created = sm.create_secret(Name=name, SecretString="x")
    meta = created["ResponseMetadata"]
    assert meta["HTTPStatusCode"] == 200
    assert meta["HTTPHeaders"]["content-type"] == JSON_11
    assert UUID.fullmatch(meta["RequestId"])
    assert meta["RequestId"] == meta["HTTPHeaders"]["x-amzn-requestid"]

    with pytest.raises(ClientError) as exc:
        sm.get_secret_value(SecretId=name + "-missing")
    error = exc.value.response
    assert error["Error"]["Code"] == "ResourceNotFoundException"
    assert error["Error"]["Message"] == "Secrets Manager can't find the specified secret."
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert (
        error["ResponseMetadata"]["RequestId"]
        == error["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    )
    assert error["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == (
        "ResourceNotFoundException"
    )


def test_modeled_error_has_the_aws_shape(server: ServerProcess, name: str) -> None:
    message = assert_aws_error(
        sm_call(server, "GetSecretValue", {"SecretId": name}), "ResourceNotFoundException"
    )
    assert message == "Secrets Manager can't find the specified secret."


def test_operation_without_output_answers_an_empty_object(
    server: ServerProcess, sm: Any, name: str
) -> None:
    sm.create_secret(Name=name, SecretString="x")
    response = sm_call(
        server, "TagResource", {"SecretId": name, "Tags": [{"Key": "k", "Value": "v"}]}
    )
    assert response.status == 200
    assert response.json() == {}
    assert sm.describe_secret(SecretId=name)["Tags"] == [{"Key": "k", "Value": "v"}]


# ------------------------------------------------------------------------ target header


@pytest.mark.parametrize(
    "target",
    [
        "secretsmanager.FrobnicateSecret",
        "secretsmanager.",
        "DynamoDB_20120810.ListTables",
        "GetSecretValue",
    ],
)
def test_unknown_operation(server: ServerProcess, target: str) -> None:
    response = send(server.url, target, {"SecretId": "x"})
    assert_aws_error(response, "UnknownOperationException")


def test_missing_target_is_an_unknown_operation(server: ServerProcess) -> None:
    assert_aws_error(send(server.url, None, {"SecretId": "x"}), "UnknownOperationException")


# ------------------------------------------------------------------------ serialization


@pytest.mark.parametrize(
    "body", [b"not json", b'{"Name": "x", ', b"[1, 2]", b'"text"', b"\xff\xfe"]
)
def test_body_that_is_not_a_json_object(server: ServerProcess, body: bytes) -> None:
    assert_aws_error(sm_call(server, "CreateSecret", body), "SerializationException")


def test_truncated_create_changes_nothing(server: ServerProcess, sm: Any, name: str) -> None:
    body = f'{{"Name": "{name}", "SecretString": "v", "ClientRequestToken": "{token()}"'
    assert_aws_error(sm_call(server, "CreateSecret", body.encode()), "SerializationException")
    assert_absent(sm, name)


def test_empty_body_is_an_empty_input(server: ServerProcess) -> None:
    message = assert_aws_error(sm_call(server, "GetSecretValue", b""), "ValidationException")
    assert message == (
        "1 validation error detected: Value null at 'secretId' failed to satisfy constraint: "
        "Member must not be null"
    )


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("SecretString", 918273645),
        ("SecretString", {"nested": "object"}),
        ("Name", ["a", "list"]),
        ("Tags", {"Key": "k"}),
        ("ForceOverwriteReplicaSecret", "yes"),
        ("SecretBinary", "not base64!!"),
    ],
)
def test_wrong_member_type(
    server: ServerProcess, sm: Any, name: str, member: str, value: Any
) -> None:
    body = {"Name": name, "ClientRequestToken": token(), member: value}
    if member != "SecretString" and member != "SecretBinary":
        body["SecretString"] = "v"
    message = assert_aws_error(sm_call(server, "CreateSecret", body), "SerializationException")
    assert "918273645" not in message and "nested" not in message
    assert_absent(sm, name)


def test_wrong_type_deep_inside_a_list(server: ServerProcess, sm: Any, name: str) -> None:
    body = {
        "Name": name,
        "SecretString": "v",
        "ClientRequestToken": token(),
        "Tags": [{"Key": "a", "Value": "b"}, {"Key": 7, "Value": "c"}],
    }
    message = assert_aws_error(sm_call(server, "CreateSecret", body), "SerializationException")
    assert "tags.2.member.key" in message
    assert_absent(sm, name)


def test_unknown_members_are_ignored(server: ServerProcess, sm: Any, name: str) -> None:
    response = sm_call(
        server,
        "CreateSecret",
        {"Name": name, "SecretString": "v", "ClientRequestToken": token(), "Bogus": 1},
    )
    assert response.status == 200, response.body
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v"


# ------------------------------------------------------------------------ validation


def test_one_validation_error_has_the_aws_text(server: ServerProcess) -> None:
    message = assert_aws_error(
        sm_call(server, "GetSecretValue", {"SecretId": ""}), "ValidationException"
    )
    assert message == (
        "1 validation error detected: Value '' at 'secretId' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1"
    )


def test_several_validation_errors_are_counted(server: ServerProcess, sm: Any) -> None:
    long_name = "n" * 513
    response = sm_call(
        server,
        "CreateSecret",
        {
            "Name": long_name,
            "Description": "d" * 2049,
            "ClientRequestToken": "short",
            "SecretString": "v",
        },
    )
    message = assert_aws_error(response, "ValidationException")
    assert message.startswith("3 validation errors detected: ")
    parts = message.removeprefix("3 validation errors detected: ").split("; ")
    clipped = "n" * 100 + "..."
    assert parts == [
        f"Value '{clipped}' at 'name' failed to satisfy constraint: "
        "Member must have length less than or equal to 512",
        "Value 'short' at 'clientRequestToken' failed to satisfy constraint: "
        "Member must have length greater than or equal to 32",
        f"Value '{'d' * 100}...' at 'description' failed to satisfy constraint: "
        "Member must have length less than or equal to 2048",
    ]
    assert len(message) < 1000  # long values are clipped, not echoed whole
    assert_absent(sm, long_name[:512])


def test_enum_and_range_violations(server: ServerProcess) -> None:
    message = assert_aws_error(
        sm_call(server, "ListSecrets", {"SortOrder": "sideways", "MaxResults": 0}),
        "ValidationException",
    )
    assert message.startswith("2 validation errors detected: ")
    assert (
        "Value 'sideways' at 'sortOrder' failed to satisfy constraint: "
        "Member must satisfy enum value set: [asc, desc]"
    ) in message
    assert (
        "Value '0' at 'maxResults' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1"
    ) in message

    message = assert_aws_error(
        sm_call(server, "ListSecrets", {"MaxResults": 101}), "ValidationException"
    )
    assert message == (
        "1 validation error detected: Value '101' at 'maxResults' failed to satisfy "
        "constraint: Member must have value less than or equal to 100"
    )


def test_missing_required_members(server: ServerProcess) -> None:
    message = assert_aws_error(
        sm_call(server, "UpdateSecretVersionStage", {"SecretId": "x"}), "ValidationException"
    )
    assert message == (
        "1 validation error detected: Value null at 'versionStage' failed to satisfy "
        "constraint: Member must not be null"
    )


def test_too_long_secret_string_is_never_echoed(server: ServerProcess, sm: Any, name: str) -> None:
    marker = "TOPSECRET-" + uuid.uuid4().hex
    value = (marker * (65536 // len(marker) + 2))[:65537]
    response = sm_call(
        server,
        "CreateSecret",
        {"Name": name, "SecretString": value, "ClientRequestToken": token()},
    )
    message = assert_aws_error(response, "ValidationException")
    assert message == (
        "1 validation error detected: Value at 'secretString' failed to satisfy constraint: "
        "Member must have length less than or equal to 65536"
    )
    assert b"TOPSECRET" not in response.body
    assert_absent(sm, name)

    # Through boto3 too (it checks only the minimum client-side).
    with pytest.raises(ClientError) as exc:
        sm.create_secret(Name=name, SecretString=value)
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    assert "TOPSECRET" not in str(exc.value)
    assert_absent(sm, name)


def test_too_long_secret_binary_and_bad_rotation_token_are_not_echoed(
    server: ServerProcess, sm: Any, name: str
) -> None:
    sm.create_secret(Name=name, SecretString="original")
    blob = b"BINSECRET" * 7282 + b"xxxxxxxxxx"  # 65548 bytes
    rotation_token = "ROTTOKEN$" + "z" * 40
    response = sm_call(
        server,
        "PutSecretValue",
        {
            "SecretId": name,
            "SecretBinary": base64.b64encode(blob).decode(),
            "RotationToken": rotation_token,
            "ClientRequestToken": token(),
        },
    )
    message = assert_aws_error(response, "ValidationException")
    assert message.startswith("2 validation errors detected: ")
    assert (
        "Value at 'secretBinary' failed to satisfy constraint: "
        "Member must have length less than or equal to 65536"
    ) in message
    assert (
        "Value at 'rotationToken' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: ^[a-zA-Z0-9\\-]+$"
    ) in message
    assert b"BINSECRET" not in response.body and b"ROTTOKEN" not in response.body
    assert base64.b64encode(b"BINSECRETBINSECRET")[:12] not in response.body
    versions = sm.list_secret_version_ids(SecretId=name)["Versions"]
    assert len(versions) == 1
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "original"


def test_validation_happens_before_the_operation(server: ServerProcess, sm: Any, name: str) -> None:
    """A bad member on an existing secret is refused without touching it."""
    sm.create_secret(Name=name, SecretString="original", Description="before")
    response = sm_call(
        server,
        "UpdateSecret",
        {
            "SecretId": name,
            "Description": "x" * 2049,
            "ClientRequestToken": token(),
            "SecretString": "new",
        },
    )
    assert_aws_error(response, "ValidationException")
    described = sm.describe_secret(SecretId=name)
    assert described["Description"] == "before"
    assert len(described["VersionIdsToStages"]) == 1
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "original"
