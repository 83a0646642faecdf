"""Asynchronous invocations (``InvocationType=Event``) as Lambda runs them, end to end: a
real server process, boto3. A failing function is attempted three times by default, a
minute and then two minutes apart on the server's test clock (no sleeping for them), each
attempt in the function's log under the one request id; ``MaximumRetryAttempts`` and
``MaximumEventAgeInSeconds`` (the event invoke config operations) change that; a restart
between attempts loses nothing (the queue is in the store); two workers run each attempt
once. The log's timestamps are the deployment clock's, as the retention purge reads it."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from strongroom.clock import to_ms
from tests.aws import ACCOUNT, aws_error
from tests.e2e.test_functions import LAMBDA_TRUST, create, package, unique
from tests.e2e.test_rotation import START, ServerTime
from tests.server import ServerProcess

FAILS = """
def lambda_handler(event, context):
    print("attempting", event["n"])
    raise RuntimeError("the event could not be handled")
"""
SECOND = timedelta(seconds=1)
DESTINATION = "arn:aws:sqs:us-east-1:000000000000:failed-events"


@dataclass
class Rig:
    server: ServerProcess
    time: ServerTime
    data_dir: Path
    lam: Any
    logs: Any
    role: str

    def function(self, source: str = FAILS) -> str:
        return str(create(self.lam, self.role, source)["FunctionName"])

    def invoke_event(self, name: str) -> None:
        answer = self.lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"n": 7}')
        assert answer["StatusCode"] == 202
        # Every worker swept after the first attempt ended (the accepting worker marks
        # only once the attempts it started are done).
        self.time.advance(timedelta(milliseconds=1))

    def events(self, name: str) -> list[dict[str, Any]]:
        return list(self.logs.filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"])

    def attempts(self, name: str) -> list[tuple[str, int]]:
        """(request id, timestamp) of each attempt's START line, oldest first."""
        return [
            (event["message"].split()[2], event["timestamp"])
            for event in self.events(name)
            if event["message"].startswith("START RequestId: ")
        ]

    def queued(self) -> int:
        with sqlite3.connect(self.data_dir / "strongroom.db") as conn:
            (count,) = conn.execute("SELECT count(*) FROM lambda_event_queue").fetchone()
        conn.close()
        return int(count)


@pytest.fixture
def start(new_server: Callable[..., ServerProcess], tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    def started(workers: int = 2) -> Rig:
        clock = ServerTime(tmp_path / "clock", workers)
        data_dir = tmp_path / "data"
        server = new_server(
            "--dev",
            "--workers",
            str(workers),
            "--data-dir",
            str(data_dir),
            env={"STRONGROOM_TEST_CLOCK": str(clock.path), "STRONGROOM_ROTATION_INTERVAL": "0.1"},
        )
        iam = server.client("iam")
        role = iam.create_role(
            RoleName=unique("async-role"), AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST)
        )["Role"]["Arn"]
        return Rig(server, clock, data_dir, server.client("lambda"), server.client("logs"), role)

    yield started


def at(moment: datetime) -> int:
    return to_ms(moment)


def test_a_failing_event_is_attempted_three_times_a_minute_then_two_apart(
    start: Callable[..., Rig],
) -> None:
    rig = start()
    name = rig.function()
    rig.invoke_event(name)
    ((request_id, first_ms),) = rig.attempts(name)
    # On the deployment's clock (the test clock's START), not the wall clock's.
    assert first_ms in (at(START), at(START) + 1)
    rig.time.set(START + 59 * SECOND)
    assert len(rig.attempts(name)) == 1  # not due before a minute has passed
    rig.time.set(START + 61 * SECOND)
    assert rig.attempts(name) == [(request_id, first_ms), (request_id, at(START + 61 * SECOND))]
    rig.time.set(START + 180 * SECOND)
    assert len(rig.attempts(name)) == 2  # two minutes after the second attempt: 181 s
    rig.time.set(START + 182 * SECOND)
    third = at(START + 182 * SECOND)
    assert rig.attempts(name) == [
        (request_id, first_ms),
        (request_id, at(START + 61 * SECOND)),
        (request_id, third),
    ]
    rig.time.set(START + 600 * SECOND)
    assert len(rig.attempts(name)) == 3 and rig.queued() == 0  # no retry left: dropped
    # Each attempt is logged whole, as Lambda logs it, in the request's one log stream.
    messages = [event["message"] for event in rig.events(name)]
    assert messages.count("attempting 7\n") == 3
    assert messages.count("[ERROR] RuntimeError: the event could not be handled\n") == 3
    assert messages.count(f"END RequestId: {request_id}\n") == 3
    (stream,) = rig.logs.describe_log_streams(logGroupName=f"/aws/lambda/{name}")["logStreams"]
    assert stream["firstEventTimestamp"] == first_ms and stream["lastEventTimestamp"] >= third
    got = rig.logs.get_log_events(
        logGroupName=f"/aws/lambda/{name}", logStreamName=stream["logStreamName"]
    )["events"]
    assert [event["message"] for event in got] == messages


def test_maximum_retry_attempts_zero_gives_one_attempt(start: Callable[..., Rig]) -> None:
    rig = start()
    name = rig.function()
    rig.lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0)
    rig.invoke_event(name)
    assert len(rig.attempts(name)) == 1
    rig.time.set(START + 61 * SECOND)
    rig.time.set(START + 200 * SECOND)
    assert len(rig.attempts(name)) == 1 and rig.queued() == 0


def test_an_event_older_than_its_maximum_age_is_dropped(start: Callable[..., Rig]) -> None:
    rig = start()
    name = rig.function()
    rig.lam.put_function_event_invoke_config(FunctionName=name, MaximumEventAgeInSeconds=60)
    rig.invoke_event(name)
    assert len(rig.attempts(name)) == 1
    rig.time.set(START + 61 * SECOND)  # the retry would be 61 s old: past 60
    rig.time.set(START + 200 * SECOND)
    assert len(rig.attempts(name)) == 1 and rig.queued() == 0


def test_a_function_that_succeeds_is_attempted_once(start: Callable[..., Rig]) -> None:
    rig = start()
    name = rig.function('def lambda_handler(event, context):\n    print("done", event["n"])\n')
    rig.invoke_event(name)
    assert len(rig.attempts(name)) == 1 and rig.queued() == 0
    rig.time.set(START + 200 * SECOND)
    assert len(rig.attempts(name)) == 1


def test_a_restart_between_attempts_still_retries(start: Callable[..., Rig]) -> None:
    rig = start(workers=1)
    name = rig.function()
    rig.invoke_event(name)
    ((request_id, _),) = rig.attempts(name)
    rig.server.stop()
    assert rig.queued() == 1  # the retry waits in the store
    rig.server.start()
    rig.time.set(START + 61 * SECOND)
    assert [rid for rid, _ in rig.attempts(name)] == [request_id, request_id]
    rig.time.set(START + 182 * SECOND)
    assert len(rig.attempts(name)) == 3 and rig.queued() == 0


# ---------------------------------------------------------------------- the config operations


@pytest.fixture
def lam(server: ServerProcess) -> Any:
    return server.client("lambda")


@pytest.fixture
def function(server: ServerProcess, lam: Any) -> str:
    role = server.client("iam").create_role(
        RoleName=unique("cfg-role"), AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST)
    )["Role"]["Arn"]
    return str(create(lam, role, FAILS)["FunctionName"])


def no_config(name: str) -> str:
    return (
        f"The function arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}:$LATEST "
        "doesn't have an EventInvokeConfig"
    )


def test_event_invoke_config_round_trip(lam: Any, function: str) -> None:
    name = function
    for call in (
        lam.get_function_event_invoke_config,
        lam.delete_function_event_invoke_config,
    ):
        aws_error(
            call,
            FunctionName=name,
            code="ResourceNotFoundException",
            message=no_config(name),
            status=404,
        )
    aws_error(
        lam.update_function_event_invoke_config,
        FunctionName=name,
        MaximumRetryAttempts=1,
        code="ResourceNotFoundException",
        message=no_config(name),
        status=404,
    )
    assert (
        lam.list_function_event_invoke_configs(FunctionName=name)["FunctionEventInvokeConfigs"]
        == []
    )

    put = lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=1)
    arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}:$LATEST"
    assert put["FunctionArn"] == arn and put["MaximumRetryAttempts"] == 1
    assert "MaximumEventAgeInSeconds" not in put and isinstance(put["LastModified"], datetime)
    got = lam.get_function_event_invoke_config(FunctionName=name)
    assert (got["FunctionArn"], got["MaximumRetryAttempts"]) == (arn, 1)
    # Update changes what it names and keeps the rest; Put replaces the whole config.
    updated = lam.update_function_event_invoke_config(
        FunctionName=name, MaximumEventAgeInSeconds=120
    )
    assert (updated["MaximumRetryAttempts"], updated["MaximumEventAgeInSeconds"]) == (1, 120)
    replaced = lam.put_function_event_invoke_config(FunctionName=name, MaximumEventAgeInSeconds=300)
    assert replaced["MaximumEventAgeInSeconds"] == 300 and "MaximumRetryAttempts" not in replaced
    (listed,) = lam.list_function_event_invoke_configs(FunctionName=name)[
        "FunctionEventInvokeConfigs"
    ]
    assert listed["FunctionArn"] == arn and listed["MaximumEventAgeInSeconds"] == 300
    assert (
        lam.delete_function_event_invoke_config(FunctionName=name)["ResponseMetadata"][
            "HTTPStatusCode"
        ]
        == 204
    )
    aws_error(
        lam.get_function_event_invoke_config,
        FunctionName=name,
        code="ResourceNotFoundException",
        status=404,
    )


def test_event_invoke_config_errors_change_nothing(
    server: ServerProcess, lam: Any, function: str
) -> None:
    name = function
    kept = lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=1)

    def unchanged() -> None:
        got = lam.get_function_event_invoke_config(FunctionName=name)
        assert (got["MaximumRetryAttempts"], got.get("MaximumEventAgeInSeconds")) == (1, None)
        assert got["LastModified"] == kept["LastModified"]

    for call in (lam.put_function_event_invoke_config, lam.update_function_event_invoke_config):
        aws_error(
            call,
            FunctionName=name,
            code="InvalidParameterValueException",
            message="You must specify at least one of error handling or destination setting.",
        )
        unchanged()
        # Destinations are not delivered: a config naming one is refused.
        error = aws_error(
            call,
            FunctionName=name,
            MaximumRetryAttempts=0,
            DestinationConfig={"OnFailure": {"Destination": DESTINATION}},
            code="InvalidParameterValueException",
        )
        assert error["Message"].startswith(
            "The provided destination config DestinationConfig(onSuccess=null, "
            f"onFailure=OnFailure(destination={DESTINATION})) is invalid."
        )
        unchanged()
    unvalidated = server.client("lambda", validate=False)
    for member, value, constraint in (
        ("maximumRetryAttempts", 3, "less than or equal to 2"),
        ("maximumEventAgeInSeconds", 59, "greater than or equal to 60"),
    ):
        aws_error(
            unvalidated.put_function_event_invoke_config,
            FunctionName=name,
            **{member[0].upper() + member[1:]: value},
            code="ValidationException",
            message=f"1 validation error detected: Value '{value}' at '{member}' failed to "
            f"satisfy constraint: Member must have value {constraint}",
        )
        unchanged()
    for call in (lam.put_function_event_invoke_config, lam.list_function_event_invoke_configs):
        extra = {"MaximumRetryAttempts": 0} if call is lam.put_function_event_invoke_config else {}
        aws_error(
            call,
            FunctionName=unique("missing"),
            code="ResourceNotFoundException",
            message="The function doesn't exist.",
            status=404,
            **extra,
        )


def test_event_invoke_config_needs_permission_and_goes_with_the_function(
    server: ServerProcess, lam: Any, function: str
) -> None:
    name = function
    iam = server.client("iam")
    user = unique("cfg-user")
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    theirs = server.client(
        "lambda", aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"]
    )
    error = aws_error(
        theirs.put_function_event_invoke_config,
        FunctionName=name,
        MaximumRetryAttempts=0,
        code="AccessDeniedException",
        status=403,
    )
    assert "lambda:PutFunctionEventInvokeConfig" in error["Message"]
    aws_error(
        lam.get_function_event_invoke_config,
        FunctionName=name,
        code="ResourceNotFoundException",
        status=404,
    )
    # Audited like every request, refused or not.
    trail = server.client("cloudtrail").lookup_events(
        LookupAttributes=[
            {"AttributeKey": "EventName", "AttributeValue": "PutFunctionEventInvokeConfig"}
        ]
    )["Events"]
    assert any(event["Username"] == user for event in trail)

    lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0)
    configuration = lam.get_function_configuration(FunctionName=name)
    lam.delete_function(FunctionName=name)
    lam.create_function(
        FunctionName=name,
        Runtime=configuration["Runtime"],
        Role=configuration["Role"],
        Handler=configuration["Handler"],
        Code={"ZipFile": package(FAILS)},
    )
    aws_error(
        lam.get_function_event_invoke_config,
        FunctionName=name,
        code="ResourceNotFoundException",
        status=404,
    )
