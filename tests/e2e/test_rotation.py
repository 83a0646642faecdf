"""Rotation end to end: real Lambda-format functions uploaded to a --dev server, invoked by
its rotation runner; schedules driven over weeks on the server's test clock with two
workers; failures (a function that raises, times out, runs out of memory, or whose role may
not PutSecretValue) keep AWSCURRENT working, show in DescribeSecret and the audit trail,
and are tried again.

The server's time is the file STRONGROOM_TEST_CLOCK names (strongroom/clock.py FileClock);
each worker marks the time its last sweep saw, so a test knows every worker has looked
after it moved the time (no sleeping for time to pass)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from strongroom.clock import to_ms
from strongroom.secrets.rotation import RETRY_DELAYS
from tests.aws import ACCOUNT, snapshot
from tests.docs import code_blocks
from tests.e2e.test_functions import LAMBDA_TRUST, package
from tests.e2e.test_rotation_docs import DOC, wait_for
from tests.server import ServerProcess

WORKERS = 2
START = datetime(2026, 3, 1, 20, 30, tzinfo=UTC)  # a Sunday evening
ROTATION_ACTIONS = [
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetSecretValue",
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecretVersionStage",
    "secretsmanager:GetRandomPassword",
]
# The guide's function (docs/rotation.md), as users would upload it.
GOOD = code_blocks(DOC.read_text())[0][1]
RAISES = GOOD.replace(
    "def set_secret(arn, token, stages):\n",
    'def set_secret(arn, token, stages):\n    raise RuntimeError("the database refused")\n',
)
SLOW = GOOD.replace(
    "def set_secret(arn, token, stages):\n",
    "def set_secret(arn, token, stages):\n    import time\n    time.sleep(60)\n",
)
GREEDY = GOOD.replace(
    "def set_secret(arn, token, stages):\n",
    "def set_secret(arn, token, stages):\n    hog = bytearray(512 * 1024 * 1024)\n",
)

# The guide's function, printing the labels it finds before and after each step.
RECORDING = (
    GOOD
    + """

_rotate = lambda_handler


def stages_of(arn):
    return json.dumps(service.describe_secret(SecretId=arn)["VersionIdsToStages"], sort_keys=True)


def lambda_handler(event, context):
    arn, token = event["SecretId"], event["ClientRequestToken"]
    print("BEFORE " + event["Step"] + " " + stages_of(arn))
    try:
        service.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")
        print("PENDING has a value")
    except service.exceptions.ResourceNotFoundException as missing:
        print("PENDING " + missing.response["Error"]["Message"])
    _rotate(event, context)
    print("AFTER " + event["Step"] + " " + stages_of(arn))
"""
)


class ServerTime:
    """The test clock of a --dev server with ``workers`` workers."""

    def __init__(self, path: Path, workers: int) -> None:
        self.path, self.workers = path, workers
        self.now = START
        self._write(START)

    def _write(self, moment: datetime) -> None:
        scratch = self.path.with_name(self.path.name + ".new")
        scratch.write_text(str(to_ms(moment)))
        os.replace(scratch, self.path)  # a worker never reads half a time

    def set(self, moment: datetime) -> None:
        """Move the time to ``moment``; return once every worker swept at it (and finished
        the rotations that sweep started)."""
        self.now = moment
        self._write(moment)
        wanted = to_ms(moment)

        def swept() -> bool:
            marks = list(self.path.parent.glob(f"{self.path.name}.swept.*"))
            seen = [int(mark.read_text() or 0) for mark in marks]
            return len(seen) >= self.workers and sorted(seen)[-self.workers] >= wanted

        wait_for(swept, f"every worker to sweep at {moment}")

    def advance(self, delta: timedelta) -> None:
        self.set(self.now + delta)


@dataclass
class Rig:
    server: ServerProcess
    time: ServerTime
    sm: Any
    lam: Any
    iam: Any
    ct: Any
    logs: Any

    def role(self, actions: list[str]) -> str:
        name = f"rot-{uuid.uuid4().hex[:8]}"
        arn: str = self.iam.create_role(
            RoleName=name, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST)
        )["Role"]["Arn"]
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}],
        }
        self.iam.put_role_policy(
            RoleName=name, PolicyName="rotation", PolicyDocument=json.dumps(policy)
        )
        return arn

    def function(
        self, source: str, *, actions: list[str] = ROTATION_ACTIONS, **settings: Any
    ) -> str:
        name = f"rot-{uuid.uuid4().hex[:8]}"
        arn: str = self.lam.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Handler="lambda_function.lambda_handler",
            Role=self.role(actions),
            Code={"ZipFile": package(source)},
            Timeout=settings.get("Timeout", 30),
            MemorySize=settings.get("MemorySize", 128),
        )["FunctionArn"]
        self.lam.add_permission(
            FunctionName=name,
            StatementId="secretsmanager",
            Action="lambda:InvokeFunction",
            Principal="secretsmanager.amazonaws.com",
        )
        return arn

    def secret(self) -> str:
        arn: str = self.sm.create_secret(
            Name=f"MyApp/{uuid.uuid4().hex[:8]}",
            SecretString=json.dumps({"username": "app", "password": "initial"}),
        )["ARN"]
        return arn

    def events(self, name: str, arn: str) -> list[dict[str, Any]]:
        found = []
        pages = self.ct.get_paginator("lookup_events").paginate(
            LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": name}],
            StartTime=START - timedelta(days=1),
            EndTime=START + timedelta(days=400),
        )
        for page in pages:
            for event in page["Events"]:
                record = json.loads(event["CloudTrailEvent"])
                if record["resources"][0]["ARN"] == arn:
                    found.append(record)
        return sorted(found, key=lambda record: record["eventTime"])

    def started(self, arn: str) -> list[datetime]:
        return [
            datetime.fromisoformat(record["eventTime"].replace("Z", "+00:00"))
            for record in self.events("RotationStarted", arn)
        ]


def start_rig(tmp_path: Path, new_server: Callable[..., ServerProcess], *args: str) -> Rig:
    """A dev server of WORKERS workers on a test clock, sweeping rotations every 0.1 s
    (``args``: more server options, e.g. a data directory)."""
    clock = ServerTime(tmp_path / "clock", WORKERS)
    server = new_server(
        "--dev",
        "--workers",
        str(WORKERS),
        *args,
        env={"STRONGROOM_TEST_CLOCK": str(clock.path), "STRONGROOM_ROTATION_INTERVAL": "0.1"},
    )
    return Rig(
        server,
        clock,
        server.client(),
        server.client("lambda"),
        server.client("iam"),
        server.client("cloudtrail"),
        server.client("logs"),
    )


@pytest.fixture
def rig(tmp_path: Path, new_server: Callable[..., ServerProcess]) -> Iterator[Rig]:
    yield start_rig(tmp_path, new_server)


# --- one rotation ----------------------------------------------------------------------------


def test_labels_before_and_after_each_step_are_aws(rig: Rig) -> None:
    function = rig.function(RECORDING)
    arn = rig.secret()
    first = rig.sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
    (old,) = first
    new = rig.sm.rotate_secret(SecretId=arn, RotationLambdaARN=function)["VersionId"]
    wait_for(lambda: rig.events("RotationSucceeded", arn), "the rotation")
    group = f"/aws/lambda/{function.rsplit(':', 1)[1]}"
    lines = [
        e["message"].strip()
        for e in rig.logs.filter_log_events(logGroupName=group)["events"]
        if e["message"].startswith(("BEFORE", "AFTER", "PENDING"))
    ]
    pending = {old: ["AWSCURRENT"], new: ["AWSPENDING"]}
    finished = {old: ["AWSPREVIOUS"], new: ["AWSCURRENT", "AWSPENDING"]}
    no_value = f"PENDING Secrets Manager can't find the specified secret value for VersionId: {new}"
    expected = []
    for step, before, after in (
        ("createSecret", pending, pending),
        ("setSecret", pending, pending),
        ("testSecret", pending, pending),
        ("finishSecret", pending, finished),
    ):
        expected += [f"BEFORE {step} {json.dumps(before, sort_keys=True)}"]
        expected += [no_value if step == "createSecret" else "PENDING has a value"]
        expected += [f"AFTER {step} {json.dumps(after, sort_keys=True)}"]
    assert lines == expected
    # Then Secrets Manager takes AWSPENDING off the new version.
    described = rig.sm.describe_secret(SecretId=arn)
    assert described["VersionIdsToStages"] == {old: ["AWSPREVIOUS"], new: ["AWSCURRENT"]}
    assert described["RotationEnabled"] is True
    assert described["LastRotatedDate"] == START
    assert [e["eventName"] for e in rig.events("RotationStarted", arn)] == ["RotationStarted"]
    # ListSecrets shows the same rotation fields.
    (listed,) = [
        s
        for s in rig.sm.list_secrets(IncludePlannedDeletion=False)["SecretList"]
        if s["ARN"] == arn
    ]
    assert listed["RotationEnabled"] is True
    assert listed["RotationLambdaARN"] == function
    assert listed["LastRotatedDate"] == START
    assert "NextRotationDate" not in listed  # no schedule: rotated on demand only


# --- schedules -------------------------------------------------------------------------------


def test_schedules_fire_in_their_windows_once_each_across_two_workers(rig: Rig) -> None:
    function = rig.function(GOOD)
    hourly, weekly, daily = rig.secret(), rig.secret(), rig.secret()
    schedules = {
        hourly: {"ScheduleExpression": "rate(4 hours)"},
        weekly: {"ScheduleExpression": "cron(0 8 ? * MON *)", "Duration": "2h"},
        daily: {"AutomaticallyAfterDays": 2, "Duration": "1h"},
    }
    for arn, rules in schedules.items():
        rig.sm.rotate_secret(
            SecretId=arn, RotationLambdaARN=function, RotationRules=rules, RotateImmediately=False
        )
    hour, day = timedelta(hours=1), timedelta(days=1)
    monday = datetime(2026, 3, 2, tzinfo=UTC)
    windows = {
        # Windows of an hour at 00, 04, 08 ...: the one open at 20:30 counts.
        hourly: [(START.replace(minute=0), hour)]
        + [(monday + 4 * i * hour, hour) for i in range(3)],
        weekly: [(monday + 8 * hour, 2 * hour), (monday + 7 * day + 8 * hour, 2 * hour)],
        # Two days after the value was set (Sunday), then two days after each rotation.
        daily: [(monday + (1 + 2 * i) * day, hour) for i in range(4)],
    }
    stop_hourly = monday + 9 * hour
    moments: list[datetime] = []
    for spans in windows.values():
        for opens, length in spans:
            # Just before the window (nothing may start), then every 5 minutes through it.
            steps = int(length / timedelta(minutes=5))
            moments += [opens - timedelta(minutes=1)]
            moments += [opens + i * timedelta(minutes=5) for i in range(steps)]
    for moment in sorted(set(moments)):
        if moment < rig.time.now:
            continue
        if rig.time.now < stop_hourly <= moment:
            rig.sm.cancel_rotate_secret(SecretId=hourly)
        rig.time.set(moment)
    for arn, spans in windows.items():
        started = rig.started(arn)
        assert len(started) == len(spans), (schedules[arn], started)
        for moment, (opens, length) in zip(started, spans, strict=True):
            assert opens <= moment < opens + length, (schedules[arn], moment, opens)
        assert len(rig.events("RotationSucceeded", arn)) == len(spans)
        versions = rig.sm.list_secret_version_ids(SecretId=arn)["Versions"]
        assert sorted(s for v in versions for s in v["VersionStages"]) == [
            "AWSCURRENT",
            "AWSPREVIOUS",
        ]


# --- failures ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "settings", "error", "logged"),
    [
        (RAISES, {}, "RuntimeError", "the database refused"),
        (SLOW, {"Timeout": 2}, "Sandbox.Timedout", "Task timed out after 2.00 seconds"),
        (GREEDY, {"MemorySize": 128}, "Runtime.OutOfMemory", "Runtime.OutOfMemory"),
        (
            GOOD,
            {"actions": [a for a in ROTATION_ACTIONS if a != "secretsmanager:PutSecretValue"]},
            "ClientError",
            "AccessDeniedException",
        ),
    ],
    ids=["raises", "times-out", "out-of-memory", "role-lacks-PutSecretValue"],
)
def test_a_failed_rotation_keeps_awscurrent_shows_and_runs_again(
    rig: Rig, source: str, settings: dict[str, Any], error: str, logged: str
) -> None:
    function = rig.function(source, **settings)
    arn = rig.secret()
    first = rig.sm.get_secret_value(SecretId=arn)
    token = rig.sm.rotate_secret(SecretId=arn, RotationLambdaARN=function)["VersionId"]
    failed = wait_for(lambda: rig.events("RotationFailed", arn), "RotationFailed")
    details = failed[0]["serviceEventDetails"]
    assert details["step"] in ("createSecret", "setSecret")
    assert details["reason"] == f"Unhandled: {error}"
    # The function's own log says what went wrong (CloudWatch Logs' FilterLogEvents).
    group = f"/aws/lambda/{function.rsplit(':', 1)[1]}"
    lines = [e["message"] for e in rig.logs.filter_log_events(logGroupName=group)["events"]]
    assert any(logged in line for line in lines), lines
    if "actions" in settings:
        # The function's own call was refused, and audited as such.
        refused = [
            json.loads(e["CloudTrailEvent"])
            for e in rig.ct.lookup_events(
                LookupAttributes=[
                    {"AttributeKey": "EventName", "AttributeValue": "PutSecretValue"}
                ],
                StartTime=START - timedelta(days=1),
                EndTime=START + timedelta(days=1),
            )["Events"]
        ]
        assert any(
            r.get("errorCode") == "AccessDenied" or r.get("errorCode") == "AccessDeniedException"
            for r in refused
        ), refused
    # AWSCURRENT keeps working, with the old value.
    assert rig.sm.get_secret_value(SecretId=arn)["SecretString"] == first["SecretString"]
    # DescribeSecret shows the unfinished rotation: AWSPENDING on its version, not rotated.
    described = rig.sm.describe_secret(SecretId=arn)
    assert described["VersionIdsToStages"][token] == ["AWSPENDING"]
    assert described["VersionIdsToStages"][first["VersionId"]] == ["AWSCURRENT"]
    assert "LastRotatedDate" not in described
    # The next attempt runs after its delay, with the same version.
    rig.time.advance(RETRY_DELAYS[0])
    wait_for(lambda: len(rig.events("RotationFailed", arn)) == 2, "the second attempt")
    assert len(rig.started(arn)) == 2
    # Fixed function: the next attempt succeeds.
    rig.lam.update_function_code(FunctionName=function, ZipFile=package(GOOD))
    # A time limit a loaded machine cannot miss (the function needs a few seconds there).
    rig.lam.update_function_configuration(FunctionName=function, Timeout=30)
    if "actions" in settings:
        role = rig.lam.get_function_configuration(FunctionName=function)["Role"]
        rig.iam.put_role_policy(
            RoleName=role.rsplit("/", 1)[1],
            PolicyName="rotation",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": ROTATION_ACTIONS, "Resource": "*"}],
                }
            ),
        )
    rig.time.advance(RETRY_DELAYS[1])
    wait_for(lambda: rig.events("RotationSucceeded", arn), "the rotation to succeed")
    assert rig.sm.describe_secret(SecretId=arn)["VersionIdsToStages"] == {
        first["VersionId"]: ["AWSPREVIOUS"],
        token: ["AWSCURRENT"],
    }


def test_rotation_needs_the_functions_permission(rig: Rig) -> None:
    """A function whose policy does not name Secrets Manager cannot be a rotation function."""
    name = f"rot-{uuid.uuid4().hex[:8]}"
    arn = rig.lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Handler="lambda_function.lambda_handler",
        Role=rig.role(ROTATION_ACTIONS),
        Code={"ZipFile": package(GOOD)},
    )["FunctionArn"]
    secret = rig.secret()
    error = rig.sm.exceptions.ClientError
    with pytest.raises(error) as refused:
        rig.sm.rotate_secret(SecretId=secret, RotationLambdaARN=arn)
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "RotationEnabled" not in rig.sm.describe_secret(SecretId=secret)
    assert arn.startswith(f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:")


def test_passing_a_function_needs_lambda_invoke_function(rig: Rig) -> None:
    """RotateSecret's "Required permissions": secretsmanager:RotateSecret, and
    lambda:InvokeFunction to pass the rotation function."""
    function = rig.function(GOOD)
    arn = rig.secret()
    user = f"rotator-{uuid.uuid4().hex[:8]}"
    rig.iam.create_user(UserName=user)
    rig.iam.put_user_policy(
        UserName=user,
        PolicyName="secrets",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}],
            }
        ),
    )
    key = rig.iam.create_access_key(UserName=user)["AccessKey"]
    theirs = rig.server.client(
        aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"]
    )
    before = snapshot(rig.sm, arn)
    with pytest.raises(theirs.exceptions.ClientError) as refused:
        theirs.rotate_secret(SecretId=arn, RotationLambdaARN=function)
    error = refused.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert "lambda:InvokeFunction" in error["Message"] and function in error["Message"]
    assert snapshot(rig.sm, arn) == before
