"""Run the built-in rotators against a real Strongroom server, as Secrets Manager runs a
rotation function: a separate process whose working directory and import path are the
built-ins' code directory (``strongroom/rotators``), with a role's temporary credentials
and ``SECRETS_MANAGER_ENDPOINT`` in its environment, handed the four steps in order.

One process serves many rotations (it reads one request a line), so twenty rotations take
seconds. It plays the service's part of createSecret the only way a client can: the
service would first create the version ``ClientRequestToken`` labelled AWSPENDING without a
value, which no public operation does, so the process runs the rotator's own createSecret
step (the part after the handler's staging check); setSecret, testSecret and finishSecret
go through the Lambda handler itself, staging check included. A rotation whose AWSPENDING
version is left over from a failed attempt is resumed with that version's token, as
Secrets Manager's retry does; after finishSecret the process's caller removes AWSPENDING
from the version, the service's last act.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from strongroom.cli.rotation import master_policy, rotation_policy
from strongroom.rotators import BUILTINS, CODE_DIRECTORY
from tests.aws import ACCOUNT
from tests.server import ServerProcess

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")

DRIVER = r"""
import importlib, json, logging, sys
# The replies go to standard output: the function's log lines to standard error (its log).
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="[%(levelname)s] %(message)s")
sys.path.insert(0, ".")
import rotation_steps

STEP_OBJECTS = {"single_user": "SINGLE_USER", "alternating_users": "ALTERNATING_USERS",
                "rotate": "STEPS"}
for line in sys.stdin:
    request = json.loads(line)
    module_name, function_name = request["handler"].rsplit(".", 1)
    module = importlib.import_module(module_name)
    event = {"Step": request["step"], "SecretId": request["arn"],
             "ClientRequestToken": request["token"]}
    try:
        if request["step"] == "createSecret":
            steps = getattr(module, STEP_OBJECTS[function_name])
            steps.create(rotation_steps.secretsmanager(), request["arn"], request["token"])
        else:
            getattr(module, function_name)(event, None)
        reply = {"ok": True}
    except Exception as error:
        reply = {"ok": False, "errorType": type(error).__name__, "errorMessage": str(error)}
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
"""


@dataclass
class StepFailed(Exception):
    step: str
    token: str
    error_type: str
    message: str

    def __str__(self) -> str:
        return f"{self.step} failed: {self.error_type}: {self.message}"


@dataclass
class FunctionProcess:
    """One function process running built-in handlers for rotations of one secret."""

    server: ServerProcess
    handler: str  # e.g. "postgresql_rotation.single_user"
    credentials: Mapping[str, str]
    log_path: Path
    environment: Mapping[str, str] = field(default_factory=dict)
    region: str = "us-east-1"
    process: subprocess.Popen[str] | None = None

    def start(self) -> FunctionProcess:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL": self.server.url,
            "SECRETS_MANAGER_ENDPOINT": self.server.url,
            "PYTHONUNBUFFERED": "1",
            **self.credentials,
            **self.environment,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-c", DRIVER],
            cwd=CODE_DIRECTORY,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log_path.open("a"),
            text=True,
        )
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            self.process.wait(timeout=30)

    def step(self, step: str, arn: str, token: str) -> None:
        assert self.process is not None and self.process.stdin and self.process.stdout
        request = {"handler": self.handler, "step": step, "arn": arn, "token": token}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        reply = json.loads(self.process.stdout.readline())
        if not reply["ok"]:
            raise StepFailed(step, token, reply["errorType"], reply["errorMessage"])

    def rotate(self, sm: Any, arn: str) -> str:
        """One rotation, the four steps in order (resuming a pending one); the new
        AWSCURRENT version's id. A failed step raises :class:`StepFailed`."""
        token = pending_token(sm, arn) or str(uuid.uuid4())
        for step in STEPS:
            self.step(step, arn, token)
        # The service's part once finishSecret succeeded: AWSPENDING leaves the version.
        sm.update_secret_version_stage(
            SecretId=arn, VersionStage="AWSPENDING", RemoveFromVersionId=token
        )
        return token

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def pending_token(sm: Any, arn: str) -> str | None:
    stages = sm.describe_secret(SecretId=arn).get("VersionIdsToStages", {})
    for version, labels in stages.items():
        if "AWSPENDING" in labels and "AWSCURRENT" not in labels:
            return str(version)
    return None


def role_credentials(server: ServerProcess, master_arns: list[str] | None = None) -> dict[str, str]:
    """Temporary credentials of a fresh role allowed what the built-ins' role allows (the
    policy ``strongroom rotation enable`` gives it, less its condition on the secret's
    rotation function, which only RotateSecret sets), and reading ``master_arns``."""
    iam, sts = server.client("iam"), server.client("sts")
    name = f"rotator-{uuid.uuid4().hex[:10]}"
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    iam.put_role_policy(
        RoleName=name,
        PolicyName="rotation",
        PolicyDocument=json.dumps(rotation_policy(ACCOUNT, only_builtin_secrets=False)),
    )
    if master_arns:
        iam.put_role_policy(
            RoleName=name,
            PolicyName="masters",
            PolicyDocument=json.dumps(master_policy(master_arns)),
        )
    granted = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="rotation")["Credentials"]
    return {
        "AWS_ACCESS_KEY_ID": granted["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": granted["SecretAccessKey"],
        "AWS_SESSION_TOKEN": granted["SessionToken"],
    }


def handler_of(function_name: str) -> str:
    return BUILTINS[function_name].handler


def function_process(
    server: ServerProcess,
    function_name: str,
    log_path: Path,
    *,
    master_arns: list[str] | None = None,
    environment: Mapping[str, str] | None = None,
) -> Iterator[FunctionProcess]:
    """A started :class:`FunctionProcess` (a generator, for a fixture)."""
    process = FunctionProcess(
        server,
        handler_of(function_name),
        role_credentials(server, master_arns),
        log_path,
        environment=dict(environment or {}),
    ).start()
    try:
        yield process
    finally:
        process.stop()


def stages(sm: Any, arn: str) -> dict[str, list[str]]:
    return dict(sm.describe_secret(SecretId=arn).get("VersionIdsToStages", {}))


def value(sm: Any, arn: str, stage: str = "AWSCURRENT") -> dict[str, Any]:
    return dict(json.loads(sm.get_secret_value(SecretId=arn, VersionStage=stage)["SecretString"]))
