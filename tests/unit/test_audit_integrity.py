"""integrity.normalize: one pass for plain JSON values, the JSON round trip for anything
else, and in both cases exactly the bytes a verifier recomputes from the written line."""

from __future__ import annotations

import dataclasses
import enum
import random
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from strongroom.audit import integrity
from strongroom.audit.events import RequestFacts, build_event, build_service_event
from strongroom.audit.log import AuditWriteError, _record
from strongroom.protocol.model import operation_model


def round_trip(event: Any) -> bytes:
    """What normalize answered before it had a one-pass case: the reference."""
    return integrity.canonical(orjson.loads(orjson.dumps(event)))


@dataclasses.dataclass
class Fields:  # orjson writes a dataclass's fields in declaration order, unsorted
    zulu: int
    alpha: str


class Text(str):
    pass


class Number(int):
    pass


class Table(dict[str, Any]):
    pass


class Items(list[Any]):
    pass


class Colour(enum.Enum):
    RED = {"zulu": 1, "alpha": 2}


class Kind(enum.StrEnum):
    USER = "IAMUser"


ODD_VALUES: list[Any] = [
    1.5,
    -0.0,
    1e16,
    1e-7,
    1e300,
    0.1 + 0.2,
    float("nan"),
    float("inf"),
    2**63,
    -(2**63),
    2**64 - 1,
    ("a", (1, 2)),
    datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
    datetime(2024, 1, 2, 3, 4, 5),
    datetime(2024, 1, 2, tzinfo=timezone(timedelta(hours=-7))),
    date(2024, 1, 2),
    Fields(1, "x"),
    Text("t"),
    Number(5),
    Table(zulu=1, alpha=2),
    Items([3, 1]),
    Colour.RED,
    Kind.USER,
    uuid.UUID(int=7),
    '\u2028 é \U0001f512 \\ " \x00',
    {"zulu": {"yankee": [{"b": 1, "a": 2}]}, "alpha": None},
    [],
    {},
]


@pytest.mark.parametrize("value", ODD_VALUES, ids=lambda v: type(v).__name__)
def test_normalize_is_the_round_trip(value: Any) -> None:
    event = {"zulu": value, "alpha": [value, {"nested": value}], "mid": 1}
    normalized = integrity.normalize(event)
    assert normalized == round_trip(event)
    # What the verifier does with the written line: parse it and canonicalize it again.
    assert integrity.canonical(orjson.loads(normalized)) == normalized


@pytest.mark.parametrize(
    "event",
    [
        {1: "a non-str key"},
        {"k": {Text("sub"): 1}},
        {"big": 2**64},
        {"bytes": b"x"},
        {"set": {1}},
        {"object": object()},
        {"surrogate": "\ud800"},
    ],
    ids=["int-key", "str-subclass-key", "big-int", "bytes", "set", "object", "surrogate"],
)
def test_what_cannot_be_written_is_refused_both_ways(event: Any) -> None:
    with pytest.raises(TypeError):
        round_trip(event)
    with pytest.raises(TypeError):
        integrity.normalize(event)
    with pytest.raises(AuditWriteError):
        _record(event)


def test_random_nested_events_normalize_as_the_round_trip() -> None:
    rng = random.Random(11)
    leaves = [None, True, False, 0, -1, 2**40, 0.5, -2.75, "s", "", "ü", ("t",), Text("x")]

    def value(depth: int) -> Any:
        roll = rng.random()
        if depth > 4 or roll < 0.5:
            return rng.choice(leaves)
        if roll < 0.75:
            return [value(depth + 1) for _ in range(rng.randint(0, 4))]
        keys = ["b", "a", "B", "aa", "é", "_", "10", "9", "camelCase"]
        return {rng.choice(keys): value(depth + 1) for _ in range(rng.randint(0, 5))}

    for _ in range(500):
        event = {"eventVersion": "1.11", "payload": value(0)}
        assert integrity.normalize(event) == round_trip(event)


def test_records_of_real_events_are_what_a_verifier_recomputes() -> None:
    facts = RequestFacts(
        "r-1", datetime(2024, 5, 1, 12, 0, tzinfo=UTC), "10.0.0.1", "ua", "eu-west-1"
    )
    op = operation_model("secretsmanager", "DescribeSecret")
    events = [
        build_event(
            facts=facts,
            event_source="secretsmanager.amazonaws.com",
            operation=op,
            operation_name="UpdateSecret",  # a write: responseElements recorded
            identity={"type": "IAMUser", "accountId": "123456789012"},
            params={"SecretId": "app/db"},
            output={
                "ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:app/db-AbCdEf",
                "RotationRules": {"AutomaticallyAfterDays": 30},
                "LastChangedDate": datetime(2024, 1, 1, tzinfo=UTC),
                "VersionIdsToStages": {"v1": ["AWSCURRENT"]},
                "Tags": [{"Key": "k", "Value": "v"}],
            },
            error_code="ValidationException",
            error_message="1 validation error detected",
            resources=["arn:aws:secretsmanager:eu-west-1:123456789012:secret:app/db-AbCdEf"],
        ),
        build_service_event(
            time=facts.time,
            event_source="kms.amazonaws.com",
            event_name="RotateKey",
            account_id="123456789012",
            region="eu-west-1",
            invoked_by="kms.amazonaws.com",
            resources=["arn:aws:kms:eu-west-1:123456789012:key/k"],
            details={"keyId": "k", "when": datetime(2024, 1, 1, tzinfo=UTC)},
        ),
    ]
    for event in events:
        record = _record(event)
        assert record == round_trip(event)
        line = integrity.record_line(record, "w", 1, integrity.ZERO_HASH, "0" * 64)
        read = orjson.loads(line)
        read.pop(integrity.INTEGRITY)
        assert integrity.canonical(read) == record


@pytest.mark.parametrize(
    "writer", ["20261207T094300Z-4242-0a1b2c3d", "w", 'odd "writer"\\ \u00e9\n\u2028']
)
def test_the_logs_record_lines_are_record_line(writer: str) -> None:
    """The log makes a whole batch's lines with RecordLines.batch; record_line (orjson
    writing the integrity member) and record_hash are the reference, for any writer name,
    any record and any batch."""
    lines = integrity.RecordLines(writer)
    rng = random.Random(5)
    records = [b"{}", b'{"a":1}', _record({"eventName": "x", "n": [1, 2]}), b'{"z":{"y":[]}}']
    for start in (0, 1, rng.getrandbits(63), 2**64 - 10):
        for size in range(len(records) + 1):
            batch = records[:size]
            previous = integrity.ZERO_HASH if start == 0 else f"{rng.getrandbits(256):064x}"
            expected, last = [], previous
            for sequence, record in enumerate(batch, start + 1):
                hashed = integrity.record_hash(last, record)
                expected.append(integrity.record_line(record, writer, sequence, last, hashed))
                last = hashed
            assert lines.batch(batch, start, previous) == (b"".join(expected), last)
            for sequence, line in enumerate(expected, start + 1):
                assert orjson.loads(line)[integrity.INTEGRITY]["sequence"] == sequence


def test_record_hash_is_the_hash_of_the_previous_hash_and_the_record() -> None:
    import hashlib

    record = _record({"eventName": "x"})
    expected = hashlib.sha256(integrity.ZERO_HASH.encode() + b"\n" + record).hexdigest()
    assert integrity.record_hash(integrity.ZERO_HASH, record) == expected
