"""Function invocation logs, sealed at rest and with CloudWatch's retention, end to end:
a real server process, boto3's ``logs`` client.

A function prints a marker the test made; the marker is in no file under the data
directory (the SQLite file, its WAL, the audit log: raw bytes), while FilterLogEvents,
which opens the logs, still finds it. The marker is never sent in a request (the audit
log records requests): the function builds it from the reverse the payload carries."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.audit import audit_records
from tests.aws import aws_error
from tests.e2e.test_functions import LAMBDA_TRUST, create, unique
from tests.server import DEV_CREDENTIALS, STRONGROOM, ServerProcess

PRINTS_MARKER = """
def lambda_handler(event, context):
    print("the secret is", event["reversed"][::-1])
    return {"ok": True}
"""

ALLOWED = (
    "1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, "
    "2557, 2922, 3288, 3653"
)
DAY_MS = 86_400_000


def marker() -> str:
    return f"MARKER-{uuid.uuid4().hex}"


def files_holding(data_dir: Path, text: str) -> list[Path]:
    """Every file under ``data_dir`` whose raw bytes hold ``text``."""
    needle = text.encode()
    return [path for path in data_dir.rglob("*") if path.is_file() and needle in path.read_bytes()]


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


class Rig:
    """A --dev server over ``data_dir``, an execution role, and how to invoke."""

    def __init__(self, server: ServerProcess, data_dir: Path) -> None:
        self.server, self.data_dir = server, data_dir
        self.lam, self.logs = server.client("lambda"), server.client("logs")
        self.iam = server.client("iam")
        self.role = self.iam.create_role(
            RoleName=unique("logs-role"), AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST)
        )["Role"]["Arn"]

    def function(self) -> str:
        return str(create(self.lam, self.role, PRINTS_MARKER)["FunctionName"])

    def prints(self, name: str, text: str) -> None:
        answer = self.lam.invoke(
            FunctionName=name, Payload=json.dumps({"reversed": text[::-1]}).encode()
        )
        assert "FunctionError" not in answer, answer["Payload"].read()

    def messages(self, name: str) -> list[str]:
        events = self.logs.filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
        return [event["message"] for event in events]

    def group(self, name: str) -> dict[str, Any]:
        (group,) = self.logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{name}")[
            "logGroups"
        ]
        return dict(group)


def cli(rig: Rig, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``strongroom functions ARGS`` against the rig's server, with the dev credentials."""
    done = subprocess.run(
        [str(STRONGROOM), "functions", *args, "--endpoint-url", rig.server.url],
        env={
            **os.environ,
            "AWS_ACCESS_KEY_ID": DEV_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": DEV_CREDENTIALS["aws_secret_access_key"],
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


@pytest.fixture
def start(new_server: Any, tmp_path: Path) -> Callable[..., Rig]:
    def started(env: dict[str, str] | None = None) -> Rig:
        data_dir = tmp_path / "data"
        return Rig(new_server("--dev", "--data-dir", str(data_dir), env=env), data_dir)

    return started


def test_logs_are_sealed_at_rest_and_still_filtered(start: Callable[..., Rig]) -> None:
    rig = start()
    name, secret = rig.function(), marker()
    rig.prints(name, secret)
    messages = rig.messages(name)
    assert f"the secret is {secret}\n" in messages
    # Filtered after opening: a pattern finds it (the pattern is a word of the line, not
    # the marker, which no request may carry).
    matched = rig.logs.filter_log_events(
        logGroupName=f"/aws/lambda/{name}", filterPattern='"the secret is"'
    )["events"]
    assert [event["message"] for event in matched] == [f"the secret is {secret}\n"]
    # storedBytes: the plaintext's byte count, kept beside the ciphertext.
    assert rig.group(name)["storedBytes"] == sum(len(m.rstrip("\n").encode()) + 1 for m in messages)
    assert files_holding(rig.data_dir, secret) == []  # running: database, WAL, audit log
    rig.server.stop()
    assert files_holding(rig.data_dir, secret) == []
    # FilterLogEvents is audited as CloudTrail records it: a read, without its response.
    (filtered, _) = [
        record for record in audit_records(rig.data_dir) if record["eventName"] == "FilterLogEvents"
    ]
    assert filtered["readOnly"] is True and filtered["responseElements"] is None


def test_retention_policy(start: Callable[..., Rig]) -> None:
    rig = start()
    name = rig.function()
    rig.prints(name, "hello")
    group = f"/aws/lambda/{name}"
    assert "retentionInDays" not in rig.group(name)  # never expire until told
    rig.logs.put_retention_policy(logGroupName=group, retentionInDays=14)
    assert rig.group(name)["retentionInDays"] == 14
    # A value CloudWatch does not accept: its code and message, and nothing changed.
    error = aws_error(
        rig.server.client("logs", validate=False).put_retention_policy,
        logGroupName=group,
        retentionInDays=2,
        code="InvalidParameterException",
    )
    assert error["Message"] == (
        "1 validation error detected: Value '2' at 'retentionInDays' failed to satisfy "
        f"constraint: Member must satisfy enum value set: [{ALLOWED}]"
    )
    assert rig.group(name)["retentionInDays"] == 14
    rig.logs.delete_retention_policy(logGroupName=group)
    assert "retentionInDays" not in rig.group(name)
    # The CLI: show, set, a value refused, --never.
    assert cli(rig, "retention", name).stdout == f"{group}: never expire\n"
    assert cli(rig, "retention", name, "30").stdout == f"{group}: 30 days\n"
    refused = cli(rig, "retention", name, "31", check=False)
    assert refused.returncode != 0 and "InvalidParameterException" in refused.stderr
    assert rig.group(name)["retentionInDays"] == 30
    assert cli(rig, "retention", name, "--never").stdout == f"{group}: never expire\n"
    assert "retentionInDays" not in rig.group(name)
    for call, extra in (
        (rig.logs.put_retention_policy, {"retentionInDays": 1}),
        (rig.logs.delete_retention_policy, {}),
    ):
        error = aws_error(
            call,
            logGroupName="/aws/lambda/never-invoked",
            code="ResourceNotFoundException",
            **extra,
        )
        assert error["Message"] == "The specified log group does not exist."


def test_delete_log_stream_and_group(start: Callable[..., Rig]) -> None:
    rig = start()
    name = rig.function()
    group = f"/aws/lambda/{name}"
    rig.prints(name, "first")
    rig.prints(name, "second")
    streams = [
        s["logStreamName"] for s in rig.logs.describe_log_streams(logGroupName=group)["logStreams"]
    ]
    assert len(streams) == 2
    rig.logs.delete_log_stream(logGroupName=group, logStreamName=streams[0])
    left = rig.logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert [s["logStreamName"] for s in left] == streams[1:]
    error = aws_error(
        rig.logs.delete_log_stream,
        logGroupName=group,
        logStreamName=streams[0],
        code="ResourceNotFoundException",
    )
    assert error["Message"] == "The specified log stream does not exist."

    # The group outlives the function, as in AWS; DeleteLogGroup removes it and its logs.
    rig.lam.delete_function(FunctionName=name)
    assert rig.messages(name)
    rig.logs.delete_log_group(logGroupName=group)
    assert rig.logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"] == []
    for call, extra in (
        (rig.logs.filter_log_events, {}),
        (rig.logs.delete_log_group, {}),
        (rig.logs.delete_log_stream, {"logStreamName": streams[1]}),
    ):
        error = aws_error(call, logGroupName=group, code="ResourceNotFoundException", **extra)
        assert error["Message"] == "The specified log group does not exist."
    with sqlite3.connect(rig.data_dir / "strongroom.db") as conn:
        assert conn.execute(
            "SELECT count(*) FROM lambda_invocations WHERE function_name = ?", (name,)
        ).fetchone() == (0,)


def test_the_purge_removes_only_what_retention_expired(
    start: Callable[..., Rig], tmp_path: Path
) -> None:
    clock = tmp_path / "clock"
    now = int(time.time() * 1000)
    clock.write_text(str(now))
    rig = start({"STRONGROOM_TEST_CLOCK": str(clock), "STRONGROOM_PURGE_INTERVAL": "0.2"})
    short, long, forever = rig.function(), rig.function(), rig.function()
    for name in (short, long, forever):
        rig.prints(name, "kept until it expires")
    rig.logs.put_retention_policy(logGroupName=f"/aws/lambda/{short}", retentionInDays=1)
    rig.logs.put_retention_policy(logGroupName=f"/aws/lambda/{long}", retentionInDays=3)
    (stream,) = rig.logs.describe_log_streams(logGroupName=f"/aws/lambda/{short}")["logStreams"]
    time.sleep(1)  # sweeps at the current time purge nothing
    assert all(rig.messages(name) for name in (short, long, forever))

    clock.write_text(str(now + 2 * DAY_MS))
    wait_for(lambda: not rig.messages(short), "the 1-day group's logs to be purged")
    time.sleep(1)
    assert rig.messages(long) and rig.messages(forever)
    assert rig.group(short)["storedBytes"] == 0  # the group stays, empty, as in CloudWatch
    group_arn = rig.group(short)["logGroupArn"]
    rig.server.stop()
    purged = [
        record
        for record in audit_records(rig.data_dir)
        if record["eventSource"] == "logs.amazonaws.com"
        and record["eventType"] == "AwsServiceEvent"
    ]
    assert len(purged) == 1
    (event,) = purged
    assert event["eventName"] == "DeleteLogStream"
    assert event["userIdentity"]["invokedBy"] == "logs.amazonaws.com"
    assert event["resources"][0]["ARN"] == f"{group_arn}:log-stream:{stream['logStreamName']}"
    assert event["serviceEventDetails"]["retentionInDays"] == 1


def test_the_new_operations_need_permission_and_are_audited(start: Callable[..., Rig]) -> None:
    rig = start()
    name = rig.function()
    rig.prints(name, "hello")
    group = f"/aws/lambda/{name}"
    (stream,) = rig.logs.describe_log_streams(logGroupName=group)["logStreams"]
    user = unique("logs-user")
    rig.iam.create_user(UserName=user)
    key = rig.iam.create_access_key(UserName=user)["AccessKey"]
    theirs = rig.server.client(
        "logs", aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"]
    )
    calls = {
        "PutRetentionPolicy": (theirs.put_retention_policy, {"retentionInDays": 1}),
        "DeleteRetentionPolicy": (theirs.delete_retention_policy, {}),
        "DeleteLogStream": (theirs.delete_log_stream, {"logStreamName": stream["logStreamName"]}),
        "DeleteLogGroup": (theirs.delete_log_group, {}),
    }
    for operation, (call, extra) in calls.items():
        error = aws_error(call, logGroupName=group, code="AccessDeniedException", **extra)
        assert f"logs:{operation}" in error["Message"]
    assert rig.messages(name)  # nothing was deleted
    assert "retentionInDays" not in rig.group(name)
    rig.server.stop()
    denied = {
        record["eventName"]
        for record in audit_records(rig.data_dir)
        if record["eventSource"] == "logs.amazonaws.com"
        and record.get("errorCode") == "AccessDeniedException"
        and record["userIdentity"].get("arn", "").endswith(f":user/{user}")
    }
    assert denied == set(calls)


def test_logs_stored_in_plaintext_are_sealed_at_open(start: Callable[..., Rig]) -> None:
    """A data directory from a version that kept logs in plaintext: the rows the migration
    left as they were are sealed once the deployment is open, and still read."""
    rig = start()
    name = rig.function()
    rig.prints(name, "sealed already")
    rig.server.stop()
    secret = marker()
    legacy_log = f"START RequestId: x\nthe secret is {secret}\nEND RequestId: x\n"
    database = rig.data_dir / "strongroom.db"
    with sqlite3.connect(database) as conn:
        account, region, arn = conn.execute(
            "SELECT account_id, region, function_arn FROM lambda_invocations"
        ).fetchone()
        # As an older version stored them: the log in plaintext, for this function's
        # group and for a function whose group was never made (an older function's).
        for function_name, function_arn in ((name, arn), ("before-groups", arn + "-old")):
            conn.execute(
                "INSERT INTO lambda_invocations (request_id, function_arn, account_id, region,"
                " function_name, started_ms, duration_ms, outcome, log)"
                " VALUES (?, ?, ?, ?, ?, ?, 5, 'ok', ?)",
                (str(uuid.uuid4()), function_arn, account, region, function_name,
                 int(time.time() * 1000) - 1000, legacy_log),
            )  # fmt: skip
    conn.close()
    assert files_holding(rig.data_dir, secret)

    rig.server.start()
    for function_name in (name, "before-groups"):
        assert f"the secret is {secret}\n" in rig.messages(function_name)
    old = rig.group("before-groups")
    assert old["storedBytes"] == len(legacy_log.encode())
    rig.server.stop()
    with sqlite3.connect(database) as conn:
        rows = conn.execute(
            "SELECT log, sealed IS NOT NULL, stored_bytes FROM lambda_invocations"
        ).fetchall()
    conn.close()
    assert len(rows) == 3 and all(log == "" and sealed for log, sealed, _size in rows)
    assert files_holding(rig.data_dir, secret) == []
    # Idempotent: opened again, nothing left to seal, the logs still read.
    rig.server.start()
    assert f"the secret is {secret}\n" in rig.messages("before-groups")
