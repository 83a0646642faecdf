"""The `strongroom` command, and the README's examples run as written."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.docs import code_blocks as _code_blocks
from tests.docs import doc_env as _readme_env
from tests.docs import run_shell as _run
from tests.docs import shell_commands as _shell_commands
from tests.server import STRONGROOM, ServerProcess

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent


def strongroom(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STRONGROOM_")}
    return subprocess.run(
        [str(STRONGROOM), *args],
        capture_output=True,
        text=True,
        env={**clean, "COLUMNS": "100", **(env or {})},
        timeout=60,
    )


def digest_tree(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


# ------------------------------------------------------------------ help


def test_top_level_help() -> None:
    result = strongroom("--help")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("Usage: strongroom [OPTIONS] COMMAND [ARGS]...")
    assert "AWS Secrets Manager API" in " ".join(out.split())
    assert "AWS_ENDPOINT_URL" in out
    # Each command's one-line summary is whole, not cut off with "...".
    assert re.search(
        r"^\s+init\s+Create a data directory and its first admin access key\.$", out, re.MULTILINE
    )
    assert re.search(
        r"^\s+server\s+Serve the AWS-compatible API \(and /_strongroom/health\)\.$",
        out,
        re.MULTILINE,
    )
    assert strongroom("-h").stdout == out
    version = strongroom("--version")
    assert version.returncode == 0
    assert re.fullmatch(r"strongroom, version \d+\.\d+\.\d+\S*\n", version.stdout)


def test_server_help() -> None:
    result = strongroom("server", "--help")
    assert result.returncode == 0, result.stderr
    out = " ".join(result.stdout.split())  # unwrap
    assert out.startswith("Usage: strongroom server [OPTIONS]")
    for option in (
        "--dev",
        "--data-dir",
        "--host",
        "--port",
        "--workers",
        "--log-level",
        "--config",
    ):
        assert f" {option} " in out, option
    assert "credentials test/test" in out
    assert "[default: 127.0.0.1]" in out
    assert "[default: 8420]" in out
    assert "TOML file with a [server] table" in out


def test_init_help() -> None:
    result = strongroom("init", "--help")
    assert result.returncode == 0, result.stderr
    out = " ".join(result.stdout.split())
    assert out.startswith("Usage: strongroom init [OPTIONS]")
    assert "--data-dir PATH" in out and "[required]" in out
    assert "--json" in out
    assert "printed once" in out


def test_unknown_command_fails() -> None:
    result = strongroom("serve")
    assert result.returncode == 2
    assert "No such command 'serve'" in result.stderr


# ------------------------------------------------------------------ init


def test_init_json_prints_the_credentials_once(tmp_path: Path) -> None:
    data = tmp_path / "deployment"
    result = strongroom("init", "--data-dir", str(data), "--json")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    creds = json.loads(lines[0])
    assert list(creds) == ["account_id", "access_key_id", "secret_access_key"]
    assert re.fullmatch(r"\d{12}", creds["account_id"])
    assert creds["account_id"] != "000000000000"
    assert re.fullmatch(r"AKIA[A-Z0-9]{16}", creds["access_key_id"])
    assert len(creds["secret_access_key"]) == 40
    assert result.stdout.count(creds["secret_access_key"]) == 1
    assert creds["secret_access_key"] not in result.stderr
    assert {p.name for p in data.iterdir()} >= {"root.key", "strongroom.db"}


def test_init_human_output(tmp_path: Path) -> None:
    result = strongroom("init", "--data-dir", str(tmp_path / "d"))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Initialized" in out
    assert re.search(r"account id\s+\d{12}", out)
    assert re.search(r"access key id\s+AKIA[A-Z0-9]{16}", out)
    assert re.search(r"secret access key\s+\S{40}", out)
    assert "not shown again" in out


def test_init_twice_refuses_and_overwrites_nothing_then_serves(
    tmp_path: Path, new_server: Callable[..., ServerProcess]
) -> None:
    data = tmp_path / "deployment"
    first = strongroom("init", "--data-dir", str(data), "--json")
    assert first.returncode == 0, first.stderr
    creds = json.loads(first.stdout)
    before = digest_tree(data)

    second = strongroom("init", "--data-dir", str(data), "--json")
    assert second.returncode != 0
    assert second.stdout == ""  # no new credentials printed
    assert "already holds a Strongroom deployment" in second.stderr
    assert str(data) in second.stderr
    assert digest_tree(data) == before

    # `strongroom server --data-dir` (not --dev) serves it with those credentials...
    server = new_server("--data-dir", str(data))
    sm = server.client(
        aws_access_key_id=creds["access_key_id"],
        aws_secret_access_key=creds["secret_access_key"],
    )
    created = sm.create_secret(Name="cli/first", SecretString="v")
    assert created["ARN"].startswith(
        f"arn:aws:secretsmanager:us-east-1:{creds['account_id']}:secret:cli/first-"
    )
    assert "000000000000" not in server.log()
    assert "test/test" not in server.log()
    # ... and the development credentials do not exist there.
    dev = server.client()
    with pytest.raises(ClientError) as exc:
        dev.list_secrets()
    assert exc.value.response["Error"]["Code"] == "UnrecognizedClientException"
    with pytest.raises(ClientError) as exc:
        dev.create_secret(Name="cli/dev", SecretString="v")
    assert exc.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert [s["Name"] for s in sm.list_secrets()["SecretList"]] == ["cli/first"]


# ------------------------------------------------------------------ server refusals


def test_server_without_dev_or_data_dir_explains(tmp_path: Path) -> None:
    result = strongroom("server", "--port", "1")
    assert result.returncode != 0
    assert "no data directory" in result.stderr
    assert "--data-dir" in result.stderr and "strongroom init" in result.stderr
    assert "--dev" in result.stderr
    assert "Traceback" not in result.stderr


def test_server_on_an_uninitialized_directory_explains(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = strongroom("server", "--data-dir", str(empty), "--port", "1")
    assert result.returncode != 0
    assert "is not a Strongroom data directory" in result.stderr
    assert f"strongroom init --data-dir {empty}" in " ".join(result.stderr.split())
    assert list(empty.iterdir()) == []  # nothing was created


# ------------------------------------------------------------------ README


def _section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_readme_first_steps_run_as_written(new_server: Callable[..., ServerProcess]) -> None:
    blocks = _code_blocks(_section("First steps"))
    assert [language for language, _ in blocks] == ["sh", "sh", "python"]
    server = new_server("--dev")
    env = _readme_env(server)

    # The export line: same settings, but the endpoint of this test's server (the README's
    # 127.0.0.1:8420 is the `make serve` default).
    first = _shell_commands(blocks[0][1])
    exports = [command for command in first if command.startswith("export ")]
    assert len(exports) == 1
    settings = dict(item.split("=", 1) for item in shlex.split(exports[0])[1:])
    assert settings == {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:8420",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    env.update(settings, AWS_ENDPOINT_URL=server.url)

    outputs: dict[str, Any] = {}
    commands = [c for c in first if c not in exports] + _shell_commands(blocks[1][1])
    for command in commands:
        assert command.split()[0] in ("aws", "python"), command
        outputs[command] = _run(command, env)
    results = list(outputs.values())
    seed = '{"username":"admin","password":"P@ssw0rd123"}'
    new = '{"username":"admin","password":"n3w-P@ss"}'

    created = json.loads(results[0])
    assert created["Name"] == "MyApp/DBCredentials"
    assert created["ARN"].startswith(
        "arn:aws:secretsmanager:us-east-1:000000000000:secret:MyApp/DBCredentials-"
    )
    assert results[1] == seed + "\n"  # the python one-liner prints the JSON secret string
    put = json.loads(results[2])
    assert put["VersionStages"] == ["AWSCURRENT"]
    versions = json.loads(results[3])["Versions"]
    assert sorted(stage for v in versions for stage in v["VersionStages"]) == [
        "AWSCURRENT",
        "AWSPREVIOUS",
    ]
    assert json.loads(results[4])["SecretString"] == seed  # AWSPREVIOUS
    listed = json.loads(results[5])["SecretList"]
    assert [s["Name"] for s in listed] == ["MyApp/DBCredentials"]
    deleted = json.loads(results[6])
    assert deleted["Name"] == "MyApp/DBCredentials" and "DeletionDate" in deleted
    assert json.loads(results[7])["Name"] == "MyApp/DBCredentials"
    assert len(results) == 8

    # The caching-library snippet, with the same environment.
    cached = subprocess.run(
        [sys.executable, "-c", blocks[2][1]], capture_output=True, text=True, env=env, timeout=60
    )
    assert cached.returncode == 0, cached.stderr
    assert cached.stdout == new + "\n"


def test_readme_running_for_real_commands(tmp_path: Path) -> None:
    """`strongroom init` as the README shows it (with a scratch directory)."""
    blocks = _code_blocks(_section("Running it for real"))
    assert len(blocks) == 1
    commands = _shell_commands(blocks[0][1])
    assert commands[0] == "strongroom init --data-dir /var/lib/strongroom --json"
    assert commands[1] == "strongroom server --data-dir /var/lib/strongroom --workers 2"
    data = tmp_path / "strongroom"
    result = strongroom(*shlex.split(commands[0].replace("/var/lib/strongroom", str(data)))[1:])
    assert result.returncode == 0, result.stderr
    assert set(json.loads(result.stdout)) >= {"account_id", "access_key_id", "secret_access_key"}
    # The server flags it names exist.
    help_text = strongroom("server", "--help").stdout
    for flag in shlex.split(commands[1])[2::2]:
        assert flag in help_text


def test_readme_settings_match_the_server() -> None:
    from strongroom.server.config import DEFAULT_HOST, DEFAULT_PORT, Settings

    section = _section("Running it for real")
    named = set(re.findall(r"`STRONGROOM_([A-Z_]+)`", section))
    fields = {name.upper() for name in Settings.__dataclass_fields__}
    assert named and named <= fields, named - fields
    assert f"binds to {DEFAULT_HOST}:{DEFAULT_PORT}" in section
    assert f"http://{DEFAULT_HOST}:{DEFAULT_PORT}" in README.read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(rf"^PORT\s+\?=\s+{DEFAULT_PORT}$", makefile, re.MULTILINE)
    assert "--dev --data-dir ./.strongroom" in makefile


# ------------------------------------------------------------------ a newcomer's rough edges


def test_a_port_in_use_is_named_with_what_to_do(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = strongroom("server", "--dev", "--port", str(port))
    assert result.returncode != 0
    message = " ".join(result.stderr.split())
    assert f"port {port} on 127.0.0.1 is already in use" in message
    assert "--port N" in message and "make serve PORT=N" in message
    assert "Errno" not in result.stderr and "Traceback" not in result.stderr


def test_make_serve_installs_every_client_the_readme_uses_and_says_so() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    names = {re.split(r"[<>=\[]", requirement)[0] for requirement in extras["client"]}
    assert names == {"awscli", "boto3", "aws-secretsmanager-caching"}
    dry_run = subprocess.run(
        ["make", "-n", "-B", "serve"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert dry_run.returncode == 0, dry_run.stderr
    recipe = dry_run.stdout
    assert "pip install --quiet -e '.[client,rotators]'" in recipe
    assert "Installing Strongroom and the clients the README uses" in recipe
    # The README's first steps and caching snippet run these from .venv/bin.
    for tool in ("aws", "python", "strongroom"):
        assert (BIN / tool).exists(), tool


def test_the_readme_says_pkcs11_needs_its_extra() -> None:
    text = " ".join(README.read_text().split())
    assert "`--root-key pkcs11` needs the `pkcs11` extra" in text
    assert "pip install -e '.[pkcs11]'" in text
