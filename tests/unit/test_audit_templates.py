"""Records rendered from templates (audit/templates.py) are byte for byte the canonical
form of the same events built as dicts, for every kind of caller, and a template is never
used where it would write something else (cross-account copies, values that are not plain
JSON)."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from strongroom.audit.derived import OnBehalf
from strongroom.audit.events import (
    RequestFacts,
    build_event,
    build_on_behalf_event,
    principal_identity,
)
from strongroom.audit.integrity import canonical
from strongroom.audit.log import AuditLog, AuditWriteError
from strongroom.audit.signing import AuditSigningKey, read_public_key, write_public_key
from strongroom.audit.templates import OnBehalfRecords, RecordTemplate, RequestRecords
from strongroom.audit.verify import verify_audit
from strongroom.clock import ManualClock
from strongroom.protocol.model import operation_model
from strongroom.types import Principal

ACCOUNT = "111122223333"
SECRET = f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:app/db-AbCdEf"
KEY = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
OTHER_KEY = "arn:aws:kms:eu-west-1:444455556666:key/0000abcd-12ab-34cd-56ef-1234567890ab"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

PRINCIPALS = {
    "user": Principal(
        ACCOUNT, f"arn:aws:iam::{ACCOUNT}:user/alice", "AKIAEXAMPLE", unique_id="AIDAEXAMPLE"
    ),
    "root": Principal(ACCOUNT, f"arn:aws:iam::{ACCOUNT}:root", "AKIAROOT", kind="root"),
    "role-session": Principal(
        ACCOUNT,
        f"arn:aws:sts::{ACCOUNT}:assumed-role/app/s\u00e9ance-1",
        "ASIAEXAMPLE",
        kind="assumed-role",
        identity_arn=f"arn:aws:iam::{ACCOUNT}:role/app",
        source_identity='qu"ote\\ \u2028 \U0001f511',
        session_token=True,
        unique_id="AROAEXAMPLE:s\u00e9ance-1",
        token_issued_ms=1_765_000_000_000,
        mfa_authenticated_ms=1_765_000_000_000,
    ),
    "federated": Principal(
        ACCOUNT,
        f"arn:aws:sts::{ACCOUNT}:federated-user/bob",
        "ASIAFED",
        kind="federated-user",
        identity_arn=f"arn:aws:iam::{ACCOUNT}:user/bob",
        session_token=True,
        unique_id=f"{ACCOUNT}:bob",
        token_issued_ms=1_765_000_000_000,
    ),
}


def _facts(second: int = 1, region: str = "eu-west-1") -> RequestFacts:
    return RequestFacts(
        "5d0c1c3e-0000-4000-8000-000000000001",
        datetime(2026, 12, 7, 12, 0, second, tzinfo=UTC),
        "10.0.0.7",
        "aws-cli/2.15",
        region,
    )


def _read_event(principal: Principal, facts: RequestFacts) -> dict[str, Any]:
    return build_event(
        facts=facts,
        event_source="secretsmanager.amazonaws.com",
        operation=operation_model("secretsmanager", "GetSecretValue"),
        operation_name="GetSecretValue",
        identity=principal_identity(principal),
        params={"SecretId": "app/db"},
        output={"ARN": SECRET, "Name": "app/db", "SecretString": "never written"},
        error_code=None,
        error_message=None,
        resources=[SECRET],
    )


def _decrypt(version: str = "v-1", key: str = KEY, **extra: Any) -> OnBehalf:
    context = {"SecretARN": SECRET, "SecretVersionId": version}
    return OnBehalf(
        "secretsmanager.amazonaws.com",
        "kms.amazonaws.com",
        "Decrypt",
        {"keyId": key, "encryptionContext": context, **extra},
        (key,),
    )


def _ids(record: bytes) -> tuple[str, str]:
    event = orjson.loads(record)
    return event["requestID"], event["eventID"]


def _as_built(record: bytes, facts: RequestFacts, event: dict[str, Any], call: OnBehalf) -> bytes:
    """The canonical form of the dict build_on_behalf_event makes with ``record``'s ids."""
    return canonical(build_on_behalf_event(facts, event, call, _ids(record)))


@pytest.mark.parametrize("kind", sorted(PRINCIPALS))
def test_rendered_records_are_the_built_ones_byte_for_byte(kind: str) -> None:
    principal = PRINCIPALS[kind]
    records = OnBehalfRecords()
    seen: set[str] = set()
    for turn, version in enumerate(["v-1", "v-1", "v-2", 'v-"3\u00e9'], start=1):
        facts = _facts(second=turn)
        event = _read_event(principal, facts)
        call = _decrypt(version, encryptionAlgorithm="SYMMETRIC_DEFAULT")
        record = records.render(facts, event, call, principal)
        assert record is not None
        assert record == _as_built(record, facts, event, call)
        request_id, event_id = _ids(record)
        assert UUID.match(request_id) and UUID.match(event_id)
        assert {request_id, event_id}.isdisjoint(seen)  # new ids every time
        seen |= {request_id, event_id}
        assert orjson.loads(record)["eventTime"] == event["eventTime"]
    assert len(records) == 1  # one template served every version and time


def test_a_template_per_caller_region_and_call() -> None:
    records = OnBehalfRecords()
    user, root = PRINCIPALS["user"], PRINCIPALS["root"]
    for principal, region, call in [
        (user, "eu-west-1", _decrypt()),
        (root, "eu-west-1", _decrypt()),
        (user, "us-east-1", _decrypt()),
        (user, "eu-west-1", _decrypt()._replace(event_name="GenerateDataKey")),
    ]:
        facts = _facts(region=region)
        event = _read_event(principal, facts)
        record = records.render(facts, event, call, principal)
        assert record is not None
        assert record == _as_built(record, facts, event, call)
    assert len(records) == 4


def test_cross_account_calls_are_left_to_the_dict_and_its_copies() -> None:
    records = OnBehalfRecords()
    principal = PRINCIPALS["user"]
    facts = _facts()
    event = _read_event(principal, facts)
    call = _decrypt(key=OTHER_KEY)
    assert records.render(facts, event, call, principal) is None
    assert records.render(facts, event, call, principal) is None  # remembered, still None
    assert len(records) == 1


def test_parameters_that_are_not_plain_json_are_left_to_the_dict() -> None:
    records = OnBehalfRecords()
    principal = PRINCIPALS["user"]
    facts = _facts()
    event = _read_event(principal, facts)
    assert records.render(facts, event, _decrypt(), principal) is not None
    odd = _decrypt(when=datetime(2026, 1, 1, tzinfo=UTC))  # normalize's round trip decides
    assert records.render(facts, event, odd, principal) is None


def test_templates_are_bounded() -> None:
    records = OnBehalfRecords(capacity=3)
    for index in range(7):
        principal = Principal(ACCOUNT, f"arn:aws:iam::{ACCOUNT}:user/u{index}", f"AKIA{index}")
        facts = _facts()
        event = _read_event(principal, facts)
        record = records.render(facts, event, _decrypt(), principal)
        assert record is not None
        assert record == _as_built(record, facts, event, _decrypt())
        assert len(records) <= 3


def test_record_template_cuts_each_hole_once_in_record_order() -> None:
    event = {"b": "x", "a": {"deep": [1, "\u00e9"]}, "c": "y", "d": None}
    template = RecordTemplate(event, texts=("c",), values=("a", "d"))
    assert template.holes == ("a", "c", "d")
    rendered = template.render([b'{"z":1}', b"text", b"[true]"])
    assert orjson.loads(rendered) == {"a": {"z": 1}, "b": "x", "c": "text", "d": [True]}
    assert template.render([orjson.dumps(event["a"]), b"y", b"null"]) == canonical(event)
    with pytest.raises(ValueError):
        template.render([b"1", b"2"])
    with pytest.raises(ValueError):
        RecordTemplate(event, texts=("a",), values=("a",))
    with pytest.raises(ValueError):
        RecordTemplate(event, texts=("missing",), values=())
    with pytest.raises(ValueError):  # the marker's text inside another member: not cut
        RecordTemplate({"a": "x", "b": "\x000"}, texts=("a",), values=())


def test_the_log_writes_a_rendered_record_as_the_dict_would_be_and_verify_agrees(
    tmp_path: Path,
) -> None:
    principal = PRINCIPALS["role-session"]
    facts = _facts()
    event = _read_event(principal, facts)
    call = _decrypt()
    rendered = OnBehalfRecords().render(facts, event, call, principal)
    assert rendered is not None
    built = build_on_behalf_event(facts, event, call, _ids(rendered))
    lines = []
    for name, records in (("rendered", [event, rendered]), ("built", [event, built])):
        directory = tmp_path / name
        key = AuditSigningKey.generate()
        clock = ManualClock(datetime(2026, 12, 7, 12, 0, tzinfo=UTC))
        log = AuditLog(directory, key, clock=clock, writer="20261207T120000Z-1-0a1b2c3d")
        asyncio.run(log.write_many_async(records))
        log.close()
        write_public_key(directory, key)
        result = verify_audit(directory, read_public_key(directory / "signing-key.pub"))
        assert result.ok, [str(problem) for problem in result.errors]
        (log_file,) = directory.glob("logs/*/*.jsonl")
        lines.append(log_file.read_bytes())
    assert lines[0] == lines[1]


def test_the_log_refuses_bytes_of_another_type(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, AuditSigningKey.generate())
    try:
        with pytest.raises(AuditWriteError):
            log.write(bytearray(b"{}"))  # type: ignore[arg-type]
        with pytest.raises(AuditWriteError):
            log.write(memoryview(b"{}"))  # type: ignore[arg-type]
    finally:
        log.close()


# --- request records -------------------------------------------------------------------------

OTHER_SECRET = "arn:aws:secretsmanager:eu-west-1:444455556666:secret:shared-XyZ123"
AGENTS = ["aws-cli/2.15", 'Boto3/1.44 md/"quoted" \u00e9\u2028 \\', ""]


def _request_record(
    records: RequestRecords,
    principal: Principal,
    facts: RequestFacts,
    service: str,
    operation_name: str,
    params: dict[str, Any],
    output: dict[str, Any] | None,
    resources: list[str],
    event_source: str | None = None,
) -> tuple[bytes | None, bytes]:
    """What ``records`` renders for the request, and the canonical form of the same record
    built as a dict (with the same ids)."""
    source = event_source or f"{service}.amazonaws.com"
    operation = operation_model(service, operation_name)
    event_id = f"0b0e7c4a-0000-4000-8000-{len(records):012d}"
    rendered = records.render(
        facts, principal, source, operation, operation_name, params, output, resources, "", event_id
    )
    built = build_event(
        facts=facts,
        event_source=source,
        operation=operation,
        operation_name=operation_name,
        identity=principal_identity(principal),
        params=params,
        output=output,
        error_code=None,
        error_message=None,
        resources=resources,
        event_id=event_id,
    )
    if rendered is not None:
        assert rendered[1] == built["eventTime"]
        return rendered[0], canonical(built)
    return None, canonical(built)


@pytest.mark.parametrize("kind", sorted(PRINCIPALS))
def test_request_records_are_the_built_ones_byte_for_byte(kind: str) -> None:
    principal = PRINCIPALS[kind]
    records = RequestRecords()
    requests: list[tuple[str, str, dict[str, Any], dict[str, Any] | None, list[str]]] = [
        ("secretsmanager", "GetSecretValue", {"SecretId": "app/db"}, {"ARN": SECRET}, [SECRET]),
        (
            "secretsmanager",
            "GetSecretValue",
            {"SecretId": "app/db\u00e9", "VersionStage": 'AWS"PREVIOUS'},
            {"ARN": SECRET, "SecretString": "never written", "CreatedDate": datetime.now(UTC)},
            [SECRET],
        ),
        (  # a write: its response is recorded; the secret value never is
            "secretsmanager",
            "PutSecretValue",
            {"SecretId": SECRET, "SecretString": "never written", "ClientRequestToken": "t-1"},
            {"ARN": SECRET, "Name": "app/db", "VersionId": "v-2", "VersionStages": ["AWSCURRENT"]},
            [SECRET],
        ),
        ("secretsmanager", "ListSecrets", {"MaxResults": 5}, {"SecretList": []}, []),
        (  # KMS records the key as an ARN and the algorithm
            "kms",
            "Decrypt",
            {"CiphertextBlob": b"\x01\x02", "EncryptionContext": {"a": "b"}},
            {"KeyId": KEY, "Plaintext": b"never", "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"},
            [KEY],
        ),
        (  # a global service: recorded in us-east-1
            "iam",
            "GetUser",
            {"UserName": "alice"},
            {"User": {"UserName": "alice"}},
            [f"arn:aws:iam::{ACCOUNT}:user/alice"],
        ),
    ]
    for turn in range(3):  # the second and third turns render from the templates learnt
        for index, (service, name, params, output, resources) in enumerate(requests):
            facts = _facts(second=turn + 1)._replace(
                request_id=f"5d0c1c3e-0000-4000-8000-0000000{turn}{index:04d}",
                user_agent=AGENTS[(turn + index) % len(AGENTS)],
                source_ip=f"10.0.{turn}.{index}",
            )
            rendered, expected = _request_record(
                records, principal, facts, service, name, params, output, resources
            )
            assert rendered is not None, (service, name)
            assert rendered == expected, (service, name)
    assert len(records) == len(requests) - 1  # both reads share GetSecretValue's


def test_a_request_on_another_accounts_resource_is_left_to_the_dict_and_its_copies() -> None:
    records = RequestRecords()
    principal = PRINCIPALS["user"]
    for resources in ([OTHER_SECRET], [SECRET, OTHER_SECRET]):
        rendered, _ = _request_record(
            records,
            principal,
            _facts(),
            "secretsmanager",
            "GetSecretValue",
            {"SecretId": OTHER_SECRET},
            None,
            resources,
        )
        assert rendered is None
    # ...while the same operation on the caller's own secret renders.
    rendered, expected = _request_record(
        records,
        principal,
        _facts(),
        "secretsmanager",
        "GetSecretValue",
        {"SecretId": SECRET},
        None,
        [SECRET],
    )
    assert rendered == expected


def test_a_request_member_that_is_not_plain_json_is_left_to_the_dict() -> None:
    records = RequestRecords()
    principal = PRINCIPALS["user"]
    facts = _facts()
    arguments = (facts, "secretsmanager", "GetSecretValue")
    assert _request_record(records, principal, *arguments, {"SecretId": "a"}, None, [SECRET])[0]
    odd = {"SecretId": _Name("a")}  # a str subclass: normalize's round trip decides
    rendered, expected = _request_record(records, principal, *arguments, odd, None, [SECRET])
    assert rendered is None
    assert b'"secretId":"a"' in expected


class _Name(str):
    pass


def test_request_templates_are_bounded() -> None:
    records = RequestRecords(capacity=2)
    for index in range(5):
        principal = Principal(ACCOUNT, f"arn:aws:iam::{ACCOUNT}:user/u{index}", f"AKIA{index}")
        rendered, expected = _request_record(
            records,
            principal,
            _facts(),
            "secretsmanager",
            "GetSecretValue",
            {"SecretId": "x"},
            None,
            [SECRET],
        )
        assert rendered == expected
        assert len(records) <= 2
