"""Audit events: redaction planned once per shape answers exactly as the plain walk of the
model does, sensitive members never reach an event or its record, and the event's
cheaper pieces (time, resources, the record's canonical bytes) match what they replace."""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from botocore.model import OperationModel, Shape

from strongroom.audit import events, integrity
from strongroom.audit.events import (
    CREDENTIAL_MEMBERS,
    MASK,
    MASKED_MEMBERS,
    RequestFacts,
    build_event,
    camel,
    redact,
    user_identity,
)
from strongroom.audit.log import _record
from strongroom.iam.credentials import Principal
from strongroom.protocol.model import operation_model, service_model

SERVICES = ("secretsmanager", "kms", "iam", "sts", "organizations", "cloudtrail")
MARK = "SENSITIVE-MARK-7f3a"  # every value under a sensitive shape carries it
ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:bench/secret-00042-AbCdEf"
FACTS = RequestFacts(
    "req-1", datetime(2024, 5, 1, 12, 30, 45, 999999, tzinfo=UTC), "10.0.0.1", "ua", "us-east-1"
)


def reference_redact(shape: Shape | None, value: Any) -> Any:
    """The walk redact replaces, kept as the oracle: the model's metadata read per value."""
    if shape is None or value is None:
        return None
    if shape.metadata.get("sensitive"):
        return None
    if shape.type_name == "structure" and isinstance(value, Mapping):
        members = shape.members
        kept = {}
        for name, item in value.items():
            member = members.get(name)
            if member is None or item is None or name in CREDENTIAL_MEMBERS:
                continue
            if name in MASKED_MEMBERS and member.type_name == "string":
                kept[camel(name)] = MASK
                continue
            if member.metadata.get("sensitive"):
                continue
            cleaned = reference_redact(member, item)
            if cleaned is not None:
                kept[camel(name)] = cleaned
        return kept
    if shape.type_name == "list" and isinstance(value, list):
        return [reference_redact(shape.member, item) for item in value]
    if shape.type_name == "map" and isinstance(value, Mapping):
        return {k: reference_redact(shape.value, v) for k, v in value.items()}
    if shape.type_name == "blob":
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return value


# Values of the wrong type: redact keeps what is not under a sensitive shape as it is.
JSONABLE_ODD = (None, 7, 2.5, True, "odd", ("tu", "ple"), [None, "x"], {"Unknown": 1})
ODD = (*JSONABLE_ODD, b"raw")


def sample(
    shape: Shape,
    rng: random.Random,
    odd: float,
    depth: int = 0,
    hidden: bool = False,
    odd_values: tuple[Any, ...] = ODD,
) -> Any:
    """A value of ``shape`` (every member present); now and then (``odd``) one of
    ``odd_values``, of the wrong type. Everything under a sensitive shape carries MARK."""
    hidden = hidden or bool(shape.metadata.get("sensitive"))
    if odd and rng.random() < odd:
        return rng.choice(odd_values)
    kind = shape.type_name
    if depth > 5 and kind in ("structure", "list", "map"):
        return None
    if kind == "structure":
        value = {
            name: sample(member, rng, odd, depth + 1, hidden, odd_values)
            for name, member in shape.members.items()
        }
        if odd:
            value["NotInTheModel"] = "dropped"
        return value
    if kind == "list":
        return [
            sample(shape.member, rng, odd, depth + 1, hidden, odd_values)
            for _ in range(rng.randint(0, 3))
        ]
    if kind == "map":
        return {
            f"key{n}": sample(shape.value, rng, odd, depth + 1, hidden, odd_values)
            for n in range(rng.randint(0, 3))
        }
    if kind == "timestamp":
        return datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    if kind == "blob":
        return f"{MARK}-bytes".encode() if hidden else b"\x00\x01"
    if kind in ("integer", "long"):
        return 42
    if kind in ("float", "double"):
        return 0.25
    if kind == "boolean":
        return False
    return f"{MARK}-{shape.name}" if hidden else f"v-{shape.name}"


def operations() -> list[OperationModel]:
    found: list[OperationModel] = []
    for service in SERVICES:
        model = service_model(service)
        found.extend(model.operation_model(name) for name in model.operation_names)
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_redact_answers_as_the_walk_of_the_model_for_every_operation(service: str) -> None:
    model = service_model(service)
    rng = random.Random(service)
    for name in model.operation_names:
        op = model.operation_model(name)
        for shape in (op.input_shape, op.output_shape):
            if shape is None:
                continue
            for odd in (0.0, 0.0, 0.1, 0.3):
                value = sample(shape, rng, odd)
                assert redact(shape, value) == reference_redact(shape, value), (name, odd)


def test_redact_of_odd_top_level_values() -> None:
    shape = operation_model("secretsmanager", "GetSecretValue").output_shape
    for value in (*ODD, datetime(2024, 1, 1, tzinfo=UTC), {}, {"SecretString": None}):
        assert redact(shape, value) == reference_redact(shape, value)
    assert redact(None, {"a": 1}) is None


def test_recursive_shapes_are_redacted_at_any_depth() -> None:
    # Organizations' HandshakeResource holds HandshakeResources of itself.
    op = operation_model("organizations", "DescribeHandshake")
    resource: dict[str, Any] = {"Value": "leaf", "Type": "ACCOUNT"}
    for depth in range(12):
        resource = {"Value": f"level-{depth}", "Type": "ORGANIZATION", "Resources": [resource]}
    output = {"Handshake": {"Id": "h-1", "Resources": [resource, resource]}}
    redacted = redact(op.output_shape, output)
    assert redacted == reference_redact(op.output_shape, output)
    written = orjson.dumps(redacted)
    assert written.count(b'"type":"ACCOUNT"') == 2  # the innermost level, in both
    assert b"level-" not in written and b"leaf" not in written  # HandshakeResourceValue


def test_plans_are_made_once_per_shape() -> None:
    shape = operation_model("secretsmanager", "CreateSecret").input_shape
    redact(shape, {"Name": "a"})
    plan = shape.__dict__[events._REDACTOR]
    redact(shape, {"Name": "b", "SecretString": "s"})
    assert shape.__dict__[events._REDACTOR] is plan


# ------------------------------------------------------- sensitive members stay out


def event_for(op: OperationModel, params: Any, output: Any, identity: Any = None) -> dict[str, Any]:
    return build_event(
        facts=FACTS,
        event_source="x.amazonaws.com",
        operation=op,
        operation_name=op.name,
        identity=identity,
        params=params,
        output=output,
        error_code=None,
        error_message=None,
        resources=[ARN],
        resource_type="AWS::SecretsManager::Secret",
    )


def test_no_sensitive_value_of_any_operation_reaches_the_event_or_its_record() -> None:
    rng = random.Random(7)
    for op in operations():
        for odd in (0.0, 0.1):
            params = (
                sample(op.input_shape, rng, odd, odd_values=JSONABLE_ODD) if op.input_shape else {}
            )
            output = (
                sample(op.output_shape, rng, odd, odd_values=JSONABLE_ODD)
                if op.output_shape
                else None
            )
            for read_only in (False, True):
                # responseElements are recorded for writes only; check both ways.
                event = event_for(op, params, output)
                if read_only:
                    event["responseElements"] = redact(op.output_shape, output)
                record = _record(event)
                assert MARK.encode() not in record, op.name
                assert MARK not in repr(event), op.name


@pytest.mark.parametrize(
    ("service", "operation", "params", "output", "secrets"),
    [
        (
            "secretsmanager",
            "GetSecretValue",
            {"SecretId": "app/db"},
            {"ARN": ARN, "SecretString": "hunter2-string", "SecretBinary": b"hunter2-bytes"},
            ["hunter2-string", "hunter2-bytes"],
        ),
        (
            "secretsmanager",
            "CreateSecret",
            {"Name": "app/db", "SecretString": "hunter2-string", "SecretBinary": b"hunter2-bytes"},
            {"ARN": ARN, "Name": "app/db"},
            ["hunter2-string", "hunter2-bytes"],
        ),
        (
            "secretsmanager",
            "PutSecretValue",
            {"SecretId": "app/db", "SecretString": "hunter2-string"},
            {"ARN": ARN},
            ["hunter2-string"],
        ),
        (
            "secretsmanager",
            "GetRandomPassword",
            {"PasswordLength": 20},
            {"RandomPassword": "hunter2-random"},
            ["hunter2-random"],
        ),
        (
            "iam",
            "CreateLoginProfile",
            {"UserName": "u", "Password": "hunter2-password"},
            {"LoginProfile": {"UserName": "u", "CreateDate": FACTS.time}},
            ["hunter2-password"],
        ),
        (
            "iam",
            "ChangePassword",
            {"OldPassword": "hunter2-old", "NewPassword": "hunter2-new"},
            None,
            ["hunter2-old", "hunter2-new"],
        ),
        (
            "sts",
            "AssumeRole",
            {"RoleArn": "arn:aws:iam::123456789012:role/r", "RoleSessionName": "s"},
            {
                "Credentials": {
                    "AccessKeyId": "ASIAEXAMPLE",
                    "SecretAccessKey": "hunter2-secret-key",
                    "SessionToken": "hunter2-session-token",
                    "Expiration": FACTS.time,
                }
            },
            ["hunter2-secret-key", "hunter2-session-token"],
        ),
        (
            "kms",
            "Decrypt",
            {"CiphertextBlob": b"hunter2-ciphertext"},
            {"KeyId": "k", "Plaintext": b"hunter2-plaintext"},
            ["hunter2-ciphertext", "hunter2-plaintext"],
        ),
    ],
)
def test_known_secrets_never_reach_the_record(
    service: str, operation: str, params: Any, output: Any, secrets: list[str]
) -> None:
    op = operation_model(service, operation)
    principal = Principal(
        account_id="123456789012",
        arn="arn:aws:iam::123456789012:user/alice",
        access_key_id="AKIAEXAMPLE",
    )
    event = event_for(op, params, output, user_identity(principal))
    event["responseElements"] = redact(op.output_shape, output)  # as if a write
    record = _record(event)
    line = integrity.record_line(record, "w", 1, integrity.ZERO_HASH, "0" * 64)
    for secret in secrets:
        assert secret not in repr(event)
        assert secret.encode() not in line
    assert integrity.canonical(orjson.loads(record)) == record


# ------------------------------------------------------------ the event's pieces


def test_event_time_is_what_strftime_writes() -> None:
    rng = random.Random(3)
    zones = [None, UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
    moments = [datetime(1000, 1, 1), datetime(9999, 12, 31, 23, 59, 59, 999999)]
    for _ in range(500):
        moments.append(
            datetime(
                rng.randint(1000, 9999),
                rng.randint(1, 12),
                rng.randint(1, 28),
                rng.randint(0, 23),
                rng.randint(0, 59),
                rng.randint(0, 59),
                rng.randint(0, 999999),
                tzinfo=rng.choice(zones),
            )
        )
    for moment in moments:
        assert events._event_time(moment) == moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def reference_resources(arns: list[str] | None, default_type: str) -> Any:
    return [
        {
            "accountId": arn.split(":")[4],
            "type": events.cloudtrail_resource_type(arn, default_type),
            "ARN": arn,
        }
        for arn in arns or []
        if arn.count(":") >= 5
    ] or None


@pytest.mark.parametrize(
    "arns",
    [
        None,
        [],
        [ARN],
        ["not-an-arn", "a:b:c:d:e"],
        [
            "arn:aws:iam::123456789012:role/path/r",
            "arn:aws:sts::123456789012:assumed-role/r/s",
            "arn:aws:kms:us-east-1:123456789012:alias/x",
            "arn:aws:kms:us-east-1:123456789012:key/k:with:colons",
            "arn:aws:s3:::bucket",
            "a:b:c:d:e:",
            ":::::",
            ARN,
        ],
    ],
)
def test_resources_are_as_before(arns: list[str] | None) -> None:
    for default in ("", "AWS::SecretsManager::Secret"):
        assert events.resource_elements(arns, default) == reference_resources(arns, default)
