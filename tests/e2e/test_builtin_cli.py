"""`strongroom rotation enable`'s refusals: each says what is wrong and changes nothing (no
role created, no rotation configured)."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from strongroom.rotators import BUILTIN_ROLE_NAME
from tests.server import STRONGROOM, ServerProcess


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server of these tests alone: that the built-ins' role does not exist is part of
    what they check (none of them creates it)."""
    server = ServerProcess(["--dev"], tmp_path_factory.mktemp("cli") / "server.log").start()
    yield server
    server.stop()


def enable(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    return subprocess.run(
        [str(STRONGROOM), "rotation", "enable", *args, "--url", server.url],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _unchanged(server: ServerProcess, arn: str) -> None:
    described = server.client().describe_secret(SecretId=arn)
    assert "RotationEnabled" not in described and "RotationLambdaARN" not in described
    roles = server.client("iam").list_roles(PathPrefix="/service-role/")["Roles"]
    assert BUILTIN_ROLE_NAME not in [role["RoleName"] for role in roles]


@pytest.mark.parametrize(
    "args,message",
    [
        ((), "choose one of --postgresql, --mysql, --redis or --random"),
        (("--random", "--alternating"), "--random has no --alternating strategy"),
        (("--postgresql", "--every", "3w"), "a number of days or hours"),
        (("--postgresql", "--window", "1d"), "a number of hours"),
        (("--postgresql", "--alternating"), "needs the secret's JSON to name its master secret"),
    ],
)
def test_refusals_change_nothing(fresh: ServerProcess, args: tuple[str, ...], message: str) -> None:
    sm = fresh.client()
    secret = {"engine": "postgres", "host": "127.0.0.1", "username": "a", "password": "b"}
    arn = sm.create_secret(Name=f"cli/{uuid.uuid4().hex[:8]}", SecretString=json.dumps(secret))[
        "ARN"
    ]
    answer = enable(fresh, arn, *args)
    assert answer.returncode != 0
    assert message in " ".join(answer.stderr.split())
    _unchanged(fresh, arn)


def test_a_secret_that_is_not_json_is_refused(fresh: ServerProcess) -> None:
    sm = fresh.client()
    arn = sm.create_secret(Name=f"cli/{uuid.uuid4().hex[:8]}", SecretString="plain-token")["ARN"]
    answer = enable(fresh, arn, "--mysql")
    assert answer.returncode != 0
    assert "the secret's value is not JSON" in answer.stderr
    assert "plain-token" not in answer.stderr + answer.stdout
    _unchanged(fresh, arn)


def test_a_secret_that_does_not_exist(fresh: ServerProcess) -> None:
    answer = enable(fresh, "no/such/secret", "--postgresql")
    assert answer.returncode != 0
    assert "ResourceNotFoundException" in answer.stderr
    roles = fresh.client("iam").list_roles(PathPrefix="/service-role/")["Roles"]
    assert roles == []
