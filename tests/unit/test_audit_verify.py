"""``strongroom audit verify`` finds every kind of tampering and names the first bad record;
``strongroom audit tail`` prints the newest events."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from strongroom.audit import integrity
from strongroom.audit.log import AuditLog, AuditLogOptions
from strongroom.audit.signing import AuditSigningKey, public_pem, write_public_key
from strongroom.audit.verify import Finding, VerifyResult, verify_audit
from strongroom.cli.main import main


@dataclass
class Trail:
    data_dir: Path
    audit_dir: Path
    writer: str
    key: AuditSigningKey

    @property
    def files(self) -> list[Path]:
        return integrity.log_files(self.audit_dir, self.writer)

    def digest(self, number: int) -> Path:
        return self.audit_dir / "digests" / self.writer / integrity.digest_file_name(number)

    def rel(self, path: Path) -> str:
        return str(path.relative_to(self.audit_dir))


def sequence_of(line: bytes) -> int:
    value: int = orjson.loads(line)[integrity.INTEGRITY]["sequence"]
    return value


def event(n: int) -> dict[str, object]:
    return {
        "eventVersion": "1.08",
        "eventTime": f"2026-01-01T00:00:{n:02d}Z",
        "eventSource": "secretsmanager.amazonaws.com",
        "eventName": "GetSecretValue",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::000000000000:user/admin"},
        "requestParameters": {"SecretId": f"app/{n}"},
        "requestID": f"request-{n}",
    }


@pytest.fixture
def trail(tmp_path: Path) -> Trail:
    """20 records in files of about four, signed by three digests (after 8, 14 and 20), after
    the empty digest 1 every writer writes when it opens."""
    audit_dir = tmp_path / "audit"
    key = AuditSigningKey.generate()
    write_public_key(audit_dir, key)
    log = AuditLog(audit_dir, key, options=AuditLogOptions(rotate_bytes=1800))
    for n in range(1, 21):
        log.write(event(n))
        if n in (8, 14):
            log.write_digest()
    log.close()
    built = Trail(tmp_path, audit_dir, log.writer, key)
    assert len(built.files) >= 4
    assert all(len(p.read_bytes().splitlines()) >= 3 for p in built.files[:-1])
    return built


def first_error(result: VerifyResult) -> Finding:
    assert not result.ok
    first = result.first_error
    assert first is not None
    return first


def test_an_untouched_trail_verifies(trail: Trail) -> None:
    result = verify_audit(trail.audit_dir, trail.key.public_key)
    assert result.ok and not result.findings
    [writer] = result.writers
    assert (writer.records, writer.first_sequence, writer.last_sequence) == (20, 1, 20)
    assert (writer.digests, writer.signed_through, writer.tail_records) == (4, 20, 0)
    assert writer.files == len(trail.files)


def test_the_key_beside_the_logs_alone_is_a_loud_warning(trail: Trail) -> None:
    result = verify_audit(trail.audit_dir)
    assert result.ok
    [warning] = result.warnings
    assert warning.message.startswith("UNANCHORED") and "--fingerprint" in warning.message
    assert "beside the logs" in result.anchor


def test_a_fingerprint_recorded_elsewhere_anchors_the_key(trail: Trail) -> None:
    result = verify_audit(trail.audit_dir, fingerprint_given=trail.key.fingerprint)
    assert result.ok and not result.findings
    assert "confirmed" in result.anchor
    other = AuditSigningKey.generate().fingerprint
    first = first_error(verify_audit(trail.audit_dir, fingerprint_given=other))
    assert f"not the {other} given: the key was replaced" in first.message


def test_an_edited_record_is_named(trail: Trail) -> None:
    path = trail.files[1]
    lines = path.read_bytes().splitlines(keepends=True)
    sequence = sequence_of(lines[1])
    lines[1] = lines[1].replace(b"GetSecretValue", b"GetSecretValuf", 1)  # one byte
    path.write_bytes(b"".join(lines))
    first = first_error(verify_audit(trail.audit_dir))
    assert (first.path, first.line, first.sequence) == (trail.rel(path), 2, sequence)
    assert "edited" in first.message


def test_an_edit_with_a_recomputed_chain_is_caught_by_the_digest(trail: Trail) -> None:
    """An intruder who rewrites the record and every hash after it still cannot sign."""
    previous = integrity.ZERO_HASH
    edited = trail.files[1]
    for path in trail.files:
        out = []
        for number, line in enumerate(path.read_bytes().splitlines(), start=1):
            record = orjson.loads(line)
            marks = record.pop(integrity.INTEGRITY)
            if path == edited and number == 2:
                record["eventName"] = "PutSecretValue"
            canonical = integrity.canonical(record)
            hashed = integrity.record_hash(previous, canonical)
            out.append(
                integrity.record_line(canonical, trail.writer, marks["sequence"], previous, hashed)
            )
            previous = hashed
        path.write_bytes(b"".join(out))
    first = first_error(verify_audit(trail.audit_dir))
    assert first.path == trail.rel(edited)
    assert "differ from what digest" in first.message


def test_a_deleted_record_is_named(trail: Trail) -> None:
    path = trail.files[1]
    lines = path.read_bytes().splitlines(keepends=True)
    removed = sequence_of(lines[1])
    del lines[1]
    path.write_bytes(b"".join(lines))
    first = first_error(verify_audit(trail.audit_dir))
    assert (first.path, first.line, first.sequence) == (trail.rel(path), 2, removed + 1)
    assert f"record(s) {removed} are missing" in first.message


def test_a_reordered_pair_is_named(trail: Trail) -> None:
    path = trail.files[1]
    lines = path.read_bytes().splitlines(keepends=True)
    expected = sequence_of(lines[1])
    lines[1], lines[2] = lines[2], lines[1]
    path.write_bytes(b"".join(lines))
    first = first_error(verify_audit(trail.audit_dir))
    assert (first.path, first.line, first.sequence) == (trail.rel(path), 2, expected + 1)
    assert f"expected sequence {expected}" in first.message


def test_a_deleted_log_file_is_named(trail: Trail) -> None:
    path = trail.files[2]
    first_sequence = sequence_of(path.read_bytes().splitlines()[0])
    path.unlink()
    first = first_error(verify_audit(trail.audit_dir))
    assert (first.path, first.sequence) == (trail.rel(path), first_sequence)
    assert "is missing: it was deleted" in first.message


@pytest.mark.parametrize("cut", ["mid-line", "whole-lines"])
def test_a_truncated_file_is_found(trail: Trail, cut: str) -> None:
    path = trail.files[1]
    data = path.read_bytes()
    lines = data.splitlines(keepends=True)
    keep = len(data) - len(lines[-1]) // 2 if cut == "mid-line" else len(data) - len(lines[-1])
    path.write_bytes(data[:keep])
    result = verify_audit(trail.audit_dir)
    first = first_error(result)
    if cut == "mid-line":
        assert first.path == trail.rel(path) and "truncated" in first.message
    else:  # the chain breaks where the next file starts; the digest names the cut file
        assert "missing" in first.message and first.line == 1
        assert any(f.path == trail.rel(path) and "truncated" in f.message for f in result.errors)


def test_a_truncated_last_file_is_found(trail: Trail) -> None:
    path = trail.files[-1]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 10])
    first = first_error(verify_audit(trail.audit_dir))
    assert first.path == trail.rel(path)


def test_a_forged_digest_is_found(trail: Trail) -> None:
    path = trail.digest(3)
    digest = orjson.loads(path.read_bytes())
    digest["logFiles"][0]["byteLength"] -= 1
    path.write_bytes(orjson.dumps(digest))
    first = first_error(verify_audit(trail.audit_dir))
    assert first.path == trail.rel(path)
    assert "signature does not verify" in first.message


def test_digests_re_signed_by_another_key_fail_against_the_kept_public_key(
    trail: Trail,
) -> None:
    intruder = AuditSigningKey.generate()
    for number in (1, 2, 3, 4):
        path = trail.digest(number)
        digest = orjson.loads(path.read_bytes())
        digest["publicKeyFingerprint"] = intruder.fingerprint
        digest["signature"] = base64.b64encode(
            intruder.sign(integrity.signing_input(digest))
        ).decode()
        path.write_bytes(orjson.dumps(digest))
    for number in (2, 3, 4):  # keep the digest chain consistent, as a careful intruder would
        previous = orjson.loads(trail.digest(number - 1).read_bytes())
        path = trail.digest(number)
        digest = orjson.loads(path.read_bytes())
        digest["previousDigestHash"] = integrity.digest_hash(previous)
        digest["signature"] = base64.b64encode(
            intruder.sign(integrity.signing_input(digest))
        ).decode()
        path.write_bytes(orjson.dumps(digest))
    (trail.audit_dir / integrity.PUBLIC_KEY_FILE).write_bytes(public_pem(intruder.public_key))
    unanchored = verify_audit(trail.audit_dir)  # the key beside the log was replaced too...
    assert unanchored.ok and unanchored.warnings[0].message.startswith("UNANCHORED")
    kept = verify_audit(trail.audit_dir, trail.key.public_key).errors  # ...the kept one
    assert "the public key file was replaced" in kept[0].message
    assert any("signed by another key" in f.message for f in kept)
    fingerprint_kept = first_error(
        verify_audit(trail.audit_dir, fingerprint_given=trail.key.fingerprint)
    )
    assert "the key was replaced" in fingerprint_kept.message


def test_a_removed_middle_digest_is_found(trail: Trail) -> None:
    trail.digest(3).unlink()
    first = first_error(verify_audit(trail.audit_dir))
    assert first.path == trail.rel(trail.digest(4))
    assert "digest 3 missing" in first.message


def test_a_removed_first_digest_is_found(trail: Trail) -> None:
    trail.digest(1).unlink()
    first = first_error(verify_audit(trail.audit_dir))
    assert "digests 1..1 are missing" in first.message


def test_a_removed_newest_digest_leaves_only_an_unsigned_tail(trail: Trail) -> None:
    """Indistinguishable from a crash before the last digest: a warning, as CloudTrail's
    validation cannot tell either; keep a copy of the digests elsewhere to close it."""
    trail.digest(4).unlink()
    result = verify_audit(trail.audit_dir, trail.key.public_key)
    assert result.ok
    assert result.writers[0].tail_records == 6
    assert "not signed yet" in result.warnings[0].message


def test_a_forged_record_appended_at_the_end_is_found(trail: Trail) -> None:
    path = trail.files[-1]
    last = orjson.loads(path.read_bytes().splitlines()[-1])
    marks = last.pop(integrity.INTEGRITY)
    forged = event(99)
    canonical = integrity.canonical(forged)
    line = integrity.record_line(canonical, trail.writer, marks["sequence"] + 1, "f" * 64, "e" * 64)
    with path.open("ab") as handle:
        handle.write(line)
    first = first_error(verify_audit(trail.audit_dir))
    assert first.sequence == marks["sequence"] + 1 and first.path == trail.rel(path)


def test_a_running_or_crashed_writer_leaves_only_warnings(tmp_path: Path) -> None:
    audit_dir = tmp_path / "audit"
    key = AuditSigningKey.generate()
    write_public_key(audit_dir, key)
    log = AuditLog(audit_dir, key)
    for n in range(1, 6):
        log.write(event(n))
    log.write_digest()
    for n in range(6, 9):
        log.write(event(n))
    try:
        # A write cut short by a crash: a torn last line.
        path = integrity.log_files(audit_dir, log.writer)[-1]
        with path.open("ab") as handle:
            handle.write(b'{"eventVersion":"1.08","eventName":"Get')
        result = verify_audit(audit_dir, key.public_key)
        assert result.ok, [str(f) for f in result.errors]
        assert result.writers[0].tail_records == 3
        messages = " ".join(f.message for f in result.warnings)
        assert "incomplete" in messages and "not signed yet" in messages
    finally:
        log.close()


def test_the_cli_exits_non_zero_and_names_the_first_bad_record(trail: Trail) -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["audit", "verify", "--data-dir", str(trail.data_dir)])
    assert ok.exit_code == 0, ok.output
    assert "intact" in ok.output and trail.writer in ok.output
    path = trail.files[0]
    lines = path.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b"request-3", b"request-9")
    path.write_bytes(b"".join(lines))
    bad = runner.invoke(main, ["audit", "verify", "--data-dir", str(trail.data_dir)])
    assert bad.exit_code == 1
    assert f"FIRST BAD RECORD: {trail.rel(path)}, line 3, sequence 3" in bad.output
    as_json = runner.invoke(
        main,
        [
            "audit",
            "verify",
            "--data-dir",
            str(trail.data_dir),
            "--json",
            "--public-key",
            str(trail.audit_dir / integrity.PUBLIC_KEY_FILE),
        ],
    )
    assert as_json.exit_code == 1
    report = orjson.loads(as_json.output)
    assert report["firstError"]["line"] == 3 and report["firstError"]["sequence"] == 3


def test_tail_prints_the_newest_events_one_line_each(trail: Trail) -> None:
    result = CliRunner().invoke(
        main, ["audit", "tail", "--data-dir", str(trail.data_dir), "-n", "3"]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 3
    assert lines[-1].split() == [
        "2026-01-01T00:00:20Z",
        "arn:aws:iam::000000000000:user/admin",
        "secretsmanager:GetSecretValue",
        "app/20",
        "OK",
    ]
    assert "app/18" in lines[0]
