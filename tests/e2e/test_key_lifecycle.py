"""The key lifecycle through the `strongroom` command and real servers: what an old root
key plus a copy of the database from before a rekey can still open, the operator's
on-demand rotation of the AWS managed key, and an STS session that outlives a rekey.

The attacker here is offline: the old ``root.key`` and the pre-rekey ``strongroom.db``
give them every generation of KMS material that existed then; they try it on every
secret version stored in the data directory afterwards."""

from __future__ import annotations

import contextlib
import http.client
import json
import shutil
import socket
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select

from strongroom.keys.blobs import blob_origin, canonical_context, split_sealed, unwrap
from strongroom.keys.envelope import Barrier, DecryptionError
from strongroom.keys.material import Material, material_aad
from strongroom.store import schema
from strongroom.store.engine import Store, sqlite_url
from tests.aws import aws_error
from tests.e2e.test_audit_trail import audit
from tests.e2e.test_operator_seal import operator_events
from tests.e2e.test_seal import (  # noqa: F401 - hsm and servers are fixtures
    admin_env,
    assert_nothing_listens,
    credentials,
    hsm,
    init,
    run,
    serve_and_fail,
    servers,
)
from tests.server import socket_owner
from tests.softhsm import SoftHsmToken

Materials = dict[tuple[str, int], Material]


def stolen_materials(data_dir: Path, root_key: bytes) -> Materials:
    """Every generation of KMS material a copy of the database holds, opened with the root
    key it was sealed under."""
    barrier, found = Barrier(root_key), {}
    store = Store(sqlite_url(data_dir))
    try:
        with store.read() as conn:
            for row in conn.execute(select(schema.kms_key_material)):
                aad = material_aad(row.key_id, row.generation)
                try:
                    found[row.key_id, row.generation] = Material(barrier.open(row.sealed, aad))
                except DecryptionError:
                    continue
    finally:
        store.dispose()
    return found


def stored_versions(data_dir: Path) -> list[tuple[str, str, bytes]]:
    """(secret ARN, version id, sealed value) of every version that holds a value."""
    versions, secrets = schema.secret_versions, schema.secrets
    store = Store(sqlite_url(data_dir))
    try:
        with store.read() as conn:
            rows = conn.execute(
                select(secrets.c.arn, versions.c.version_id, versions.c.ciphertext)
                .join(secrets, secrets.c.id == versions.c.secret_id)
                .where(versions.c.ciphertext.is_not(None))
            ).all()
    finally:
        store.dispose()
    return [(row.arn, row.version_id, bytes(row.ciphertext)) for row in rows]


def opened_by(materials: Materials, data_dir: Path) -> dict[str, bytes]:
    """The values of ``data_dir``'s secret versions that ``materials`` decrypt, by
    version id (the data key unwrapped, then the value)."""
    opened = {}
    for arn, version_id, sealed in stored_versions(data_dir):
        parts = split_sealed(sealed)
        assert parts is not None
        wrapped, rest = parts
        origin = blob_origin(wrapped)
        assert origin is not None
        cipher = materials.get(origin)
        if cipher is None:
            continue
        context = canonical_context({"SecretARN": arn, "SecretVersionId": version_id})
        try:
            data_key = unwrap(wrapped, cipher, context)
            opened[version_id] = AESGCM(data_key).decrypt(rest[:12], rest[12:], context)
        except InvalidTag:
            continue
    return opened


def test_the_old_root_key_and_a_pre_rekey_copy_open_nothing_after_rekey_reencrypt(
    tmp_path: Path,
    servers: Any,  # noqa: F811 - the fixture
) -> None:
    data_dir = tmp_path / "data"
    created = init(data_dir)
    server = servers(data_dir)
    sm = server.client(**credentials(created))
    kms = server.client("kms", **credentials(created))
    custom = kms.create_key()["KeyMetadata"]["KeyId"]
    sm.create_secret(Name="default", SecretString="default before")
    sm.create_secret(Name="custom", SecretString="custom before", KmsKeyId=custom)
    server.stop()
    old_key = (data_dir / "root.key").read_bytes()
    copy = tmp_path / "backup"
    shutil.copytree(data_dir, copy)

    # The attack works on what the copy holds: it is the copy's own data.
    stolen = stolen_materials(copy, old_key)
    assert len(stolen) == 2
    assert sorted(opened_by(stolen, copy).values()) == [b"custom before", b"default before"]

    result = run(
        "rekey", "--data-dir", str(data_dir), "--root-key", "file", "--reencrypt", "--json"
    )
    rekeyed, reencrypted = (json.loads(line) for line in result.stdout.splitlines())
    assert rekeyed["new_key_generations"] == 2
    assert reencrypted == {"reencrypted": 2, "already_current": 0}
    # Each offline command left its record in the audit trail, signed and chained.
    (rekey_event,) = operator_events(data_dir, "Rekey")
    assert rekey_event["serviceEventDetails"]["newKeyGenerations"] == 2
    assert rekey_event["serviceEventDetails"]["rootKeyProvider"] == "file"
    assert rekey_event["userIdentity"]["type"] == "Operator"
    assert rekey_event["recipientAccountId"] == created["account_id"]
    assert "errorCode" not in rekey_event
    (reencrypt_event,) = operator_events(data_dir, "Reencrypt")
    assert reencrypt_event["serviceEventDetails"] == {"secretVersions": 2}
    verified = audit("verify", "--data-dir", str(data_dir))
    assert verified.returncode == 0, verified.stdout + verified.stderr

    server = servers(data_dir)
    sm = server.client(**credentials(created))
    assert sm.get_secret_value(SecretId="default")["SecretString"] == "default before"
    sm.put_secret_value(SecretId="default", SecretString="default after")
    sm.put_secret_value(SecretId="custom", SecretString="custom after")
    sm.create_secret(Name="new", SecretString="written after")
    assert sm.get_secret_value(SecretId="custom")["SecretString"] == "custom after"
    server.stop()

    assert len(stored_versions(data_dir)) == 5
    assert opened_by(stolen, data_dir) == {}
    assert stolen_materials(data_dir, old_key) == {}


def test_the_operator_rotates_the_default_key_on_demand(tmp_path: Path, servers: Any) -> None:  # noqa: F811
    data_dir = tmp_path / "data"
    created = init(data_dir)
    server = servers(data_dir)
    sm = server.client(**credentials(created))
    kms = server.client("kms", **credentials(created))
    sm.create_secret(Name="default", SecretString="before rotation")
    managed = kms.describe_key(KeyId="alias/aws/secretsmanager")["KeyMetadata"]
    # Tenants cannot rotate an AWS managed key, as on AWS.
    refused = aws_error(kms.rotate_key_on_demand, KeyId=managed["KeyId"])
    assert refused["Code"] == "AccessDeniedException"
    assert (
        kms.describe_key(KeyId=managed["KeyId"])["KeyMetadata"]["CurrentKeyMaterialId"]
        == managed["CurrentKeyMaterialId"]
    )
    server.stop()

    result = run("rotate-managed", "--data-dir", str(data_dir), "--reencrypt", "--json")
    rotated, reencrypted = (json.loads(line) for line in result.stdout.splitlines())
    assert rotated == {"rotated": 1}
    assert reencrypted == {"reencrypted": 1, "already_current": 0}
    (rotation,) = operator_events(data_dir, "RotateManagedKeys")
    assert rotation["serviceEventDetails"] == {"rotatedKeys": 1}
    assert rotation["recipientAccountId"] == created["account_id"]
    (reencryption,) = operator_events(data_dir, "Reencrypt")
    assert reencryption["serviceEventDetails"] == {"secretVersions": 1}

    server = servers(data_dir)
    sm = server.client(**credentials(created))
    kms = server.client("kms", **credentials(created))
    after = kms.describe_key(KeyId="alias/aws/secretsmanager")["KeyMetadata"]
    assert after["KeyId"] == managed["KeyId"]
    assert after["CurrentKeyMaterialId"] != managed["CurrentKeyMaterialId"]
    assert sm.get_secret_value(SecretId="default")["SecretString"] == "before rotation"
    server.stop()
    generations = {
        blob_origin(parts[0])
        for _, _, sealed in stored_versions(data_dir)
        if (parts := split_sealed(sealed)) is not None
    }
    assert generations == {(managed["KeyId"], 2)}


def test_an_offline_command_that_cannot_be_audited_changes_nothing(
    tmp_path: Path,
    servers: Any,  # noqa: F811
) -> None:
    data_dir = tmp_path / "data"
    created = init(data_dir)
    server = servers(data_dir)
    server.client(**credentials(created)).create_secret(Name="kept", SecretString="v")
    server.stop()
    old_key = (data_dir / "root.key").read_bytes()
    seal_before = (data_dir / "seal.json").read_bytes()
    materials = stolen_materials(data_dir, old_key)
    # Tests run as root, so permissions do not stop a write: put a plain file where the
    # audit log's directory is.
    logs = data_dir / "audit" / "logs"
    moved = logs.with_name("logs-moved")
    logs.rename(moved)
    logs.write_bytes(b"not a directory")
    try:
        for command in (
            ("rekey", "--data-dir", str(data_dir), "--root-key", "file", "--reencrypt"),
            ("rotate-managed", "--data-dir", str(data_dir)),
            ("reencrypt", "--data-dir", str(data_dir)),
        ):
            refused = run(*command, check=False)
            assert refused.returncode != 0
            assert "audit record could not be written" in refused.stderr, refused.stderr
            # Nothing changed: the same key, the same seal, the same material generations.
            assert (data_dir / "root.key").read_bytes() == old_key
            assert (data_dir / "seal.json").read_bytes() == seal_before
            assert stolen_materials(data_dir, old_key).keys() == materials.keys()
    finally:
        logs.unlink()
        moved.rename(logs)
    for name in ("Rekey", "RotateManagedKeys", "Reencrypt"):
        assert operator_events(data_dir, name) == []
    server = servers(data_dir)
    assert (
        server.client(**credentials(created)).get_secret_value(SecretId="kept")["SecretString"]
        == "v"
    )


def test_a_live_session_survives_a_rekey(tmp_path: Path, servers: Any) -> None:  # noqa: F811
    data_dir = tmp_path / "data"
    created = init(data_dir)
    server = servers(data_dir)
    issued = server.client("sts", **credentials(created)).get_session_token()["Credentials"]
    session = {
        "aws_access_key_id": issued["AccessKeyId"],
        "aws_secret_access_key": issued["SecretAccessKey"],
        "aws_session_token": issued["SessionToken"],
    }
    server.client(**session).create_secret(Name="by-session", SecretString="v")
    server.stop()
    old_key = (data_dir / "root.key").read_bytes()

    run("rekey", "--data-dir", str(data_dir), "--root-key", "file")

    server = servers(data_dir)
    identity = server.client("sts", **session).get_caller_identity()
    assert identity["Account"] == created["account_id"]
    assert server.client(**session).get_secret_value(SecretId="by-session")["SecretString"] == "v"
    server.stop()
    store = Store(sqlite_url(data_dir))
    try:
        with store.read() as conn:
            sealed = conn.execute(
                select(schema.sts_sessions.c.secret_ciphertext).where(
                    schema.sts_sessions.c.access_key_id == issued["AccessKeyId"]
                )
            ).scalar_one()
    finally:
        store.dispose()
    aad = b"sts-session|" + issued["AccessKeyId"].encode()
    with pytest.raises(DecryptionError):
        Barrier(old_key).open(bytes(sealed), aad)  # and the old key does not open it


def test_a_tampered_pkcs11_module_path_refuses_to_start(
    tmp_path: Path,
    servers: Any,  # noqa: F811
    hsm: SoftHsmToken,  # noqa: F811
) -> None:
    data_dir = tmp_path / "data"
    pkcs11 = ("--root-key", "pkcs11", "--pkcs11-module", hsm.module)
    created = init(data_dir, *pkcs11, "--pkcs11-token-label", hsm.label, env=hsm.env)
    server = servers(data_dir, env=hsm.env)
    server.client(**credentials(created)).create_secret(Name="hsm", SecretString="v")
    server.stop()
    seal_file = data_dir / "seal.json"
    genuine = seal_file.read_text()
    shim = tmp_path / "shim.so"  # what a writer of the data directory would plant
    shim.write_bytes(Path(hsm.module).read_bytes())
    seal_file.write_text(json.dumps({**json.loads(genuine), "module": str(shim)}))

    result, port = serve_and_fail(data_dir, hsm.env)
    assert result.returncode != 0
    assert "refusing to load it" in result.stderr and hsm.pin not in result.stderr
    assert_nothing_listens(port)
    # Without the operator's setting, no library is loaded at all.
    seal_file.write_text(genuine)
    unset = {name: value for name, value in hsm.env.items() if name != "STRONGROOM_PKCS11_MODULE"}
    result, port = serve_and_fail(data_dir, unset)
    assert result.returncode != 0 and "STRONGROOM_PKCS11_MODULE" in result.stderr
    assert_nothing_listens(port)
    server = servers(data_dir, env=hsm.env)
    assert (
        server.client(**credentials(created)).get_secret_value(SecretId="hsm")["SecretString"]
        == "v"
    )


def parent_of(pid: int) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
    except OSError:
        return None
    return int(fields[1])


def memory_holds(pid: int, needle: bytes) -> bool:
    """Whether ``needle`` is anywhere in the readable memory of process ``pid``."""
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as memory:
        for line in maps:
            span, permissions = line.split()[:2]
            if not permissions.startswith("r"):
                continue
            start, end = (int(part, 16) for part in span.split("-"))
            try:
                memory.seek(start)
                if needle in memory.read(end - start):
                    return True
            except (OSError, OverflowError, ValueError):
                continue
    return False


def keyholder_says(socket_file: Path, message: dict[str, str]) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(10)
        client.connect(str(socket_file))
        client.sendall(json.dumps(message).encode() + b"\n")
        try:
            return client.recv(65536)
        except ConnectionResetError:
            return b""


def worker_pids(keyholder_pid: int) -> list[int]:
    """uvicorn's worker processes of a server (spawned: a fresh interpreter, nothing copied
    by fork), not multiprocessing's resource tracker."""
    children = [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and parent_of(int(entry.name)) == keyholder_pid
    ]
    found = []
    for pid in children:
        with contextlib.suppress(OSError):
            text = Path(f"/proc/{pid}/cmdline").read_text()
            if "spawn_main" in text and "resource_tracker" not in text:
                found.append(pid)
    return sorted(found)


def serving_pid(url: str, candidates: list[int]) -> int:
    """The process that holds the server's end of an HTTP connection this test keeps open:
    the one that serves it."""
    parsed = urllib.parse.urlsplit(url)
    assert parsed.hostname is not None and parsed.port is not None
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    try:
        conn.request("GET", "/_strongroom/health")
        conn.getresponse().read()
        assert conn.sock is not None
        owner = socket_owner(parsed.port, conn.sock.getsockname()[1], candidates)
        assert owner is not None
        return owner
    finally:
        conn.close()


@pytest.mark.parametrize("workers", [(), ("--workers", "2")], ids=["default", "two-workers"])
def test_a_same_user_process_gets_nothing_from_the_keyholder_and_workers_hold_no_root_key(
    tmp_path: Path,
    servers: Any,  # noqa: F811
    workers: tuple[str, ...],
) -> None:
    data_dir = tmp_path / "data"
    created = init(data_dir)
    root_key = (data_dir / "root.key").read_bytes()
    server = servers(data_dir, *workers)
    count = int(workers[1]) if workers else 1
    sm = server.client(**credentials(created))
    for number in range(6):  # requests reach every worker
        sm.create_secret(Name=f"w{number}", SecretString="value")
        assert sm.get_secret_value(SecretId=f"w{number}")["SecretString"] == "value"

    # This test process runs as the same user but was not started by the keyholder: it
    # has only the socket path, and no channel of a worker.
    socket_file = data_dir / "keyholder.sock"
    assert keyholder_says(socket_file, {"op": "watch"}) == b""
    assert keyholder_says(socket_file, {"op": "barrier"}) == b""
    assert keyholder_says(socket_file, {"op": "verify"}) == b""  # no key for a sealed check
    refused = json.loads(keyholder_says(socket_file, {"op": "seal"}))
    assert (refused["ok"], refused["code"], refused["sealed"]) == (
        False,
        "AccessDeniedException",
        False,
    )
    assert sm.get_secret_value(SecretId="w0")["SecretString"] == "value"  # still unsealed

    assert server.process is not None
    keyholder_pid = server.process.pid
    pids = worker_pids(keyholder_pid)
    assert len(pids) == count
    # HTTP is served by a worker, never by the keyholder, with one worker too.
    assert serving_pid(server.url, [keyholder_pid, *pids]) in pids
    assert memory_holds(keyholder_pid, root_key)  # the scan finds the key where it is
    assert not any(memory_holds(pid, root_key) for pid in pids)

    # Sealed, a worker checks an operator's unseal over a verify connection: the keyholder
    # uses the key for it, and the worker still never holds it.
    run("seal", "--url", server.url, env=admin_env(created))
    # Then every worker is replaced by a fresh process: nothing a sealed worker held
    # stays in a process that lives on.
    replaced = pids
    for _ in range(600):
        replaced = worker_pids(keyholder_pid)
        if len(replaced) == count and not set(replaced) & set(pids):
            break
        time.sleep(0.1)
    assert len(replaced) == count and not set(replaced) & set(pids)
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)
    forged = {**admin_env(created), "AWS_SECRET_ACCESS_KEY": "not-it"}
    for _ in range(2):  # checked by one worker or the other
        refused = run("unseal", "--url", server.url, check=False, env=forged)
        assert refused.returncode != 0 and "signature" in refused.stderr
    # A same-user process cannot make a sealed file deployment fetch its key either.
    refused = json.loads(keyholder_says(socket_file, {"op": "unseal"}))
    assert (refused["ok"], refused["code"], refused["sealed"]) == (
        False,
        "AccessDeniedException",
        True,
    )
    assert not any(memory_holds(pid, root_key) for pid in replaced)
    assert "Unsealed" in run("unseal", "--url", server.url, env=admin_env(created)).stdout
    assert sm.get_secret_value(SecretId="w0")["SecretString"] == "value"
    assert serving_pid(server.url, [keyholder_pid, *replaced]) in replaced
