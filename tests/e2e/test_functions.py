"""The Lambda-compatible function service end to end (issue 14 §3): through a real server
process, driven by the AWS CLI and boto3. Each function runs in its own process with
its execution role's credentials and calls back through the pipeline."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.aws import ACCOUNT, aws_error
from tests.server import DEV_CREDENTIALS, STRONGROOM, ServerProcess

AWS = Path(sys.executable).with_name("aws")
LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def allowing(action: str, resource: str, **condition: dict[str, str]) -> str:
    """A policy document of one Allow statement."""
    statement: dict[str, Any] = {"Effect": "Allow", "Action": action, "Resource": resource}
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def package(source: str, module: str = "lambda_function") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{module}.py", source)
    return buffer.getvalue()


ECHO = """
import boto3

def lambda_handler(event, context):
    print("event", event)
    return {
        "event": event,
        "name": context.function_name,
        "request": context.aws_request_id,
        "remaining": context.get_remaining_time_in_millis() > 0,
        "who": boto3.client("sts").get_caller_identity()["Arn"],
    }
"""

READS_SECRET = """
import os
import boto3

def lambda_handler(event, context):
    client = boto3.client("secretsmanager", endpoint_url=os.environ["SECRETS_MANAGER_ENDPOINT"])
    return client.get_secret_value(SecretId=event["SecretId"])["SecretString"]
"""


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def iam(server: ServerProcess) -> Any:
    return server.client("iam")


@pytest.fixture
def lam(server: ServerProcess) -> Any:
    return server.client("lambda")


@pytest.fixture
def role(iam: Any) -> str:
    """An execution role Lambda may assume, with no permissions of its own."""
    created = iam.create_role(
        RoleName=unique("fn-role"), AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST)
    )
    return str(created["Role"]["Arn"])


def create(lam: Any, role: str, source: str = ECHO, **extra: Any) -> dict[str, Any]:
    configuration: dict[str, Any] = lam.create_function(
        FunctionName=extra.pop("FunctionName", unique("fn")),
        Runtime="python3.11",
        Role=role,
        Handler="lambda_function.lambda_handler",
        Code={"ZipFile": package(source)},
        **extra,
    )
    return configuration


def invoke(lam: Any, name: str, event: Any, **extra: Any) -> tuple[dict[str, Any], Any]:
    answer = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode(), **extra)
    return answer, json.loads(answer["Payload"].read())


def test_cli_create_permission_invoke(server: ServerProcess, role: str, tmp_path: Path) -> None:
    """The documented path: `aws lambda create-function --zip-file fileb://...`,
    `add-permission --principal secretsmanager.amazonaws.com`, invoke."""
    name = unique("cli")
    zip_path = tmp_path / "function.zip"
    zip_path.write_bytes(package(ECHO))
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": DEV_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": DEV_CREDENTIALS["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": server.url,
        "AWS_PAGER": "",
    }

    def aws(*args: str) -> dict[str, Any]:
        done = subprocess.run(
            [str(AWS), "lambda", *args, "--output", "json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else {}

    created = aws(
        "create-function",
        "--function-name",
        name,
        "--runtime",
        "python3.11",
        "--role",
        role,
        "--handler",
        "lambda_function.lambda_handler",
        "--zip-file",
        f"fileb://{zip_path}",
        "--timeout",
        "30",
    )
    assert created["FunctionArn"] == f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}"
    assert created["Timeout"] == 30 and created["MemorySize"] == 128
    permission = aws(
        "add-permission",
        "--function-name",
        name,
        "--statement-id",
        "SecretsManagerAccess",
        "--action",
        "lambda:InvokeFunction",
        "--principal",
        "secretsmanager.amazonaws.com",
    )
    statement = json.loads(permission["Statement"])
    assert statement["Principal"] == {"Service": "secretsmanager.amazonaws.com"}
    out = tmp_path / "out.json"
    invoked = aws(
        "invoke",
        "--function-name",
        name,
        "--payload",
        '{"hello": "world"}',
        "--log-type",
        "Tail",
        str(out),
    )
    assert invoked["StatusCode"] == 200 and "FunctionError" not in invoked
    result = json.loads(out.read_text())
    assert result["event"] == {"hello": "world"}
    role_name = role.rsplit("/", 1)[1]
    assert result["who"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/{name}"
    tail = base64.b64decode(invoked["LogResult"]).decode()
    assert "START RequestId:" in tail and "event {'hello': 'world'}" in tail
    assert f"END RequestId: {result['request']}" in tail and "REPORT RequestId:" in tail


def test_role_policy_decides_what_the_function_reaches(
    server: ServerProcess, iam: Any, lam: Any, role: str
) -> None:
    sm = server.client()
    secret = sm.create_secret(Name=unique("fn-secret"), SecretString="s3cr3t-value")
    name = create(lam, role, READS_SECRET, Timeout=30)["FunctionName"]
    # The role allows nothing yet: the function's call is refused by the pipeline.
    answer, error = invoke(lam, name, {"SecretId": secret["ARN"]})
    assert answer["FunctionError"] == "Unhandled"
    assert error["errorType"] == "ClientError"  # botocore's, raised in the function
    assert "(AccessDeniedException)" in error["errorMessage"]
    assert "secretsmanager:GetSecretValue" in error["errorMessage"]
    assert error["stackTrace"]
    iam.put_role_policy(
        RoleName=role.rsplit("/", 1)[1],
        PolicyName="read",
        PolicyDocument=allowing("secretsmanager:GetSecretValue", secret["ARN"]),
    )
    answer, value = invoke(lam, name, {"SecretId": secret["ARN"]})
    assert "FunctionError" not in answer and value == "s3cr3t-value"


def test_permission_and_policy(lam: Any, role: str) -> None:
    name = create(lam, role)["FunctionName"]
    aws_error(
        lam.get_policy,
        FunctionName=name,
        code="ResourceNotFoundException",
        message="The resource you requested does not exist.",
        status=404,
    )
    lam.add_permission(
        FunctionName=name,
        StatementId="sm",
        Action="lambda:InvokeFunction",
        Principal="secretsmanager.amazonaws.com",
        SourceAccount=ACCOUNT,
    )
    before = lam.get_policy(FunctionName=name)
    aws_error(
        lam.add_permission,
        FunctionName=name,
        StatementId="sm",
        Action="lambda:InvokeFunction",
        Principal="secretsmanager.amazonaws.com",
        code="ResourceConflictException",
        status=409,
    )
    assert lam.get_policy(FunctionName=name)["Policy"] == before["Policy"]
    policy = json.loads(before["Policy"])
    assert policy["Statement"][0]["Condition"] == {"StringEquals": {"AWS:SourceAccount": ACCOUNT}}
    aws_error(
        lam.remove_permission,
        FunctionName=name,
        StatementId="other",
        code="ResourceNotFoundException",
        status=404,
    )
    lam.remove_permission(FunctionName=name, StatementId="sm")
    aws_error(lam.get_policy, FunctionName=name, code="ResourceNotFoundException", status=404)


RAISES = """
def lambda_handler(event, context):
    print("about to fail")
    raise ValueError("the rotation step failed")
"""

SLEEPS = """
import time

def lambda_handler(event, context):
    print("sleeping")
    time.sleep(60)
"""

EATS_MEMORY = """
def lambda_handler(event, context):
    hog = []
    while True:
        hog.append(bytearray(16 * 1024 * 1024))
"""

SPAWNS = """
import os, subprocess, sys

def lambda_handler(event, context):
    # One child in the function's process group, one that leaves it (a new session).
    code = "import time; time.sleep(300)  # " + event["marker"]
    subprocess.Popen([sys.executable, "-c", code])
    subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    return {"started": 2}
"""

SHOWS_ENVIRONMENT = """
import os

def lambda_handler(event, context):
    return dict(os.environ)
"""


def test_a_raised_exception_is_an_unhandled_function_error(lam: Any, role: str) -> None:
    name = create(lam, role, RAISES)["FunctionName"]
    answer, error = invoke(lam, name, {}, LogType="Tail")
    assert answer["StatusCode"] == 200 and answer["FunctionError"] == "Unhandled"
    assert error["errorType"] == "ValueError"
    assert error["errorMessage"] == "the rotation step failed"
    assert any("raise ValueError" in frame for frame in error["stackTrace"])
    tail = base64.b64decode(answer["LogResult"]).decode()
    assert "about to fail" in tail and "[ERROR] ValueError: the rotation step failed" in tail


def test_the_timeout_kills_the_invocation(lam: Any, role: str) -> None:
    name = create(lam, role, SLEEPS, Timeout=1)["FunctionName"]
    answer, error = invoke(lam, name, {}, LogType="Tail")
    assert answer["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Sandbox.Timedout"
    assert error["errorMessage"].endswith("Error: Task timed out after 1.00 seconds")
    tail = base64.b64decode(answer["LogResult"]).decode()
    assert "sleeping" in tail and "Task timed out after 1.00 seconds" in tail


def test_memory_is_enforced(lam: Any, role: str) -> None:
    name = create(lam, role, EATS_MEMORY, MemorySize=128, Timeout=30)["FunctionName"]
    answer, error = invoke(lam, name, {}, LogType="Tail")
    assert answer["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Runtime.OutOfMemory"
    assert "Runtime exited with error" in error["errorMessage"]
    tail = base64.b64decode(answer["LogResult"]).decode()
    assert "Runtime.OutOfMemory" in tail and "Memory Size: 128 MB" in tail


def test_nothing_outlives_the_invocation(lam: Any, role: str) -> None:
    name = create(lam, role, SPAWNS, Timeout=30)["FunctionName"]
    marker = uuid.uuid4().hex
    _answer, result = invoke(lam, name, {"marker": marker})
    assert result == {"started": 2}
    # Both children were killed with the invocation (at most zombies left to reap).
    alive = []
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in command and state != "Z":
            alive.append(proc.name)
    assert alive == []


def test_the_environment_is_built_from_nothing(server: ServerProcess, lam: Any, role: str) -> None:
    name = create(
        lam,
        role,
        SHOWS_ENVIRONMENT,
        Environment={"Variables": {"DB_HOST": "db.internal", "MODE": "test"}},
    )["FunctionName"]
    _answer, seen = invoke(lam, name, {})
    assert seen["DB_HOST"] == "db.internal" and seen["MODE"] == "test"
    assert seen["AWS_ENDPOINT_URL"] == seen["SECRETS_MANAGER_ENDPOINT"] == server.url
    assert seen["AWS_REGION"] == seen["AWS_DEFAULT_REGION"] == "us-east-1"
    assert seen["AWS_LAMBDA_FUNCTION_NAME"] == name
    assert seen["AWS_ACCESS_KEY_ID"].startswith("ASIA") and seen["AWS_SESSION_TOKEN"]
    assert seen["AWS_LAMBDA_LOG_GROUP_NAME"] == f"/aws/lambda/{name}"
    (stream,) = server.client("logs").describe_log_streams(logGroupName=f"/aws/lambda/{name}")[
        "logStreams"
    ]
    assert seen["AWS_LAMBDA_LOG_STREAM_NAME"] == stream["logStreamName"]
    # Nothing of the server's own environment (its settings, paths, the test's variables).
    leaked = {key for key in seen if key.startswith(("STRONGROOM", "PYTEST", "VIRTUAL_ENV"))}
    assert leaked == set()
    assert not any(str(value).startswith("/dev/shm/strongroom-dev") for value in seen.values())


def test_reserved_variables_are_refused(lam: Any, role: str) -> None:
    name = unique("reserved")
    aws_error(
        create,
        lam,
        role,
        FunctionName=name,
        Environment={"Variables": {"AWS_REGION": "eu-west-1"}},
        code="InvalidParameterValueException",
    )
    aws_error(lam.get_function, FunctionName=name, code="ResourceNotFoundException", status=404)


def test_pass_role_is_needed_to_create_a_function(
    server: ServerProcess, iam: Any, lam: Any, role: str
) -> None:
    user = unique("fn-user")
    iam.create_user(UserName=user)
    iam.put_user_policy(
        UserName=user,
        PolicyName="functions",
        PolicyDocument=allowing("lambda:*", "*"),
    )
    key = iam.create_access_key(UserName=user)["AccessKey"]
    theirs = server.client(
        "lambda",
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
    )
    name = unique("no-pass")
    error = aws_error(
        create, theirs, role, FunctionName=name, code="AccessDeniedException", status=403
    )
    assert "iam:PassRole" in error["Message"] and role in error["Message"]
    aws_error(lam.get_function, FunctionName=name, code="ResourceNotFoundException", status=404)
    iam.put_user_policy(
        UserName=user,
        PolicyName="pass",
        PolicyDocument=allowing(
            "iam:PassRole",
            role,
            StringEquals={"iam:PassedToService": "lambda.amazonaws.com"},
        ),
    )
    assert create(theirs, role, FunctionName=name)["FunctionName"] == name
    # Changing the function's role needs iam:PassRole on the new role too.
    other = iam.create_role(
        RoleName=unique("fn-other"), AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST)
    )["Role"]["Arn"]
    error = aws_error(
        theirs.update_function_configuration,
        FunctionName=name,
        Role=other,
        code="AccessDeniedException",
        status=403,
    )
    assert "iam:PassRole" in error["Message"] and other in error["Message"]
    assert lam.get_function_configuration(FunctionName=name)["Role"] == role


def test_a_role_lambda_may_not_assume_is_refused(iam: Any, lam: Any) -> None:
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
    other = iam.create_role(
        RoleName=unique("not-lambda"), AssumeRolePolicyDocument=json.dumps(trust)
    )
    name = unique("bad-role")
    aws_error(
        create,
        lam,
        other["Role"]["Arn"],
        FunctionName=name,
        code="InvalidParameterValueException",
        message="The role defined for the function cannot be assumed by Lambda.",
    )
    aws_error(lam.get_function, FunctionName=name, code="ResourceNotFoundException", status=404)


def test_update_list_and_delete(lam: Any, role: str) -> None:
    created = create(lam, role)
    name = created["FunctionName"]
    aws_error(create, lam, role, FunctionName=name, code="ResourceConflictException", status=409)
    listed = [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    assert name in listed
    got = lam.get_function(FunctionName=created["FunctionArn"])
    assert (
        got["Configuration"]
        == {
            **created,
            "ResponseMetadata": got["Configuration"].get("ResponseMetadata"),
        }
        or got["Configuration"]["CodeSha256"] == created["CodeSha256"]
    )
    new_code = package('def lambda_handler(event, context):\n    return "v2"\n')
    updated = lam.update_function_code(FunctionName=name, ZipFile=new_code)
    assert updated["CodeSha256"] != created["CodeSha256"]
    assert updated["RevisionId"] != created["RevisionId"]
    _answer, result = invoke(lam, name, {})
    assert result == "v2"
    aws_error(
        lam.update_function_configuration,
        FunctionName=name,
        Timeout=10,
        RevisionId=created["RevisionId"],
        code="PreconditionFailedException",
        status=412,
    )
    configured = lam.update_function_configuration(
        FunctionName=name,
        Timeout=10,
        MemorySize=256,
        Environment={"Variables": {"KEY": "v"}},
    )
    assert (configured["Timeout"], configured["MemorySize"]) == (10, 256)
    assert configured["Environment"] == {"Variables": {"KEY": "v"}}
    lam.delete_function(FunctionName=name)
    aws_error(lam.get_function, FunctionName=name, code="ResourceNotFoundException", status=404)
    aws_error(lam.invoke, FunctionName=name, code="ResourceNotFoundException", status=404)


def test_event_invocations_run_in_the_background(
    server: ServerProcess, lam: Any, role: str
) -> None:
    name = create(lam, role, ECHO, Timeout=30)["FunctionName"]
    answer = lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"n": 1}')
    assert answer["StatusCode"] == 202
    assert answer["Payload"].read() == b""
    # It ran after the answer: its log appears (waiting for it, not timing it).
    logs = server.client("logs")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            found = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
        except logs.exceptions.ResourceNotFoundException:
            found = []
        if any(event["message"].startswith("REPORT") for event in found):
            break
        time.sleep(0.2)
    assert "event {'n': 1}\n" in [event["message"] for event in found]


def test_invalid_payload_is_refused(lam: Any, role: str) -> None:
    name = create(lam, role)["FunctionName"]
    aws_error(
        lam.invoke,
        FunctionName=name,
        Payload=b"not json",
        code="InvalidRequestContentException",
    )


def test_lambda_requests_are_audited(server: ServerProcess, lam: Any, role: str) -> None:
    created = create(lam, role, Environment={"Variables": {"TOKEN": "do-not-log-me"}})
    name = created["FunctionName"]
    invoke(lam, created["FunctionName"], {"password": "hunter2-secret"})
    trail = server.client("cloudtrail")
    events = trail.lookup_events(
        LookupAttributes=[
            {"AttributeKey": "ResourceName", "AttributeValue": created["FunctionArn"]}
        ]
    )["Events"]
    names = {event["EventName"] for event in events}
    assert {"CreateFunction", "Invoke"} <= names
    for event in events:
        assert "do-not-log-me" not in event["CloudTrailEvent"]
        assert "hunter2-secret" not in event["CloudTrailEvent"]
    by_lambda = [e for e in events if e["EventSource"] == "lambda.amazonaws.com"]
    assert {e["EventName"] for e in by_lambda} == {"CreateFunction", "Invoke"}
    # The execution role's session, recorded as STS records a service assuming a role.
    (assumed,) = [e for e in events if e["EventName"] == "AssumeRole"]
    record = json.loads(assumed["CloudTrailEvent"])
    assert record["eventSource"] == "sts.amazonaws.com"
    assert record["userIdentity"] == {"type": "AWSService", "invokedBy": "lambda.amazonaws.com"}
    assert record["requestParameters"] == {"roleArn": role, "roleSessionName": name}
    assert record["requestID"] and record["eventType"] == "AwsApiCall"
    assert {r["ARN"] for r in record["resources"]} == {role, created["FunctionArn"]}
    # A second invocation reuses the session: no second AssumeRole.
    invoke(lam, created["FunctionName"], {})
    again = trail.lookup_events(
        LookupAttributes=[
            {"AttributeKey": "ResourceName", "AttributeValue": created["FunctionArn"]}
        ]
    )["Events"]
    assert [e["EventName"] for e in again].count("AssumeRole") == 1
    assert [e["EventName"] for e in again].count("Invoke") == 2


def test_logs_are_viewable_through_cloudwatch_and_the_cli(
    server: ServerProcess, lam: Any, role: str
) -> None:
    name = create(lam, role, RAISES)["FunctionName"]
    invoke(lam, name, {})
    logs = server.client("logs")
    group = f"/aws/lambda/{name}"
    events = logs.filter_log_events(logGroupName=group)["events"]
    messages = [event["message"] for event in events]
    assert messages[0].startswith("START RequestId:")
    assert "about to fail\n" in messages
    assert any(message.startswith("REPORT RequestId:") for message in messages)
    filtered = logs.filter_log_events(logGroupName=group, filterPattern='"[ERROR] ValueError"')
    assert [e["message"] for e in filtered["events"]] == [
        "[ERROR] ValueError: the rotation step failed\n"
    ]
    groups = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert [g["logGroupName"] for g in groups] == [group]
    (stream,) = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert stream["logStreamName"] == events[0]["logStreamName"]
    got = logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"])
    assert [e["message"] for e in got["events"]] == messages
    aws_error(
        logs.filter_log_events,
        logGroupName="/aws/lambda/never-invoked",
        code="ResourceNotFoundException",
    )
    shown = subprocess.run(
        [str(STRONGROOM), "functions", "logs", name, "--endpoint-url", server.url],
        env={
            **os.environ,
            "AWS_ACCESS_KEY_ID": DEV_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": DEV_CREDENTIALS["aws_secret_access_key"],
            "COLUMNS": "200",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    assert (
        "about to fail" in shown.stdout and "ValueError: the rotation step failed" in shown.stdout
    )
    assert stream["logStreamName"] in shown.stdout


def test_logs_need_permission(server: ServerProcess, iam: Any, lam: Any, role: str) -> None:
    name = create(lam, role)["FunctionName"]
    invoke(lam, name, {})
    user = unique("log-reader")
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    theirs = server.client(
        "logs",
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
    )
    error = aws_error(
        theirs.filter_log_events,
        logGroupName=f"/aws/lambda/{name}",
        code="AccessDeniedException",
    )
    assert "logs:FilterLogEvents" in error["Message"]


PROBES = """
import ctypes, os

def attempt(action):
    try:
        return repr(action())
    except OSError as error:
        return type(error).__name__

def lambda_handler(event, context):
    data_dir = event["data_dir"]
    libc = ctypes.CDLL(None, use_errno=True)
    return {
        "list_data_dir": attempt(lambda: os.listdir(data_dir)),
        "read_root_key": attempt(lambda: open(os.path.join(data_dir, "root.key"), "rb").read()),
        "unmount": libc.umount2(data_dir.encode(), 2),
        "write_outside": attempt(lambda: open(event["outside"], "w").write("x")),
        "write_tmp": attempt(lambda: open(os.path.join(os.environ["TMPDIR"], "f"), "w").write("x")),
        "processes": len([p for p in os.listdir("/proc") if p.isdigit()]),
    }
"""


def test_an_invocation_cannot_reach_the_data_directory(new_server: Any, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = new_server("--dev", "--data-dir", str(data_dir))
    iam, lam = server.client("iam"), server.client("lambda")
    role = iam.create_role(
        RoleName=unique("probe"), AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST)
    )["Role"]["Arn"]
    name = create(lam, role, PROBES, Timeout=30)["FunctionName"]
    outside = tmp_path / "escaped"
    answer, seen = invoke(lam, name, {"data_dir": str(data_dir), "outside": str(outside)})
    assert "FunctionError" not in answer, seen
    assert seen["list_data_dir"] == "PermissionError"
    assert seen["read_root_key"] == "PermissionError"
    assert seen["unmount"] == -1  # no capability left to undo the cover
    assert seen["write_outside"] == "OSError" and not outside.exists()  # read-only
    assert seen["write_tmp"] == "1"
    assert seen["processes"] <= 3  # its own PID namespace: none of the server's processes
    assert (data_dir / "root.key").exists()


def test_without_a_sandbox_function_code_is_not_run_unless_the_operator_allows_it(
    new_server: Any, tmp_path: Path
) -> None:
    """Fail closed: on a host without user namespaces (here: setpriv and unshare not on
    the server's PATH), a function's code would run as the server's user and could read
    the root key; the server refuses to run it, unless the operator accepts that."""
    no_tools = tmp_path / "bin"
    no_tools.mkdir()
    data_dir = tmp_path / "data"
    event = {"data_dir": str(data_dir), "outside": str(tmp_path / "escaped")}

    server = new_server("--dev", "--data-dir", str(data_dir), env={"PATH": str(no_tools)})
    iam, lam = server.client("iam"), server.client("lambda")
    role = iam.create_role(
        RoleName=unique("probe"), AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST)
    )["Role"]["Arn"]
    name = create(lam, role, PROBES, Timeout=30)["FunctionName"]
    answer, error = invoke(lam, name, event, LogType="Tail")
    assert answer["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Runtime.SandboxUnavailable"
    assert "STRONGROOM_UNSANDBOXED_FUNCTIONS=1" in error["errorMessage"]
    assert "Runtime.SandboxUnavailable" in base64.b64decode(answer["LogResult"]).decode()
    assert not (tmp_path / "escaped").exists()
    server.stop()

    allowed = new_server(
        "--dev",
        "--data-dir",
        str(data_dir),
        env={"PATH": str(no_tools), "STRONGROOM_UNSANDBOXED_FUNCTIONS": "1"},
    )
    answer, seen = invoke(allowed.client("lambda"), name, event)
    assert "FunctionError" not in answer, seen
    # What the operator accepted: the function runs as the server's user, uncovered.
    assert "root.key" in seen["list_data_dir"] and seen["processes"] > 3


def test_the_guides_example_runs(server: ServerProcess, iam: Any, lam: Any, role: str) -> None:
    guide = (Path(__file__).parents[2] / "docs" / "functions.md").read_text()
    source = guide.split("```python\n", 1)[1].split("```", 1)[0]
    iam.put_role_policy(
        RoleName=role.rsplit("/", 1)[1],
        PolicyName="read",
        PolicyDocument=allowing("secretsmanager:GetSecretValue", "*"),
    )
    secret = server.client().create_secret(Name=unique("guide"), SecretString="twelve chars")
    name = create(lam, role, source, Timeout=30)["FunctionName"]
    answer, result = invoke(lam, name, {"SecretId": secret["Name"]}, LogType="Tail")
    assert "FunctionError" not in answer, result
    assert result["length"] == 12
    assert f"reading {secret['Name']}" in base64.b64decode(answer["LogResult"]).decode()


def test_list_functions_pages_with_a_signed_marker(server: ServerProcess, role: str) -> None:
    region = f"eu-north-{uuid.uuid4().int % 1000}"  # an empty Region of the account
    lam = server.client("lambda", region=region)
    for _ in range(3):
        create(lam, role, FunctionName=unique("page"))
    # Built-in functions, if any are shipped, are listed too: page through them all.
    every = [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    assert every == sorted(every) and len(every) >= 3
    paged: list[str] = []
    request: dict[str, Any] = {"MaxItems": 2}
    while True:
        page = lam.list_functions(**request)
        assert len(page["Functions"]) <= 2
        paged += [f["FunctionName"] for f in page["Functions"]]
        if "NextMarker" not in page:
            break
        request["Marker"] = page["NextMarker"]
    assert paged == every
    aws_error(lam.list_functions, Marker="forged", code="InvalidParameterValueException")


def test_authentication_failures_are_rest_json_errors(server: ServerProcess) -> None:
    forger = server.client("lambda", aws_access_key_id="test", aws_secret_access_key="wrong")
    aws_error(forger.list_functions, code="InvalidSignatureException", status=403)
    stranger = server.client("lambda", aws_access_key_id="AKIANOBODY", aws_secret_access_key="x")
    aws_error(stranger.list_functions, code="UnrecognizedClientException", status=403)
