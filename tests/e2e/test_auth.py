"""SigV4 authentication end to end: every way a request can fail to authenticate gets
AWS's error code and text, status 400, and changes nothing."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.rawhttp import JSON_11, RawResponse, send, token
from tests.server import ServerProcess

SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)
AMZ_DATE = r"\d{8}T\d{6}Z"


def create_body(name: str, value: str = "v4lue") -> dict[str, Any]:
    return {"Name": name, "SecretString": value, "ClientRequestToken": token()}


def assert_auth_error(response: RawResponse, code: str) -> str:
    assert response.status == 400, response.body
    assert response.headers["content-type"] == JSON_11
    assert response.headers["x-amzn-errortype"] == code
    assert response.headers["x-amzn-requestid"]
    assert set(response.json()) == {"__type", "Message"}
    assert response.error_code == code
    return response.message


def assert_absent(sm: Any, name: str) -> None:
    with pytest.raises(ClientError) as exc:
        sm.describe_secret(SecretId=name)
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"


def create(server: ServerProcess, name: str, **kwargs: Any) -> RawResponse:
    return send(server.url, "secretsmanager.CreateSecret", create_body(name), **kwargs)


def test_signed_raw_request_is_accepted(server: ServerProcess, sm: Any, name: str) -> None:
    """The baseline the failures below differ from by one thing each."""
    response = create(server, name)
    assert response.status == 200, response.body
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v4lue"


def test_no_authorization_header(server: ServerProcess, sm: Any, name: str) -> None:
    message = assert_auth_error(
        create(server, name, sign=False), "MissingAuthenticationTokenException"
    )
    assert message == "Missing Authentication Token"
    assert_absent(sm, name)


def test_unknown_access_key(server: ServerProcess, sm: Any, name: str) -> None:
    response = create(server, name, access_key="AKIANOSUCHKEY0000000", secret_key="whatever")
    message = assert_auth_error(response, "UnrecognizedClientException")
    assert message == "The security token included in the request is invalid."
    assert_absent(sm, name)


def test_unknown_access_key_through_boto3(server: ServerProcess, name: str) -> None:
    stranger = server.client(aws_access_key_id="AKIANOSUCHKEY0000000", aws_secret_access_key="x")
    with pytest.raises(ClientError) as exc:
        stranger.create_secret(Name=name, SecretString="v")
    assert exc.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert_absent(server.client(), name)


def test_wrong_secret_key(server: ServerProcess, sm: Any, name: str) -> None:
    message = assert_auth_error(
        create(server, name, secret_key="not-the-secret"), "InvalidSignatureException"
    )
    assert message == SIGNATURE_MISMATCH
    assert "not-the-secret" not in message
    assert_absent(sm, name)


def test_wrong_secret_key_through_boto3(server: ServerProcess, sm: Any, name: str) -> None:
    sm.create_secret(Name=name, SecretString="before")
    forger = server.client(aws_access_key_id="test", aws_secret_access_key="guess")
    for call in (
        lambda: forger.put_secret_value(SecretId=name, SecretString="after"),
        lambda: forger.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True),
        lambda: forger.get_secret_value(SecretId=name),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert exc.value.response["Error"]["Code"] == "InvalidSignatureException"
        assert exc.value.response["Error"]["Message"] == SIGNATURE_MISMATCH
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "before"
    assert len(sm.list_secret_version_ids(SecretId=name)["Versions"]) == 1
    assert "DeletedDate" not in sm.describe_secret(SecretId=name)


def test_body_tampered_after_signing(server: ServerProcess, sm: Any, name: str) -> None:
    response = create(server, name, after_signing=lambda body: body.replace(b'"v4lue"', b'"evil!"'))
    assert b"evil!" not in response.body
    assert assert_auth_error(response, "InvalidSignatureException") == SIGNATURE_MISMATCH
    assert_absent(sm, name)

    renamed = name + "-x"
    response = create(
        server, name, after_signing=lambda body: body.replace(name.encode(), renamed.encode())
    )
    assert_auth_error(response, "InvalidSignatureException")
    assert_absent(sm, renamed)
    assert_absent(sm, name)


def test_target_header_tampered_after_signing(server: ServerProcess, sm: Any, name: str) -> None:
    sm.create_secret(Name=name, SecretString="keep")
    body = {"SecretId": name, "ForceDeleteWithoutRecovery": True}
    # Signed as a harmless read (which ignores the extra member), sent as a forced delete:
    # X-Amz-Target is a signed header.
    honest = send(server.url, "secretsmanager.DescribeSecret", body)
    assert honest.status == 200, honest.body
    response = send(
        server.url,
        "secretsmanager.DescribeSecret",
        body,
        headers_after_signing={"X-Amz-Target": "secretsmanager.DeleteSecret"},
    )
    assert assert_auth_error(response, "InvalidSignatureException") == SIGNATURE_MISMATCH
    assert "DeletedDate" not in sm.describe_secret(SecretId=name)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "keep"


def test_signature_twenty_minutes_old(server: ServerProcess, sm: Any, name: str) -> None:
    then = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=20)
    message = assert_auth_error(create(server, name, signed_at=then), "InvalidSignatureException")
    stamp = then.strftime("%Y%m%dT%H%M%SZ")
    assert re.fullmatch(
        rf"Signature expired: {stamp} is now earlier than ({AMZ_DATE}) \(({AMZ_DATE}) - 15 min\.\)",
        message,
    ), message
    assert_absent(sm, name)


def test_signature_twenty_minutes_in_the_future(server: ServerProcess, sm: Any, name: str) -> None:
    # AWS's text for a request from the future is "not yet current" (the expired text is
    # for the past), with the same 15-minute tolerance.
    then = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=20)
    message = assert_auth_error(create(server, name, signed_at=then), "InvalidSignatureException")
    stamp = then.strftime("%Y%m%dT%H%M%SZ")
    assert re.fullmatch(
        rf"Signature not yet current: {stamp} is still later than ({AMZ_DATE}) "
        rf"\(({AMZ_DATE}) \+ 15 min\.\)",
        message,
    ), message
    assert_absent(sm, name)


def test_small_clock_skew_is_tolerated(server: ServerProcess, sm: Any, name: str) -> None:
    then = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    assert create(server, name, signed_at=then).status == 200
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v4lue"


@pytest.mark.parametrize("service", ["kms", "sts", "secretsmanagerx"])
def test_credential_scoped_to_another_service(
    server: ServerProcess, sm: Any, name: str, service: str
) -> None:
    message = assert_auth_error(create(server, name, service=service), "InvalidSignatureException")
    assert message == "Credential should be scoped to correct service: 'secretsmanager'. "
    assert_absent(sm, name)


@pytest.mark.parametrize(
    ("authorization", "expected"),
    [
        (
            "AWS4-HMAC-SHA256 garbage",
            "'garbage' not a valid key=value pair (missing equal-sign) in Authorization header.",
        ),
        ("Bearer abc.def.ghi", "Unsupported AWS 'algorithm': 'Bearer'."),
        (
            "AWS4-HMAC-SHA256 Credential=test/us-east-1/aws4_request, "
            "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64,
            "Credential must have exactly 5 slash-delimited elements, e.g. "
            "keyid/date/region/service/term, got 'test/us-east-1/aws4_request'",
        ),
        (
            "AWS4-HMAC-SHA256",
            "Authorization header requires 'Credential' parameter. Authorization header "
            "requires 'Signature' parameter. Authorization header requires 'SignedHeaders' "
            "parameter. Authorization=AWS4-HMAC-SHA256",
        ),
    ],
)
def test_malformed_authorization(
    server: ServerProcess, sm: Any, name: str, authorization: str, expected: str
) -> None:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    response = create(
        server, name, sign=False, headers={"Authorization": authorization, "X-Amz-Date": stamp}
    )
    message = assert_auth_error(response, "IncompleteSignatureException")
    assert message == expected
    assert_absent(sm, name)


def test_missing_signature_parameters_are_listed(server: ServerProcess, sm: Any, name: str) -> None:
    authorization = (
        "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/secretsmanager/aws4_request"
    )
    message = assert_auth_error(
        create(server, name, sign=False, headers={"Authorization": authorization}),
        "IncompleteSignatureException",
    )
    assert "Authorization header requires 'Signature' parameter." in message
    assert "Authorization header requires 'SignedHeaders' parameter." in message
    assert_absent(sm, name)


def test_other_region_from_the_credential_scope(server: ServerProcess, name: str) -> None:
    frankfurt = server.client(region="eu-central-1")
    created = frankfurt.create_secret(Name=name, SecretString="danke")
    assert created["ARN"].startswith("arn:aws:secretsmanager:eu-central-1:000000000000:secret:")
    assert frankfurt.get_secret_value(SecretId=name)["SecretString"] == "danke"
    assert frankfurt.describe_secret(SecretId=created["ARN"])["Name"] == name
    # Regions are separate: the secret is not in us-east-1.
    assert_absent(server.client(region="us-east-1"), name)
