"""Root-key providers, the sealed server and the operator commands, end to end: real
`strongroom` processes, boto3 clients, the CLI as an operator types it."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from sqlalchemy import select

from strongroom.keys.envelope import Barrier, DecryptionError
from strongroom.server.keyring import ROOT_SEALED
from strongroom.store.engine import Store, sqlite_url
from tests.server import STRONGROOM, ServerProcess, free_port
from tests.softhsm import SoftHsmToken, make_token

PASSPHRASE = "tr0ub4dor & 3 horses"
SEALED = "Strongroom is sealed. Unseal it with `strongroom unseal`."
BINARY = bytes(range(256)) * 3


def run(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(STRONGROOM), *args],
        env={**os.environ, **(env or {})},
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=180,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"strongroom {' '.join(args)} failed:\n{result.stderr}")
    return result


def init(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        run("init", "--data-dir", str(data_dir), "--json", *args, env=env).stdout
    )
    return document


def credentials(created: dict[str, Any]) -> dict[str, str]:
    return {
        "aws_access_key_id": created["access_key_id"],
        "aws_secret_access_key": created["secret_access_key"],
    }


def admin_env(created: dict[str, Any]) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": created["access_key_id"],
        "AWS_SECRET_ACCESS_KEY": created["secret_access_key"],
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def health(url: str) -> tuple[int, dict[str, Any]]:
    """A fresh connection each time (urllib closes it)."""
    try:
        with urllib.request.urlopen(f"{url}/_strongroom/health", timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as answer:
        return answer.code, json.loads(answer.read())


def status_of(url: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(run("status", "--url", url, "--json").stdout)
    return document


def assert_private(data_dir: Path) -> None:
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    for path in data_dir.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path} is {oct(mode)}"


def assert_sealed(server: ServerProcess, created: dict[str, Any], name: str) -> None:
    code, body = health(server.url)
    assert (code, body) == (503, {"sealed": True})
    with pytest.raises(ClientError) as raised:
        server.client(**credentials(created)).get_secret_value(SecretId=name)
    error = raised.value.response
    assert error["Error"]["Code"] == "ServiceUnavailableException"
    assert error["Error"]["Message"] == SEALED
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 503


def store_secrets(server: ServerProcess, created: dict[str, Any], prefix: str) -> None:
    sm = server.client(**credentials(created))
    sm.create_secret(Name=f"{prefix}/string", SecretString=f"{prefix}-s3cr3t-value")
    sm.create_secret(Name=f"{prefix}/binary", SecretBinary=BINARY)


def assert_secrets(server: ServerProcess, created: dict[str, Any], prefix: str) -> None:
    sm = server.client(**credentials(created))
    value = sm.get_secret_value(SecretId=f"{prefix}/string")
    assert value["SecretString"] == f"{prefix}-s3cr3t-value"
    assert sm.get_secret_value(SecretId=f"{prefix}/binary")["SecretBinary"] == BINARY


def root_sealed_values(data_dir: Path) -> list[tuple[bytes, bytes]]:
    store = Store(sqlite_url(data_dir))
    values = []
    try:
        with store.read() as conn:
            for entry in ROOT_SEALED:
                query = select(entry.table)
                if entry.where is not None:
                    query = query.where(entry.where())
                for row in conn.execute(query):
                    values.append((bytes(getattr(row, entry.column)), entry.aad(row)))
    finally:
        store.dispose()
    return values


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Any]:
    started: list[ServerProcess] = []

    def start(
        data_dir: Path, *args: str, env: dict[str, str] | None = None, ready_status: int = 200
    ) -> ServerProcess:
        process = ServerProcess(
            ["--data-dir", str(data_dir), *args],
            tmp_path / f"server-{len(started)}.log",
            env=env or {},
        )
        started.append(process)
        return process.start(timeout=60, ready_status=ready_status)

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def hsm(tmp_path: Path) -> SoftHsmToken:
    return make_token(tmp_path / "softhsm")


# --- each provider: init, serve, store, restart, read back ----------------------------------


@pytest.mark.parametrize("provider", ["file", "passphrase", "pkcs11"])
def test_provider_serves_and_survives_a_restart(
    provider: str, tmp_path: Path, servers: Any, request: pytest.FixtureRequest
) -> None:
    data_dir = tmp_path / "data"
    args: list[str] = ["--root-key", provider]
    env: dict[str, str] = {}
    if provider == "passphrase":
        env = {"STRONGROOM_PASSPHRASE": PASSPHRASE}
    if provider == "pkcs11":
        token: SoftHsmToken = request.getfixturevalue("hsm")
        env = token.env
        args += ["--pkcs11-module", token.module, "--pkcs11-token-label", token.label]
    created = init(data_dir, *args, env=env)
    assert list(created) == ["account_id", "access_key_id", "secret_access_key"]
    seal = json.loads((data_dir / "seal.json").read_text())
    assert seal["provider"] == provider
    assert (data_dir / "root.key").exists() == (provider == "file")

    server = servers(data_dir, env=env)
    assert health(server.url) == (200, {"status": "ok", "sealed": False})
    store_secrets(server, created, provider)
    status = status_of(server.url)
    assert (status["sealed"], status["provider"]) == (False, provider)
    assert stat.S_IMODE((data_dir / "keyholder.sock").stat().st_mode) == 0o600

    # Sealed by an administrator, then unsealed again the provider's way.
    run("seal", "--url", server.url, env=admin_env(created))
    assert_sealed(server, created, f"{provider}/string")
    if provider == "passphrase":
        wrong = run(
            "unseal",
            "--url",
            server.url,
            check=False,
            env={"STRONGROOM_PASSPHRASE": "not the passphrase"},
        )
        assert wrong.returncode != 0 and "wrong passphrase" in wrong.stderr
        assert_sealed(server, created, f"{provider}/string")
    # A file or PKCS#11 key comes back only for an operator allowed strongroom:Unseal.
    operator = admin_env(created) if provider in ("file", "pkcs11") else {}
    unsealed = run("unseal", "--url", server.url, env={**env, **operator})
    assert "Unsealed" in unsealed.stdout
    assert_secrets(server, created, provider)
    server.stop()
    assert not (data_dir / "keyholder.sock").exists()
    assert PASSPHRASE not in server.log()

    server = servers(data_dir, env=env)
    assert_secrets(server, created, provider)
    server.stop()
    assert_private(data_dir)


def serve_and_fail(
    data_dir: Path, env: dict[str, str]
) -> tuple[subprocess.CompletedProcess[str], int]:
    port = free_port()
    result = subprocess.run(
        [str(STRONGROOM), "server", "--data-dir", str(data_dir), "--port", str(port)],
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result, port


def assert_nothing_listens(port: int) -> None:
    with socket.socket() as probe, pytest.raises(OSError):
        probe.connect(("127.0.0.1", port))


def test_a_wrong_passphrase_is_refused_and_nothing_is_served(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    init(data_dir, "--root-key", "passphrase", env={"STRONGROOM_PASSPHRASE": PASSPHRASE})
    result, port = serve_and_fail(data_dir, {"STRONGROOM_PASSPHRASE": PASSPHRASE + "!"})
    assert result.returncode != 0
    assert "wrong passphrase" in result.stderr and "nothing is served" in result.stderr
    assert PASSPHRASE not in result.stderr + result.stdout
    assert_nothing_listens(port)
    assert not (data_dir / "keyholder.sock").exists()

    env = {k: v for k, v in os.environ.items() if k != "STRONGROOM_PASSPHRASE"}
    result = subprocess.run(
        [str(STRONGROOM), "server", "--data-dir", str(data_dir), "--port", str(free_port())],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "STRONGROOM_PASSPHRASE" in result.stderr


def test_a_wrong_pkcs11_pin_is_refused(tmp_path: Path, hsm: SoftHsmToken) -> None:
    data_dir = tmp_path / "data"
    init(
        data_dir,
        "--root-key",
        "pkcs11",
        "--pkcs11-module",
        hsm.module,
        "--pkcs11-token-label",
        hsm.label,
        env=hsm.env,
    )
    result, port = serve_and_fail(data_dir, {**hsm.env, "STRONGROOM_PKCS11_PIN": "99999999"})
    assert result.returncode != 0 and "refused the PIN" in result.stderr
    assert_nothing_listens(port)


# --- shamir: sealed, unseal, seal, unseal ---------------------------------------------------


def test_shamir_starts_sealed_and_unseals_with_any_threshold_of_shares(
    tmp_path: Path, servers: Any
) -> None:
    data_dir = tmp_path / "data"
    created = init(data_dir, "--root-key", "shamir", "--shares", "5", "--threshold", "3")
    shares = created["unseal_shares"]
    assert len(shares) == 5 and len(set(shares)) == 5
    seal_file = (data_dir / "seal.json").read_text()
    assert all(share not in seal_file for share in shares)

    server = servers(data_dir, "--workers", "2", ready_status=503)
    url = server.url
    assert_sealed(server, created, "app/secret")
    # Query-protocol clients (IAM, STS) get the same error in their XML shape.
    with pytest.raises(ClientError) as raised:
        server.client("sts", **credentials(created)).get_caller_identity()
    assert raised.value.response["Error"]["Code"] == "ServiceUnavailableException"
    assert raised.value.response["Error"]["Message"] == SEALED
    status = status_of(url)
    assert status == {
        "sealed": True,
        "provider": "shamir",
        "progress": 0,
        "threshold": 3,
        "shares": 5,
        "workers": 2,
    }

    first = run("unseal", "--url", url, shares[0])
    assert "1/3" in first.stdout
    again = run("unseal", "--url", url, shares[0], check=False)
    assert again.returncode != 0 and "already submitted" in again.stderr
    typo = shares[1][:30] + ("0" if shares[1][30] != "0" else "1") + shares[1][31:]
    mistyped = run("unseal", "--url", url, typo, check=False)
    assert mistyped.returncode != 0 and "mistyped" in mistyped.stderr
    assert typo not in mistyped.stderr + mistyped.stdout
    assert status_of(url)["progress"] == 1  # the refused shares did not count
    assert_sealed(server, created, "app/secret")
    second = run("unseal", "--url", url, stdin=shares[3] + "\n")  # prompted: from stdin
    assert "2/3" in second.stdout
    third = run("unseal", "--url", url, shares[4])
    assert "Unsealed" in third.stdout

    # Every worker has the key: many fresh connections, all served.
    for _ in range(40):
        assert health(url)[0] == 200, server.log()
    sm = server.client(**credentials(created))
    sm.create_secret(Name="app/secret", SecretString="sealed-and-unsealed")
    for _ in range(10):
        fresh = server.client(**credentials(created))
        assert fresh.get_secret_value(SecretId="app/secret")["SecretString"] == (
            "sealed-and-unsealed"
        )

    # Sealing needs an administrator's signature.
    refused = run(
        "seal",
        "--url",
        url,
        check=False,
        env={**admin_env(created), "AWS_SECRET_ACCESS_KEY": "not-the-secret"},
    )
    assert refused.returncode != 0 and "signature" in refused.stderr
    unsigned = urllib.request.Request(f"{url}/_strongroom/seal", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(unsigned, timeout=10)
    assert raised.value.code in (400, 403)
    assert health(url)[0] == 200

    run("seal", "--url", url, env=admin_env(created))
    for _ in range(20):
        assert health(url) == (503, {"sealed": True}), server.log()
    assert_sealed(server, created, "app/secret")

    for share in (shares[1], shares[2], shares[0]):
        run("unseal", "--url", url, share)
    for _ in range(20):
        assert health(url)[0] == 200, server.log()
    assert sm.get_secret_value(SecretId="app/secret")["SecretString"] == "sealed-and-unsealed"

    server.stop()  # a restart starts sealed again
    server = servers(data_dir, ready_status=503)
    assert_sealed(server, created, "app/secret")
    for share in shares[2:]:
        run("unseal", "--url", server.url, share)
    sm = server.client(**credentials(created))
    assert sm.get_secret_value(SecretId="app/secret")["SecretString"] == "sealed-and-unsealed"
    server.stop()
    assert_private(data_dir)


def test_unseal_endpoint_refuses_bad_input_without_counting(tmp_path: Path, servers: Any) -> None:
    data_dir = tmp_path / "data"
    created = init(data_dir, "--root-key", "shamir", "--shares", "3", "--threshold", "2")
    server = servers(data_dir, ready_status=503)

    def post(body: bytes) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            f"{server.url}/_strongroom/unseal", data=body, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as answer:
            return answer.code, json.loads(answer.read())

    for body in (b"not json", b"[]", b'{"share": 7}', b'{"share": "srs1-nope"}', b"{}"):
        code, reply = post(body)
        assert code == 400, body
    other = init(tmp_path / "other", "--root-key", "shamir", "--shares", "3", "--threshold", "2")[
        "unseal_shares"
    ][0]
    code, reply = post(json.dumps({"share": other}).encode())
    assert code == 400 and "another share set" in reply["Message"]
    code, reply = post(json.dumps({"share": created["unseal_shares"][1]}).encode())
    assert (code, reply["sealed"], reply["progress"], reply["threshold"]) == (200, True, 1, 2)
    code, reply = post(json.dumps({"reset": True}).encode())
    assert (code, reply["progress"]) == (200, 0)
    log = server.log()
    assert all(share not in log for share in created["unseal_shares"])
    assert other not in log


# --- rekey ---------------------------------------------------------------------------------


def test_rekey_through_every_provider_keeps_secrets_and_voids_the_old_key(
    tmp_path: Path, servers: Any
) -> None:
    data_dir = tmp_path / "data"
    created = init(data_dir)  # the file provider
    server = servers(data_dir)
    store_secrets(server, created, "rekey")
    refused = run("rekey", "--data-dir", str(data_dir), "--root-key", "file", check=False)
    assert refused.returncode != 0 and "stop it first" in refused.stderr
    server.stop()

    old_key = (data_dir / "root.key").read_bytes()
    before = root_sealed_values(data_dir)

    # file -> passphrase
    result = run(
        "rekey",
        "--data-dir",
        str(data_dir),
        "--root-key",
        "passphrase",
        env={"STRONGROOM_NEW_PASSPHRASE": PASSPHRASE},
    )
    assert "Rekeyed" in result.stderr
    assert not (data_dir / "root.key").exists()
    after = root_sealed_values(data_dir)
    assert len(after) == len(before) >= 3
    old = Barrier(old_key)
    for sealed, aad in after:
        with pytest.raises(DecryptionError):
            old.open(sealed, aad)  # the old key file opens nothing any more
    env = {"STRONGROOM_PASSPHRASE": PASSPHRASE}
    server = servers(data_dir, env=env)
    assert_secrets(server, created, "rekey")
    server.stop()

    # passphrase -> shamir (shares printed in the JSON, before the commit)
    result = run(
        "rekey",
        "--data-dir",
        str(data_dir),
        "--root-key",
        "shamir",
        "--shares",
        "3",
        "--threshold",
        "2",
        "--json",
        env=env,
    )
    outcome = json.loads(result.stdout)
    assert outcome["root_key_provider"] == "shamir" and len(outcome["unseal_shares"]) == 3
    assert outcome["rewrapped"]["access_keys.secret_ciphertext"] >= 1
    shares = outcome["unseal_shares"]
    server = servers(data_dir, ready_status=503)
    for share in shares[1:]:
        run("unseal", "--url", server.url, share)
    assert_secrets(server, created, "rekey")
    server.stop()

    # shamir -> file, the current shares typed (here: piped) in
    wrong = run(
        "rekey",
        "--data-dir",
        str(data_dir),
        "--root-key",
        "file",
        check=False,
        stdin=shares[0] + "\n" + shares[0] + "\n",
    )
    assert wrong.returncode != 0 and "already submitted" in wrong.stderr
    assert json.loads((data_dir / "seal.json").read_text())["provider"] == "shamir"
    run(
        "rekey",
        "--data-dir",
        str(data_dir),
        "--root-key",
        "file",
        stdin=shares[0] + "\n" + shares[2] + "\n",
    )
    assert (data_dir / "root.key").read_bytes() != old_key
    server = servers(data_dir)
    assert_secrets(server, created, "rekey")
    server.stop()
    assert_private(data_dir)


def test_rekey_to_an_hsm(tmp_path: Path, servers: Any, hsm: SoftHsmToken) -> None:
    data_dir = tmp_path / "data"
    created = init(data_dir)
    server = servers(data_dir)
    store_secrets(server, created, "hsm")
    server.stop()
    old_key = (data_dir / "root.key").read_bytes()
    run(
        "rekey",
        "--data-dir",
        str(data_dir),
        "--root-key",
        "pkcs11",
        "--pkcs11-module",
        hsm.module,
        "--pkcs11-token-label",
        hsm.label,
        "--pkcs11-key-label",
        "rekeyed",
        env=hsm.env,
    )
    seal = json.loads((data_dir / "seal.json").read_text())
    assert (seal["provider"], seal["key_label"]) == ("pkcs11", "rekeyed")
    assert not (data_dir / "root.key").exists()
    for sealed, aad in root_sealed_values(data_dir):
        with pytest.raises(DecryptionError):
            Barrier(old_key).open(sealed, aad)
    server = servers(data_dir, env=hsm.env)
    assert_secrets(server, created, "hsm")
    server.stop()
    # The token is the key: without it (another token directory) nothing opens.
    elsewhere = make_token(tmp_path / "other-hsm", label=hsm.label)
    result, port = serve_and_fail(data_dir, elsewhere.env)
    assert result.returncode != 0 and "rekeyed" in result.stderr
    assert_nothing_listens(port)
    shutil.rmtree(tmp_path / "other-hsm")
