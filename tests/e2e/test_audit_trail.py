"""The audit trail of a real server: every request recorded (allowed or denied) without a
secret value, verifiable, tamper-evident, fail-closed, and complete after kill -9."""

from __future__ import annotations

import json
import signal
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.audit import audit, audit_records
from tests.server import ServerProcess

StartServer = Callable[..., ServerProcess]


def audit_bytes(data_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (data_dir / "audit").rglob("*") if p.is_file())


def test_requests_are_recorded_verified_and_hold_no_secret(
    new_server: StartServer, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    server = new_server("--dev", "--data-dir", str(data_dir))
    sm = server.client()
    name = f"audit/{uuid.uuid4().hex[:8]}"
    value = f"s3cr3t-{uuid.uuid4().hex}"
    created = sm.create_secret(Name=name, SecretString=value)
    read = sm.get_secret_value(SecretId=name)
    assert read["SecretString"] == value
    forger = server.client(aws_access_key_id="test", aws_secret_access_key="not-the-secret")
    with pytest.raises(ClientError) as denied:
        forger.get_secret_value(SecretId=name)
    assert denied.value.response["Error"]["Code"] == "InvalidSignatureException"
    denied_id = denied.value.response["ResponseMetadata"]["RequestId"]

    running = audit("verify", "--data-dir", str(data_dir))
    assert running.returncode == 0, running.stdout + running.stderr
    tail = audit("tail", "--data-dir", str(data_dir), "-n", "50")
    assert tail.returncode == 0, tail.stderr
    lines = tail.stdout.splitlines()
    assert any("secretsmanager:CreateSecret" in line and name in line for line in lines)
    assert any(
        "secretsmanager:GetSecretValue" in line and "OK" in line and "user/admin" in line
        for line in lines
    )
    assert any("InvalidSignatureException" in line for line in lines), tail.stdout

    by_id = {record["requestID"]: record for record in audit_records(data_dir)}
    assert by_id[created["ResponseMetadata"]["RequestId"]]["eventName"] == "CreateSecret"
    assert by_id[read["ResponseMetadata"]["RequestId"]]["eventName"] == "GetSecretValue"
    assert by_id[denied_id]["errorCode"] == "InvalidSignatureException"
    assert (data_dir / "audit" / "signing-key.pub").read_bytes().startswith(b"-----BEGIN")

    server.stop()  # closing writes the final digest: nothing left unsigned
    stopped = audit("verify", "--data-dir", str(data_dir), "--json")
    assert stopped.returncode == 0, stopped.stdout
    report = json.loads(stopped.stdout)
    assert report["ok"] and report["findings"] == []
    assert value.encode() not in audit_bytes(data_dir)

    # One edited byte is found and named.
    [log_file] = sorted((data_dir / "audit" / "logs").glob("*/*.jsonl"))
    lines_before = log_file.read_bytes().splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines_before) if b'"GetSecretValue"' in line)
    lines_before[index] = lines_before[index].replace(b"GetSecretValue", b"GetSecretValuE", 1)
    log_file.write_bytes(b"".join(lines_before))
    edited = audit("verify", "--data-dir", str(data_dir))
    assert edited.returncode == 1
    relative = log_file.relative_to(data_dir / "audit")
    assert f"FIRST BAD RECORD: {relative}, line {index + 1}" in edited.stdout, edited.stdout


def test_an_unwritable_audit_log_fails_requests_and_changes_nothing(
    new_server: StartServer, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    server = new_server("--dev", "--data-dir", str(data_dir))
    sm = server.client()
    name = f"audit/{uuid.uuid4().hex[:8]}"
    sm.create_secret(Name=name, SecretString="before")
    # Tests run as root, so permissions do not stop a write: take the writer's directory
    # away and put a plain file where it was.
    [writer_dir] = (data_dir / "audit" / "logs").iterdir()
    moved = writer_dir.with_name("moved-away")
    writer_dir.rename(moved)
    writer_dir.write_bytes(b"not a directory")
    try:
        with pytest.raises(ClientError) as failed:
            sm.put_secret_value(SecretId=name, SecretString="after")
        assert failed.value.response["Error"]["Code"] == "InternalServiceError"
        assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        with pytest.raises(ClientError):  # reads fail too: nothing is served unaudited
            sm.get_secret_value(SecretId=name)
    finally:
        writer_dir.unlink()
        moved.rename(writer_dir)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "before"
    versions = sm.list_secret_version_ids(SecretId=name)["Versions"]
    assert len(versions) == 1
    sm.put_secret_value(SecretId=name, SecretString="after")
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "after"
    result = audit("verify", "--data-dir", str(data_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    server.stop()
    assert b"before" not in audit_bytes(data_dir) and b"after" not in audit_bytes(data_dir)


def test_kill_9_under_load_loses_no_acknowledged_record(
    new_server: StartServer, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    config = tmp_path / "strongroom.toml"
    config.write_text("[server]\naudit_digest_interval = 0.3\n")  # digests during the load
    server = new_server("--dev", "--data-dir", str(data_dir), "--config", str(config))
    name = f"audit/{uuid.uuid4().hex[:8]}"
    marker = uuid.uuid4().hex
    server.client().create_secret(Name=name, SecretString=f"{marker}-0")
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def load(worker: int) -> None:
        client = server.client()
        n = 0
        while not stop.is_set():
            n += 1
            try:
                if n % 2:
                    response = client.put_secret_value(
                        SecretId=name, SecretString=f"{marker}-{worker}-{n}"
                    )
                else:
                    response = client.get_secret_value(SecretId=name)
            except Exception:  # refused, or the connection died with the server
                continue
            with lock:
                acknowledged.append(response["ResponseMetadata"]["RequestId"])

    threads = [threading.Thread(target=load, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 300 and time.monotonic() < deadline:
        time.sleep(0.02)
    server.stop(signal.SIGKILL)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert len(acknowledged) >= 300

    restarted = new_server("--dev", "--data-dir", str(data_dir))
    assert restarted.client().describe_secret(SecretId=name)["Name"] == name
    recorded = {record["requestID"] for record in audit_records(data_dir)}
    missing = [request_id for request_id in acknowledged if request_id not in recorded]
    assert not missing, f"{len(missing)} acknowledged request(s) have no audit record"

    result = audit("verify", "--data-dir", str(data_dir), "--json")
    report = json.loads(result.stdout)
    assert result.returncode == 0, [f["message"] for f in report["findings"]]
    assert all(f["severity"] == "warning" for f in report["findings"])
    killed, _restarted = report["writers"]  # the killed process and the restarted one
    assert killed["digests"] >= 1 and killed["signedThrough"] is not None
    assert marker.encode() not in audit_bytes(data_dir)
