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
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.aws import ACCOUNT, aws_error
from tests.server import DEV_CREDENTIALS, ServerProcess

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
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "secretsmanager:GetSecretValue",
                        "Resource": secret["ARN"],
                    }
                ],
            }
        ),
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
