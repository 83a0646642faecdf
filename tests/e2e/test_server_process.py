"""Real server processes: the AWS CLI seed example, several workers, a persistent data
directory, clean shutdown, configuration precedence and the default bind address; and
the security properties of what a server leaves on disk and in its logs."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.rawhttp import send
from tests.server import STRONGROOM, ServerProcess, free_port, socket_owner

BIN = Path(sys.executable).parent
SEED_JSON = '{"username":"admin","password":"P@ssw0rd123"}'


def aws_env(server: ServerProcess) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "STRONGROOM_"))}
    env.update(
        AWS_ENDPOINT_URL=server.url,
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


def init_data_dir(data_dir: Path) -> dict[str, str]:
    out = subprocess.run(
        [str(STRONGROOM), "init", "--data-dir", str(data_dir), "--json"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    creds: dict[str, str] = json.loads(out.stdout)
    return creds


def keys(creds: dict[str, str]) -> dict[str, str]:
    return {
        "aws_access_key_id": creds["access_key_id"],
        "aws_secret_access_key": creds["secret_access_key"],
    }


def _sigterm_main_process(server: ServerProcess) -> None:
    """SIGTERM to the main process only (what systemd or `docker stop` send): a graceful
    shutdown, exit status 0, no process left behind, no traceback in the log."""
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGTERM)
    assert server.process.wait(timeout=30) == 0, server.log()
    deadline = time.monotonic() + 10
    while True:  # multiprocessing's resource tracker leaves once its pipe closes
        leftovers = subprocess.run(
            ["ps", "-o", "pid=,args=", "-g", str(server.process.pid)],
            capture_output=True,
            text=True,
        ).stdout.strip()
        if not leftovers or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert leftovers == ""
    log = server.log()
    assert "Traceback" not in log
    assert "Application shutdown complete." in log
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{server.url}/_strongroom/health", timeout=1)


def _open_files(pid: int) -> list[Path]:
    paths = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            paths.append(Path(os.readlink(fd)))
        except OSError:  # closed meanwhile
            continue
    return paths


# ------------------------------------------------------------------ the seed example


def test_seed_example_with_the_aws_cli(new_server: Callable[..., ServerProcess]) -> None:
    server = new_server("--dev")
    env = aws_env(server)
    created = subprocess.run(
        [
            str(BIN / "aws"),
            "secretsmanager",
            "create-secret",
            "--name",
            "MyApp/DBCredentials",
            "--secret-string",
            SEED_JSON,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    output = json.loads(created.stdout)
    assert output["Name"] == "MyApp/DBCredentials"
    assert output["ARN"].startswith(
        "arn:aws:secretsmanager:us-east-1:000000000000:secret:MyApp/DBCredentials-"
    )
    read = subprocess.run(
        [
            sys.executable,
            "-c",
            "import boto3; print(boto3.client('secretsmanager')"
            ".get_secret_value(SecretId='MyApp/DBCredentials')['SecretString'])",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert read.returncode == 0, read.stderr
    assert read.stdout == SEED_JSON + "\n"

    described = server.client().describe_secret(SecretId="MyApp/DBCredentials")
    assert described["ARN"] == output["ARN"]

    # "In memory": a scratch directory that SIGTERM removes with the data in it.
    assert server.process is not None
    # Opened by the workers (the keyholder never serves).
    workers = _live_worker_pids(server.log())
    (scratch,) = {
        path.parent for pid in workers for path in _open_files(pid) if path.name == "strongroom.db"
    }
    assert (scratch / "root.key").exists()
    _sigterm_main_process(server)
    assert not scratch.exists()
    assert not scratch.parent.exists()


# ------------------------------------------------------------------ several workers


def _worker_pids(log: str) -> list[int]:
    return [int(pid) for pid in re.findall(r"Started server process \[(\d+)\]", log)]


def _live_worker_pids(log: str) -> list[int]:
    """The workers started and not replaced: uvicorn's supervisor kills a worker that does
    not answer its health check within 5 s, which a worker still starting up on a loaded
    machine may miss, and starts another ("Child process [N] died")."""
    died = {int(pid) for pid in re.findall(r"Child process \[(\d+)\] died", log)}
    return [pid for pid in _worker_pids(log) if pid not in died]


def test_two_workers_read_your_writes(
    new_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server = new_server("--dev", "--data-dir", str(tmp_path / "data"), "--workers", "2")
    deadline = time.monotonic() + 20

    def ready() -> bool:
        # Both workers through their startup, where a slow one can miss a health check.
        log = server.log()
        return log.count("Application startup complete.") >= 2 and len(_live_worker_pids(log)) == 2

    while not ready() and time.monotonic() < deadline:
        time.sleep(0.05)
    pids = _live_worker_pids(server.log())
    assert len(pids) == 2 and len(set(pids)) == 2, server.log()

    writer = server.client()  # one kept-alive connection for every write
    # Four secrets in turn: AWS allows 100 versions per secret per 24 hours.
    names = [f"rw/{i}-{uuid.uuid4().hex[:8]}" for i in range(4)]
    latest: dict[str, str] = {}
    for name in names:
        writer.create_secret(Name=name, SecretString="v0")
        latest[name] = "v0"
    served_by: dict[int, int] = {pid: 0 for pid in pids}
    for i in range(1, 201):
        name = names[i % len(names)]
        value = f"value-{i}-{uuid.uuid4().hex}"
        version = writer.put_secret_value(SecretId=name, SecretString=value)["VersionId"]
        latest[name] = value
        owners: list[int | None] = []
        response = send(
            server.url,
            "secretsmanager.GetSecretValue",
            {"SecretId": name},
            while_connected=lambda port, seen=owners: seen.append(
                socket_owner(server.port, port, pids)
            ),
        )
        assert response.status == 200, response.body
        body = response.json()
        assert body["SecretString"] == value, f"iteration {i}: stale read"
        assert body["VersionId"] == version
        # A secret written before stays cached in each worker (a write drops only its own
        # secret's rows there), and what is cached is its latest value.
        other = names[(i - 1) % len(names)]
        response = send(server.url, "secretsmanager.GetSecretValue", {"SecretId": other})
        assert response.json()["SecretString"] == latest[other], f"iteration {i}: stale"
        assert owners[0] in served_by, f"iteration {i}: connection not found in a worker"
        served_by[owners[0]] += 1
    assert all(count > 0 for count in served_by.values()), served_by
    assert sum(served_by.values()) == 200
    _sigterm_main_process(server)
    assert server.log().count("Finished server process") == 2


# ------------------------------------------------------------------ data directory


def test_data_dir_persists_across_restart_with_owner_only_files(
    new_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    creds = init_data_dir(data)
    server = new_server("--data-dir", str(data))
    sm = server.client(**keys(creds))
    sm.create_secret(Name="persist/string", SecretString="first")
    sm.put_secret_value(SecretId="persist/string", SecretString="second")
    sm.create_secret(Name="persist/binary", SecretBinary=b"\x00\x01\xfe\xff")
    sm.tag_resource(SecretId="persist/binary", Tags=[{"Key": "team", "Value": "ops"}])
    sm.delete_secret(SecretId="persist/binary", RecoveryWindowInDays=7)
    before = {
        name: sm.describe_secret(SecretId=name) for name in ("persist/string", "persist/binary")
    }
    _sigterm_main_process(server)

    restarted = new_server("--data-dir", str(data))
    sm = restarted.client(**keys(creds))
    for name, described in before.items():
        after = sm.describe_secret(SecretId=name)
        for meta in (after, described):
            meta.pop("ResponseMetadata", None)
        assert after == described
    assert sm.get_secret_value(SecretId="persist/string")["SecretString"] == "second"
    previous = sm.get_secret_value(SecretId="persist/string", VersionStage="AWSPREVIOUS")
    assert previous["SecretString"] == "first"
    sm.restore_secret(SecretId="persist/binary")
    assert sm.get_secret_value(SecretId="persist/binary")["SecretBinary"] == b"\x00\x01\xfe\xff"

    # While serving (WAL and shared-memory files exist) and after: owner-only everywhere.
    _assert_owner_only(data)
    restarted.stop()
    _assert_owner_only(data)
    assert stat.S_IMODE((data / "root.key").stat().st_mode) == 0o600
    assert (data / "root.key").stat().st_size == 32


def _assert_owner_only(data: Path) -> None:
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    seen = []
    for path in data.rglob("*"):
        mode = stat.S_IMODE(path.lstat().st_mode)
        if path.is_dir():
            assert mode == 0o700, f"{path}: {oct(mode)}"
        else:
            assert mode == 0o600, f"{path}: {oct(mode)}"
        seen.append(path.name)
    assert {"root.key", "strongroom.db"} <= set(seen), seen
    assert any(name.endswith(".jsonl") for name in seen), seen  # the audit log


# ------------------------------------------------------------------ configuration


class Spawned:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log_path = log
        handle = log.open("ab")
        self.process = subprocess.Popen(
            [str(STRONGROOM), "server", *args],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env={**env, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )

    def wait_healthy(self, port: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log_path.read_text()
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/_strongroom/health", timeout=1
                ) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"not healthy on {port}:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[[list[str], dict[str, str]], Spawned]]:
    started: list[Spawned] = []

    def start(args: list[str], env: dict[str, str]) -> Spawned:
        process = Spawned(args, env, tmp_path / f"spawn-{len(started)}.log")
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("STRONGROOM_")}


def _listening_addresses(port: int) -> set[str]:
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def test_configuration_precedence_flag_env_toml(
    spawn: Callable[[list[str], dict[str, str]], Spawned], tmp_path: Path
) -> None:
    toml_port, env_port, flag_port = free_port(), free_port(), free_port()
    config = tmp_path / "strongroom.toml"
    config.write_text(f'[server]\nport = {toml_port}\nlog_level = "warning"\ndev = true\n')

    from_toml = spawn(["--config", str(config)], _clean_env())
    from_toml.wait_healthy(toml_port)
    # Nothing set the host: the default bind is loopback only.
    assert _listening_addresses(toml_port) == {"0100007F"}  # 127.0.0.1
    log = from_toml.log_path.read_text()
    assert f"dev server on http://127.0.0.1:{toml_port}" in log
    assert "Uvicorn running" not in log  # log_level = "warning" from the file holds too
    from_toml.stop()

    env = {**_clean_env(), "STRONGROOM_PORT": str(env_port)}
    from_env = spawn(["--config", str(config)], env)
    from_env.wait_healthy(env_port)
    assert _listening_addresses(toml_port) == set()
    from_env.stop()

    from_flag = spawn(["--config", str(config), "--port", str(flag_port)], env)
    from_flag.wait_healthy(flag_port)
    assert _listening_addresses(env_port) == set()
    assert _listening_addresses(toml_port) == set()
    from_flag.stop()
    assert from_flag.process.returncode == 0


def test_bad_configuration_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[server]\nprot = 1\n")
    result = subprocess.run(
        [str(STRONGROOM), "server", "--dev", "--config", str(config)],
        capture_output=True,
        text=True,
        env=_clean_env(),
        timeout=60,
    )
    assert result.returncode != 0
    assert "unknown setting(s): prot" in result.stderr


# ------------------------------------------------------------------ security


def _forms(value: bytes) -> dict[str, bytes]:
    """The encodings a leaked value could hide behind."""
    return {
        "raw": value,
        "base64": base64.b64encode(value),
        "base64url": base64.urlsafe_b64encode(value),
        "hex": value.hex().encode(),
        "HEX": value.hex().upper().encode(),
        "json-escaped": json.dumps(value.decode("latin-1"))[1:-1].encode(),
    }


def _leaks(blob: bytes, secrets: dict[str, bytes]) -> list[str]:
    found = []
    for label, value in secrets.items():
        for form, encoded in _forms(value).items():
            if encoded in blob:
                found.append(f"{label} as {form}")
    return found


def _scan_dir(data: Path, secrets: dict[str, bytes]) -> tuple[list[str], list[str]]:
    leaks, scanned = [], []
    for path in sorted(data.rglob("*")):
        if path.is_file():
            scanned.append(path.name)
            leaks += [f"{path.name}: {leak}" for leak in _leaks(path.read_bytes(), secrets)]
    return leaks, scanned


def test_nothing_secret_on_disk_in_logs_or_audit(
    new_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    creds = init_data_dir(data)
    server = new_server("--data-dir", str(data), "--log-level", "debug")
    sm = server.client(**keys(creds))
    tag = uuid.uuid4().hex
    secrets = {
        "string": f"StrongroomSentinel-{tag}-p@ss".encode(),
        "json": json.dumps({"username": "admin", "password": f"Pw-{tag}"}).encode(),
        "updated": f"UpdatedSentinel-{tag}".encode(),
        "binary": b"\x00\x01BinarySentinel-" + tag.encode() + b"\xfe\xff",
        "binary2": os.urandom(48) + tag.encode(),
        "admin key": creds["secret_access_key"].encode(),
    }
    sm.create_secret(Name="sec/string", SecretString=secrets["string"].decode())
    sm.create_secret(Name="sec/json", SecretString=secrets["json"].decode())
    sm.update_secret(SecretId="sec/string", SecretString=secrets["updated"].decode())
    sm.create_secret(Name="sec/binary", SecretBinary=secrets["binary"])
    sm.put_secret_value(SecretId="sec/binary", SecretBinary=secrets["binary2"])
    assert sm.get_secret_value(SecretId="sec/string")["SecretString"] == (
        secrets["updated"].decode()
    )
    assert (
        sm.get_secret_value(SecretId="sec/binary", VersionStage="AWSPREVIOUS")["SecretBinary"]
        == secrets["binary"]
    )
    sm.batch_get_secret_value(SecretIdList=["sec/string", "sec/json", "sec/binary"])

    # Denied: a bad signature, and an unknown key, both carrying a secret value.
    forged = send(
        server.url,
        "secretsmanager.PutSecretValue",
        {
            "SecretId": "sec/json",
            "SecretString": secrets["string"].decode(),
            "ClientRequestToken": str(uuid.uuid4()),
        },
        access_key=creds["access_key_id"],
        secret_key="wrong-secret",
    )
    assert forged.error_code == "InvalidSignatureException"
    stranger = send(
        server.url,
        "secretsmanager.GetSecretValue",
        {"SecretId": "sec/json"},
        access_key="AKIANOSUCHKEY0000000",
    )
    assert stranger.error_code == "UnrecognizedClientException"
    # A refused value too long to store never shows up either.
    with pytest.raises(ClientError):
        sm.put_secret_value(SecretId="sec/json", SecretString=secrets["string"].decode() * 3000)

    running_leaks, scanned = _scan_dir(data, secrets)
    assert running_leaks == []
    assert "strongroom.db-wal" in scanned  # the write-ahead log was searched too
    server.stop()
    stopped_leaks, _ = _scan_dir(data, secrets)
    assert stopped_leaks == []
    log = server.log()
    assert '"POST / HTTP/1.1" 200' in log  # debug logging was on: every request was logged
    assert _leaks(log.encode(), secrets) == []

    events = _audit_events(data)
    by_name: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_name.setdefault(event["eventName"], []).append(event)
    created = by_name["CreateSecret"]
    assert len(created) == 3 and all("errorCode" not in event for event in created)
    assert all(event["userIdentity"]["accessKeyId"] == creds["access_key_id"] for event in created)
    names = set()
    for event in created:
        params = {key.lower(): value for key, value in event["requestParameters"].items()}
        names.add(params["name"])
    assert names == {"sec/string", "sec/json", "sec/binary"}
    puts = by_name["PutSecretValue"]
    denied = [event for event in puts if event.get("errorCode") == "InvalidSignatureException"]
    assert len(denied) == 1
    assert denied[0]["errorMessage"]
    assert [event["errorCode"] for event in by_name["GetSecretValue"] if "errorCode" in event] == [
        "UnrecognizedClientException"
    ]
    assert any(event.get("errorCode") == "ValidationException" for event in puts)
    # Exactly one event per request: 8 allowed calls, 3 refused ones (besides the KMS
    # calls Secrets Manager made on their behalf, each its own event).
    own = [e for e in events if "invokedBy" not in e.get("userIdentity", {})]
    assert len(own) == 11, [event["eventName"] for event in own]
    assert len({event["requestID"] for event in own}) == 11


def _audit_events(data: Path) -> list[dict[str, Any]]:
    """Every audit record under data/audit (docs/audit-format.md), in write order."""
    events = []
    for path in sorted((data / "audit").rglob("*.jsonl")):
        events += [json.loads(line) for line in path.read_text().splitlines() if line]
    assert events, "no audit log found"
    return events
