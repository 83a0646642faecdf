"""The built-in rotators as users turn them on: `strongroom rotation enable` (which creates the
role) or `aws secretsmanager rotate-secret` with a built-in's ARN, then Secrets Manager's
rotation runner invoking the built-in in the function runtime. Failures show in
DescribeSecret and the audit trail, and the retry finishes the same version. An AWS-style
function written for Lambda with PyMySQL, uploaded as a zip, rotates a MariaDB secret as it
would on AWS.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pymysql
import pytest

from strongroom.cli.rotation import MASTER_POLICY, ROTATION_POLICY, TRUST_POLICY
from strongroom.rotators import BUILTIN_ROLE_NAME, BUILTINS, CODE_DIRECTORY
from tests.aws import ACCOUNT
from tests.databases import PostgresInstance, mariadb, postgres, redis_server
from tests.e2e.test_builtin_rotators import Target, _create, _postgres_target, target
from tests.e2e.test_rotation import ServerTime
from tests.e2e.test_rotation_docs import wait_for
from tests.server import STRONGROOM, ServerProcess

__all__ = ["mariadb", "postgres", "redis_server", "target"]

AWS = Path(sys.executable).with_name("aws")
FUNCTIONS = Path(__file__).resolve().parent.parent / "functions"


def _env(server: ServerProcess) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "AWS_ENDPOINT_URL": server.url,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def run(server: ServerProcess, *args: str) -> str:
    answer = subprocess.run(
        [str(a) for a in args], env=_env(server), capture_output=True, text=True, timeout=120
    )
    assert answer.returncode == 0, answer.stderr
    return answer.stdout


def enable(server: ServerProcess, secret: str, *flags: str) -> dict[str, Any]:
    out = run(server, STRONGROOM, "rotation", "enable", secret, *flags, "--json")
    return dict(json.loads(out))


def current_version(sm: Any, arn: str) -> str:
    stages = sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
    return next(v for v, labels in stages.items() if "AWSCURRENT" in labels)


def wait_rotated(sm: Any, arn: str, version: str) -> dict[str, Any]:
    """Until ``version`` is AWSCURRENT and no version carries AWSPENDING."""

    def done() -> dict[str, Any] | None:
        described = sm.describe_secret(SecretId=arn)
        stages = described["VersionIdsToStages"]
        pending = any("AWSPENDING" in labels for labels in stages.values())
        finished = "AWSCURRENT" in stages.get(version, []) and not pending
        return described if finished else None

    return dict(wait_for(done, f"the rotation of {arn} to {version}"))


def events(server: ServerProcess, name: str, arn: str) -> list[dict[str, Any]]:
    ct = server.client("cloudtrail")
    found = []
    for page in ct.get_paginator("lookup_events").paginate(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": name}]
    ):
        for event in page["Events"]:
            record = json.loads(event["CloudTrailEvent"])
            if record["resources"] and record["resources"][0]["ARN"] == arn:
                found.append(record)
    return found


def value(sm: Any, arn: str, stage: str = "AWSCURRENT") -> dict[str, Any]:
    return dict(json.loads(sm.get_secret_value(SecretId=arn, VersionStage=stage)["SecretString"]))


# --- turned on with the CLI, rotated again with the AWS CLI ---------------------------------


@pytest.mark.parametrize("alternating", [False, True], ids=["single-user", "alternating-users"])
def test_strongroom_rotation_enable_rotates_with_the_builtin(
    target: Target, alternating: bool, server: ServerProcess, sm: Any
) -> None:
    user, password = target.new_user()
    extra: dict[str, Any] = {}
    flags = [f"--{target.engine}", "--every", "30d", "--window", "4h", "--url", server.url]
    if alternating or target.engine == "redis":
        extra["masterarn"] = _create(sm, target.secret(*target.master))
    if alternating:
        flags.append("--alternating")
    arn = _create(sm, target.secret(user, password, **extra))
    first = current_version(sm, arn)

    answer = enable(server, arn, *flags)
    name = target.function(alternating)
    assert answer["RotationLambdaARN"] == f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}"
    assert answer["Role"] == f"arn:aws:iam::{ACCOUNT}:role/service-role/{BUILTIN_ROLE_NAME}"
    described = wait_rotated(sm, arn, answer["VersionId"])
    assert described["RotationEnabled"] is True
    assert described["RotationLambdaARN"] == answer["RotationLambdaARN"]
    assert described["RotationRules"]["ScheduleExpression"] == "rate(30 days)"
    assert described["RotationRules"]["Duration"] == "4h"
    assert described["VersionIdsToStages"] == {
        first: ["AWSPREVIOUS"],
        answer["VersionId"]: ["AWSCURRENT"],
    }
    current = value(sm, arn)
    assert target.can_login(current["username"], current["password"])
    assert target.can_use(current["username"], current["password"], user)
    if alternating:
        assert current["username"] == user + "_clone"
        assert target.can_login(user, password)
    else:
        assert current["username"] == user
        assert not target.can_login(user, password)

    # Again, with the stored function and schedule, as `aws secretsmanager rotate-secret`.
    again = json.loads(run(server, AWS, "secretsmanager", "rotate-secret", "--secret-id", arn))
    wait_rotated(sm, arn, again["VersionId"])
    latest, previous = value(sm, arn), value(sm, arn, "AWSPREVIOUS")
    assert previous == current
    assert target.can_login(latest["username"], latest["password"])
    assert target.can_login(previous["username"], previous["password"]) is alternating
    assert len(events(server, "RotationSucceeded", arn)) == 2

    iam = server.client("iam")
    role = iam.get_role(RoleName=BUILTIN_ROLE_NAME)["Role"]
    assert role["Path"] == "/service-role/"
    assert role["AssumeRolePolicyDocument"] == TRUST_POLICY
    assert ROTATION_POLICY in iam.list_role_policies(RoleName=BUILTIN_ROLE_NAME)["PolicyNames"]
    if "masterarn" in extra:
        masters = iam.get_role_policy(RoleName=BUILTIN_ROLE_NAME, PolicyName=MASTER_POLICY)
        assert extra["masterarn"] in masters["PolicyDocument"]["Statement"][0]["Resource"]


def test_random_value_through_rotate_secret(server: ServerProcess, sm: Any) -> None:
    arn = _create(sm, {"api_key": "first", "client": "x"})
    run(server, STRONGROOM, "rotation", "enable", arn, "--random", "--every", "90d")
    enabled = sm.describe_secret(SecretId=arn)
    pending = [
        v for v, labels in enabled["VersionIdsToStages"].items() if "AWSCURRENT" not in labels
    ]
    for version in pending:
        wait_rotated(sm, arn, version)
    function = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:strongroom-random-value"
    # VALUE_FIELD is "password" by default: a secret without it gets one.
    assert value(sm, arn)["client"] == "x"
    assert len(value(sm, arn)["password"]) == 32
    assert sm.describe_secret(SecretId=arn)["RotationLambdaARN"] == function


def test_the_builtins_are_functions_of_every_account(server: ServerProcess) -> None:
    lam = server.client("lambda")
    listed = {f["FunctionName"] for f in lam.list_functions()["Functions"]}
    assert set(BUILTINS) <= listed
    for name, builtin in BUILTINS.items():
        config = lam.get_function_configuration(FunctionName=name)
        assert config["Handler"] == builtin.handler
        assert config["Role"].endswith(f":role/service-role/{BUILTIN_ROLE_NAME}")


# --- failures through the rotation runner -----------------------------------------------------


@pytest.fixture
def clocked(tmp_path: Path, new_server: Callable[..., ServerProcess]) -> Iterator[Any]:
    """A --dev server on a test clock (to reach the retry without waiting a minute)."""
    clock = ServerTime(tmp_path / "clock", 1)
    server = new_server(
        "--dev",
        env={"STRONGROOM_TEST_CLOCK": str(clock.path), "STRONGROOM_ROTATION_INTERVAL": "0.1"},
    )
    yield server, clock


def _failed(server: ServerProcess, sm: Any, arn: str, step: str) -> str:
    """Wait for the rotation to fail at ``step``; AWSPENDING is on its version."""
    record = wait_for(lambda: events(server, "RotationFailed", arn), "RotationFailed")[0]
    assert record["serviceEventDetails"]["step"] == step
    stages = sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
    (pending,) = [v for v, labels in stages.items() if labels == ["AWSPENDING"]]
    return pending


def test_database_down_rotation_fails_then_the_retry_finishes(
    clocked: Any, postgres: PostgresInstance
) -> None:
    server, clock = clocked
    sm = server.client()
    target = _postgres_target(postgres)
    user, password = target.new_user()
    arn = _create(sm, target.secret(user, password))
    before = value(sm, arn)
    postgres.stop()
    try:
        enable(server, arn, "--postgresql", "--url", server.url)
        version = _failed(server, sm, arn, "setSecret")
    finally:
        postgres.start()
    assert value(sm, arn) == before
    assert target.can_login(user, password)
    assert sm.describe_secret(SecretId=arn)["RotationEnabled"] is True

    clock.advance(timedelta(minutes=2))  # past the first retry delay
    wait_rotated(sm, arn, version)
    current = value(sm, arn)
    assert target.can_login(user, current["password"])
    assert not target.can_login(user, password)


def test_wrong_master_credentials_fail_and_a_fixed_master_finishes(
    clocked: Any, postgres: PostgresInstance
) -> None:
    server, clock = clocked
    sm = server.client()
    target = _postgres_target(postgres)
    user, password = target.new_user()
    master = _create(sm, postgres.secret(postgres.master_user, "not-the-password-1"))
    arn = _create(sm, target.secret(user, password, masterarn=master))
    enable(server, arn, "--postgresql", "--alternating", "--url", server.url)
    version = _failed(server, sm, arn, "setSecret")
    pending = json.loads(
        sm.get_secret_value(SecretId=arn, VersionId=version, VersionStage="AWSPENDING")[
            "SecretString"
        ]
    )
    assert not target.can_login(pending["username"], pending["password"])
    assert target.can_login(user, password)

    sm.put_secret_value(SecretId=master, SecretString=json.dumps(postgres.master_secret()))
    clock.advance(timedelta(minutes=2))
    wait_rotated(sm, arn, version)
    assert target.can_login(pending["username"], pending["password"])
    assert target.can_login(user, password)


def _rotation_rights(resource: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "secretsmanager:DescribeSecret",
                    "secretsmanager:GetSecretValue",
                    "secretsmanager:PutSecretValue",
                    "secretsmanager:UpdateSecretVersionStage",
                ],
                "Resource": resource,
            },
            {"Effect": "Allow", "Action": "secretsmanager:GetRandomPassword", "Resource": "*"},
        ],
    }


def _zip_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_a_password_the_database_rejects_fails_setsecret(
    clocked: Any, postgres: PostgresInstance, tmp_path: Path
) -> None:
    """The built-ins' code uploaded as one's own function with other password rules (as
    docs/builtin-rotation.md says): 6 characters, which the server's passwordcheck refuses."""
    server, _ = clocked
    sm, lam, iam = server.client(), server.client("lambda"), server.client("iam")
    target = _postgres_target(postgres)
    user, password = target.new_user()
    arn = _create(sm, target.secret(user, password))
    # Its own role, with the rights the built-ins' role has, on this secret.
    role = f"short-{uuid.uuid4().hex[:6]}"
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(TRUST_POLICY))
    iam.put_role_policy(
        RoleName=role, PolicyName="rotate", PolicyDocument=json.dumps(_rotation_rights(arn))
    )
    code = _zip_of({p.name: p.read_bytes() for p in Path(CODE_DIRECTORY).glob("*.py")})
    name = f"short-passwords-{uuid.uuid4().hex[:6]}"
    function = lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Handler=BUILTINS["strongroom-postgresql-single-user"].handler,
        Role=f"arn:aws:iam::{ACCOUNT}:role/{role}",
        Code={"ZipFile": code},
        Timeout=30,
        Environment={"Variables": {"PASSWORD_LENGTH": "6"}},
    )["FunctionArn"]
    lam.add_permission(
        FunctionName=name,
        StatementId="sm",
        Action="lambda:InvokeFunction",
        Principal="secretsmanager.amazonaws.com",
    )
    before = value(sm, arn)
    sm.rotate_secret(SecretId=arn, RotationLambdaARN=function)
    version = _failed(server, sm, arn, "setSecret")
    assert value(sm, arn) == before
    assert target.can_login(user, password)
    pending = json.loads(
        sm.get_secret_value(SecretId=arn, VersionId=version, VersionStage="AWSPENDING")[
            "SecretString"
        ]
    )
    assert len(pending["password"]) == 6
    assert not target.can_login(user, pending["password"])
    logs = server.client("logs").filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
    text = "".join(event["message"] for event in logs)
    assert "password is too short" in text
    assert pending["password"] not in text and password not in text
    assert pending["password"] not in server.log()


# --- an AWS-style function, uploaded as a zip ---------------------------------------------------


def test_an_aws_style_pymysql_function_uploaded_as_a_zip_rotates(
    server: ServerProcess, tmp_path: Path, mariadb: Any
) -> None:
    """tests/functions/mysql_single_user.py, written for Lambda, with PyMySQL bundled in the
    zip as one would for Lambda, uploaded and scheduled with the AWS CLI."""
    package = Path(pymysql.__file__).parent
    files = {"lambda_function.py": (FUNCTIONS / "mysql_single_user.py").read_bytes()}
    for path in package.rglob("*.py"):
        files[f"pymysql/{path.relative_to(package)}"] = path.read_bytes()
    (tmp_path / "function.zip").write_bytes(_zip_of(files))
    policy = _rotation_rights(f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:zip/*")
    (tmp_path / "trust.json").write_text(json.dumps(TRUST_POLICY))
    (tmp_path / "policy.json").write_text(json.dumps(policy))
    role, name = f"zip-{uuid.uuid4().hex[:6]}", f"MySQLRotation{uuid.uuid4().hex[:6]}"
    aws = str(AWS)
    run(server, aws, "iam", "create-role", "--role-name", role,
        "--assume-role-policy-document", f"file://{tmp_path / 'trust.json'}")  # fmt: skip
    run(server, aws, "iam", "put-role-policy", "--role-name", role, "--policy-name", "rotate",
        "--policy-document", f"file://{tmp_path / 'policy.json'}")  # fmt: skip
    run(server, aws, "lambda", "create-function", "--function-name", name,
        "--runtime", "python3.11", "--handler", "lambda_function.lambda_handler",
        "--role", f"arn:aws:iam::{ACCOUNT}:role/{role}", "--timeout", "30",
        "--zip-file", f"fileb://{tmp_path / 'function.zip'}")  # fmt: skip
    run(server, aws, "lambda", "add-permission", "--function-name", name,
        "--statement-id", "SecretsManagerAccess", "--action", "lambda:InvokeFunction",
        "--principal", "secretsmanager.amazonaws.com")  # fmt: skip
    user, password = mariadb.new_user()
    secret = mariadb.secret(user, password, engine="mysql")
    del secret["ssl"]  # as AWS's console stores it
    created = json.loads(
        run(
            server,
            aws,
            "secretsmanager",
            "create-secret",
            "--name",
            f"zip/{uuid.uuid4().hex[:8]}",
            "--secret-string",
            json.dumps(secret),
        )
    )
    sm = server.client()
    for _ in range(3):
        rotated = json.loads(
            run(
                server,
                aws,
                "secretsmanager",
                "rotate-secret",
                "--secret-id",
                created["ARN"],
                "--rotation-lambda-arn",
                f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}",
                "--rotation-rules",
                '{"AutomaticallyAfterDays": 30}',
            )
        )
        wait_rotated(sm, created["ARN"], rotated["VersionId"])
        current, previous = value(sm, created["ARN"]), value(sm, created["ARN"], "AWSPREVIOUS")
        assert mariadb.can_login(user, current["password"])
        assert not mariadb.can_login(user, previous["password"])
    assert len(events(server, "RotationSucceeded", created["ARN"])) == 3
    with pytest.raises(pymysql.MySQLError):
        mariadb.connect(user, password)


# --- 20 rotations through the runner (opt-in: minutes per engine and strategy) -----------------


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("STRONGROOM_SLOW") != "1",
    reason="20 rotations through RotateSecret per engine and strategy take minutes; "
    "STRONGROOM_SLOW=1 runs them (tests/e2e/test_builtin_rotators.py runs the same 20 in "
    "a function process in seconds)",
)
@pytest.mark.parametrize("alternating", [False, True], ids=["single-user", "alternating-users"])
def test_twenty_rotations_through_rotate_secret(
    target: Target,
    alternating: bool,
    new_server: Callable[..., ServerProcess],
    record_property: Callable[[str, object], None],
) -> None:
    import time

    server = new_server("--dev", env={"STRONGROOM_ROTATION_INTERVAL": "0.1"})
    sm = server.client()
    user, password = target.new_user()
    extra: dict[str, Any] = {}
    flags = [f"--{target.engine}", "--url", server.url, "--no-rotate-now"]
    if alternating or target.engine == "redis":
        extra["masterarn"] = _create(sm, target.secret(*target.master))
    if alternating:
        flags.append("--alternating")
    arn = _create(sm, target.secret(user, password, **extra))
    enable(server, arn, *flags)
    wait_for(lambda: events(server, "TestRotationSucceeded", arn), "the configuration test")
    started = time.monotonic()
    previous = value(sm, arn)
    for _ in range(20):
        version = sm.rotate_secret(SecretId=arn)["VersionId"]
        wait_rotated(sm, arn, version)
        current = value(sm, arn)
        assert value(sm, arn, "AWSPREVIOUS") == previous
        assert target.can_login(current["username"], current["password"])
        assert target.can_login(previous["username"], previous["password"]) is alternating
        previous = current
    seconds = time.monotonic() - started
    record_property("seconds_per_rotation", round(seconds / 20, 2))
    print(f"\n{target.engine} {'alternating' if alternating else 'single'}: {seconds / 20:.1f} s")
