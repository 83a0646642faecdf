"""Tampering with a real server's audit trail (issue 20, items 1 and 2): a whole writer
deleted (first, middle, last), a digest deleted, the public key file replaced (with every
digest re-signed). Each is found by `strongroom audit verify`, which names the reason.

Three server lifetimes (three writers) are recorded once; each test tampers with its own
copy of that data directory."""

from __future__ import annotations

import base64
import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from strongroom.audit import integrity
from strongroom.audit.signing import AuditSigningKey, public_pem
from tests.audit import audit
from tests.server import ServerProcess


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A data directory written by three consecutive server lifetimes."""
    base = tmp_path_factory.mktemp("tamper")
    data_dir = base / "data"
    for lifetime in range(3):
        server = ServerProcess(
            ["--dev", "--data-dir", str(data_dir)], base / f"server-{lifetime}.log"
        ).start()
        try:
            sm = server.client()
            name = f"tamper/{lifetime}-{uuid.uuid4().hex[:6]}"
            sm.create_secret(Name=name, SecretString="v")
            sm.get_secret_value(SecretId=name)
        finally:
            server.stop()
    yield data_dir


@pytest.fixture
def copy(recorded: Path, tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(recorded, target)
    return target


def writers(data_dir: Path) -> list[str]:
    names = integrity.writers(data_dir / "audit")
    assert len(names) == 3
    return names


def verify(data_dir: Path, *extra: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = audit("verify", "--data-dir", str(data_dir), "--json", *extra, env=env)
    report: dict[str, Any] = json.loads(result.stdout)
    assert result.returncode == (0 if report["ok"] else 1)
    return report


def messages(report: dict[str, Any]) -> str:
    return "\n".join(f"{f['writer']}: {f['message']}" for f in report["findings"])


def test_the_untouched_trail_verifies_anchored_on_the_registry(copy: Path) -> None:
    report = verify(copy)
    assert report["ok"], messages(report)
    assert report["findings"] == []
    assert report["anchor"] == "the writer registry in the database"
    first, second, third = writers(copy)
    # Each writer's first digest names the writer before it and its last digest.
    for before, after in ((first, second), (second, third)):
        link = orjson.loads((copy / "audit" / "digests" / after / "00000001.json").read_bytes())
        named = link["previousWriter"]
        assert named["writer"] == before
        digest = copy / "audit" / "digests" / before / f"{named['digestSequence']:08d}.json"
        assert integrity.digest_hash(orjson.loads(digest.read_bytes())) == named["digestHash"]
    cli = audit("verify", "--data-dir", str(copy))
    assert cli.returncode == 0 and "key anchored on: the writer registry" in cli.stdout


@pytest.mark.parametrize("which", [0, 1, 2], ids=["first", "middle", "last"])
def test_a_whole_writer_deleted_is_found(copy: Path, which: int) -> None:
    gone = writers(copy)[which]
    for kind in ("logs", "digests"):
        shutil.rmtree(copy / "audit" / kind / gone)
    report = verify(copy)
    assert not report["ok"]
    text = messages(report)
    assert (
        f"{gone} (registered #" in text and "is missing: its logs and digests were deleted" in text
    )
    if which < 2:  # the next writer's link names it too
        assert f"writer {gone}, which this writer's first digest names" in text
    cli = audit("verify", "--data-dir", str(copy))
    assert cli.returncode == 1 and "FIRST BAD RECORD" in cli.stdout and gone in cli.stdout


def test_a_whole_writer_deleted_is_found_from_the_files_alone(copy: Path) -> None:
    """Without the database (the audit directory copied elsewhere), the links still
    name a deleted writer that others followed."""
    _, middle, _ = writers(copy)
    for kind in ("logs", "digests"):
        shutil.rmtree(copy / "audit" / kind / middle)
    (copy / "strongroom.db").unlink()
    report = verify(copy)
    assert not report["ok"]
    assert f"writer {middle}, which this writer's first digest names" in messages(report)


def test_the_last_digest_deleted_is_found(copy: Path) -> None:
    last = writers(copy)[-1]
    directory = copy / "audit" / "digests" / last
    newest = sorted(directory.glob("*.json"))[-1]
    newest.unlink()
    report = verify(copy)
    assert not report["ok"]
    assert "digests were removed from its end" in messages(report)


def test_a_middle_digest_deleted_is_found(copy: Path) -> None:
    middle = writers(copy)[1]
    digests = sorted((copy / "audit" / "digests" / middle).glob("*.json"))
    assert len(digests) >= 2
    digests[0].unlink()  # the one holding the link
    report = verify(copy)
    assert not report["ok"]
    assert "are missing although the records they signed are still here" in messages(report)


def resign(audit_dir: Path, intruder: AuditSigningKey) -> None:
    """What an intruder with the audit directory can do: re-sign every digest with a key
    of their own, keeping each chain (and the links between writers) consistent."""
    hashes: dict[tuple[str, int], str] = {}
    for writer in integrity.writers(audit_dir):
        previous = integrity.ZERO_HASH
        for path in sorted((audit_dir / "digests" / writer).glob("*.json")):
            digest = orjson.loads(path.read_bytes())
            digest["publicKeyFingerprint"] = intruder.fingerprint
            digest["previousDigestHash"] = previous
            link = digest.get("previousWriter")
            if link:
                link["digestHash"] = hashes[(link["writer"], link["digestSequence"])]
            digest.pop("signature")
            digest["signature"] = base64.b64encode(
                intruder.sign(integrity.signing_input(digest))
            ).decode()
            path.write_bytes(orjson.dumps(digest))
            previous = integrity.digest_hash(digest)
            hashes[(writer, digest["digestSequence"])] = previous
    (audit_dir / integrity.PUBLIC_KEY_FILE).write_bytes(public_pem(intruder.public_key))


def test_a_replaced_public_key_file_is_found(copy: Path) -> None:
    original = verify(copy)["publicKeyFingerprint"]
    resign(copy / "audit", AuditSigningKey.generate())
    # The registry in the database (outside the audit directory) still names the key.
    report = verify(copy)
    assert not report["ok"]
    text = messages(report)
    assert "the public key file was replaced" in text
    assert "signed by another key" in text
    # A fingerprint recorded elsewhere finds it with the audit directory alone.
    (copy / "strongroom.db").unlink()
    anchored = verify(copy, "--fingerprint", original)
    assert not anchored["ok"]
    assert f"not the {original} given: the key was replaced" in messages(anchored)
    # With nothing outside to anchor it, verify cannot tell, and says so loudly.
    unanchored = verify(copy)
    assert unanchored["ok"]
    assert messages(unanchored).startswith("-: UNANCHORED")
    cli = audit("verify", "--data-dir", str(copy))
    assert "UNANCHORED" in cli.stdout and "beside the logs" in cli.stdout


def test_verify_anchors_on_the_servers_list_public_keys(copy: Path, tmp_path: Path) -> None:
    tampered = tmp_path / "tampered"
    shutil.copytree(copy, tampered)
    resign(tampered / "audit", AuditSigningKey.generate())
    (tampered / "strongroom.db").unlink()
    server = ServerProcess(["--dev", "--data-dir", str(copy)], tmp_path / "server.log").start()
    try:
        env = {
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        good = verify(copy, "--endpoint", server.url, env=env)
        bad = verify(tampered, "--endpoint", server.url, env=env)
    finally:
        server.stop()
    assert good["ok"], messages(good)
    assert good["anchor"] == f"ListPublicKeys at {server.url}"
    assert not bad["ok"]
    assert "signed by another key" in messages(bad)
