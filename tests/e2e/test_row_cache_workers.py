"""The row cache across real worker processes: a change made through one worker is in force
in every worker at once (tests/unit/test_row_cache.py has the mechanism, two stores in one
process; here it is two uvicorn workers).

Each round uses a new boto3 client, so a new connection, which either worker may accept
(tests/e2e/test_server_process.py shows that both do): a worker that kept a stale cached
row would answer some round wrongly.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.server import ServerProcess

ROUNDS = 12
INVALID_TOKEN = "The security token included in the request is invalid."


def _two_workers(new_server: Callable[..., ServerProcess], tmp_path: Path) -> ServerProcess:
    server = new_server("--dev", "--data-dir", str(tmp_path / "data"), "--workers", "2")
    deadline = time.monotonic() + 20
    pattern = r"Started server process \[(\d+)\]"
    while len(set(re.findall(pattern, server.log()))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(set(re.findall(pattern, server.log()))) == 2, server.log()
    return server


def _refused(call: Callable[[], Any], code: str) -> dict[str, Any]:
    with pytest.raises(ClientError) as raised:
        call()
    error: dict[str, Any] = raised.value.response["Error"]
    assert error["Code"] == code, error
    return error


def test_access_key_changes_reach_every_worker_at_once(
    new_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server = _two_workers(new_server, tmp_path)
    admin_sm, iam = server.client(), server.client("iam")
    arn = admin_sm.create_secret(Name=f"cache/{uuid.uuid4().hex[:8]}", SecretString="v")["ARN"]
    user = f"cache-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    iam.put_user_policy(
        UserName=user,
        PolicyName="get",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}
                ],
            }
        ),
    )
    key = iam.create_access_key(UserName=user)["AccessKey"]
    credentials = {
        "aws_access_key_id": key["AccessKeyId"],
        "aws_secret_access_key": key["SecretAccessKey"],
    }

    def get() -> Any:
        return server.client(**credentials).get_secret_value(SecretId=arn)

    for status in ("Active", "Inactive", "Active"):
        iam.update_access_key(UserName=user, AccessKeyId=key["AccessKeyId"], Status=status)
        for round_ in range(ROUNDS):
            if status == "Active":
                assert get()["SecretString"] == "v", f"round {round_}"
            else:
                error = _refused(get, "UnrecognizedClientException")
                assert error["Message"] == INVALID_TOKEN
    iam.delete_access_key(UserName=user, AccessKeyId=key["AccessKeyId"])
    for _ in range(ROUNDS):
        _refused(get, "UnrecognizedClientException")


def test_a_disabled_kms_key_is_refused_by_every_worker_at_once(
    new_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server = _two_workers(new_server, tmp_path)
    kms = server.client("kms")
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    secret = server.client().create_secret(
        Name=f"cache/{uuid.uuid4().hex[:8]}", SecretString="sealed", KmsKeyId=key_id
    )["ARN"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"hello")["CiphertextBlob"]
    for enabled in (True, False, True):
        (kms.enable_key if enabled else kms.disable_key)(KeyId=key_id)
        for round_ in range(ROUNDS):
            if enabled:
                assert server.client("kms").decrypt(CiphertextBlob=blob)["Plaintext"] == b"hello"
                answer = server.client().get_secret_value(SecretId=secret)
                assert answer["SecretString"] == "sealed", f"round {round_}"
            else:
                _refused(
                    lambda: server.client("kms").decrypt(CiphertextBlob=blob), "DisabledException"
                )
                _refused(
                    lambda: server.client().get_secret_value(SecretId=secret),
                    "DecryptionFailure",
                )


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_a_cache_smaller_than_the_working_set_still_serves_every_current_value(
    new_server: Callable[..., ServerProcess], tmp_path: Path, how: str
) -> None:
    """--cache-entries / STRONGROOM_CACHE_ENTRIES bound each worker's cache; reads beyond
    it go to the database and still answer the current value."""
    args = ["--dev", "--data-dir", str(tmp_path / "data"), "--workers", "2"]
    if how == "flag":
        server = new_server(*args, "--cache-entries", "2")
    else:
        server = new_server(*args, env={"STRONGROOM_CACHE_ENTRIES": "2"})
    sm = server.client()
    names = [f"small/{uuid.uuid4().hex[:8]}" for _ in range(6)]
    for name in names:
        sm.create_secret(Name=name, SecretString=f"v1-{name}")
    for _ in range(3):
        for name in names:
            assert sm.get_secret_value(SecretId=name)["SecretString"] == f"v1-{name}"
    sm.put_secret_value(SecretId=names[0], SecretString="v2")
    for _ in range(3):
        assert sm.get_secret_value(SecretId=names[0])["SecretString"] == "v2"
        for name in names[1:]:
            assert sm.get_secret_value(SecretId=name)["SecretString"] == f"v1-{name}"


def test_a_cache_bound_below_one_is_refused_with_a_usage_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "strongroom.cli.main", "server", "--dev", "--cache-entries", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--cache-entries" in done.stderr and "0" in done.stderr
