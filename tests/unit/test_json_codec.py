"""The AWS JSON 1.1 codec, driven by the real secretsmanager model (and a small synthetic
model for shape types secretsmanager does not use in its inputs)."""

from __future__ import annotations

import base64
import math
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from botocore.model import OperationModel, ServiceModel
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from strongroom.protocol.errors import ServiceError, serialization_error, validation_error
from strongroom.protocol.json_codec import (
    error_body,
    error_headers,
    parse_input,
    serialize_output,
)
from strongroom.protocol.model import operation_model

ARN = "arn:aws:secretsmanager:us-east-1:000000000000:secret:MyApp/Db-AbCdEf"
VERSION = "EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE"
CREATED = datetime(2019, 9, 26, 21, 53, 9, 46789, tzinfo=UTC)  # 1569534789.046789
CREATED_MS = datetime(2019, 9, 26, 21, 53, 9, 46000, tzinfo=UTC)
SECRET = "S3cr3t-Pa55w0rd-never-echo"


def sm(name: str) -> OperationModel:
    return operation_model("secretsmanager", name)


def parse(op: str | OperationModel, body: dict[str, Any] | bytes) -> dict[str, Any]:
    model = sm(op) if isinstance(op, str) else op
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return parse_input(model, raw)


def rejected(op: str | OperationModel, body: dict[str, Any] | bytes) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        parse(op, body)
    return caught.value


def invalid(op: str | OperationModel, body: dict[str, Any] | bytes) -> str:
    """The message of the ValidationException ``body`` must raise."""
    error = rejected(op, body)
    assert error.code == "ValidationException", error.message
    assert error.status == 400
    return error.message


def malformed(op: str | OperationModel, body: dict[str, Any] | bytes) -> str:
    """The message of the SerializationException ``body`` must raise."""
    error = rejected(op, body)
    assert error.code == "SerializationException", error.message
    assert error.status == 400
    return error.message


def one_error(path: str, constraint: str, value: str | None) -> str:
    subject = "Value" if value is None else f"Value {value}"
    return (
        f"1 validation error detected: {subject} at '{path}' "
        f"failed to satisfy constraint: {constraint}"
    )


def client_parse(op: OperationModel, body: bytes) -> dict[str, Any]:
    """What boto3 makes of a 200 response with ``body``."""
    http = {"body": body, "headers": {}, "status_code": 200}
    parsed: dict[str, Any] = create_parser("json").parse(http, op.output_shape)
    parsed.pop("ResponseMetadata", None)
    return parsed


def client_body(op: OperationModel, params: dict[str, Any]) -> bytes:
    """The body boto3 sends for ``params``."""
    body: bytes = create_serializer("json").serialize_to_request(params, op)["body"]
    return body


# A model with the shape types and traits secretsmanager's inputs lack.
SYNTHETIC = ServiceModel(
    {
        "metadata": {
            "apiVersion": "2024-01-01",
            "protocol": "json",
            "jsonVersion": "1.1",
            "targetPrefix": "Synthetic",
            "serviceId": "Synthetic",
            "signatureVersion": "v4",
            "endpointPrefix": "synthetic",
        },
        "operations": {
            "Op": {
                "name": "Op",
                "http": {"method": "POST", "requestUri": "/"},
                "input": {"shape": "Shapes"},
                "output": {"shape": "Shapes"},
            }
        },
        "shapes": {
            "Shapes": {
                "type": "structure",
                "members": {
                    "When": {"shape": "Stamp"},
                    "Ratio": {"shape": "Ratio"},
                    "Weight": {"shape": "Weight"},
                    "Count": {"shape": "Count"},
                    "Small": {"shape": "Small"},
                    "Labels": {"shape": "Labels"},
                    "Vault": {"shape": "Vault"},
                    "Items": {"shape": "Items"},
                    "Renamed": {"shape": "Text", "locationName": "wireName"},
                    "Doc": {"shape": "Doc"},
                    "Lettered": {"shape": "Lettered"},
                    "Stamps": {"shape": "Stamps"},
                    "Keyed": {"shape": "Keyed"},
                },
            },
            "Stamp": {"type": "timestamp"},
            "Stamps": {"type": "list", "member": {"shape": "Stamp"}},
            "Ratio": {"type": "double", "min": 0, "max": 1},
            "Weight": {"type": "float"},
            "Count": {"type": "integer"},
            "Small": {"type": "byte"},
            "Labels": {
                "type": "map",
                "key": {"shape": "LabelKey"},
                "value": {"shape": "LabelValue"},
                "max": 2,
            },
            "LabelKey": {"type": "string", "min": 1, "max": 5},
            "LabelValue": {"type": "string", "max": 3},
            # A map whose keys are secret: they must stay out of paths and messages too.
            "Keyed": {"type": "map", "key": {"shape": "KeyName"}, "value": {"shape": "LabelValue"}},
            "KeyName": {"type": "string", "sensitive": True},
            # A structure marked sensitive: no member value under it may be echoed.
            "Vault": {
                "type": "structure",
                "sensitive": True,
                "members": {"Pin": {"shape": "Pin"}},
            },
            "Pin": {"type": "string", "min": 6},
            "Items": {"type": "list", "member": {"shape": "Item"}},
            "Item": {
                "type": "structure",
                "required": ["Id"],
                "members": {"Id": {"shape": "Text"}, "Note": {"shape": "Text"}},
            },
            "Text": {"type": "string"},
            "Doc": {"type": "structure", "members": {}, "document": True},
            # Java-only regex syntax: Python cannot compile it, so it is not enforced.
            "Lettered": {"type": "string", "pattern": "[\\p{L}]+"},
        },
    },
    service_name="synthetic",
)
OP = SYNTHETIC.operation_model("Op")


# ------------------------------------------------------------------ body handling


@pytest.mark.parametrize("body", [b"", b"   ", b"\n\t \r\n"])
def test_empty_or_blank_body_is_an_empty_object(body: bytes) -> None:
    assert parse("GetRandomPassword", body) == {}


def test_empty_body_still_enforces_required_members() -> None:
    assert invalid("CreateSecret", b"") == one_error("name", "Member must not be null", "null")


@pytest.mark.parametrize(
    "body",
    [b"{", b"not json", b'{"SecretId": "x",}', b"\xff\xfe", b'{"SecretId": NaN}', b"{'a': 1}"],
)
def test_invalid_json_is_a_serialization_exception(body: bytes) -> None:
    assert "not valid JSON" in malformed("GetSecretValue", body)


@pytest.mark.parametrize(
    ("body", "kind"),
    [(b"[]", "a list"), (b'"x"', "a string"), (b"3", "a number"), (b"null", "null")],
)
def test_top_level_must_be_an_object(body: bytes, kind: str) -> None:
    assert malformed("GetSecretValue", body) == (
        f"The request body must be a JSON object, not {kind}."
    )


def test_operation_without_input_shape_accepts_any_object() -> None:
    no_input = ServiceModel(
        {
            "metadata": {"protocol": "json", "jsonVersion": "1.1", "targetPrefix": "X"},
            "operations": {"Ping": {"name": "Ping", "http": {"method": "POST"}}},
            "shapes": {},
        },
        service_name="noinput",
    ).operation_model("Ping")
    assert parse_input(no_input, b'{"anything": 1}') == {}
    assert "must be a JSON object" in malformed(no_input, b"[1]")


# ---------------------------------------------------------------------- parsing


def test_create_secret_parses_to_plain_python_keyed_by_member_names() -> None:
    token = "a" * 32
    parsed = parse(
        "CreateSecret",
        {
            "Name": "MyApp/Db",
            "ClientRequestToken": token,
            "Description": "db creds",
            "SecretString": SECRET,
            "Tags": [{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": ""}],
            "AddReplicaRegions": [{"Region": "eu-west-1", "KmsKeyId": "alias/x"}],
            "ForceOverwriteReplicaSecret": False,
        },
    )
    assert parsed == {
        "Name": "MyApp/Db",
        "ClientRequestToken": token,
        "Description": "db creds",
        "SecretString": SECRET,
        "Tags": [{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": ""}],
        "AddReplicaRegions": [{"Region": "eu-west-1", "KmsKeyId": "alias/x"}],
        "ForceOverwriteReplicaSecret": False,
    }
    assert type(parsed["ForceOverwriteReplicaSecret"]) is bool


def test_unknown_members_are_dropped_silently_at_every_level() -> None:
    parsed = parse(
        "ListSecrets",
        {
            "Bogus": 1,
            "secretid": "lower-case is a different member",
            "Filters": [{"Key": "name", "Values": ["x"], "Extra": {"deep": [1, 2]}}],
        },
    )
    assert parsed == {"Filters": [{"Key": "name", "Values": ["x"]}]}


def test_null_member_is_treated_as_absent() -> None:
    assert parse("GetSecretValue", {"SecretId": "x", "VersionId": None}) == {"SecretId": "x"}
    assert invalid("GetSecretValue", {"SecretId": None}) == one_error(
        "secretId", "Member must not be null", "null"
    )


def test_parse_accepts_exactly_what_botocore_sends() -> None:
    params: dict[str, Any] = {
        "SecretId": "MyApp/Db",
        "ClientRequestToken": VERSION,
        "SecretBinary": b"\x00\x01binary\xff",
        "VersionStages": ["AWSCURRENT", "custom"],
    }
    op = sm("PutSecretValue")
    assert parse_input(op, client_body(op, params)) == params


def test_parse_accepts_botocore_timestamps_and_doubles() -> None:
    params: dict[str, Any] = {
        "When": datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC),
        "Ratio": 0.5,
        "Weight": -2.25,
        "Count": -7,
        "Renamed": "wire",
    }
    parsed = parse_input(OP, client_body(OP, params))
    assert parsed == params
    assert parsed["When"].tzinfo is not None


@pytest.mark.parametrize(
    ("op", "body", "expected_fragment"),
    [
        ("GetRandomPassword", {"PasswordLength": "32"}, "an integer at 'passwordLength'"),
        ("GetRandomPassword", {"PasswordLength": True}, "an integer at 'passwordLength'"),
        ("GetRandomPassword", {"PasswordLength": 3.5}, "an integer at 'passwordLength'"),
        ("GetRandomPassword", {"PasswordLength": [3]}, "an integer at 'passwordLength'"),
        ("GetRandomPassword", {"ExcludeNumbers": "true"}, "a boolean at 'excludeNumbers'"),
        ("GetRandomPassword", {"ExcludeNumbers": 1}, "a boolean at 'excludeNumbers'"),
        ("GetSecretValue", {"SecretId": 5}, "a string at 'secretId'"),
        ("GetSecretValue", {"SecretId": {"a": 1}}, "a string at 'secretId'"),
        ("CreateSecret", {"Name": "x", "Tags": {}}, "a list at 'tags'"),
        ("ListSecrets", {"Filters": ["name"]}, "an object at 'filters.1.member'"),
        (
            "ListSecrets",
            {"Filters": [{"Key": "name", "Values": "x"}]},
            "a list at 'filters.1.member.values'",
        ),
        (
            "ListSecrets",
            {"Filters": [{"Key": "name", "Values": ["a", None]}]},
            "a string at 'filters.1.member.values.2.member'",
        ),
        ("RotateSecret", {"SecretId": "x", "RotationRules": []}, "an object at 'rotationRules'"),
        ("CreateSecret", {"Name": "x", "SecretBinary": 12}, "base64-encoded string"),
        ("ListSecrets", {"MaxResults": 2**31}, "outside the range of the integer type"),
        ("GetRandomPassword", {"PasswordLength": 2**63}, "outside the range of the long type"),
        ("GetRandomPassword", {"PasswordLength": 1e20}, "outside the range of the long type"),
    ],
)
def test_wrong_json_types_are_serialization_exceptions_naming_the_member(
    op: str, body: dict[str, Any], expected_fragment: str
) -> None:
    assert expected_fragment in malformed(op, body)


def test_type_error_message_describes_both_sides() -> None:
    assert malformed("GetRandomPassword", {"PasswordLength": "32"}) == (
        "Expected an integer at 'passwordLength' but found a string."
    )


def test_type_errors_never_echo_the_value() -> None:
    message = malformed("CreateSecret", {"Name": "x", "SecretString": {"password": SECRET}})
    assert SECRET not in message
    assert "'secretString'" in message


def test_integral_float_is_accepted_as_an_integer() -> None:
    parsed = parse("GetRandomPassword", {"PasswordLength": 32.0})
    assert parsed == {"PasswordLength": 32}
    assert type(parsed["PasswordLength"]) is int


def test_integer_bounds_of_the_type_are_inclusive() -> None:
    assert parse(OP, {"Count": 2**31 - 1, "Small": -128}) == {"Count": 2**31 - 1, "Small": -128}
    assert "outside the range of the byte type" in malformed(OP, {"Small": 128})
    assert "outside the range of the integer type" in malformed(OP, {"Count": -(2**31) - 1})


def test_a_type_error_anywhere_wins_over_validation_errors() -> None:
    error = rejected("ListSecrets", {"MaxResults": 0, "SortOrder": "up", "Filters": [1]})
    assert error.code == "SerializationException"


# ------------------------------------------------------------------------- blobs


@pytest.mark.parametrize("data", [b"\x00", b"binary \xff\xfe data", bytes(range(256))])
def test_blob_is_base64_decoded(data: bytes) -> None:
    encoded = base64.b64encode(data).decode()
    parsed = parse("CreateSecret", {"Name": "x", "SecretBinary": encoded})
    assert parsed["SecretBinary"] == data
    assert type(parsed["SecretBinary"]) is bytes


@pytest.mark.parametrize("bad", ["not base64!", "QQ", "QQ=", "QUJD\nRA==", "YW Jj", "Zm9v-_8="])
def test_invalid_base64_is_a_serialization_exception(bad: str) -> None:
    message = malformed("CreateSecret", {"Name": "x", "SecretBinary": bad})
    assert message == "Value at 'secretBinary' is not valid base64."


def test_blob_length_is_counted_in_decoded_bytes() -> None:
    # 65536 bytes encode to ~87k characters yet are within SecretBinary's max of 65536.
    at_limit = base64.b64encode(b"x" * 65536).decode()
    assert len(parse("CreateSecret", {"Name": "x", "SecretBinary": at_limit})["SecretBinary"]) == (
        65536
    )
    over = base64.b64encode(b"x" * 65537).decode()
    assert invalid("CreateSecret", {"Name": "x", "SecretBinary": over}) == one_error(
        "secretBinary", "Member must have length less than or equal to 65536", None
    )


def test_empty_blob_violates_min_length_without_echo() -> None:
    assert invalid("CreateSecret", {"Name": "x", "SecretBinary": ""}) == one_error(
        "secretBinary", "Member must have length greater than or equal to 1", None
    )


# -------------------------------------------------------------------- timestamps


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (1569534789, datetime(2019, 9, 26, 21, 53, 9, tzinfo=UTC)),
        (1569534789.046, CREATED_MS),
        (0, datetime(1970, 1, 1, tzinfo=UTC)),
        ("2019-09-26T21:53:09.046Z", CREATED_MS),
        ("2019-09-26T23:53:09.046+02:00", CREATED_MS),
        ("2019-09-26T21:53:09.046", CREATED_MS),
    ],
)
def test_timestamps_become_aware_utc_datetimes(wire: Any, expected: datetime) -> None:
    parsed = parse(OP, {"When": wire})["When"]
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


def test_timestamps_inside_a_list_are_parsed_too() -> None:
    assert parse(OP, {"Stamps": [0, "1970-01-02T00:00:00Z"]})["Stamps"] == [
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(1970, 1, 2, tzinfo=UTC),
    ]


@pytest.mark.parametrize("bad", ["yesterday", "", "2019-13-01T00:00:00Z", 1e18])
def test_unreadable_timestamp_is_a_serialization_exception(bad: Any) -> None:
    assert malformed(OP, {"When": bad}) == "Value at 'when' is not a valid timestamp."


@pytest.mark.parametrize("bad", [True, [1], {"t": 1}])
def test_timestamp_of_wrong_json_type_is_a_serialization_exception(bad: Any) -> None:
    assert malformed(OP, {"When": bad}).startswith("Expected a timestamp at 'when'")


# ----------------------------------------------------------------------- numbers


def test_double_accepts_integers_and_botocore_non_finite_strings() -> None:
    parsed = parse(OP, {"Ratio": 1, "Weight": "-Infinity"})
    assert parsed == {"Ratio": 1.0, "Weight": -math.inf}
    assert type(parsed["Ratio"]) is float
    assert math.isnan(parse(OP, {"Weight": "NaN"})["Weight"])
    assert parse(OP, {"Weight": "Infinity"})["Weight"] == math.inf


@pytest.mark.parametrize("bad", [True, "1.5", "inf", [1.0]])
def test_double_rejects_non_numbers(bad: Any) -> None:
    assert malformed(OP, {"Weight": bad}).startswith("Expected a number at 'weight'")


def test_double_range_is_checked() -> None:
    assert invalid(OP, {"Ratio": 1.5}) == one_error(
        "ratio", "Member must have value less than or equal to 1", "'1.5'"
    )
    assert invalid(OP, {"Ratio": -0.25}) == one_error(
        "ratio", "Member must have value greater than or equal to 0", "'-0.25'"
    )


# ------------------------------------------------------------------- constraints


def test_string_min_length_matches_the_aws_message_exactly() -> None:
    assert invalid("GetSecretValue", {"SecretId": ""}) == (
        "1 validation error detected: Value '' at 'secretId' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1"
    )


def test_string_length_counts_characters_not_bytes() -> None:
    name = "é" * 512  # 1024 UTF-8 bytes, 512 characters: the max
    assert parse("CreateSecret", {"Name": name})["Name"] == name
    assert "less than or equal to 512" in invalid("CreateSecret", {"Name": name + "é"})


def test_string_max_length_echo_is_truncated() -> None:
    name = "n" * 600 + "TAIL-MARKER"
    message = invalid("CreateSecret", {"Name": name})
    assert message == one_error(
        "name", "Member must have length less than or equal to 512", "'" + "n" * 100 + "...'"
    )
    assert "TAIL-MARKER" not in message


def test_length_bounds_are_inclusive() -> None:
    assert parse("GetSecretValue", {"SecretId": "x", "VersionId": "v" * 32})["VersionId"] == (
        "v" * 32
    )
    assert parse("GetSecretValue", {"SecretId": "x", "VersionId": "v" * 64})["VersionId"] == (
        "v" * 64
    )
    assert "greater than or equal to 32" in invalid(
        "GetSecretValue", {"SecretId": "x", "VersionId": "v" * 31}
    )
    assert "less than or equal to 64" in invalid(
        "GetSecretValue", {"SecretId": "x", "VersionId": "v" * 65}
    )


@pytest.mark.parametrize(
    ("length", "constraint"),
    [
        (0, "Member must have value greater than or equal to 1"),
        (-5, "Member must have value greater than or equal to 1"),
        (4097, "Member must have value less than or equal to 4096"),
    ],
)
def test_long_range_from_get_random_password(length: int, constraint: str) -> None:
    assert invalid("GetRandomPassword", {"PasswordLength": length}) == one_error(
        "passwordLength", constraint, f"'{length}'"
    )


@pytest.mark.parametrize("length", [1, 32, 4096])
def test_long_range_accepts_its_bounds(length: int) -> None:
    assert parse("GetRandomPassword", {"PasswordLength": length}) == {"PasswordLength": length}


def test_integer_range_from_list_secrets_and_batch_get() -> None:
    assert invalid("ListSecrets", {"MaxResults": 101}) == one_error(
        "maxResults", "Member must have value less than or equal to 100", "'101'"
    )
    assert invalid("BatchGetSecretValue", {"MaxResults": 21}) == one_error(
        "maxResults", "Member must have value less than or equal to 20", "'21'"
    )


def test_list_length_is_checked_with_a_java_style_echo() -> None:
    assert invalid("BatchGetSecretValue", {"SecretIdList": []}) == one_error(
        "secretIdList", "Member must have length greater than or equal to 1", "'[]'"
    )
    ids = [f"secret-{i:02d}" for i in range(21)]
    message = invalid("BatchGetSecretValue", {"SecretIdList": ids})
    assert message.startswith("1 validation error detected: Value '[secret-00, secret-01, ")
    assert message.endswith(
        "...' at 'secretIdList' failed to satisfy constraint: "
        "Member must have length less than or equal to 20"
    )


def test_list_element_violations_carry_a_one_based_index() -> None:
    assert invalid("BatchGetSecretValue", {"SecretIdList": ["ok", "", "x" * 2049]}) == (
        "2 validation errors detected: "
        "Value '' at 'secretIdList.2.member' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1; "
        "Value '" + "x" * 100 + "...' at 'secretIdList.3.member' failed to satisfy "
        "constraint: Member must have length less than or equal to 2048"
    )


def test_list_of_structures_reports_nested_paths_enum_and_pattern() -> None:
    message = invalid(
        "ListSecrets",
        {
            "Filters": [
                {"Key": "name", "Values": ["fine"]},
                {"Key": "bogus", "Values": ["ok", "bad value%"]},
                {"Key": "all", "Values": []},
            ]
        },
    )
    assert message == (
        "3 validation errors detected: "
        "Value 'bogus' at 'filters.2.member.key' failed to satisfy constraint: "
        "Member must satisfy enum value set: "
        "[description, name, tag-key, tag-value, primary-region, owning-service, all]; "
        "Value 'bad value%' at 'filters.2.member.values.2.member' failed to satisfy "
        "constraint: Member must satisfy regular expression pattern: "
        "^\\!?[a-zA-Z0-9 :_@\\/\\+\\=\\.\\-\\!]*$; "
        "Value '[]' at 'filters.3.member.values' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1"
    )


def test_list_of_structures_is_not_echoed_when_too_long() -> None:
    filters = [{"Key": "name", "Values": [f"v{i}"]} for i in range(11)]
    assert invalid("ListSecrets", {"Filters": filters}) == one_error(
        "filters", "Member must have length less than or equal to 10", None
    )


def test_enum() -> None:
    assert invalid("ListSecrets", {"SortOrder": "up"}) == one_error(
        "sortOrder", "Member must satisfy enum value set: [asc, desc]", "'up'"
    )
    assert parse("ListSecrets", {"SortOrder": "desc", "SortBy": "name"}) == {
        "SortOrder": "desc",
        "SortBy": "name",
    }
    # Enums are case-sensitive, as on AWS.
    assert "enum value set" in invalid("ListSecrets", {"SortOrder": "ASC"})


def test_pattern_accepts_a_conforming_value() -> None:
    parsed = parse(
        "ReplicateSecretToRegions",
        {
            "SecretId": "x",
            "AddReplicaRegions": [{"Region": "us-east-1"}, {"Region": "ap-southeast-2"}],
        },
    )
    assert [r["Region"] for r in parsed["AddReplicaRegions"]] == ["us-east-1", "ap-southeast-2"]


def test_pattern_violation_inside_a_list_of_structures() -> None:
    body = {"SecretId": "x", "AddReplicaRegions": [{"Region": "US_EAST_1"}]}
    assert invalid("ReplicateSecretToRegions", body) == one_error(
        "addReplicaRegions.1.member.region",
        "Member must satisfy regular expression pattern: ^([a-z]+-)+\\d+$",
        "'US_EAST_1'",
    )


@pytest.mark.parametrize("duration", ["2hx", "x2h", "h"])
def test_pattern_must_match_the_whole_value(duration: str) -> None:
    # "[0-9]+h" is unanchored in the model; a search would accept "2hx".
    body = {"SecretId": "x", "RotationRules": {"Duration": duration}}
    assert "regular expression pattern: [0-9]+h" in invalid("RotateSecret", body)


def test_pattern_digit_class_is_ascii_only_like_java() -> None:
    body = {"SecretId": "x", "RemoveReplicaRegions": ["us-east-\u0661"]}  # ARABIC-INDIC ONE
    assert "regular expression pattern" in invalid("RemoveRegionsFromReplication", body)


def test_pattern_python_cannot_compile_is_skipped() -> None:
    assert parse(OP, {"Lettered": "123 not letters"}) == {"Lettered": "123 not letters"}


def test_schedule_expression_and_duration_accept_real_values() -> None:
    rules = {"AutomaticallyAfterDays": 30, "Duration": "12h", "ScheduleExpression": "rate(10 days)"}
    parsed = parse("RotateSecret", {"SecretId": "x", "RotationRules": rules})
    assert parsed["RotationRules"] == rules


def test_several_violations_are_counted_and_joined_in_member_order() -> None:
    message = invalid(
        "UpdateSecretVersionStage",
        {"SecretId": "", "VersionStage": "s" * 257, "MoveToVersionId": "short"},
    )
    assert message == (
        "3 validation errors detected: "
        "Value '' at 'secretId' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1; "
        "Value '" + "s" * 100 + "...' at 'versionStage' failed to satisfy constraint: "
        "Member must have length less than or equal to 256; "
        "Value 'short' at 'moveToVersionId' failed to satisfy constraint: "
        "Member must have length greater than or equal to 32"
    )


def test_missing_required_members_are_all_reported() -> None:
    assert invalid("UpdateSecretVersionStage", {"RemoveFromVersionId": "r" * 32}) == (
        "2 validation errors detected: "
        "Value null at 'secretId' failed to satisfy constraint: Member must not be null; "
        "Value null at 'versionStage' failed to satisfy constraint: Member must not be null"
    )


def test_required_members_of_nested_structures_use_the_nested_path() -> None:
    message = invalid(OP, {"Items": [{"Id": "a"}, {"Note": "no id"}]})
    assert message == one_error("items.2.member.id", "Member must not be null", "null")


def test_valid_input_passes_all_constraints() -> None:
    body = {"SecretId": "MyApp/Db", "VersionStage": "AWSCURRENT", "MoveToVersionId": VERSION}
    assert parse("UpdateSecretVersionStage", body) == body


def test_a_flood_of_violations_is_counted_but_only_the_first_twenty_listed() -> None:
    # 25 empty ids, plus the list itself exceeding 20 items.
    message = invalid("BatchGetSecretValue", {"SecretIdList": [""] * 25})
    assert message.startswith("26 validation errors detected: ")
    assert message.count("failed to satisfy constraint") == 20


# ------------------------------------------------------------------------- maps


def test_map_is_parsed_and_checked() -> None:
    assert parse(OP, {"Labels": {"a": "x", "bb": ""}}) == {"Labels": {"a": "x", "bb": ""}}
    assert invalid(OP, {"Labels": {"toolong": "v", "k": "long"}}) == (
        "2 validation errors detected: "
        "Value 'toolong' at 'labels.key' failed to satisfy constraint: "
        "Member must have length less than or equal to 5; "
        "Value 'long' at 'labels.k.member' failed to satisfy constraint: "
        "Member must have length less than or equal to 3"
    )
    assert invalid(OP, {"Labels": {"a": "1", "b": "2", "c": "3"}}) == one_error(
        "labels", "Member must have length less than or equal to 2", "'{a=1, b=2, c=3}'"
    )


def test_sensitive_map_keys_are_kept_out_of_the_path() -> None:
    message = invalid(OP, {"Keyed": {SECRET: "long"}})
    assert message == one_error(
        "keyed.*.member", "Member must have length less than or equal to 3", "'long'"
    )
    assert parse(OP, {"Keyed": {SECRET: "ok"}}) == {"Keyed": {SECRET: "ok"}}


def test_map_of_wrong_type_or_with_null_values_is_malformed() -> None:
    assert malformed(OP, {"Labels": ["a"]}) == "Expected an object at 'labels' but found a list."
    assert malformed(OP, {"Labels": {"a": None}}) == (
        "Expected a string at 'labels.a.member' but found null."
    )


# ------------------------------------------------------------------- sensitivity


def test_sensitive_string_is_never_echoed() -> None:
    huge = SECRET * 3000  # over SecretString's 65536 limit
    message = invalid("CreateSecret", {"Name": "x", "SecretString": huge})
    assert message == one_error(
        "secretString", "Member must have length less than or equal to 65536", None
    )
    assert SECRET[:8] not in message


def test_sensitive_pattern_violation_does_not_echo_the_token() -> None:
    token = SECRET + "!" * 20  # '!' is outside RotationTokenType's pattern
    message = invalid("PutSecretValue", {"SecretId": "x", "RotationToken": token})
    assert message == one_error(
        "rotationToken", "Member must satisfy regular expression pattern: ^[a-zA-Z0-9\\-]+$", None
    )
    assert SECRET not in message


def test_sensitive_and_plain_violations_in_one_message() -> None:
    message = invalid("CreateSecret", {"Name": "", "SecretString": ""})
    assert message == (
        "2 validation errors detected: "
        "Value '' at 'name' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1; "
        "Value at 'secretString' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1"
    )


def test_members_inside_a_sensitive_structure_are_never_echoed() -> None:
    message = invalid(OP, {"Vault": {"Pin": "12345"}})
    assert message == one_error(
        "vault.pin", "Member must have length greater than or equal to 6", None
    )
    assert "12345" not in message


# --------------------------------------------------------- other model features


def test_location_name_is_the_wire_key_and_member_name_the_python_key() -> None:
    assert parse(OP, {"wireName": "w", "Renamed": "ignored"}) == {"Renamed": "w"}
    assert orjson.loads(serialize_output(OP, {"Renamed": "w"})) == {"wireName": "w"}


def test_document_members_pass_through_unchanged() -> None:
    doc = {"any": [1, "two", {"three": None}], "n": 1.5}
    assert parse(OP, {"Doc": doc}) == {"Doc": doc}
    assert orjson.loads(serialize_output(OP, {"Doc": doc})) == {"Doc": doc}


# ------------------------------------------------------------------------ output


def test_output_is_compact_json_without_none_and_without_unknown_keys() -> None:
    body = serialize_output(
        sm("GetSecretValue"),
        {
            "ARN": ARN,
            "Name": "MyApp/Db",
            "VersionId": VERSION,
            "SecretString": SECRET,
            "SecretBinary": None,
            "VersionStages": ["AWSCURRENT"],
            "CreatedDate": CREATED,
            "InternalNote": "must not leak",
        },
    )
    assert body == (
        b'{"ARN":"'
        + ARN.encode()
        + b'","Name":"MyApp/Db","VersionId":"'
        + VERSION.encode()
        + b'","SecretString":"'
        + SECRET.encode()
        + b'","VersionStages":["AWSCURRENT"],'
        b'"CreatedDate":1569534789.046}'
    )
    assert b"InternalNote" not in body
    assert b"SecretBinary" not in body


def test_empty_lists_are_kept() -> None:
    body = serialize_output(
        sm("DescribeSecret"), {"Name": "x", "Tags": [], "ReplicationStatus": []}
    )
    assert orjson.loads(body) == {"Name": "x", "Tags": [], "ReplicationStatus": []}


@pytest.mark.parametrize("output", [None, {}])
def test_nothing_to_say_is_an_empty_object(output: dict[str, Any] | None) -> None:
    assert serialize_output(sm("GetSecretValue"), output) == b"{}"


def test_operation_without_output_shape_writes_an_empty_object() -> None:
    assert sm("TagResource").output_shape is None
    assert serialize_output(sm("TagResource"), {"Anything": "dropped"}) == b"{}"


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (CREATED, 1569534789.046),
        (datetime(2019, 9, 26, 21, 53, 9, 999999, tzinfo=UTC), 1569534789.999),
        (datetime(2019, 9, 26, 21, 53, 9, tzinfo=UTC), 1569534789),
        (
            datetime(2019, 9, 26, 23, 53, 9, 46000, tzinfo=timezone(timedelta(hours=2))),
            1569534789.046,
        ),
        (datetime(2019, 9, 26, 21, 53, 9, 46000), 1569534789.046),  # naive means UTC
        (datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC), -0.5),
        (1569534789, 1569534789),
        (1569534789.5, 1569534789.5),
    ],
)
def test_timestamps_are_epoch_seconds_with_millisecond_precision(value: Any, wire: float) -> None:
    body = serialize_output(sm("GetSecretValue"), {"CreatedDate": value})
    written = orjson.loads(body)["CreatedDate"]
    assert written == wire
    assert round(written, 3) == written


def test_blob_output_is_base64() -> None:
    op = sm("GetSecretValue")
    assert orjson.loads(serialize_output(op, {"SecretBinary": b"\x00\xffbin"})) == {
        "SecretBinary": base64.b64encode(b"\x00\xffbin").decode()
    }
    assert orjson.loads(serialize_output(op, {"SecretBinary": bytearray(b"ab")})) == {
        "SecretBinary": "YWI="
    }


def test_str_blob_output_is_utf8_then_base64() -> None:
    body = serialize_output(sm("GetSecretValue"), {"SecretBinary": "é"})
    assert orjson.loads(body) == {"SecretBinary": base64.b64encode("é".encode()).decode()}


def test_finite_floats_and_integers_are_written_as_numbers() -> None:
    assert serialize_output(OP, {"Weight": 0.25, "Ratio": 1, "Count": -3}) == (
        b'{"Ratio":1,"Weight":0.25,"Count":-3}'
    )


def test_non_finite_floats_are_written_as_botocore_strings() -> None:
    body = serialize_output(OP, {"Weight": math.inf, "Ratio": -math.inf})
    assert orjson.loads(body) == {"Ratio": "-Infinity", "Weight": "Infinity"}
    assert orjson.loads(serialize_output(OP, {"Weight": math.nan})) == {"Weight": "NaN"}


@pytest.mark.parametrize(
    ("output", "fragment"),
    [
        ({"CreatedDate": "yesterday"}, "CreatedDate"),
        ({"VersionStages": "AWSCURRENT"}, "VersionStages"),
        ({"VersionStages": [None]}, re.escape("VersionStages[0]")),
        ({"Name": 5}, "Name"),
        ({"SecretBinary": 5}, "SecretBinary"),
        ({"CreatedDate": True}, "CreatedDate"),
    ],
)
def test_output_of_the_wrong_python_type_is_a_server_bug(
    output: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(TypeError, match=fragment):
        serialize_output(sm("GetSecretValue"), output)


def test_output_type_errors_do_not_echo_the_value() -> None:
    with pytest.raises(TypeError) as caught:
        serialize_output(sm("GetSecretValue"), {"SecretString": SECRET.encode()})
    assert SECRET not in str(caught.value)


def test_output_type_checks_reach_nested_shapes() -> None:
    with pytest.raises(TypeError, match="RotationEnabled"):
        serialize_output(sm("DescribeSecret"), {"RotationEnabled": "yes"})
    with pytest.raises(TypeError, match="AutomaticallyAfterDays"):
        serialize_output(sm("DescribeSecret"), {"RotationRules": {"AutomaticallyAfterDays": 1.5}})
    with pytest.raises(TypeError, match="VersionIdsToStages"):
        serialize_output(sm("DescribeSecret"), {"VersionIdsToStages": [("v", ["AWSCURRENT"])]})


# ------------------------------------------------- round trips through botocore


def test_botocore_reads_get_secret_value() -> None:
    op = sm("GetSecretValue")
    output = {
        "ARN": ARN,
        "Name": "MyApp/Db",
        "VersionId": VERSION,
        "SecretBinary": b"\x00\x01\xfe\xff",
        "VersionStages": ["AWSCURRENT", "AWSPREVIOUS"],
        "CreatedDate": CREATED,
    }
    assert client_parse(op, serialize_output(op, output)) == {**output, "CreatedDate": CREATED_MS}


def test_botocore_reads_describe_secret_with_nested_shapes() -> None:
    op = sm("DescribeSecret")
    output = {
        "ARN": ARN,
        "Name": "MyApp/Db",
        "Description": "db creds",
        "RotationEnabled": True,
        "RotationRules": {"AutomaticallyAfterDays": 30, "Duration": "2h"},
        "LastChangedDate": CREATED_MS,
        "DeletedDate": None,
        "Tags": [{"Key": "env", "Value": "prod"}],
        "VersionIdsToStages": {VERSION: ["AWSCURRENT"], "v" * 32: ["AWSPREVIOUS"]},
        "ReplicationStatus": [
            {"Region": "eu-west-1", "Status": "InSync", "LastAccessedDate": CREATED_MS}
        ],
    }
    parsed = client_parse(op, serialize_output(op, output))
    assert parsed == {k: v for k, v in output.items() if v is not None}


def test_botocore_reads_list_secrets_and_batch_get() -> None:
    op = sm("ListSecrets")
    output = {
        "SecretList": [
            {"ARN": ARN, "Name": "a", "CreatedDate": CREATED_MS, "SecretVersionsToStages": {}},
            {"ARN": ARN, "Name": "b", "Tags": []},
        ],
        "NextToken": "tok",
    }
    assert client_parse(op, serialize_output(op, output)) == output

    batch = sm("BatchGetSecretValue")
    batch_output = {
        "SecretValues": [
            {"ARN": ARN, "Name": "a", "SecretString": SECRET, "CreatedDate": CREATED_MS}
        ],
        "Errors": [
            {"SecretId": "gone", "ErrorCode": "ResourceNotFoundException", "Message": "nope"}
        ],
    }
    assert client_parse(batch, serialize_output(batch, batch_output)) == batch_output


def test_botocore_reads_get_random_password() -> None:
    op = sm("GetRandomPassword")
    assert client_parse(op, serialize_output(op, {"RandomPassword": SECRET})) == {
        "RandomPassword": SECRET
    }


def test_botocore_reads_an_empty_object_for_no_output() -> None:
    assert client_parse(sm("TagResource"), serialize_output(sm("TagResource"), None)) == {}


# ------------------------------------------------------------------------ errors


def test_error_body_and_headers_are_the_aws_json_shape() -> None:
    error = ServiceError("ResourceNotFoundException", "Secrets Manager can't find the secret.")
    assert error_body(error) == (
        b'{"__type":"ResourceNotFoundException",'
        b'"Message":"Secrets Manager can\'t find the secret."}'
    )
    assert error_headers(error) == {
        "x-amzn-ErrorType": "ResourceNotFoundException",
        "Content-Type": "application/x-amz-json-1.1",
    }


@pytest.mark.parametrize(
    "error",
    [
        ServiceError("ResourceNotFoundException", 'No secret named "é/ü" \\ here.'),
        ServiceError("InternalServiceError", "Try again.", status=500, sender_fault=False),
        validation_error("1 validation error detected: Value '' at 'secretId' ..."),
        serialization_error("The request body is not valid JSON (at character 1)."),
    ],
)
def test_botocore_reads_the_error_code_and_message(error: ServiceError) -> None:
    http = {"body": error_body(error), "headers": error_headers(error), "status_code": error.status}
    parsed = create_parser("json").parse(http, None)
    assert parsed["Error"]["Code"] == error.code
    assert parsed["Error"]["Message"] == error.message
    assert parsed["ResponseMetadata"]["HTTPStatusCode"] == error.status


def test_validation_errors_from_parse_input_survive_the_error_round_trip() -> None:
    error = rejected("GetSecretValue", {"SecretId": ""})
    http = {"body": error_body(error), "headers": error_headers(error), "status_code": 400}
    parsed = create_parser("json").parse(http, None)
    assert parsed["Error"] == {"Code": "ValidationException", "Message": error.message}


# ------------------------------------------- plans: worked out once, recursion, paths

# A recursive input shape (none of the served JSON inputs has one; Organizations' outputs do).
TREE = ServiceModel(
    {
        "metadata": {
            "apiVersion": "2024-01-01",
            "protocol": "json",
            "jsonVersion": "1.1",
            "targetPrefix": "Tree",
            "serviceId": "Tree",
            "signatureVersion": "v4",
            "endpointPrefix": "tree",
        },
        "operations": {
            "Plant": {
                "name": "Plant",
                "http": {"method": "POST", "requestUri": "/"},
                "input": {"shape": "Node"},
                "output": {"shape": "Node"},
            }
        },
        "shapes": {
            "Node": {
                "type": "structure",
                "required": ["Name"],
                "members": {
                    "Name": {"shape": "Name"},
                    "Children": {"shape": "Nodes"},
                    "Labels": {"shape": "Labels"},
                },
            },
            "Nodes": {"type": "list", "member": {"shape": "Node"}, "max": 3},
            "Labels": {"type": "map", "key": {"shape": "Name"}, "value": {"shape": "Count"}},
            "Name": {"type": "string", "min": 2, "pattern": "[a-z]+"},
            "Count": {"type": "integer", "max": 9},
        },
    },
    service_name="tree",
)
PLANT = TREE.operation_model("Plant")


def tree(depth: int, leaf: dict[str, Any]) -> dict[str, Any]:
    node = leaf
    for _ in range(depth):
        node = {"Name": "inner", "Children": [{"Name": "sibling"}, node]}
    return node


def test_a_recursive_input_is_decoded_and_checked_at_any_depth() -> None:
    body = tree(6, {"Name": "leaf", "Labels": {"ab": 3}})
    assert parse(PLANT, body) == body
    message = invalid(PLANT, tree(3, {"Name": "X", "Labels": {"ok": 10}}))
    deep = "children.2.member.children.2.member.children.2.member"
    assert message == (
        "3 validation errors detected: "
        f"Value 'X' at '{deep}.name' failed to satisfy constraint: "
        "Member must have length greater than or equal to 2; "
        f"Value 'X' at '{deep}.name' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-z]+; "
        f"Value '10' at '{deep}.labels.ok.member' failed to satisfy constraint: "
        "Member must have value less than or equal to 9"
    )
    assert malformed(PLANT, tree(4, {"Name": "leaf", "Children": [None]})) == (
        "Expected an object at "
        "'children.2.member.children.2.member.children.2.member.children.2.member"
        ".children.1.member' but found null."
    )
    missing = invalid(PLANT, tree(2, {"Children": []}))
    assert missing == one_error(
        "children.2.member.children.2.member.name", "Member must not be null", "null"
    )


def test_a_recursive_output_is_written_at_any_depth() -> None:
    body = tree(8, {"Name": "leaf", "Labels": {"ab": 3}})
    assert orjson.loads(serialize_output(PLANT, body)) == body
    op = operation_model("organizations", "DescribeHandshake")
    resource: dict[str, Any] = {"Value": "leaf", "Type": "ACCOUNT"}
    for depth in range(10):
        resource = {"Value": f"v{depth}", "Type": "ORGANIZATION", "Resources": [resource]}
    output = {"Handshake": {"Id": "h-1", "Resources": [resource]}}
    assert client_parse(op, serialize_output(op, output)) == output


@pytest.mark.parametrize(
    ("output", "message"),
    [
        (["not", "a", "mapping"], "Node: expected a mapping, got list"),
        ({"Name": 5}, "Node.Name: expected a str, got int"),
        ({"Children": "x"}, "Node.Children: expected a sequence, got str"),
        (
            {"Children": [{"Name": "a"}, {"Children": [{"Name": b"x"}]}]},
            "Node.Children[1].Children[0].Name: expected a str, got bytes",
        ),
        ({"Labels": {"a": 1, "b": True}}, "Node.Labels['b']: expected an int, got bool"),
        ({"Labels": {7: 1}}, "Node.Labels.<key>: expected a str, got int"),
        (
            tree(3, {"Labels": {"k": "1"}}),
            "Node.Children[1].Children[1].Children[1].Labels['k']: expected an int, got str",
        ),
    ],
)
def test_output_type_errors_name_the_exact_place(output: Any, message: str) -> None:
    with pytest.raises(TypeError) as caught:
        serialize_output(PLANT, output)
    assert str(caught.value) == message


def test_exact_paths_of_output_type_errors_in_a_real_model() -> None:
    with pytest.raises(TypeError) as caught:
        serialize_output(sm("GetSecretValue"), {"VersionStages": ["AWSCURRENT", None]})
    assert (
        str(caught.value) == "GetSecretValueResponse.VersionStages[1]: expected a str, got NoneType"
    )
    with pytest.raises(TypeError) as caught:
        serialize_output(
            sm("DescribeSecret"), {"VersionIdsToStages": {"v1": ["AWSCURRENT"], "v2": "AWSPENDING"}}
        )
    assert str(caught.value) == (
        "DescribeSecretResponse.VersionIdsToStages['v2']: expected a sequence, got str"
    )


def test_each_shape_is_planned_once_and_the_plans_are_reused() -> None:
    op = sm("GetSecretValue")
    parse(op, {"SecretId": "a"})
    serialize_output(op, {"Name": "a"})
    held = dict(op.input_shape.__dict__), dict(op.output_shape.__dict__)
    parse(op, {"SecretId": "b", "VersionStage": "AWSCURRENT"})
    serialize_output(op, {"Name": "b", "VersionStages": ["AWSCURRENT"]})
    for before, shape in zip(held, (op.input_shape, op.output_shape), strict=True):
        for key, plan in before.items():
            if key.startswith("_strongroom_"):
                assert shape.__dict__[key] is plan
