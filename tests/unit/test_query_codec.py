"""The AWS Query codec (IAM, STS), checked against botocore itself: requests written by
botocore's ``QuerySerializer`` must parse back to the same parameters; responses and
errors we write must read back through botocore's ``QueryParser`` (and a real botocore
client) as the values we meant. The real IAM and STS models drive most tests; a small
synthetic model covers what they do not use (flattened lists and maps, locationName,
floats, input timestamps and blobs, sensitive map keys, no resultWrapper)."""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, urlencode

import botocore.session
import pytest
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.model import OperationModel, ServiceModel
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from strongroom.protocol import json_codec
from strongroom.protocol.errors import ServiceError
from strongroom.protocol.model import operation_model, service_model
from strongroom.protocol.query_codec import (
    CONTENT_TYPE,
    error_body,
    error_headers,
    error_status,
    invalid_action,
    malformed_input,
    missing_action,
    modeled_error,
    operation_name,
    parse_input,
    serialize_output,
)

IAM_NS = "https://iam.amazonaws.com/doc/2010-05-08/"
STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
ACCOUNT = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/Deployer"
POLICY_ARN = f"arn:aws:iam::{ACCOUNT}:policy/ReadSecrets"
SECRET = "S3cr3t-Pa55w0rd-never-echo"
REQUEST_ID = "c6104cbe-af31-11e0-8154-cbc7ccf896c7"
CREATED = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
EXPIRES = datetime(2011, 7, 15, 23, 28, 33, 359000, tzinfo=UTC)
POLICY = (
    '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
    '"Action": ["secretsmanager:GetSecretValue"], "Resource": "*", '
    '"Condition": {"StringEquals": {"aws:PrincipalTag/team": "a&b <c> +d=e%f"}}}]}\n\t'
)


def iam(name: str) -> OperationModel:
    return operation_model("iam", name)


def sts(name: str) -> OperationModel:
    return operation_model("sts", name)


def wire(op: OperationModel, params: Mapping[str, Any]) -> bytes:
    """The form body botocore sends for ``params``, byte for byte."""
    request = create_serializer("query", include_validation=False).serialize_to_request(
        dict(params), op
    )
    prepared = AWSRequest(
        method="POST", url="https://example.com/", data=request["body"], headers=request["headers"]
    ).prepare()
    body = prepared.body
    return body.encode() if isinstance(body, str) else bytes(body)


def round_trip(op: OperationModel, params: Mapping[str, Any]) -> dict[str, Any]:
    return parse_input(op, wire(op, params))


def form(**pairs: str) -> bytes:
    return urlencode(pairs).encode()


def rejected(op: OperationModel, body: bytes, query: str = "") -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        parse_input(op, body, query)
    return caught.value


def invalid(op: OperationModel, body: bytes) -> str:
    """The message of the ValidationError ``body`` must raise."""
    error = rejected(op, body)
    assert (error.code, error.status, error.sender_fault) == ("ValidationError", 400, True)
    return error.message


def malformed(op: OperationModel, body: bytes) -> str:
    """The message of the MalformedInput ``body`` must raise."""
    error = rejected(op, body)
    assert (error.code, error.status) == ("MalformedInput", 400), error.message
    return error.message


def one_error(path: str, constraint: str, value: str | None) -> str:
    subject = "Value" if value is None else f"Value {value}"
    return (
        f"1 validation error detected: {subject} at '{path}' "
        f"failed to satisfy constraint: {constraint}"
    )


def client_parse(op: OperationModel, body: bytes, status: int = 200) -> dict[str, Any]:
    """What botocore's QueryParser makes of a response."""
    http = {"body": body, "headers": {"Content-Type": CONTENT_TYPE}, "status_code": status}
    parsed: dict[str, Any] = create_parser("query").parse(http, op.output_shape)
    return parsed


def output_round_trip(op: OperationModel, output: Mapping[str, Any] | None) -> dict[str, Any]:
    parsed = client_parse(op, serialize_output(op, output, REQUEST_ID))
    assert parsed.pop("ResponseMetadata")["RequestId"] == REQUEST_ID
    return parsed


# ------------------------------------------------------------------ synthetic model

SYNTHETIC = ServiceModel(
    {
        "metadata": {
            "apiVersion": "2020-01-01",
            "endpointPrefix": "synth",
            "protocol": "query",
            "serviceId": "Synth",
            "signatureVersion": "v4",
            "uid": "synth-2020-01-01",
            "xmlNamespace": "https://synth.example.com/doc/2020-01-01/",
        },
        "operations": {
            "Op": {
                "name": "Op",
                "http": {"method": "POST", "requestUri": "/"},
                "input": {"shape": "Everything"},
                "output": {"shape": "Everything", "resultWrapper": "OpResult"},
                "errors": [{"shape": "Boom"}, {"shape": "Gone"}],
            },
            "Bare": {
                "name": "Bare",
                "http": {"method": "POST", "requestUri": "/"},
                "input": {"shape": "BareShape"},
                "output": {"shape": "BareShape"},
            },
        },
        "shapes": {
            "Everything": {
                "type": "structure",
                "members": {
                    "Name": {"shape": "Name", "locationName": "FriendlyName"},
                    "Note": {"shape": "Plain"},
                    "Flag": {"shape": "Flag"},
                    "Count": {"shape": "Count"},
                    "Big": {"shape": "Big"},
                    "Tiny": {"shape": "Tiny"},
                    "Ratio": {"shape": "Ratio"},
                    "Weight": {"shape": "Weight"},
                    "When": {"shape": "When"},
                    "Epoch": {"shape": "Epoch"},
                    "Data": {"shape": "Data"},
                    "Secret": {"shape": "Secret"},
                    "Items": {"shape": "ItemList"},
                    "Flat": {"shape": "FlatList"},
                    "FlatNamed": {"shape": "FlatNamedList"},
                    "Attrs": {"shape": "AttrMap"},
                    "FlatAttrs": {"shape": "FlatMap"},
                    "Labels": {"shape": "Labels"},
                    "Hidden": {"shape": "HiddenMap"},
                    "Nested": {"shape": "Nested"},
                    "Matrix": {"shape": "Matrix"},
                },
            },
            "Nested": {
                "type": "structure",
                "required": ["Id"],
                "members": {
                    "Id": {"shape": "Name"},
                    "Inner": {"shape": "FlatNamedList"},
                    "Deeper": {"shape": "Nested"},
                },
            },
            "BareShape": {"type": "structure", "members": {"Name": {"shape": "Name"}}},
            "Boom": {
                "type": "structure",
                "members": {"message": {"shape": "Name"}},
                "error": {"code": "Boom", "httpStatusCode": 503},
                "exception": True,
                "fault": True,
            },
            "Gone": {
                "type": "structure",
                "members": {"message": {"shape": "Name"}},
                "exception": True,
            },
            "Name": {"type": "string", "min": 1, "max": 12, "pattern": "[a-z-]+"},
            "Flag": {"type": "boolean"},
            "Count": {"type": "integer", "min": 1, "max": 10},
            "Big": {"type": "long"},
            "Tiny": {"type": "byte"},
            "Ratio": {"type": "double", "min": 0, "max": 1},
            "Weight": {"type": "float"},
            "When": {"type": "timestamp"},
            "Epoch": {"type": "timestamp", "timestampFormat": "unixTimestamp"},
            "Data": {"type": "blob", "max": 4},
            "Secret": {"type": "string", "min": 8, "sensitive": True},
            "ItemList": {"type": "list", "member": {"shape": "Name", "locationName": "item"}},
            "FlatList": {"type": "list", "member": {"shape": "Count"}, "flattened": True},
            "FlatNamedList": {
                "type": "list",
                "member": {"shape": "Name", "locationName": "Entry"},
                "flattened": True,
            },
            "AttrMap": {
                "type": "map",
                "key": {"shape": "Name", "locationName": "AttrName"},
                "value": {"shape": "Count", "locationName": "AttrValue"},
            },
            "FlatMap": {
                "type": "map",
                "key": {"shape": "Plain"},
                "value": {"shape": "Plain"},
                "flattened": True,
            },
            "Labels": {
                "type": "map",
                "key": {"shape": "Plain"},
                "value": {"shape": "Name"},
                "max": 2,
            },
            "HiddenMap": {"type": "map", "key": {"shape": "Secret"}, "value": {"shape": "Name"}},
            "Plain": {"type": "string"},
            "Matrix": {"type": "list", "member": {"shape": "Row"}},
            "Row": {"type": "list", "member": {"shape": "Count"}, "min": 1},
        },
    },
    service_name="synth",
)
OP = SYNTHETIC.operation_model("Op")
BARE = SYNTHETIC.operation_model("Bare")

EVERYTHING: dict[str, Any] = {
    "Name": "alpha",
    "Flag": False,
    "Count": 7,
    "Big": 2**62,
    "Tiny": -128,
    "Ratio": 0.25,
    "Weight": -2.5e-7,
    "When": datetime(2021, 2, 3, 4, 5, 6, 789000, tzinfo=UTC),
    "Epoch": datetime(2022, 1, 1, 0, 0, 1, tzinfo=UTC),
    "Data": b"\x00\xff\n",
    "Secret": SECRET,
    "Items": ["a", "b-c"],
    "Flat": [3, 1, 2],
    "FlatNamed": ["x"],
    "Attrs": {"one": 1, "two": 2},
    "FlatAttrs": {"k&<": "v>\"'", "é": "ü 中"},
    "Labels": {"team": "infra"},
    "Hidden": {SECRET: "shh"},
    "Nested": {"Id": "n", "Inner": ["p", "q"], "Deeper": {"Id": "d", "Inner": []}},
    "Matrix": [[1, 2], [3]],
}


# ============================================================ requests: botocore -> us


@pytest.mark.parametrize(
    ("op", "params"),
    [
        pytest.param(
            iam("CreateUser"),
            {
                "UserName": "alice@example.com",
                "Path": "/engineering/",
                "PermissionsBoundary": POLICY_ARN,
                "Tags": [
                    {"Key": "team", "Value": "platform"},
                    {"Key": "cost center", "Value": ""},
                    {"Key": "ünïcode:/=+-@", "Value": "a b.c"},
                ],
            },
            id="CreateUser-Tags",
        ),
        pytest.param(
            iam("PutUserPolicy"),
            {"UserName": "alice", "PolicyName": "inline-1", "PolicyDocument": POLICY},
            id="PutUserPolicy",
        ),
        pytest.param(
            iam("CreatePolicy"),
            {
                "PolicyName": "ReadSecrets",
                "Path": "/",
                "PolicyDocument": POLICY,
                "Description": "Reads & writes <everything>",
                "Tags": [{"Key": "k", "Value": "v"}],
            },
            id="CreatePolicy",
        ),
        pytest.param(
            iam("ListUsers"),
            {"PathPrefix": "/engineering/", "Marker": "opaque+/=token", "MaxItems": 100},
            id="ListUsers-Marker-MaxItems",
        ),
        pytest.param(
            iam("AttachRolePolicy"),
            {"RoleName": "Deployer", "PolicyArn": POLICY_ARN},
            id="AttachRolePolicy",
        ),
        pytest.param(
            iam("CreateRole"),
            {
                "RoleName": "Deployer",
                "AssumeRolePolicyDocument": POLICY,
                "Description": "deploys",
                "MaxSessionDuration": 43200,
                "Tags": [{"Key": "a", "Value": "b"}],
            },
            id="CreateRole",
        ),
        pytest.param(
            iam("SimulatePrincipalPolicy"),
            {
                "PolicySourceArn": ROLE_ARN,
                "ActionNames": ["secretsmanager:GetSecretValue", "kms:Decrypt"],
                "ResourceArns": ["*"],
                "PolicyInputList": [POLICY],
                "ContextEntries": [
                    {
                        "ContextKeyName": "aws:SourceIp",
                        "ContextKeyValues": ["10.0.0.1", "10.0.0.2"],
                        "ContextKeyType": "ipList",
                    },
                    {
                        "ContextKeyName": "aws:MultiFactorAuthPresent",
                        "ContextKeyValues": ["true"],
                        "ContextKeyType": "boolean",
                    },
                ],
                "MaxItems": 5,
                "Marker": "m",
            },
            id="SimulatePrincipalPolicy-ContextEntries",
        ),
        pytest.param(
            iam("TagUser"),
            {"UserName": "alice", "Tags": [{"Key": str(i), "Value": "v" * i} for i in range(12)]},
            id="TagUser-12-tags",
        ),
        pytest.param(
            iam("UntagUser"), {"UserName": "alice", "TagKeys": ["a", "b"]}, id="UntagUser"
        ),
        pytest.param(
            iam("UpdateAccessKey"),
            {"UserName": "alice", "AccessKeyId": "AKIAIOSFODNN7EXAMPLE", "Status": "Inactive"},
            id="UpdateAccessKey",
        ),
        pytest.param(
            iam("CreateLoginProfile"),
            {"UserName": "alice", "Password": SECRET + " ÿ&=+", "PasswordResetRequired": True},
            id="CreateLoginProfile",
        ),
        pytest.param(
            iam("UpdateLoginProfile"),
            {"UserName": "alice", "Password": SECRET, "PasswordResetRequired": False},
            id="UpdateLoginProfile",
        ),
        pytest.param(
            iam("GetAccountAuthorizationDetails"),
            {"Filter": ["User", "Role", "LocalManagedPolicy"], "MaxItems": 1000},
            id="GetAccountAuthorizationDetails",
        ),
        pytest.param(
            sts("AssumeRole"),
            {
                "RoleArn": ROLE_ARN,
                "RoleSessionName": "ci-job_42",
                "DurationSeconds": 3600,
                "Policy": POLICY,
                "PolicyArns": [{"arn": POLICY_ARN}, {"arn": f"{POLICY_ARN}2"}],
                "Tags": [{"Key": "project", "Value": "strongroom"}],
                "TransitiveTagKeys": ["project"],
                "ExternalId": "external-id:1",
                "SerialNumber": f"arn:aws:iam::{ACCOUNT}:mfa/alice",
                "TokenCode": "123456",
                "SourceIdentity": "alice",
            },
            id="AssumeRole-Tags-PolicyArns",
        ),
        pytest.param(sts("GetCallerIdentity"), {}, id="GetCallerIdentity"),
        pytest.param(sts("GetSessionToken"), {"DurationSeconds": 900}, id="GetSessionToken"),
    ],
)
def test_botocore_requests_parse_back_to_their_parameters(
    op: OperationModel, params: dict[str, Any]
) -> None:
    assert round_trip(op, params) == params


def test_every_synthetic_shape_kind_parses_back_from_botocore() -> None:
    parsed = round_trip(OP, EVERYTHING)
    assert parsed == EVERYTHING
    assert parsed["Nested"]["Deeper"]["Inner"] == []
    assert type(parsed["Ratio"]) is float
    assert parsed["When"].tzinfo is not None


def test_the_synthetic_wire_names_are_the_ones_botocore_chose() -> None:
    """The names this codec reads are exactly botocore's (not just self-consistent)."""
    body = wire(OP, EVERYTHING).decode()
    for name in [
        "FriendlyName=alpha",  # member locationName
        "Items.item.1=a",  # list member locationName
        "Flat.1=3",  # flattened list
        "Entry.1=x",  # flattened list whose member has a locationName
        "Attrs.entry.2.AttrName=two",  # map key / value locationNames
        "Attrs.entry.2.AttrValue=2",
        "FlatAttrs.1.key=",  # flattened map
        "Nested.Entry.2=q",
        "Nested.Deeper.Inner=&",  # an empty list is sent as "A=", under its own name
        "Matrix.member.1.member.2=2",
        "Flag=false",
        "When=2021-02-03T04%3A05%3A06.789000Z",
        "Epoch=1640995201",
    ]:
        assert name in body, name


def test_lists_of_structures_come_back_in_index_order() -> None:
    body = form(
        **{
            "UserName": "alice",
            "Tags.member.3.Key": "c",
            "Tags.member.3.Value": "3",
            "Tags.member.1.Key": "a",
            "Tags.member.1.Value": "1",
            "Tags.member.10.Key": "j",
            "Tags.member.10.Value": "10",
            "Tags.member.2.Key": "b",
            "Tags.member.2.Value": "2",
        }
    )
    tags = parse_input(iam("TagUser"), body)["Tags"]
    assert [tag["Key"] for tag in tags] == ["a", "b", "c", "j"]


def test_an_empty_list_is_an_empty_list_and_an_absent_one_is_absent() -> None:
    assert round_trip(iam("CreateUser"), {"UserName": "a", "Tags": []}) == {
        "UserName": "a",
        "Tags": [],
    }
    assert "Tags" not in parse_input(iam("CreateUser"), form(UserName="a"))


def test_blank_values_are_kept_as_empty_strings() -> None:
    parsed = parse_input(OP, b"Action=Op&Note=&FriendlyName=x")
    assert parsed == {"Note": "", "Name": "x"}
    # ...and then checked like any other value.
    assert invalid(iam("ListUsers"), b"Marker=") == (
        "2 validation errors detected: "
        "Value '' at 'marker' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1; "
        "Value '' at 'marker' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [\\u0020-\\u00FF]+"
    )


def test_names_the_model_does_not_know_are_ignored() -> None:
    body = form(
        Action="GetUser",
        Version="2010-05-08",
        UserName="alice",
        Unknown="x",
        **{"X-Amz-Date": "20240101T000000Z", "Tags.member.1.Key": "ignored"},
    )
    assert parse_input(iam("GetUser"), body) == {"UserName": "alice"}


def test_unknown_members_of_a_structure_are_ignored() -> None:
    body = form(
        UserName="a",
        **{"Tags.member.1.Key": "k", "Tags.member.1.Value": "", "Tags.member.1.Colour": "blue"},
    )
    assert parse_input(iam("CreateUser"), body)["Tags"] == [{"Key": "k", "Value": ""}]


def test_a_get_request_reads_its_url_query() -> None:
    query = "Action=GetUser&Version=2010-05-08&UserName=alice"
    assert parse_input(iam("GetUser"), b"", query) == {"UserName": "alice"}
    assert operation_name(b"", query) == ("GetUser", "2010-05-08")


def test_url_query_and_body_are_read_together() -> None:
    parsed = parse_input(iam("ListUsers"), b"MaxItems=5", "Action=ListUsers&Marker=m")
    assert parsed == {"MaxItems": 5, "Marker": "m"}


def test_an_operation_without_input_ignores_the_form() -> None:
    op = iam("GetAccountSummary")
    assert op.input_shape is None
    assert parse_input(op, b"Action=GetAccountSummary&Version=2010-05-08&X=1") == {}


def test_plus_and_percent_escapes_decode_as_form_encoding() -> None:
    body = b"UserName=a&Path=%2Fx%2By%2F&PermissionsBoundary=" + quote(POLICY_ARN).encode()
    assert parse_input(iam("CreateUser"), body) == {
        "UserName": "a",
        "Path": "/x+y/",
        "PermissionsBoundary": POLICY_ARN,
    }
    assert parse_input(OP, b"Note=a+b%2Bc%26d%3De%25%E2%82%AC")["Note"] == "a b+c&d=e%€"


# ------------------------------------------------------------------ operation_name


@pytest.mark.parametrize(
    ("body", "query", "expected"),
    [
        (b"Action=CreateUser&Version=2010-05-08&UserName=a", "", ("CreateUser", "2010-05-08")),
        (b"Version=2011-06-15&Action=GetCallerIdentity", "", ("GetCallerIdentity", "2011-06-15")),
        (b"Action=ListUsers", "", ("ListUsers", None)),
        (b"UserName=a", "", (None, None)),
        (b"", "", (None, None)),
        (b"", "Action=GetUser&Version=2010-05-08", ("GetUser", "2010-05-08")),
        (b"Action=", "", ("", None)),
    ],
)
def test_operation_name(body: bytes, query: str, expected: tuple[str | None, str | None]) -> None:
    assert operation_name(body, query) == expected


def test_operation_name_reads_what_botocore_sends() -> None:
    assert operation_name(wire(sts("AssumeRole"), {"RoleArn": ROLE_ARN}), "") == (
        "AssumeRole",
        "2011-06-15",
    )


def test_operation_name_refuses_an_undecodable_form() -> None:
    with pytest.raises(ServiceError) as caught:
        operation_name(b"Action=%FF", "")
    assert (caught.value.code, caught.value.status) == ("MalformedQueryString", 404)


def test_action_errors() -> None:
    error = invalid_action("AssumeRoot", "2011-06-15")
    assert (error.code, error.status) == ("InvalidAction", 400)
    assert error.message == "Could not find operation AssumeRoot for version 2011-06-15"
    assert "NO_VERSION_SPECIFIED" in invalid_action("X", None).message
    assert (missing_action().code, missing_action().status) == ("MissingAction", 400)


# ------------------------------------------------------------- malformed forms


@pytest.mark.parametrize(
    "body",
    [
        b"UserName=%FF",  # a percent escape that is not UTF-8
        b"UserName=\xff\xfe",  # raw bytes that are not UTF-8
        b"User%C3Name=a",  # a truncated UTF-8 sequence in a name
    ],
)
def test_a_form_that_is_not_utf8_is_a_malformed_query_string(body: bytes) -> None:
    error = rejected(iam("GetUser"), body)
    assert (error.code, error.status) == ("MalformedQueryString", 404)


def test_a_name_given_twice_is_refused_rather_than_guessed() -> None:
    error = rejected(iam("GetUser"), b"UserName=alice&UserName=root")
    assert error.code == "MalformedQueryString"
    assert "UserName" in error.message and "root" not in error.message
    # ...also when one copy is in the URL query and the other in the body.
    assert rejected(iam("GetUser"), b"UserName=a", "UserName=b").code == "MalformedQueryString"


def test_empty_pairs_and_names_without_values_are_tolerated() -> None:
    assert parse_input(OP, b"&&Count=3&&Note") == {"Count": 3, "Note": ""}


# ---------------------------------------------------------------- type errors


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (b"MaxItems=abc", "maxItems"),
        (b"MaxItems=1.5", "maxItems"),
        (b"MaxItems=", "maxItems"),
        (b"MaxItems=1e3", "maxItems"),
        (b"MaxItems=+", "maxItems"),
        (b"MaxItems=%EF%BC%91", "maxItems"),  # a fullwidth digit is not a digit here
    ],
)
def test_a_non_integer_is_malformed_input(body: bytes, path: str) -> None:
    message = malformed(iam("ListUsers"), body)
    assert f"'{path}'" in message
    assert "abc" not in message


def test_integers_accept_signs_and_leading_zeros() -> None:
    assert parse_input(iam("ListUsers"), b"MaxItems=%2B007")["MaxItems"] == 7
    assert invalid(iam("ListUsers"), b"MaxItems=-0") == one_error(
        "maxItems", "Member must have value greater than or equal to 1", "'0'"
    )


@pytest.mark.parametrize(
    ("name", "value", "kind"),
    [
        ("Count", str(2**31), "integer"),
        ("Count", str(-(2**31) - 1), "integer"),
        ("Tiny", "128", "byte"),
        ("Big", str(2**63), "long"),
    ],
)
def test_integers_beyond_their_type_are_malformed(name: str, value: str, kind: str) -> None:
    message = malformed(OP, form(**{name: value}))
    assert (
        message
        == f"Number at '{name[0].lower() + name[1:]}' is outside the range of the {kind} type."
    )


def test_type_limits_themselves_are_accepted() -> None:
    parsed = parse_input(OP, form(Big=str(2**63 - 1), Tiny="127"))
    assert parsed == {"Big": 2**63 - 1, "Tiny": 127}


@pytest.mark.parametrize(
    ("text", "value"), [("true", True), ("false", False), ("1", True), ("0", False)]
)
def test_booleans_follow_xsd(text: str, value: bool) -> None:
    body = form(UserName="a", Password=SECRET, PasswordResetRequired=text)
    assert parse_input(iam("CreateLoginProfile"), body)["PasswordResetRequired"] is value


@pytest.mark.parametrize("text", ["TRUE", "True", "yes", "", "2", "t"])
def test_other_booleans_are_malformed(text: str) -> None:
    body = form(UserName="a", Password=SECRET, PasswordResetRequired=text)
    message = malformed(iam("CreateLoginProfile"), body)
    assert "'passwordResetRequired'" in message
    assert SECRET not in message


@pytest.mark.parametrize(
    ("text", "value"),
    [("0.5", 0.5), ("1", 1.0), (".25", 0.25), ("1e-1", 0.1), ("-0", -0.0), ("+1.", 1.0)],
)
def test_doubles(text: str, value: float) -> None:
    parsed = parse_input(OP, form(Ratio=text))["Ratio"]
    assert parsed == value and type(parsed) is float


def test_non_finite_floats_as_botocore_writes_them() -> None:
    assert round_trip(OP, {"Weight": math.inf}) == {"Weight": math.inf}
    assert round_trip(OP, {"Weight": -math.inf}) == {"Weight": -math.inf}
    assert math.isnan(round_trip(OP, {"Weight": math.nan})["Weight"])


@pytest.mark.parametrize("text", ["abc", "", "1_000", "inf", "nan", "0x10", "1.2.3"])
def test_other_numbers_are_malformed(text: str) -> None:
    assert "'weight'" in malformed(OP, form(Weight=text))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2021-02-03T04:05:06Z", datetime(2021, 2, 3, 4, 5, 6, tzinfo=UTC)),
        ("2021-02-03T04:05:06.5Z", datetime(2021, 2, 3, 4, 5, 6, 500000, tzinfo=UTC)),
        ("2021-02-03T05:05:06+01:00", datetime(2021, 2, 3, 4, 5, 6, tzinfo=UTC)),
        ("2021-02-03T04:05:06", datetime(2021, 2, 3, 4, 5, 6, tzinfo=UTC)),  # naive is UTC
        ("1612325106", datetime(2021, 2, 3, 4, 5, 6, tzinfo=UTC)),
        ("1612325106.25", datetime(2021, 2, 3, 4, 5, 6, 250000, tzinfo=UTC)),
        ("Wed, 03 Feb 2021 04:05:06 GMT", datetime(2021, 2, 3, 4, 5, 6, tzinfo=UTC)),
    ],
)
def test_timestamps(text: str, value: datetime) -> None:
    parsed = parse_input(OP, form(When=text))["When"]
    assert parsed == value
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize("text", ["yesterday", "", "2021-13-01T00:00:00Z", "Wed, 99 Foo"])
def test_bad_timestamps_are_malformed(text: str) -> None:
    assert "'when'" in malformed(OP, form(When=text))


def test_blobs_are_base64() -> None:
    assert parse_input(OP, form(Data="AP8K"))["Data"] == b"\x00\xff\n"
    assert parse_input(OP, form(Data=""))["Data"] == b""
    assert "'data'" in malformed(OP, form(Data="not base64!"))


def test_a_scalar_sent_as_a_structure_is_malformed() -> None:
    message = malformed(iam("GetUser"), form(**{"UserName.First": "alice"}))
    assert message == "Expected a string at 'userName' but found a structure."


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            form(UserName="a", Tags="x"),
            "Expected a list at 'tags' but found a value.",
        ),
        (
            form(UserName="a", **{"Tags.member.1": "x"}),
            "Expected a structure at 'tags.1.member' but found a value.",
        ),
        (
            form(UserName="a", **{"Tags.1.Key": "k"}),
            "Elements of the list at 'tags' are named 'member', not '1'.",
        ),
        (
            form(UserName="a", **{"Tags.member.0.Key": "k"}),
            "'0' is not a valid index at 'tags'.",
        ),
        (
            form(UserName="a", **{"Tags.member.01.Key": "k"}),
            "'01' is not a valid index at 'tags'.",
        ),
        (
            form(UserName="a", **{"Tags.member.first.Key": "k"}),
            "'first' is not a valid index at 'tags'.",
        ),
        (
            form(UserName="a", **{"Tags.member.-1.Key": "k"}),
            "'-1' is not a valid index at 'tags'.",
        ),
    ],
)
def test_misshapen_lists_are_malformed(body: bytes, message: str) -> None:
    assert malformed(iam("CreateUser"), body) == message


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ({"Attrs.entry.1.AttrName": "a"}, "Entry 1 of the map at 'attrs' has no AttrValue."),
        ({"Attrs.entry.1.AttrValue": "1"}, "Entry 1 of the map at 'attrs' has no AttrName."),
        ({"Attrs.entry.x.AttrName": "a"}, "'x' is not a valid index at 'attrs'."),
        ({"Attrs": "a"}, "Expected a map at 'attrs' but found a value."),
        ({"Nested": "a"}, "Expected a structure at 'nested' but found a value."),
        (
            {"Attrs.1.AttrName": "a", "Attrs.1.AttrValue": "1"},
            "Elements of the map at 'attrs' are named 'entry', not '1'.",
        ),
        ({"FlatAttrs.entry.1.key": "a"}, "'entry' is not a valid index at 'flatAttrs'."),
        (
            {"Attrs.entry.1.AttrName": "a", "Attrs.entry.1.AttrValue": "x"},
            "Value at 'attrs.a.member' is not an integer.",
        ),
    ],
)
def test_misshapen_maps_and_structures_are_malformed(pairs: dict[str, str], message: str) -> None:
    assert malformed(OP, form(**pairs)) == message


@pytest.mark.parametrize("name", ["Count", "Big", "Tiny"])
def test_thousands_of_digits_are_out_of_range_not_a_crash(name: str) -> None:
    # int() refuses strings over 4300 digits; the codec must answer, not raise ValueError.
    for text in ["9" * 5000, "-" + "9" * 5000, "0" * 5000 + "1" + "0" * 30]:
        assert "outside the range" in malformed(OP, form(**{name: text}))
    assert parse_input(OP, form(Count="0" * 5000 + "7")) == {"Count": 7}
    assert parse_input(OP, form(Big="-" + "0" * 5000 + "7")) == {"Big": -7}
    assert parse_input(OP, form(Tiny="-00")) == {"Tiny": 0}


def test_long_numbers_cannot_make_the_number_pattern_backtrack() -> None:
    started = time.perf_counter()
    for name in ["Weight", "When", "Count"]:
        malformed(OP, form(**{name: "1" * 200_000 + "x"}))
    assert time.perf_counter() - started < 2
    assert parse_input(OP, form(Weight="1" * 400 + ".5"))["Weight"] == float("1" * 400 + ".5")


def test_recursive_shapes_read_as_deep_as_names_go() -> None:
    body = form(
        **{
            "Nested.Id": "a",
            "Nested.Deeper.Id": "b",
            "Nested.Deeper.Deeper.Id": "c",
            "Nested.Deeper.Deeper.Entry.1": "d",
        }
    )
    assert parse_input(OP, body)["Nested"] == {
        "Id": "a",
        "Deeper": {"Id": "b", "Deeper": {"Id": "c", "Inner": ["d"]}},
    }


def test_names_deeper_than_any_model_are_refused() -> None:
    deep = "Nested." + "Deeper." * 98 + "Id"  # 100 parts: still read, to the bottom
    message = invalid(OP, form(**{deep: "z", "Nested.Id": "a"}))
    # Every Deeper but the innermost lacks its required Id: the walk went all the way.
    assert message.startswith("97 validation errors detected: ")
    error = rejected(OP, form(**{"Nested." + "Deeper." * 99 + "Id": "z"}))
    assert (error.code, error.status) == ("MalformedQueryString", 404)
    # Even a name the model does not know: nothing that deep is meant for any model.
    assert rejected(OP, form(**{"x." * 200 + "y": "z"})).code == "MalformedQueryString"


def test_type_errors_stop_before_constraints_are_checked() -> None:
    # The name is invalid too, but the unreadable integer answers first, as in Coral.
    assert malformed(iam("ListUsers"), b"PathPrefix=no-slash&MaxItems=x").startswith("Value at")


def test_a_type_error_under_a_sensitive_member_never_echoes_it() -> None:
    body = form(UserName="a", **{"Password.Secret": SECRET, "PasswordResetRequired": SECRET})
    error = rejected(iam("CreateLoginProfile"), body)
    assert SECRET not in error.message and SECRET not in repr(error)


def test_a_sensitive_map_key_is_hidden_in_type_error_paths() -> None:
    body = form(**{"Hidden.entry.1.key": SECRET, "Hidden.entry.1.value.x": "y"})
    message = malformed(OP, body)
    assert message == "Expected a string at 'hidden.*.member' but found a structure."


def test_a_plain_map_key_names_its_place_in_type_error_paths() -> None:
    body = form(**{"Labels.entry.1.key": "team", "Labels.entry.1.value.x": "y"})
    assert malformed(OP, body) == "Expected a string at 'labels.team.member' but found a structure."


# ----------------------------------------------------------------- validation


def test_validation_uses_the_query_protocols_code() -> None:
    error = rejected(iam("CreateUser"), form(UserName="bad name!"))
    assert error.code == "ValidationError"
    assert error.message == one_error(
        "userName",
        "Member must satisfy regular expression pattern: [\\w+=,.@-]+",
        "'bad name!'",
    )


def test_a_missing_required_member_is_null() -> None:
    assert invalid(iam("CreateUser"), form(Path="/")) == one_error(
        "userName", "Member must not be null", "null"
    )


def test_sts_duration_below_the_minimum_reads_as_aws_writes_it() -> None:
    # As AWS answers: "Value '600' at 'durationSeconds' failed to satisfy constraint: ..."
    message = invalid(
        sts("AssumeRole"),
        wire(
            sts("AssumeRole"), {"RoleArn": ROLE_ARN, "RoleSessionName": "s", "DurationSeconds": 600}
        ),
    )
    assert message == (
        "2 validation errors detected: "
        "Value 's' at 'roleSessionName' failed to satisfy constraint: "
        "Member must have length greater than or equal to 2; "
        "Value '600' at 'durationSeconds' failed to satisfy constraint: "
        "Member must have value greater than or equal to 900"
    )


def test_max_items_range() -> None:
    assert invalid(iam("ListUsers"), form(MaxItems="0")) == one_error(
        "maxItems", "Member must have value greater than or equal to 1", "'0'"
    )
    assert invalid(iam("ListUsers"), form(MaxItems="1001")) == one_error(
        "maxItems", "Member must have value less than or equal to 1000", "'1001'"
    )
    assert parse_input(iam("ListUsers"), form(MaxItems="1000")) == {"MaxItems": 1000}


def test_enum() -> None:
    body = form(AccessKeyId="AKIAIOSFODNN7EXAMPLE", Status="Enabled")
    assert invalid(iam("UpdateAccessKey"), body) == one_error(
        "status", "Member must satisfy enum value set: [Active, Inactive, Expired]", "'Enabled'"
    )


def test_list_element_paths_use_the_wire_index() -> None:
    params = {
        "UserName": "alice",
        "Tags": [{"Key": "ok", "Value": "v"}, {"Key": "", "Value": "x" * 257}],
    }
    assert invalid(iam("TagUser"), wire(iam("TagUser"), params)) == (
        "2 validation errors detected: "
        "Value '' at 'tags.2.member.key' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1; "
        f"Value '{'x' * 100}...' at 'tags.2.member.value' failed to satisfy constraint: "
        "Member must have length less than or equal to 256"
    )


def test_a_missing_member_inside_a_list_element() -> None:
    body = form(UserName="a", **{"Tags.member.1.Key": "k"})
    assert invalid(iam("TagUser"), body) == one_error(
        "tags.1.member.value", "Member must not be null", "null"
    )


def test_nested_list_constraints() -> None:
    params = {
        "PolicySourceArn": ROLE_ARN,
        "ActionNames": ["s3"],
        "ContextEntries": [
            {"ContextKeyName": "aws:SourceIp", "ContextKeyType": "ip"},
            {"ContextKeyName": "k", "ContextKeyType": "uuid"},
        ],
    }
    op = iam("SimulatePrincipalPolicy")
    assert invalid(op, wire(op, params)) == (
        "3 validation errors detected: "
        "Value 's3' at 'actionNames.1.member' failed to satisfy constraint: "
        "Member must have length greater than or equal to 3; "
        "Value 'k' at 'contextEntries.2.member.contextKeyName' failed to satisfy constraint: "
        "Member must have length greater than or equal to 5; "
        "Value 'uuid' at 'contextEntries.2.member.contextKeyType' failed to satisfy constraint: "
        "Member must satisfy enum value set: [string, stringList, numeric, numericList, boolean, "
        "booleanList, ip, ipList, binary, binaryList, date, dateList]"
    )


def test_list_length_constraints_count_elements() -> None:
    params = {"UserName": "a", "Tags": [{"Key": str(i), "Value": ""} for i in range(51)]}
    # A list of structures is not quoted, as a list of strings would be.
    assert invalid(iam("TagUser"), wire(iam("TagUser"), params)) == one_error(
        "tags", "Member must have length less than or equal to 50", None
    )
    keys = {"UserName": "a", "TagKeys": [str(i) for i in range(51)]}
    assert invalid(iam("UntagUser"), wire(iam("UntagUser"), keys)).startswith(
        "1 validation error detected: Value '[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, "
    )


def test_synthetic_constraint_messages() -> None:
    params = {
        "Labels": {"a": "x", "b": "y", "c": "Z"},
        "Attrs": {"ok": 11},
        "Nested": {"Id": "n", "Deeper": {"Inner": ["UPPER"]}},
        "Matrix": [[1], []],
        "Data": b"12345",
    }
    message = invalid(OP, wire(OP, params))
    assert message.startswith("7 validation errors detected: ")
    parts = message.removeprefix("7 validation errors detected: ").split("; ")
    assert parts == [
        "Value at 'data' failed to satisfy constraint: "
        "Member must have length less than or equal to 4",
        "Value '11' at 'attrs.ok.member' failed to satisfy constraint: "
        "Member must have value less than or equal to 10",
        "Value '{a=x, b=y, c=Z}' at 'labels' failed to satisfy constraint: "
        "Member must have length less than or equal to 2",
        "Value 'Z' at 'labels.c.member' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-z-]+",
        "Value null at 'nested.deeper.id' failed to satisfy constraint: Member must not be null",
        "Value 'UPPER' at 'nested.deeper.inner.1.member' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-z-]+",
        "Value '[]' at 'matrix.2.member' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1",
    ]


# ------------------------------------------------------------------ sensitivity


@pytest.mark.parametrize(
    ("op", "params", "path"),
    [
        (iam("CreateLoginProfile"), {"UserName": "a", "Password": "x" * 129 + SECRET}, "password"),
        (iam("CreateLoginProfile"), {"UserName": "a", "Password": SECRET + "\x01"}, "password"),
        (iam("UpdateLoginProfile"), {"UserName": "a", "Password": SECRET + "€"}, "password"),
        (
            iam("ChangePassword"),
            {"OldPassword": SECRET + "\x00", "NewPassword": "ok-pass"},
            "oldPassword",
        ),
    ],
)
def test_sensitive_values_are_never_echoed(
    op: OperationModel, params: dict[str, Any], path: str
) -> None:
    error = rejected(op, wire(op, params))
    assert error.code == "ValidationError"
    assert f"Value at '{path}' failed to satisfy constraint" in error.message
    assert SECRET not in error.message and SECRET not in repr(error)


def test_an_empty_password_is_withheld_too() -> None:
    message = invalid(iam("CreateLoginProfile"), form(UserName="a", Password=""))
    assert message == (
        "2 validation errors detected: "
        "Value at 'password' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1; "
        "Value at 'password' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+"
    )


def test_sensitive_map_keys_are_hidden_in_validation_paths() -> None:
    message = invalid(OP, wire(OP, {"Hidden": {SECRET: "BAD"}}))
    assert message == one_error(
        "hidden.*.member", "Member must satisfy regular expression pattern: [a-z-]+", "'BAD'"
    )
    short = invalid(OP, wire(OP, {"Hidden": {"tiny": "ok"}}))
    assert short == one_error(
        "hidden.key", "Member must have length greater than or equal to 8", None
    )


def test_a_valid_password_is_returned_to_the_handler_intact() -> None:
    password = SECRET + " \t&=+%ÿ"
    parsed = round_trip(iam("CreateLoginProfile"), {"UserName": "a", "Password": password})
    assert parsed["Password"] == password


# ------------------------------------------------------ the shared validation module


def test_json_codec_and_query_codec_share_one_validator() -> None:
    """The same violation reads the same in both protocols; only the code differs."""
    from strongroom.protocol import query_codec, validation

    assert json_codec.validate is validation.validate
    assert query_codec.validate is validation.validate
    sm = operation_model("secretsmanager", "ListSecrets")
    with pytest.raises(ServiceError) as json_error:
        json_codec.parse_input(sm, b'{"MaxResults": 0}')
    with pytest.raises(ServiceError) as query_error:
        parse_input(iam("ListUsers"), b"MaxItems=0")
    assert json_error.value.code == "ValidationException"
    assert query_error.value.code == "ValidationError"
    assert json_error.value.message.replace("maxResults", "X") == query_error.value.message.replace(
        "maxItems", "X"
    )


# ============================================================ responses: us -> botocore


def test_response_envelope_is_exactly_aws_shape() -> None:
    body = serialize_output(
        sts("GetCallerIdentity"),
        {"UserId": "AIDAEXAMPLE", "Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:user/a"},
        REQUEST_ID,
    )
    assert (
        body
        == (
            f'<GetCallerIdentityResponse xmlns="{STS_NS}">'
            "<GetCallerIdentityResult>"
            "<UserId>AIDAEXAMPLE</UserId>"
            f"<Account>{ACCOUNT}</Account>"
            f"<Arn>arn:aws:iam::{ACCOUNT}:user/a</Arn>"
            "</GetCallerIdentityResult>"
            f"<ResponseMetadata><RequestId>{REQUEST_ID}</RequestId></ResponseMetadata>"
            "</GetCallerIdentityResponse>"
        ).encode()
    )


def test_an_operation_without_output_answers_only_metadata() -> None:
    op = iam("DeleteUser")
    assert op.output_shape is None
    body = serialize_output(op, None, REQUEST_ID)
    assert (
        body
        == (
            f'<DeleteUserResponse xmlns="{IAM_NS}">'
            f"<ResponseMetadata><RequestId>{REQUEST_ID}</RequestId></ResponseMetadata>"
            "</DeleteUserResponse>"
        ).encode()
    )
    parsed = client_parse(op, body)
    assert parsed["ResponseMetadata"]["RequestId"] == REQUEST_ID
    assert set(parsed) == {"ResponseMetadata"}


def test_an_empty_output_still_writes_its_result_element() -> None:
    """botocore looks the result up by name and fails if the element is missing."""
    op = iam("ListUsers")
    body = serialize_output(op, None, REQUEST_ID)
    assert b"<ListUsersResult></ListUsersResult>" in body
    assert output_round_trip(op, None) == {}
    assert output_round_trip(op, {}) == {}


def test_the_namespace_comes_from_the_model() -> None:
    assert serialize_output(iam("DeleteUser"), None, "r").startswith(
        f'<DeleteUserResponse xmlns="{IAM_NS}">'.encode()
    )
    assert serialize_output(OP, None, "r").startswith(
        b'<OpResponse xmlns="https://synth.example.com/doc/2020-01-01/"><OpResult>'
    )


def test_there_is_no_xml_declaration() -> None:
    assert serialize_output(iam("DeleteUser"), None, "r").startswith(b"<DeleteUserResponse ")


USER = {
    "Path": "/engineering/",
    "UserName": "alice",
    "UserId": "AIDACKCEVSQ6C2EXAMPLE",
    "Arn": f"arn:aws:iam::{ACCOUNT}:user/engineering/alice",
    "CreateDate": CREATED,
    "PasswordLastUsed": datetime(2024, 5, 7, 1, 2, 3, 456000, tzinfo=UTC),
    "PermissionsBoundary": {
        "PermissionsBoundaryType": "Policy",
        "PermissionsBoundaryArn": POLICY_ARN,
    },
    "Tags": [{"Key": "team", "Value": "platform"}, {"Key": "empty", "Value": ""}],
}


@pytest.mark.parametrize(
    ("op", "output"),
    [
        pytest.param(iam("CreateUser"), {"User": USER}, id="CreateUser"),
        pytest.param(iam("GetUser"), {"User": USER}, id="GetUser"),
        pytest.param(
            iam("ListUsers"),
            {
                "Users": [USER, {**USER, "UserName": "bob", "Tags": []}],
                "IsTruncated": True,
                "Marker": "next+/=",
            },
            id="ListUsers-truncated",
        ),
        pytest.param(iam("ListUsers"), {"Users": [], "IsTruncated": False}, id="ListUsers-empty"),
        pytest.param(
            iam("CreatePolicy"),
            {
                "Policy": {
                    "PolicyName": "ReadSecrets",
                    "PolicyId": "ANPAEXAMPLE",
                    "Arn": POLICY_ARN,
                    "Path": "/",
                    "DefaultVersionId": "v1",
                    "AttachmentCount": 0,
                    "PermissionsBoundaryUsageCount": 3,
                    "IsAttachable": True,
                    "Description": "Reads & <writes>",
                    "CreateDate": CREATED,
                    "UpdateDate": CREATED,
                }
            },
            id="CreatePolicy",
        ),
        pytest.param(
            iam("CreateAccessKey"),
            {
                "AccessKey": {
                    "UserName": "alice",
                    "AccessKeyId": "AKIAIOSFODNN7EXAMPLE",
                    "Status": "Active",
                    "SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                    "CreateDate": CREATED,
                }
            },
            id="CreateAccessKey-secret-is-the-output",
        ),
        pytest.param(
            iam("GetUserPolicy"),
            {"UserName": "alice", "PolicyName": "p", "PolicyDocument": POLICY},
            id="GetUserPolicy",
        ),
        pytest.param(
            iam("GetAccountSummary"),
            {"SummaryMap": {"Users": 2, "UsersQuota": 5000, "AccountMFAEnabled": 0}},
            id="GetAccountSummary-map",
        ),
        pytest.param(
            iam("GetCredentialReport"),
            {
                "Content": b"user,arn\n<root>,x\x00\xff",
                "ReportFormat": "text/csv",
                "GeneratedTime": CREATED,
            },
            id="GetCredentialReport-blob",
        ),
        pytest.param(
            iam("SimulatePrincipalPolicy"),
            {
                "EvaluationResults": [
                    {
                        "EvalActionName": "secretsmanager:GetSecretValue",
                        "EvalResourceName": "*",
                        "EvalDecision": "allowed",
                        "MatchedStatements": [
                            {
                                "SourcePolicyId": "inline-1",
                                "SourcePolicyType": "user",
                                "StartPosition": {"Line": 1, "Column": 40},
                                "EndPosition": {"Line": 1, "Column": 181},
                            }
                        ],
                        "MissingContextValues": ["aws:SourceIp", "aws:MultiFactorAuthPresent"],
                        "EvalDecisionDetails": {
                            "IAM Policy": "allowed",
                            "Resource Policy": "implicitDeny",
                        },
                        "ResourceSpecificResults": [
                            {
                                "EvalResourceName": "arn:aws:secretsmanager:us-east-1:1:secret:x",
                                "EvalResourceDecision": "allowed",
                                "MatchedStatements": [],
                                "MissingContextValues": [],
                                "EvalDecisionDetails": {},
                            }
                        ],
                    },
                    {"EvalActionName": "kms:Decrypt", "EvalDecision": "implicitDeny"},
                ],
                "IsTruncated": False,
            },
            id="SimulatePrincipalPolicy-nested",
        ),
        pytest.param(
            iam("GetAccountAuthorizationDetails"),
            {
                "UserDetailList": [
                    {
                        "UserName": "alice",
                        "UserPolicyList": [{"PolicyName": "p", "PolicyDocument": POLICY}],
                        "GroupList": ["admins", "devs"],
                        "AttachedManagedPolicies": [
                            {"PolicyName": "ReadSecrets", "PolicyArn": POLICY_ARN}
                        ],
                        "Tags": [{"Key": "k", "Value": "v"}],
                        "CreateDate": CREATED,
                    }
                ],
                "RoleDetailList": [
                    {
                        "RoleName": "Deployer",
                        "AssumeRolePolicyDocument": POLICY,
                        "InstanceProfileList": [],
                        "RoleLastUsed": {"LastUsedDate": CREATED, "Region": "eu-west-1"},
                    }
                ],
                "Policies": [
                    {
                        "PolicyName": "ReadSecrets",
                        "PolicyVersionList": [
                            {
                                "Document": POLICY,
                                "VersionId": "v2",
                                "IsDefaultVersion": True,
                                "CreateDate": CREATED,
                            }
                        ],
                    }
                ],
                "IsTruncated": True,
                "Marker": "m",
            },
            id="GetAccountAuthorizationDetails-deep",
        ),
        pytest.param(
            sts("AssumeRole"),
            {
                "Credentials": {
                    "AccessKeyId": "ASIAIOSFODNN7EXAMPLE",
                    "SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY",
                    "SessionToken": "AQoDYXdzEPT//////////wEXAMPLE+/=",
                    "Expiration": EXPIRES,
                },
                "AssumedRoleUser": {
                    "AssumedRoleId": "AROA3XFRBF535PLBIFPI4:s3-access-example",
                    "Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/Deployer/ci",
                },
                "PackedPolicySize": 6,
                "SourceIdentity": "alice",
            },
            id="AssumeRole",
        ),
        pytest.param(
            sts("GetCallerIdentity"),
            {"UserId": "AIDAEXAMPLE", "Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:root"},
            id="GetCallerIdentity",
        ),
        pytest.param(
            sts("DecodeAuthorizationMessage"),
            {"DecodedMessage": '{"allowed":false,"context":{"action":"iam:CreateUser"}}'},
            id="DecodeAuthorizationMessage",
        ),
    ],
)
def test_outputs_read_back_through_botocore(op: OperationModel, output: dict[str, Any]) -> None:
    assert output_round_trip(op, output) == output


def test_every_synthetic_shape_kind_reads_back_through_botocore() -> None:
    # botocore's XML parser has no reader for "byte" (it would hand back the element).
    output = {key: value for key, value in EVERYTHING.items() if key != "Tiny"}
    output["Flag"] = True
    parsed = output_round_trip(OP, output)
    # A flattened list has no element of its own, so an empty one cannot be told apart
    # from an absent one: botocore reads it as absent.
    assert parsed["Nested"]["Deeper"] == {"Id": "d"}
    parsed["Nested"]["Deeper"]["Inner"] = []
    assert parsed == output


def test_synthetic_output_wire_names() -> None:
    body = serialize_output(OP, EVERYTHING, "r").decode()
    for fragment in [
        "<FriendlyName>alpha</FriendlyName>",
        "<Items><item>a</item><item>b-c</item></Items>",
        "<Flat>3</Flat><Flat>1</Flat><Flat>2</Flat>",
        "<Entry>x</Entry>",
        "<Attrs><entry><AttrName>one</AttrName><AttrValue>1</AttrValue></entry>",
        "<FlatAttrs><key>k&amp;&lt;</key><value>v&gt;\"'</value></FlatAttrs>",
        "<Nested><Id>n</Id><Entry>p</Entry><Entry>q</Entry><Deeper><Id>d</Id></Deeper></Nested>",
        "<Matrix><member><member>1</member><member>2</member></member>",
        "<Flag>false</Flag>",
        "<Epoch>1640995201</Epoch>",
        "<When>2021-02-03T04:05:06.789Z</When>",
        "<Data>AP8K</Data>",
    ]:
        assert fragment in body, fragment


def test_non_finite_and_tiny_floats() -> None:
    for value in [math.inf, -math.inf, 1e300, 5e-324, 0.1]:
        assert output_round_trip(OP, {"Weight": value}) == {"Weight": value}
    assert math.isnan(output_round_trip(OP, {"Weight": math.nan})["Weight"])
    assert b"<Weight>NaN</Weight>" in serialize_output(OP, {"Weight": math.nan}, "r")
    assert output_round_trip(OP, {"Ratio": 1}) == {"Ratio": 1.0}


def test_booleans_are_lower_case() -> None:
    body = serialize_output(iam("ListUsers"), {"Users": [], "IsTruncated": True}, "r")
    assert b"<IsTruncated>true</IsTruncated>" in body
    body = serialize_output(iam("ListUsers"), {"Users": [], "IsTruncated": False}, "r")
    assert b"<IsTruncated>false</IsTruncated>" in body


def test_none_members_are_omitted() -> None:
    body = serialize_output(
        iam("ListUsers"), {"Users": [], "IsTruncated": False, "Marker": None}, "r"
    )
    assert b"Marker" not in body
    assert output_round_trip(
        iam("ListUsers"), {"Users": [], "IsTruncated": False, "Marker": None}
    ) == {
        "Users": [],
        "IsTruncated": False,
    }


def test_members_not_in_the_model_are_not_written() -> None:
    body = serialize_output(sts("GetCallerIdentity"), {"Account": ACCOUNT, "Extra": "leak"}, "r")
    assert b"Extra" not in body and b"leak" not in body


def test_an_empty_list_is_written_as_an_empty_element() -> None:
    body = serialize_output(iam("ListUsers"), {"Users": [], "IsTruncated": False}, "r")
    assert b"<Users></Users>" in body


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (EXPIRES, "2011-07-15T23:28:33.359Z"),
        (CREATED, "2024-05-06T07:08:09Z"),
        (datetime(2024, 5, 6, 7, 8, 9, 999999, tzinfo=UTC), "2024-05-06T07:08:09.999Z"),
        (datetime(2024, 5, 6, 7, 8, 9, 999, tzinfo=UTC), "2024-05-06T07:08:09Z"),
        (
            datetime(2024, 5, 6, 9, 8, 9, tzinfo=timezone(timedelta(hours=2))),
            "2024-05-06T07:08:09Z",
        ),
        (datetime(2024, 5, 6, 7, 8, 9), "2024-05-06T07:08:09Z"),  # naive datetimes are UTC
        (1715000000, "2024-05-06T12:53:20Z"),
        (1715000000.25, "2024-05-06T12:53:20.250Z"),
    ],
)
def test_timestamps_are_iso8601_utc_with_z(value: Any, text: str) -> None:
    body = serialize_output(sts("GetSessionToken"), {"Credentials": {"Expiration": value}}, "r")
    assert f"<Expiration>{text}</Expiration>".encode() in body
    parsed = client_parse(sts("GetSessionToken"), body)
    assert parsed["Credentials"]["Expiration"] == datetime.fromisoformat(text)


def test_xml_special_characters_are_escaped_and_read_back() -> None:
    nasty = "a<b>&c\"d'e]]>f\r\ng\tz — é 中 😀"
    body = serialize_output(iam("GetUserPolicy"), {"PolicyName": "p", "PolicyDocument": nasty}, "r")
    assert b"]]>" not in body and b"<b>" not in body
    assert output_round_trip(iam("GetUserPolicy"), {"PolicyDocument": nasty}) == {
        "PolicyDocument": nasty
    }


def test_characters_xml_cannot_carry_do_not_break_the_document() -> None:
    out = output_round_trip(iam("GetUserPolicy"), {"PolicyDocument": "a\x00b\x1bc\ud800d\ufffee"})
    assert out == {"PolicyDocument": "a\ufffdb\ufffdc\ufffdd\ufffde"}


def test_an_injected_tag_cannot_forge_elements() -> None:
    forged = "</Arn><Account>999999999999</Account><Arn>"
    out = output_round_trip(sts("GetCallerIdentity"), {"Account": ACCOUNT, "Arn": forged})
    assert out == {"Account": ACCOUNT, "Arn": forged}


def test_the_request_id_is_escaped_too() -> None:
    body = serialize_output(iam("DeleteUser"), None, "<&>")
    assert b"<RequestId>&lt;&amp;&gt;</RequestId>" in body


def test_an_output_shape_without_result_wrapper_is_written_under_the_root() -> None:
    assert "resultWrapper" not in BARE.output_shape.serialization
    body = serialize_output(BARE, {"Name": "x"}, "r")
    assert body == (
        b'<BareResponse xmlns="https://synth.example.com/doc/2020-01-01/"><Name>x</Name>'
        b"<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></BareResponse>"
    )
    assert output_round_trip(BARE, {"Name": "x"}) == {"Name": "x"}


@pytest.mark.parametrize(
    ("op", "output", "fragment"),
    [
        (iam("GetUser"), {"User": {"UserName": 5}}, "expected a str"),
        (iam("GetUser"), {"User": "alice"}, "expected a mapping"),
        (iam("ListUsers"), {"Users": "alice"}, "expected a sequence"),
        (iam("ListUsers"), {"Users": [], "IsTruncated": "false"}, "expected a bool"),
        (iam("CreatePolicy"), {"Policy": {"AttachmentCount": True}}, "expected an int"),
        (iam("CreatePolicy"), {"Policy": {"CreateDate": "yesterday"}}, "a datetime or epoch"),
        (iam("GetAccountSummary"), {"SummaryMap": [1]}, "expected a mapping"),
        (iam("GetCredentialReport"), {"Content": 5}, "expected bytes"),
        (OP, {"Weight": "1.5"}, "expected a number"),
        (OP, {"Flat": "123"}, "expected a sequence"),
        (OP, {"FlatAttrs": [("a", "b")]}, "expected a mapping"),
    ],
)
def test_a_wrong_python_type_is_a_server_bug(
    op: OperationModel, output: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(TypeError, match=fragment):
        serialize_output(op, output, "r")


def test_the_type_error_never_quotes_the_value() -> None:
    with pytest.raises(TypeError) as caught:
        serialize_output(iam("CreateAccessKey"), {"AccessKey": {"SecretAccessKey": [SECRET]}}, "r")
    assert SECRET not in str(caught.value)


def test_a_secret_map_key_stays_out_of_the_type_error() -> None:
    with pytest.raises(TypeError) as caught:
        serialize_output(OP, {"Hidden": {SECRET: 5}}, "r")
    assert SECRET not in str(caught.value)
    with pytest.raises(TypeError, match="'team'"):
        serialize_output(OP, {"Labels": {"team": 5}}, "r")


def test_str_blobs_are_encoded_as_utf8() -> None:
    assert output_round_trip(iam("GetCredentialReport"), {"Content": "é"}) == {
        "Content": "é".encode()
    }


# ================================================================ errors: us -> botocore


def test_error_body_is_exactly_aws_shape() -> None:
    error = ServiceError("NoSuchEntity", "The user with name bob cannot be found.", status=404)
    assert (
        error_body(error, REQUEST_ID, service_model("iam"))
        == (
            f'<ErrorResponse xmlns="{IAM_NS}">'
            "<Error><Type>Sender</Type><Code>NoSuchEntity</Code>"
            "<Message>The user with name bob cannot be found.</Message></Error>"
            f"<RequestId>{REQUEST_ID}</RequestId>"
            "</ErrorResponse>"
        ).encode()
    )


def test_sts_errors_carry_the_sts_namespace() -> None:
    body = error_body(ServiceError("ExpiredTokenException", "expired"), "r", service_model("sts"))
    assert body.startswith(f'<ErrorResponse xmlns="{STS_NS}"><Error>'.encode())


def test_an_error_before_the_service_is_known_has_no_namespace() -> None:
    body = error_body(missing_action(), "r", None)
    assert body.startswith(b"<ErrorResponse><Error><Type>Sender</Type><Code>MissingAction</Code>")
    parsed = client_parse(iam("ListUsers"), body, 400)
    assert parsed["Error"]["Code"] == "MissingAction"


def test_server_faults_are_receiver_errors() -> None:
    error = ServiceError("ServiceFailure", "boom", status=500, sender_fault=False)
    body = error_body(error, "r", service_model("iam"))
    assert b"<Type>Receiver</Type>" in body


@pytest.mark.parametrize(
    ("service", "code", "status", "sender"),
    [
        ("iam", "NoSuchEntity", 404, True),
        ("iam", "EntityAlreadyExists", 409, True),
        ("iam", "DeleteConflict", 409, True),
        ("iam", "LimitExceeded", 409, True),
        ("iam", "ConcurrentModification", 409, True),
        ("iam", "ReportExpired", 410, True),
        ("iam", "ReportInProgress", 404, True),
        ("iam", "InvalidAuthenticationCode", 403, True),
        ("iam", "MalformedPolicyDocument", 400, True),
        ("iam", "InvalidInput", 400, True),
        ("iam", "NotSupportedService", 404, True),
        ("iam", "ServiceFailure", 500, False),
        ("iam", "PolicyEvaluation", 500, False),
        # An error shape without an "error" trait goes by its shape name, status 400.
        ("iam", "OrganizationNotFoundException", 400, True),
        ("sts", "ExpiredTokenException", 400, True),
        ("sts", "RegionDisabledException", 403, True),
        ("sts", "IDPRejectedClaim", 403, True),
        ("sts", "PackedPolicyTooLarge", 400, True),
        ("sts", "MalformedPolicyDocument", 400, True),
        # Errors common to every Query API, which no model lists.
        ("iam", "AccessDenied", 403, True),
        ("sts", "AccessDenied", 403, True),
        ("iam", "InvalidClientTokenId", 403, True),
        ("iam", "SignatureDoesNotMatch", 403, True),
        ("iam", "MissingAuthenticationToken", 403, True),
        ("iam", "ValidationError", 400, True),
        ("iam", "MalformedInput", 400, True),
        ("iam", "MalformedQueryString", 404, True),
        ("iam", "InvalidAction", 400, True),
        ("iam", "Throttling", 400, True),
        ("iam", "InternalFailure", 500, False),
        ("iam", "ServiceUnavailable", 503, False),
        ("iam", "SomethingNobodyModeled", 400, True),
    ],
)
def test_error_status_comes_from_the_model(
    service: str, code: str, status: int, sender: bool
) -> None:
    assert error_status(service_model(service), code) == status
    error = modeled_error(service_model(service), code, "m")
    assert (error.code, error.message, error.status, error.sender_fault) == (
        code,
        "m",
        status,
        sender,
    )


def test_error_status_reads_a_synthetic_models_trait() -> None:
    assert error_status(SYNTHETIC, "Boom") == 503
    assert modeled_error(SYNTHETIC, "Boom", "x").sender_fault is False
    assert error_status(SYNTHETIC, "Gone") == 400


def test_error_headers() -> None:
    assert error_headers(malformed_input("x")) == {"Content-Type": "text/xml"}
    assert CONTENT_TYPE == "text/xml"


@pytest.mark.parametrize(
    ("service", "op", "code", "status"),
    [
        ("iam", "GetUser", "NoSuchEntity", 404),
        ("iam", "CreateUser", "EntityAlreadyExists", 409),
        ("iam", "ListUsers", "AccessDenied", 403),
        ("iam", "CreateUser", "ValidationError", 400),
        ("iam", "ListUsers", "ServiceFailure", 500),
        ("sts", "AssumeRole", "ExpiredTokenException", 400),
        ("sts", "AssumeRole", "RegionDisabledException", 403),
    ],
)
def test_errors_read_back_through_botocore(service: str, op: str, code: str, status: int) -> None:
    model = service_model(service)
    message = "It went <wrong> & 'so' \"did\" this"
    error = modeled_error(model, code, message)
    body = error_body(error, REQUEST_ID, model)
    parsed = client_parse(model.operation_model(op), body, error.status)
    assert parsed["Error"]["Code"] == code
    assert parsed["Error"]["Message"] == message
    assert parsed["Error"]["Type"] == ("Sender" if status < 500 else "Receiver")
    assert parsed["ResponseMetadata"]["RequestId"] == REQUEST_ID
    assert parsed["ResponseMetadata"]["HTTPStatusCode"] == status


# ======================================================== a real botocore client, end to end


class _Raw(io.BytesIO):
    """The raw stream botocore reads a response body from."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        chunk = self.read()
        while chunk:
            yield chunk
            chunk = self.read()


Responder = Callable[[str, dict[str, Any]], Mapping[str, Any] | None]


def client(service: str, respond: Responder) -> Any:
    """A botocore client whose HTTP layer is this codec, with ``respond`` as the handler."""
    model = service_model(service)
    made = botocore.session.get_session().create_client(
        service,
        region_name="us-east-1",
        endpoint_url="http://strongroom.invalid",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"total_max_attempts": 1}, parameter_validation=False),
    )

    def send(request: Any, **_: Any) -> AWSResponse:
        body = request.body or b""
        body = body.encode() if isinstance(body, str) else bytes(body)
        query = request.url.partition("?")[2]
        headers = {"Content-Type": CONTENT_TYPE, "x-amzn-RequestId": REQUEST_ID}
        try:
            action, version = operation_name(body, query)
            assert version == model.api_version
            op = model.operation_model(action)
            output = respond(op.name, parse_input(op, body, query))
            reply, status = serialize_output(op, output, REQUEST_ID), 200
        except ServiceError as error:
            reply, status = error_body(error, REQUEST_ID, model), error.status
            headers.update(error_headers(error))
        return AWSResponse(request.url, status, headers, _Raw(reply))

    made.meta.events.register("before-send", send)
    return made


def test_boto_create_user_with_tags() -> None:
    seen: list[dict[str, Any]] = []

    def respond(op: str, params: dict[str, Any]) -> dict[str, Any]:
        seen.append(params)
        return {"User": {**USER, "UserName": params["UserName"], "Tags": params["Tags"]}}

    tags = [{"Key": "team", "Value": "a&b=c"}]
    answer = client("iam", respond).create_user(UserName="carol", Tags=tags)
    assert seen == [{"UserName": "carol", "Tags": tags}]
    assert answer["User"]["UserName"] == "carol"
    assert answer["User"]["Tags"] == tags
    assert answer["User"]["CreateDate"] == CREATED
    assert answer["ResponseMetadata"]["RequestId"] == REQUEST_ID


def test_boto_paginates_list_users_with_marker_and_max_items() -> None:
    names = [f"user-{i}" for i in range(5)]

    def respond(op: str, params: dict[str, Any]) -> dict[str, Any]:
        assert op == "ListUsers"
        start = int(params.get("Marker", "0"))
        end = start + params["MaxItems"]
        page = [{**USER, "UserName": name} for name in names[start:end]]
        if end < len(names):
            return {"Users": page, "IsTruncated": True, "Marker": str(end)}
        return {"Users": page, "IsTruncated": False}

    paginator = client("iam", respond).get_paginator("list_users")
    pages = list(paginator.paginate(PaginationConfig={"PageSize": 2}))
    assert [[user["UserName"] for user in page["Users"]] for page in pages] == [
        ["user-0", "user-1"],
        ["user-2", "user-3"],
        ["user-4"],
    ]


def test_boto_assume_role_credentials() -> None:
    def respond(op: str, params: dict[str, Any]) -> dict[str, Any]:
        assert params["DurationSeconds"] == 900
        assert params["PolicyArns"] == [{"arn": POLICY_ARN}]
        return {
            "Credentials": {
                "AccessKeyId": "ASIAEXAMPLE",
                "SecretAccessKey": SECRET,
                "SessionToken": "token+/=",
                "Expiration": EXPIRES,
            },
            "AssumedRoleUser": {"AssumedRoleId": "AROA:ci", "Arn": f"{ROLE_ARN}/ci"},
            "PackedPolicySize": 0,
        }

    answer = client("sts", respond).assume_role(
        RoleArn=ROLE_ARN,
        RoleSessionName="ci",
        DurationSeconds=900,
        PolicyArns=[{"arn": POLICY_ARN}],
    )
    assert answer["Credentials"]["SecretAccessKey"] == SECRET
    assert answer["Credentials"]["Expiration"] == EXPIRES
    assert answer["PackedPolicySize"] == 0


def test_boto_get_caller_identity() -> None:
    def respond(op: str, params: dict[str, Any]) -> dict[str, Any]:
        assert (op, params) == ("GetCallerIdentity", {})
        return {"UserId": "AIDA", "Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:user/a"}

    answer = client("sts", respond).get_caller_identity()
    assert (answer["Account"], answer["UserId"]) == (ACCOUNT, "AIDA")


def test_boto_operations_without_output() -> None:
    calls: list[tuple[str, dict[str, Any]]] = []

    def respond(op: str, params: dict[str, Any]) -> None:
        calls.append((op, params))

    iam_client = client("iam", respond)
    iam_client.update_access_key(AccessKeyId="AKIAIOSFODNN7EXAMPLE", Status="Inactive")
    iam_client.attach_role_policy(RoleName="Deployer", PolicyArn=POLICY_ARN)
    iam_client.tag_user(UserName="alice", Tags=[{"Key": "k", "Value": "v"}])
    assert calls == [
        ("UpdateAccessKey", {"AccessKeyId": "AKIAIOSFODNN7EXAMPLE", "Status": "Inactive"}),
        ("AttachRolePolicy", {"RoleName": "Deployer", "PolicyArn": POLICY_ARN}),
        ("TagUser", {"UserName": "alice", "Tags": [{"Key": "k", "Value": "v"}]}),
    ]


def test_boto_raises_the_modeled_exception_class() -> None:
    def respond(op: str, params: dict[str, Any]) -> None:
        raise modeled_error(
            service_model("iam"), "NoSuchEntity", "The user with name bob cannot be found."
        )

    iam_client = client("iam", respond)
    with pytest.raises(iam_client.exceptions.NoSuchEntityException) as caught:
        iam_client.get_user(UserName="bob")
    response = caught.value.response
    assert response["Error"]["Code"] == "NoSuchEntity"
    assert response["Error"]["Message"] == "The user with name bob cannot be found."
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_boto_sts_exception_class() -> None:
    def respond(op: str, params: dict[str, Any]) -> None:
        raise modeled_error(service_model("sts"), "ExpiredTokenException", "expired")

    sts_client = client("sts", respond)
    with pytest.raises(sts_client.exceptions.ExpiredTokenException):
        sts_client.get_caller_identity()


def test_boto_sees_our_validation_error() -> None:
    def respond(op: str, params: dict[str, Any]) -> None:
        raise AssertionError("an invalid request must not reach the handler")

    with pytest.raises(ClientError) as caught:
        client("iam", respond).list_users(MaxItems=0)
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationError"
    assert error["Message"] == one_error(
        "maxItems", "Member must have value greater than or equal to 1", "'0'"
    )
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_boto_never_sees_a_rejected_password() -> None:
    def respond(op: str, params: dict[str, Any]) -> None:
        raise AssertionError("an invalid request must not reach the handler")

    with pytest.raises(ClientError) as caught:
        client("iam", respond).create_login_profile(UserName="a", Password=SECRET + "\x07")
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value.response)


def test_boto_sees_malformed_input_for_a_bad_integer() -> None:
    def respond(op: str, params: dict[str, Any]) -> None:
        raise AssertionError("unreachable")

    with pytest.raises(ClientError) as caught:
        client("iam", respond).list_users(MaxItems="lots")
    assert caught.value.response["Error"]["Code"] == "MalformedInput"
    assert "lots" not in caught.value.response["Error"]["Message"]


def test_boto_simulate_principal_policy_context_entries() -> None:
    entries = [
        {
            "ContextKeyName": "aws:SourceIp",
            "ContextKeyValues": ["10.0.0.1", "10.0.0.2"],
            "ContextKeyType": "ipList",
        },
        {
            "ContextKeyName": "aws:CurrentTime",
            "ContextKeyValues": ["2024-01-01T00:00:00Z"],
            "ContextKeyType": "date",
        },
    ]

    def respond(op: str, params: dict[str, Any]) -> dict[str, Any]:
        assert params["ContextEntries"] == entries
        return {
            "EvaluationResults": [
                {
                    "EvalActionName": action,
                    "EvalDecision": "allowed",
                    "EvalDecisionDetails": {"IAM Policy": "allowed"},
                }
                for action in params["ActionNames"]
            ],
            "IsTruncated": False,
        }

    answer = client("iam", respond).simulate_principal_policy(
        PolicySourceArn=ROLE_ARN,
        ActionNames=["kms:Decrypt", "s3:GetObject"],
        ContextEntries=entries,
    )
    assert [r["EvalActionName"] for r in answer["EvaluationResults"]] == [
        "kms:Decrypt",
        "s3:GetObject",
    ]
    assert answer["EvaluationResults"][0]["EvalDecisionDetails"] == {"IAM Policy": "allowed"}


@pytest.mark.parametrize(
    ("code", "status"),
    [("NoSuchEntity", 404), ("EntityAlreadyExists", 409), ("DeleteConflict", 409)],
)
def test_a_service_name_builds_its_modeled_error(code: str, status: int) -> None:
    traits = [shape.metadata.get("error", {}) for shape in service_model("iam").error_shapes]
    # The model says so (no literal in IAM's code).
    assert {"code": code, "httpStatusCode": status, "senderFault": True} in traits
    error = modeled_error("iam", code, "m")
    assert (error.code, error.status, error.sender_fault) == (code, status, True)
