"""What the audit log writes, byte for byte: the lines (records, chain, integrity member)
recomputed from docs/audit-format.md alone, the digests' byte ranges and file hashes, and a
fixed set of events whose whole log must hash to the value the format gave it before the
writer was made cheaper (the writer's optimizations may change how, never what)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson
import pytest

from strongroom.audit import integrity
from strongroom.audit.events import RequestFacts, build_event, build_service_event
from strongroom.audit.log import AuditLog, AuditLogOptions
from strongroom.audit.signing import AuditSigningKey, read_public_key, write_public_key
from strongroom.audit.verify import verify_audit
from strongroom.clock import ManualClock
from strongroom.protocol.model import operation_model

WRITER = "20261207T120000Z-4242-0a1b2c3d"
ZERO = "0" * 64
# sha256 of every log file of WRITTEN, concatenated, as main wrote them at 7082384 (before
# the writer's per-request costs were cut): any byte changed changes it.
GOLDEN_SHA256 = "ca1f7282fe790ccc10f1715c1af9fa695f2507b62f2fa1825812f87f9545813f"


def _events(turn: int) -> list[Mapping[str, Any]]:
    """Six events, their ids distinct for each ``turn`` (verify refuses an event twice)."""
    facts = RequestFacts(
        f"5d0c1c3e-0000-4000-8000-00000000000{turn}",
        datetime(2026, 12, 7, 12, 0, 1, tzinfo=UTC),
        "10.0.0.7",
        "aws-cli/2.15 \u00e9\u2028",
        "eu-west-1",
    )
    secret = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:app/db-AbCdEf"
    identity = {
        "type": "IAMUser",
        "principalId": "AIDAEXAMPLE",
        "arn": "arn:aws:iam::111122223333:user/alice",
        "accountId": "111122223333",
        "accessKeyId": "AKIAEXAMPLE",
        "userName": "alice",
    }
    read = build_event(
        facts=facts,
        event_source="secretsmanager.amazonaws.com",
        operation=operation_model("secretsmanager", "GetSecretValue"),
        operation_name="GetSecretValue",
        identity=identity,
        params={"SecretId": "app/db", "VersionStage": "AWSCURRENT"},
        output={"ARN": secret, "Name": "app/db", "SecretString": "never written"},
        error_code=None,
        error_message=None,
        resources=[secret],
        event_id=f"0b0e7c4a-0000-4000-8000-0000000000{turn}2",
    )
    refused = build_event(
        facts=facts,
        event_source="secretsmanager.amazonaws.com",
        operation=operation_model("secretsmanager", "UpdateSecret"),
        operation_name="UpdateSecret",
        identity=identity,
        params={"SecretId": "app/db", "Description": "d\"q'\\ \U0001f511"},
        output=None,
        error_code="AccessDeniedException",
        error_message="User: arn:aws:iam::111122223333:user/alice is not authorized",
        resources=[secret, "arn:aws:kms:eu-west-1:444455556666:key/k-1"],
        event_id=f"0b0e7c4a-0000-4000-8000-0000000000{turn}3",
    )
    service = build_service_event(
        time=datetime(2026, 12, 7, 12, 0, 2, tzinfo=UTC),
        event_source="kms.amazonaws.com",
        event_name="RotateKey",
        account_id="111122223333",
        region="eu-west-1",
        invoked_by="AWS Internal",
        resources=["arn:aws:kms:eu-west-1:111122223333:key/k-2"],
        details={"rotationType": "AUTOMATIC", "keyId": "k-2"},
    )
    service["eventID"] = f"0b0e7c4a-0000-4000-8000-0000000000{turn}4"
    unsorted = {
        "zeta": {"b": [3, {"y": None, "x": 1.5}], "a": True},
        "Alpha": "\x00\x1f\u00ff",
        "eventTime": datetime(2026, 12, 7, 12, 0, 3, tzinfo=UTC),  # normalized to text
        "numbers": (1, -2, 2**63 - 1),
    }
    return [read, refused, service, unsorted, {}, MappingProxyType({"b": 1, "a": [2]})]


def _written(audit_dir: Path, key: AuditSigningKey) -> tuple[AuditLog, list[Mapping[str, Any]]]:
    """The events in the order they were written: alone, in one group commit, and as one
    loop turn of async writes; small files so that the log rotates between batches."""
    log = AuditLog(
        audit_dir,
        key,
        clock=ManualClock(datetime(2026, 12, 7, 12, 0, tzinfo=UTC)),
        options=AuditLogOptions(rotate_bytes=2500),
        writer=WRITER,
    )
    written: list[Mapping[str, Any]] = []
    for event in _events(1):
        log.write(event)
        written.append(event)
    events = _events(2)[::-1]
    log.write_many(events)
    written.extend(events)
    events = _events(3)

    async def one_turn() -> None:
        await asyncio.gather(*(log.write_many_async(events[i : i + 2]) for i in (0, 2, 4)))

    asyncio.run(one_turn())
    written.extend(events)
    return log, written


def _reference_lines(events: Sequence[Mapping[str, Any]]) -> bytes:
    """The lines docs/audit-format.md describes, made from it alone."""
    lines, previous = [], ZERO
    for sequence, event in enumerate(events, start=1):
        plain = orjson.loads(orjson.dumps(dict(event)))
        canonical = orjson.dumps(plain, option=orjson.OPT_SORT_KEYS)
        hashed = hashlib.sha256(previous.encode("ascii") + b"\n" + canonical).hexdigest()
        mark = {"writer": WRITER, "sequence": sequence, "previousHash": previous, "hash": hashed}
        member = b'"strongroomIntegrity":' + orjson.dumps(mark)
        lines.append(canonical[:-1] + (b"," if plain else b"") + member + b"}\n")
        previous = hashed
    return b"".join(lines)


@pytest.fixture
def key() -> AuditSigningKey:
    return AuditSigningKey.generate()


def test_the_log_is_byte_for_byte_what_the_format_says(
    tmp_path: Path, key: AuditSigningKey
) -> None:
    audit_dir = tmp_path / "audit"
    write_public_key(audit_dir, key)
    log, written = _written(audit_dir, key)
    digest_path = log.write_digest()
    log.close()
    files = integrity.log_files(audit_dir, WRITER)
    assert len(files) > 2  # rotated by size between batches
    whole = b"".join(path.read_bytes() for path in files)
    assert whole == _reference_lines(written)
    for path in files:  # each file is named after its first record
        first = orjson.loads(path.read_bytes().split(b"\n", 1)[0])
        assert path.name == integrity.log_file_name(first[integrity.INTEGRITY]["sequence"])
    # The digest signs each file's bytes as written: its length and sha256.
    entries = orjson.loads(digest_path.read_bytes())["logFiles"]
    assert [entry["path"] for entry in entries] == [
        integrity.log_path(WRITER, path.name) for path in files
    ]
    for entry, path in zip(entries, files, strict=True):
        data = path.read_bytes()
        assert entry["byteLength"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    result = verify_audit(audit_dir, read_public_key(audit_dir / "signing-key.pub"))
    assert result.ok, [str(problem) for problem in result.errors]
    assert hashlib.sha256(whole).hexdigest() == GOLDEN_SHA256
