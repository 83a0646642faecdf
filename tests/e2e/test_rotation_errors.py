"""RotateSecret and CancelRotateSecret refusals through a real server and boto3: AWS's
error codes and messages, and nothing changed by a refused call. (The rotations themselves,
with real functions, are in test_rotation.py.)"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any

from tests.aws import ACCOUNT, aws_error, body, not_found, snapshot
from tests.rawhttp import send
from tests.server import STRONGROOM, ServerProcess

MISSING_FUNCTION = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:no-such-function"
CANNOT_INVOKE = (
    "Secrets Manager cannot invoke the specified Lambda function. Ensure that the function "
    "policy grants access to the principal secretsmanager.amazonaws.com."
)


def test_rotate_secret_refusals_change_nothing(
    server: ServerProcess, sm: Any, raw: Any, name: str
) -> None:
    arn = sm.create_secret(Name=name, SecretString="v1")["ARN"]
    before = snapshot(sm, arn)

    # A raw request without ClientRequestToken (SDKs fill one in): InvalidParameterException,
    # where CreateSecret/PutSecretValue/UpdateSecret say InvalidRequestException.
    answer = send(
        server.url,
        "secretsmanager.RotateSecret",
        {"SecretId": arn, "RotationLambdaARN": MISSING_FUNCTION},
    )
    assert (answer.status, answer.error_code, answer.message) == (
        400,
        "InvalidParameterException",
        "You must provide a ClientRequestToken value. We recommend a UUID-type value.",
    )
    assert snapshot(sm, arn) == before

    aws_error(
        sm.rotate_secret,
        SecretId=arn,
        code="InvalidRequestException",
        message="No Lambda rotation function ARN is associated with this secret.",
    )
    aws_error(
        sm.rotate_secret,
        SecretId=arn,
        RotationLambdaARN=MISSING_FUNCTION,
        code="AccessDeniedException",
        message=CANNOT_INVOKE,
    )
    aws_error(
        sm.rotate_secret,
        SecretId=arn,
        RotationLambdaARN=MISSING_FUNCTION,
        RotationRules={"AutomaticallyAfterDays": 3, "ScheduleExpression": "rate(4 hours)"},
        code="InvalidParameterException",
        message="You cannot specify both rotation frequency and schedule expression together.",
    )
    for rules in (
        {"ScheduleExpression": "rate(2 hours)"},
        {"ScheduleExpression": "cron(30 8 * * ? *)"},
        {"ScheduleExpression": "rate(4 hours)", "Duration": "5h"},
    ):
        aws_error(
            sm.rotate_secret,
            SecretId=arn,
            RotationLambdaARN=MISSING_FUNCTION,
            RotationRules=rules,
            code="InvalidParameterException",
        )
    # Out of the model's 1-1000 range: refused by the model's constraint, before anything.
    aws_error(
        raw.rotate_secret,
        SecretId=arn,
        ClientRequestToken=str(uuid.uuid4()),
        RotationLambdaARN=MISSING_FUNCTION,
        RotationRules={"AutomaticallyAfterDays": 1001},
        code="ValidationException",
    )
    assert snapshot(sm, arn) == before
    described = before["describe"]
    assert "RotationEnabled" not in described and "NextRotationDate" not in described
    not_found(sm.rotate_secret, SecretId=f"{name}-missing", RotationLambdaARN=MISSING_FUNCTION)


def test_cancel_rotate_secret_of_a_secret_never_rotated(sm: Any, name: str) -> None:
    arn = sm.create_secret(Name=name, SecretString="v1")["ARN"]
    answer = body(sm.cancel_rotate_secret(SecretId=arn))
    assert answer == {"ARN": arn, "Name": name}
    described = sm.describe_secret(SecretId=arn)
    assert described["RotationEnabled"] is False
    assert "NextRotationDate" not in described
    not_found(sm.cancel_rotate_secret, SecretId=f"{name}-missing")


def test_the_test_clock_is_refused_outside_dev(tmp_path: Path) -> None:
    """STRONGROOM_TEST_CLOCK moves a server's time; only a --dev server takes it."""
    data = tmp_path / "data"
    init = subprocess.run(
        [str(STRONGROOM), "init", "--data-dir", str(data), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert init.returncode == 0, init.stderr
    clock = tmp_path / "clock"
    clock.write_text("1767225600000")
    served = subprocess.run(
        [str(STRONGROOM), "server", "--data-dir", str(data), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"STRONGROOM_TEST_CLOCK": str(clock), "PATH": "/usr/bin:/bin"},
    )
    assert served.returncode != 0
    assert "STRONGROOM_TEST_CLOCK is honoured only by a --dev server" in served.stderr
